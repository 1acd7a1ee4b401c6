package opencode

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit"
)

// Securebits belong to the process: a test that sets them does so in a
// child. The test binary runs again with childEnv=set: it sets the bits
// on its thread, then executes itself with childEnv=report, so that the
// new process has them on every thread from the start (as sstar has when
// a parent set them), and verifies the files named in filesEnv.
const (
	childEnv = "SSTAR_OPENCODE_TEST_CHILD"
	bitsEnv  = "SSTAR_OPENCODE_TEST_SECUREBITS"
	filesEnv = "SSTAR_OPENCODE_TEST_FILES"
)

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "set":
		os.Exit(setSecurebitsAndReexec())
	case "report":
		json.NewEncoder(os.Stdout).Encode(report())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func setSecurebitsAndReexec() int {
	bits, err := strconv.ParseUint(os.Getenv(bitsEnv), 0, 32)
	if err == nil {
		runtime.LockOSThread()
		err = unix.Prctl(unix.PR_SET_SECUREBITS, uintptr(bits), 0, 0, 0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "prctl(PR_SET_SECUREBITS): %v\n", err)
		return 3
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, childEnv+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, childEnv+"=report")
	err = unix.Exec(os.Args[0], []string{os.Args[0], "-test.run=^$"}, env)
	fmt.Fprintf(os.Stderr, "exec: %v\n", err)
	return 3
}

type childReport struct {
	Securebits        uint
	InteractiveDenied bool
	Results           map[string]string // file -> "ok" or the refusal's reason
}

func report() childReport {
	r := childReport{Results: map[string]string{}}
	r.Securebits, _ = Securebits()
	r.InteractiveDenied = InteractiveDenied()
	// One Opener for every file, as a run has: the securebits it read
	// for the first file must decide the others too.
	o := new(Opener)
	for _, p := range filepath.SplitList(os.Getenv(filesEnv)) {
		if _, err := o.Verify(new(audit.Dispatcher), p); err != nil {
			r.Results[p] = err.Error()
		} else {
			r.Results[p] = "ok"
		}
	}
	return r
}

func runWithSecurebits(t *testing.T, bits uint, files ...string) childReport {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"=set",
		bitsEnv+"="+strconv.FormatUint(uint64(bits), 10),
		filesEnv+"="+strings.Join(files, string(filepath.ListSeparator)))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "prctl(PR_SET_SECUREBITS)") {
			t.Skipf("needs SECBIT_EXEC_* securebits (Linux 6.14): %s", stderr.String())
		}
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
	var r childReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("child's report: %v\n%s", err, out)
	}
	return r
}

func TestExecRestrictFileSecurebit(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	plain := writeStamped(t, dir, "plain.star", "x = 1\n")
	exe := writeStamped(t, dir, "exe.star", "x = 2\n")
	os.Chmod(exe, 0o755)
	unstamped := filepath.Join(dir, "unstamped.star")
	os.WriteFile(unstamped, []byte("x = 3\n"), 0o755)

	r := runWithSecurebits(t, SECBIT_EXEC_RESTRICT_FILE, plain, exe, unstamped)
	if r.Securebits&SECBIT_EXEC_RESTRICT_FILE == 0 {
		t.Fatalf("child's securebits %#x lack SECBIT_EXEC_RESTRICT_FILE", r.Securebits)
	}
	if r.InteractiveDenied {
		t.Errorf("InteractiveDenied with only SECBIT_EXEC_RESTRICT_FILE set")
	}
	if got := r.Results[plain]; !strings.Contains(got, ErrExecCheck.Error()) || !strings.Contains(got, "SECBIT_EXEC_RESTRICT_FILE is set") {
		t.Errorf("a stamped file without exec permission under SECBIT_EXEC_RESTRICT_FILE: %q, want refused by the kernel check", got)
	}
	if got := r.Results[exe]; got != "ok" {
		t.Errorf("a stamped executable file under SECBIT_EXEC_RESTRICT_FILE: %q, want ok", got)
	}
	if got := r.Results[unstamped]; !strings.Contains(got, ErrNoStamp.Error()) {
		t.Errorf("an unstamped executable file: %q, want no stamp: the kernel's yes is not a stamp", got)
	}

	// The same files without the bit: the kernel's no is only logged.
	if _, err := new(Opener).Verify(new(audit.Dispatcher), plain); err != nil {
		t.Errorf("without the securebit: %v", err)
	}
}

func TestDenyInteractiveSecurebit(t *testing.T) {
	if InteractiveDenied() {
		t.Fatalf("this test process already has SECBIT_EXEC_DENY_INTERACTIVE")
	}
	r := runWithSecurebits(t, SECBIT_EXEC_DENY_INTERACTIVE)
	if !r.InteractiveDenied {
		t.Errorf("InteractiveDenied = false in a child with SECBIT_EXEC_DENY_INTERACTIVE (securebits %#x)", r.Securebits)
	}
}

func TestKernelExecCheck(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	exe := filepath.Join(dir, "exe")
	os.WriteFile(plain, []byte("x"), 0o644)
	os.WriteFile(exe, []byte("x"), 0o755)
	err := KernelExecCheck(openFd(t, exe))
	if errors.Is(err, unix.EINVAL) {
		t.Skip("needs AT_EXECVE_CHECK (Linux 6.14)")
	}
	if err != nil {
		t.Errorf("exec check of a 0755 file: %v", err)
	}
	if err := KernelExecCheck(openFd(t, plain)); !errors.Is(err, unix.EACCES) {
		t.Errorf("exec check of a 0644 file: %v, want EACCES", err)
	}
	// Still here: the check executed nothing.
}

// The check passes an argv of one argument and an empty environment, so
// that the kernel does not log "launched '/dev/fd/N' with NULL argv:
// empty string added" (once per boot, so the test looks at the call
// itself, with strace).
func TestKernelExecCheckArgv(t *testing.T) {
	if err := KernelExecCheck(openFd(t, os.Args[0])); errors.Is(err, unix.EINVAL) {
		t.Skip("needs AT_EXECVE_CHECK (Linux 6.14)")
	}
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("needs strace (package strace)")
	}
	out := filepath.Join(t.TempDir(), "strace.out")
	cmd := exec.Command(strace, "-f", "-qq", "-e", "trace=execveat", "-e", "signal=none", "-o", out,
		os.Args[0], "-test.run=^TestKernelExecCheck$", "-test.count=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("strace: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	checks := 0
	for _, line := range strings.Split(string(b), "\n") {
		// strace 6.x does not name AT_EXECVE_CHECK: it shows 0x10000.
		if !strings.Contains(line, "execveat(") || !strings.Contains(line, `, "", `) {
			continue
		}
		checks++
		if !strings.Contains(line, `, "", ["sstar"], `) || !strings.Contains(line, "/* 0 vars */") {
			t.Errorf("exec check made as %s; want argv [\"sstar\"] and an empty environment", line)
		}
	}
	if checks == 0 {
		t.Fatalf("strace saw no exec check:\n%s", b)
	}
}

// An Opener reads the securebits at its first exec check and applies
// them to every file it opens afterwards; another Opener reads them
// again. The read is replaced here by one that claims
// SECBIT_EXEC_RESTRICT_FILE, so every file without exec permission must
// be refused, not only the first.
func TestSecurebitsReadOncePerOpener(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	var files []string
	for _, name := range []string{"a.star", "b.star", "c.star"} {
		files = append(files, writeStamped(t, dir, name, fmt.Sprintf("name = %q\n", name)))
	}
	reads := 0
	defer func(read func() (uint, error)) { readSecurebits = read }(readSecurebits)
	readSecurebits = func() (uint, error) {
		reads++
		return SECBIT_EXEC_RESTRICT_FILE, nil
	}

	o := new(Opener)
	for _, p := range files {
		d, rec := newDispatcher(t)
		_, err := o.Verify(d, p)
		refusal(t, rec, err, p, ErrExecCheck)
		ev, _ := rec.Find("sstar.exec_check")
		if ev.Args().Len() != 4 || ev.Args().Index(2) != starlark.True {
			t.Errorf("%s: sstar.exec_check%s, want enforced=True", p, ev.Args())
		}
	}
	if reads != 1 {
		t.Errorf("one Opener opening %d files read the securebits %d times, want once", len(files), reads)
	}
	if _, err := new(Opener).Verify(new(audit.Dispatcher), files[0]); !errors.Is(err, ErrExecCheck) {
		t.Errorf("a new Opener: %v, want refused by the kernel check", err)
	}
	if reads != 2 {
		t.Errorf("a new Opener did not read the securebits again (%d reads in all, want 2)", reads)
	}
}

// Securebits that cannot be read are treated as restrictive, for every
// file the Opener opens (fail closed).
func TestSecurebitsUnreadable(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	a := writeStamped(t, dir, "a.star", "a = 1\n")
	b := writeStamped(t, dir, "b.star", "b = 1\n")
	defer func(read func() (uint, error)) { readSecurebits = read }(readSecurebits)
	readSecurebits = func() (uint, error) { return 0, errors.New("prctl(PR_GET_SECUREBITS): injected") }

	o := new(Opener)
	for _, p := range []string{a, b} {
		d, rec := newDispatcher(t)
		_, err := o.Verify(d, p)
		re := refusal(t, rec, err, p, ErrExecCheck)
		if !strings.Contains(re.Reason.Error(), "securebits could not be read") {
			t.Errorf("%s: refusal %q does not say the securebits could not be read", p, re.Reason)
		}
	}
}
