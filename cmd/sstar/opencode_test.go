package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/opencode"
	"github.com/sstar-project/sstar/opencode/opencodetest"
)

// runSstar runs the sstar command (the test binary under that name, put
// on PATH by testscript.Main) in dir and returns its exit status and
// stderr.
func runSstar(t *testing.T, dir string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("sstar", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	}
	t.Fatalf("sstar %v: %v", args, err)
	return 0, ""
}

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRefusalExitStatus: any refusal, of the main script or of a module
// loaded deep inside, is exit status 126; the message names the file.
func TestRefusalExitStatus(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"main.star":  "load('a/a.star', 'a')\nprint(a)\n",
		"a/a.star":   "load('../b/b.star', 'b')\na = b\n",
		"b/b.star":   "b = 'deep'\n",
		"plain.star": "print('plain')\n",
	})
	if code, stderr := runSstar(t, dir, "plain.star"); code != exitRefused || !strings.Contains(stderr, filepath.Join(dir, "plain.star")+": no stamp") {
		t.Errorf("unstamped main script: status %d, %q; want 126 naming it", code, stderr)
	}
	opencodetest.Stamp(t, filepath.Join(dir, "main.star"), filepath.Join(dir, "a/a.star"))
	code, stderr := runSstar(t, dir, "main.star")
	if code != exitRefused || !strings.Contains(stderr, "refused to run "+filepath.Join(dir, "b/b.star")+": no stamp") {
		t.Errorf("unstamped module two loads deep: status %d, %q; want 126 naming %s", code, stderr, filepath.Join(dir, "b/b.star"))
	}
	opencodetest.StampTree(t, dir)
	if code, stderr := runSstar(t, dir, "main.star"); code != exitOK {
		t.Errorf("all stamped: status %d, %q", code, stderr)
	}
	os.WriteFile(filepath.Join(dir, "b/b.star"), []byte("b = 'changed'\n"), 0o644)
	if code, stderr := runSstar(t, dir, "main.star"); code != exitRefused || !strings.Contains(stderr, "stamp does not match the content") {
		t.Errorf("module edited after stamping: status %d, %q; want 126", code, stderr)
	}
	if code, _ := runSstar(t, dir, "verify", "main.star", "b/b.star"); code != exitFailed {
		t.Errorf("sstar verify with one bad file: status %d, want 1", code)
	}
	if code, _ := runSstar(t, dir, "verify", "main.star"); code != exitOK {
		t.Errorf("sstar verify of a good file: status %d, want 0", code)
	}
}

// Securebits are set in a child: this test binary, run again with
// securebitsEnv set, sets them on a thread locked to its goroutine and
// runs the sstar command there, in-process. sstar reads the securebits
// on the thread that opens code, which is that one.
const securebitsEnv = "SSTAR_CMD_TEST_SECUREBITS"

type securebitsRun struct {
	Bits uint
	Dir  string
	Args []string
}

type securebitsResult struct {
	Code           int
	Stdout, Stderr string
	Err            string
}

func TestSecurebitsChild(t *testing.T) {
	spec := os.Getenv(securebitsEnv)
	if spec == "" {
		t.Skip("run as a child by TestExecRestrictFile and TestDenyInteractive")
	}
	var run securebitsRun
	var res securebitsResult
	if err := json.Unmarshal([]byte(spec), &run); err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread() // for good: the thread has the bits
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, uintptr(run.Bits), 0, 0, 0); err != nil {
		res.Err = "prctl(PR_SET_SECUREBITS): " + err.Error()
	} else if err := os.Chdir(run.Dir); err != nil {
		res.Err = err.Error()
	} else {
		var stdout, stderr bytes.Buffer
		res.Code = sstar(run.Args, &stdout, &stderr)
		res.Stdout, res.Stderr = stdout.String(), stderr.String()
	}
	out, _ := json.Marshal(res)
	os.Stdout.Write(append([]byte("\nRESULT "), append(out, '\n')...))
}

func withSecurebits(t *testing.T, bits uint, dir string, args ...string) securebitsResult {
	t.Helper()
	spec, _ := json.Marshal(securebitsRun{Bits: bits, Dir: dir, Args: args})
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecurebitsChild$", "-test.v")
	cmd.Env = append(os.Environ(), securebitsEnv+"="+string(spec))
	out, err := cmd.CombinedOutput()
	_, line, ok := strings.Cut(string(out), "\nRESULT ")
	if !ok {
		t.Fatalf("child: %v\n%s", err, out)
	}
	line, _, _ = strings.Cut(line, "\n")
	var res securebitsResult
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("child's result %q: %v", line, err)
	}
	if res.Err != "" {
		if strings.HasPrefix(res.Err, "prctl") {
			t.Skipf("needs the SECBIT_EXEC_* securebits (Linux 6.14): %s", res.Err)
		}
		t.Fatal(res.Err)
	}
	return res
}

// TestExecRestrictFile: with SECBIT_EXEC_RESTRICT_FILE set, sstar runs a
// stamped file only if the kernel would execute it (exec permission, an
// exec mount), main script and modules alike.
func TestExecRestrictFile(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"main.star": "load('lib.star', 'x')\nprint('ran', x)\n",
		"lib.star":  "x = 1\n",
	})
	opencodetest.StampTree(t, dir)
	main, lib := filepath.Join(dir, "main.star"), filepath.Join(dir, "lib.star")

	res := withSecurebits(t, opencode.SECBIT_EXEC_RESTRICT_FILE, dir, "main.star")
	if res.Code != exitRefused || !strings.Contains(res.Stderr, "refused to run "+main+": the kernel refused to execute it (AT_EXECVE_CHECK): EACCES: no exec permission, and SECBIT_EXEC_RESTRICT_FILE is set") {
		t.Errorf("0644 main script: status %d, %q; want 126 from the kernel check", res.Code, res.Stderr)
	}
	os.Chmod(main, 0o755)
	res = withSecurebits(t, opencode.SECBIT_EXEC_RESTRICT_FILE, dir, "main.star")
	if res.Code != exitRefused || !strings.Contains(res.Stderr, "refused to run "+lib+": the kernel refused") {
		t.Errorf("0755 main, 0644 module: status %d, %q; want 126 naming the module", res.Code, res.Stderr)
	}
	os.Chmod(lib, 0o755)
	res = withSecurebits(t, opencode.SECBIT_EXEC_RESTRICT_FILE, dir, "main.star")
	if res.Code != exitOK || res.Stdout != "ran 1\n" {
		t.Errorf("all executable: status %d, stdout %q, stderr %q", res.Code, res.Stdout, res.Stderr)
	}
	// sstar verify uses the same checks.
	os.Chmod(lib, 0o644)
	res = withSecurebits(t, opencode.SECBIT_EXEC_RESTRICT_FILE, dir, "verify", "main.star", "lib.star")
	if res.Code != exitFailed || !strings.Contains(res.Stdout, "main.star: ok\n") || !strings.Contains(res.Stdout, "lib.star: refused: the kernel refused to execute it") {
		t.Errorf("sstar verify under the securebit: status %d, %q", res.Code, res.Stdout)
	}
}

// TestDenyInteractive: with SECBIT_EXEC_DENY_INTERACTIVE set, the
// refusals of -c and standard input say so.
func TestDenyInteractive(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"-c", "print(1)"}, {"-"}, {}} {
		res := withSecurebits(t, opencode.SECBIT_EXEC_DENY_INTERACTIVE, dir, args...)
		if res.Code != exitUsage || !strings.Contains(res.Stderr, "SECBIT_EXEC_DENY_INTERACTIVE set") {
			t.Errorf("sstar %q with SECBIT_EXEC_DENY_INTERACTIVE: status %d, %q; want 2, saying so", args, res.Code, res.Stderr)
		}
	}
	// Without it, the refusal does not claim it.
	res := withSecurebits(t, 0, dir, "-c", "print(1)")
	if res.Code != exitUsage || strings.Contains(res.Stderr, "SECBIT") {
		t.Errorf("sstar -c without the securebit: status %d, %q", res.Code, res.Stderr)
	}
}
