package main

import (
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"
)

// Reports as the Go runtime writes them to the crash output (a throw's
// "fatal error" line goes to standard error only, so it is missing).
const (
	overflowReport = `runtime: goroutine stack exceeds 1000000000-byte limit
runtime: sp=0xc0200e0390 stack=[0xc0200e0000, 0xc0400e0000]

goroutine 1 gp=0xc000002380 m=0 mp=0x9a2f40 [running]:
runtime.throw({0x6d5b1e?, 0x0?})
	/usr/local/go/src/runtime/panic.go:1101 +0x48 fp=0xc0200e03a0 sp=0xc0200e0370 pc=0x46f0e8
runtime.newstack()
	/usr/local/go/src/runtime/stack.go:1107 +0x5bd fp=0xc0200e04d0 sp=0xc0200e03a0 pc=0x454e3d
runtime.morestack()
	/usr/local/go/src/runtime/asm_amd64.s:621 +0x7a fp=0xc0200e04d8 sp=0xc0200e04d0 pc=0x474dfa
go.starlark.net/starlark.(*List).Freeze(0xc00a1b2c40)
	/root/go/pkg/mod/go.starlark.net/value.go:812 +0x5e fp=0xc0200e0508 sp=0xc0200e04d8 pc=0x5d9a9e
`
	oomReport = `goroutine 1 gp=0xc000002380 m=0 mp=0x9a2f40 [running]:
runtime.throw({0x6d5b1e?, 0x0?})
	/usr/local/go/src/runtime/panic.go:1101 +0x48
runtime.persistentalloc1(0x4000, 0x0, 0x9c1b08)
	/usr/local/go/src/runtime/malloc.go:1900 +0x2a5
internal/bytealg.MakeNoZero(0x40000000)
	/usr/local/go/src/internal/bytealg/bytealg.go:1 +0x1
`
	// Out of memory, thrown while allocating the heap's metadata.
	arenaReport = `goroutine 1 gp=0xc000002380 m=0 mp=0x9a2f40 [running]:
runtime.throw({0x6d5b1e?, 0x0?})
	/usr/local/go/src/runtime/panic.go:1101 +0x48
runtime.newArenaMayUnlock()
	/usr/local/go/src/runtime/mheap.go:2600 +0x1
runtime.newMarkBits(0x1)
	/usr/local/go/src/runtime/mheap.go:2500 +0x1
go.starlark.net/starlark.Call(0xc000010000)
	/root/go/pkg/mod/go.starlark.net/eval.go:1 +0x1
`
	segvReport = `SIGSEGV: segmentation violation
PC=0x46f0e8 m=0 sigcode=1 addr=0x0

goroutine 1 gp=0xc000002380 m=0 mp=0x9a2f40 [running]:
main.broken()
	/src/x.go:3 +0x1
`
)

func TestCrashSummary(t *testing.T) {
	for _, c := range []struct {
		name, report, want string
	}{
		{"stack overflow", overflowReport, "fatal error: stack overflow (in runtime.throw < runtime.newstack < runtime.morestack < go.starlark.net/starlark.(*List).Freeze)"},
		{"out of memory", oomReport, "fatal error: runtime: out of memory (in runtime.throw < runtime.persistentalloc1 < internal/bytealg.MakeNoZero)"},
		{"signal", segvReport, "SIGSEGV: segmentation violation (in main.broken)"},
		{"panic", "panic: boom\n\ngoroutine 1 [running]:\nmain.f()\n\t/x.go:1\n", "panic: boom (in main.f)"},
		{"nothing", "", ""},
		{"no frames", "some text\nwith no frames\n", ""},
	} {
		if got := crashSummary([]byte(c.report)); got != c.want {
			t.Errorf("%s: crashSummary = %q, want %q", c.name, got, c.want)
		}
	}
}

// The status and reason the monitor records for each way a run can end
// without recording its end.
func TestOutcome(t *testing.T) {
	exited := func(code int) syscall.WaitStatus { return syscall.WaitStatus(code << 8) }
	signaled := func(sig syscall.Signal) syscall.WaitStatus { return syscall.WaitStatus(sig) }
	state := func(memory int64) *runState {
		st := &runState{mem: make([]byte, stateSize)}
		st.u64(offMemory).Store(uint64(memory))
		return st
	}
	for _, c := range []struct {
		name   string
		ws     syscall.WaitStatus
		st     *runState
		report string
		status int
		reason string
	}{
		{"overflow", exited(2), state(0), overflowReport, exitCrash, "crash: fatal error: stack overflow"},
		{"out of memory under a limit", exited(2), state(256 << 20), oomReport, exitMemory, "memory: the run went past its memory limit of 256MiB: fatal error: runtime: out of memory"},
		{"out of memory without one", exited(2), state(0), oomReport, exitCrash, "crash: fatal error: runtime: out of memory"},
		{"out of memory for the heap's metadata", exited(2), state(256 << 20), arenaReport, exitMemory, "memory: the run went past its memory limit of 256MiB: fatal error: runtime: out of memory (in runtime.throw < runtime.newArenaMayUnlock"},
		{"SIGKILL", signaled(syscall.SIGKILL), state(0), "", 128 + int(syscall.SIGKILL), "killed SIGKILL"},
		{"SIGSEGV with a report", signaled(syscall.SIGSEGV), state(0), segvReport, exitCrash, "crash: SIGSEGV: segmentation violation"},
		{"silent exit", exited(3), state(0), "", exitCrash, "crash: the run exited with status 3 without recording its end"},
	} {
		status, reason := outcome(c.ws, c.st, []byte(c.report))
		if status != c.status || !strings.HasPrefix(reason, c.reason) {
			t.Errorf("%s: outcome = (%d, %q), want (%d, %q…)", c.name, status, reason, c.status, c.reason)
		}
	}
}

// Whatever the crash output holds (the run's, so the script's panics'
// text among it), the summary is one bounded line of valid UTF-8.
func FuzzCrashSummary(f *testing.F) {
	for _, r := range []string{overflowReport, oomReport, segvReport, "panic: x\nmain.f()\n", ""} {
		f.Add([]byte(r))
	}
	f.Fuzz(func(t *testing.T, report []byte) {
		s := crashSummary(report)
		if len(s) > 600+len("…") || strings.Contains(s, "\n") || !utf8.ValidString(s) {
			t.Fatalf("crashSummary = %q", s)
		}
	})
}
