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
	for _, p := range filepath.SplitList(os.Getenv(filesEnv)) {
		if _, err := new(Opener).Verify(new(audit.Dispatcher), p); err != nil {
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
