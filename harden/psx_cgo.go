//go:build cgo

package harden

// psxReadsTaskDir: in a cgo build, go-landlock restricts every thread
// through libcap's psx in C, which first restricts the calling thread and
// then lists /proc/PID/task to find the others; without read access to
// that directory it kills the process. Confine grants it (READ_DIR only)
// in such builds. sstar itself is built with CGO_ENABLED=0, where psx
// uses the Go runtime's syscall.AllThreadsSyscall and reads nothing.
const psxReadsTaskDir = true
