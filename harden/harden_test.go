package harden

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The filter is irreversible, so it is installed in a child: this test
// binary, run again with childEnv set, installs it and reports what the
// kernel then does.
const childEnv = "SSTAR_HARDEN_TEST_CHILD"

// abiCallsEnv, in a child, asks for callOtherABIs without the filter: on
// a kernel without IA32 emulation int $0x80 kills the process, so the
// test finds out in a process of its own.
const abiCallsEnv = "SSTAR_HARDEN_TEST_ABI_CALLS"

// abiCalls is callOtherABIs where there is one (amd64).
var abiCalls func() map[string]string

// benchChildEnv names, in a child of BenchmarkInstall, the way to
// install a filter: installing is irreversible and some of its cost
// (the template thread) is paid once per process, so each install is
// made and timed in a fresh process, as early as sstar makes it.
const benchChildEnv = "SSTAR_HARDEN_BENCH_CHILD"

// benchChild is installAndTime where there is one (amd64).
var benchChild func(name string)

// workloadChildEnv, in a child of BenchmarkWorkload, names the workload
// directory, the script, whether to install the filter first, and how
// many runs to time: "DIR|SCRIPT|filter|N" or "DIR|SCRIPT|none|N".
const workloadChildEnv = "SSTAR_HARDEN_WORKLOAD_CHILD"

// workload is workloadChild where there is one (amd64).
var workload func(spec string)

func TestMain(m *testing.M) {
	if name := os.Getenv(benchChildEnv); name != "" {
		benchChild(name) // first, as sstar installs before anything else
	}
	if spec := os.Getenv(workloadChildEnv); spec != "" {
		workload(spec)
	}
	if os.Getenv(abiCallsEnv) != "" && os.Getenv(childEnv) == "" {
		json.NewEncoder(os.Stdout).Encode(abiCalls())
		os.Exit(0)
	}
	if dir := os.Getenv(childEnv); dir != "" {
		report := child(dir)
		json.NewEncoder(os.Stdout).Encode(report)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childReport is what the child observed after installing the filter.
type childReport struct {
	Install    string            // "" on success
	Threads    int               // threads of the process
	Status     map[string]string // per thread: "Seccomp NoNewPrivs"
	Syscalls   map[string]string // system call -> its error ("" for none)
	Setfattr   string            // setfattr run as a child process: its output and error
	ShSeccomp  string            // what a shell started by the child says about itself
	GetxattrOK bool              // reading xattrs still works
	ABICalls   map[string]string // callOtherABIs under the filter, if asked for
	Reshape    map[string]string // reshapeCalls under the filter
	Dumpable   int               // PR_GET_DUMPABLE after DenyXattrWrites
	ExecCheck  string            // a child started with new namespaces by os/exec
}

func child(dir string) childReport {
	var r childReport
	file := filepath.Join(dir, "code.star")

	// Make sure there are threads besides this one before the filter goes
	// on: each is blocked with its goroutine locked to it.
	var ready, release sync.WaitGroup
	release.Add(1)
	for range 4 {
		ready.Add(1)
		go func() {
			runtime.LockOSThread()
			ready.Done()
			release.Wait()
		}()
	}
	ready.Wait()
	defer release.Done()

	if err := DenyXattrWrites(); err != nil {
		r.Install = err.Error()
		return r
	}

	r.Status = map[string]string{}
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	r.Threads = len(tasks)
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			r.Status[t] = err.Error()
			continue
		}
		r.Status[t] = field(string(b), "Seccomp") + " " + field(string(b), "NoNewPrivs")
	}

	errs := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	f, err := os.Open(file)
	if err != nil {
		r.Install = "open: " + err.Error()
		return r
	}
	defer f.Close()
	fd := int(f.Fd())
	r.Syscalls = map[string]string{
		"setxattr":      errs(unix.Setxattr(file, "user.sstar.sha256", []byte("x"), 0)),
		"lsetxattr":     errs(unix.Lsetxattr(file, "user.sstar.sha256", []byte("x"), 0)),
		"fsetxattr":     errs(unix.Fsetxattr(fd, "user.sstar.sha256", []byte("x"), 0)),
		"removexattr":   errs(unix.Removexattr(file, "user.sstar.sha256")),
		"lremovexattr":  errs(unix.Lremovexattr(file, "user.sstar.sha256")),
		"fremovexattr":  errs(unix.Fremovexattr(fd, "user.sstar.sha256")),
		"setxattrat":    errs(setxattrat(fd, "user.sstar.sha256", []byte("x"))),
		"removexattrat": errs(removexattrat(fd, "user.sstar.sha256")),
		"io_uring_setup": errs(func() error {
			var params [120]byte // struct io_uring_params
			r, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 4, uintptr(unsafe.Pointer(&params[0])), 0)
			if e != 0 {
				return e
			}
			unix.Close(int(r))
			return nil
		}()),
	}
	if os.Getenv(abiCallsEnv) != "" {
		r.ABICalls = abiCalls()
	}
	r.Reshape = reshapeCalls()
	r.Dumpable, _ = unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	ns := exec.Command("/bin/true")
	ns.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS}
	r.ExecCheck = errs(ns.Run())
	buf := make([]byte, 128)
	_, err = unix.Fgetxattr(fd, "user.sstar.sha256", buf)
	r.GetxattrOK = err == nil

	if path, err := exec.LookPath("setfattr"); err == nil {
		out, err := exec.Command(path, "-n", "user.sstar.sha256", "-v", "planted", file).CombinedOutput()
		r.Setfattr = fmt.Sprintf("%s|%v", strings.TrimSpace(string(out)), err)
	} else {
		r.Setfattr = "not installed"
	}
	out, err := exec.Command("/bin/sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status").CombinedOutput()
	r.ShSeccomp = strings.Join(strings.Fields(string(out)), " ") + errs(err)
	return r
}

func field(status, name string) string {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// setxattrat and removexattrat (Linux 6.13+) are not in x/sys yet.
func setxattrat(dirfd int, name string, value []byte) error {
	empty, _ := unix.BytePtrFromString("")
	n, _ := unix.BytePtrFromString(name)
	// struct xattr_args { __aligned_u64 value; __u32 size; __u32 flags; }
	args := struct {
		value uint64
		size  uint32
		flags uint32
	}{uint64(uintptr(unsafe.Pointer(&value[0]))), uint32(len(value)), 0}
	_, _, e := unix.Syscall6(463, uintptr(dirfd), uintptr(unsafe.Pointer(empty)), unix.AT_EMPTY_PATH,
		uintptr(unsafe.Pointer(n)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
	runtime.KeepAlive(value)
	if e != 0 {
		return e
	}
	return nil
}

func removexattrat(dirfd int, name string) error {
	empty, _ := unix.BytePtrFromString("")
	n, _ := unix.BytePtrFromString(name)
	_, _, e := unix.Syscall6(466, uintptr(dirfd), uintptr(unsafe.Pointer(empty)), unix.AT_EMPTY_PATH,
		uintptr(unsafe.Pointer(n)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func TestDenyXattrWrites(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skipf("the filter is written for amd64; on %s DenyXattrWrites must fail, see TestDenyXattrWritesUnsupported", runtime.GOARCH)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "code.star")
	if err := os.WriteFile(file, []byte("print('hi')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Without the filter the same calls work: otherwise the denials
	// below would prove nothing.
	if err := unix.Setxattr(file, "user.sstar.sha256", []byte("original"), 0); err != nil {
		t.Skipf("needs a temporary directory with user xattrs: %v", err)
	}
	if err := setxattrat(openFd(t, file), "user.probe", []byte("1")); errors.Is(err, unix.ENOSYS) {
		t.Logf("this kernel has no setxattrat (needs 6.13); its denial is not exercised")
	}
	unix.Removexattr(file, "user.probe")

	// The i386 and x32 calls without the filter, in a child: if they
	// work there, the filtered child makes them too.
	probe := exec.Command(os.Args[0], "-test.run=^$")
	probe.Env = append(os.Environ(), abiCallsEnv+"=1")
	var unfiltered map[string]string
	if out, err := probe.Output(); err != nil {
		t.Logf("int $0x80 does not work here (%v; a kernel without IA32 emulation?): the i386 and x32 calls are not exercised", err)
	} else if err := json.Unmarshal(out, &unfiltered); err != nil {
		t.Fatalf("i386 and x32 calls without the filter: %v\n%s", err, out)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	if unfiltered != nil {
		cmd.Env = append(cmd.Env, abiCallsEnv+"=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var r childReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("child's report: %v\n%s", err, out)
	}
	if r.Install != "" {
		t.Fatalf("DenyXattrWrites: %s", r.Install)
	}
	if r.Threads < 5 {
		t.Errorf("child had %d threads, want at least 5 (so that TSYNC is exercised)", r.Threads)
	}
	for task, st := range r.Status {
		if st != "2 1" {
			t.Errorf("%s: Seccomp NoNewPrivs = %q, want \"2 1\" (filter mode, no_new_privs) on every thread", task, st)
		}
	}
	for call, e := range r.Syscalls {
		if call == "setxattrat" || call == "removexattrat" {
			if e == unix.ENOSYS.Error() {
				continue // an older kernel: nothing to deny
			}
		}
		if e != unix.EPERM.Error() {
			t.Errorf("%s under the filter: %q, want %q", call, e, unix.EPERM.Error())
		}
	}
	for call, before := range unfiltered {
		after := r.ABICalls[call]
		switch {
		case call == "i386 getpid":
			if before != "ok" || after != "ok" {
				t.Errorf("%s: %q without the filter, %q under it; want it to work in both", call, before, after)
			}
		case before == "EPERM":
			t.Errorf("%s without the filter: EPERM, so EPERM under it would prove nothing", call)
		case call == "i386 clone3":
			if after != "ENOSYS" {
				t.Errorf("%s under the filter: %q (without: %q), want ENOSYS", call, after, before)
			}
		case after != "EPERM":
			t.Errorf("%s under the filter: %q (without: %q), want EPERM", call, after, before)
		}
	}
	if r.Dumpable != 0 {
		t.Errorf("PR_GET_DUMPABLE after DenyXattrWrites: %d, want 0 (not dumpable)", r.Dumpable)
	}
	unfilteredReshape := reshapeCalls()
	for call, after := range r.Reshape {
		before := unfilteredReshape[call]
		want := "EPERM"
		if call == "clone3" {
			want = "ENOSYS" // so that libc falls back to clone
		}
		switch {
		case before == "EPERM" && capabilityGated[call]:
			t.Logf("%s: EPERM without the filter too (no capability, or disabled here): its denial is not exercised", call)
		case before == want:
			t.Errorf("%s without the filter: %s, so %s under it would prove nothing", call, before, want)
		case after != want:
			t.Errorf("%s under the filter: %q (without: %q), want %s", call, after, before, want)
		}
	}
	if !strings.Contains(r.ExecCheck, "operation not permitted") {
		t.Errorf("os/exec with CLONE_NEWUSER|CLONE_NEWNS under the filter: %q, want operation not permitted", r.ExecCheck)
	}
	if !r.GetxattrOK {
		t.Errorf("reading the stamp failed under the filter; only writes may be denied")
	}
	switch {
	case r.Setfattr == "not installed":
		t.Logf("setfattr is not installed (package attr, see .ci/deps): a child process's setfattr is not exercised")
	case !strings.Contains(r.Setfattr, "Operation not permitted") || strings.HasSuffix(r.Setfattr, "|<nil>"):
		t.Errorf("setfattr started by the filtered process: %q, want it to fail with Operation not permitted", r.Setfattr)
	}
	if r.ShSeccomp != "NoNewPrivs: 1 Seccomp: 2" {
		t.Errorf("a shell started by the filtered process says %q, want \"NoNewPrivs: 1 Seccomp: 2\"", r.ShSeccomp)
	}

	buf := make([]byte, 64)
	n, err := unix.Getxattr(file, "user.sstar.sha256", buf)
	if err != nil || string(buf[:n]) != "original" {
		t.Errorf("stamp after the child: %q, %v; want it untouched (\"original\")", buf[:max(n, 0)], err)
	}
	// And this process was not filtered by its child.
	if err := unix.Setxattr(file, "user.sstar.sha256", []byte("again"), 0); err != nil {
		t.Errorf("the test process itself cannot set xattrs after its child installed the filter: %v", err)
	}
}

func openFd(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

func TestDenyXattrWritesUnsupported(t *testing.T) {
	if runtime.GOARCH == "amd64" {
		t.Skip("on amd64 the filter is supported; this checks that other architectures fail closed")
	}
	if err := DenyXattrWrites(); !errors.Is(err, ErrUnsupported) {
		t.Errorf("DenyXattrWrites on %s = %v, want ErrUnsupported", runtime.GOARCH, err)
	}
}
