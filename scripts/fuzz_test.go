// Package scripts holds the tests of the project's shell scripts.
package scripts_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fuzz runs scripts/fuzz.sh in dir with go as its go command, for the
// target pkg:name, and returns its output and whether it passed.
func fuzz(t *testing.T, dir, goCmd, target string) (string, bool) {
	t.Helper()
	script, err := filepath.Abs("fuzz.sh")
	if err != nil {
		t.Fatal(err)
	}
	// fuzz.sh works from the checkout's top; copy it to dir's scripts/
	// so that it works in dir.
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	copy := filepath.Join(dir, "scripts", "fuzz.sh")
	if err := os.WriteFile(copy, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", copy, "1s", target)
	cmd.Env = append(os.Environ(), "GO="+goCmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return string(out), err == nil
}

// fakeGo writes a go command that prints out and exits 1, after running
// the shell commands in also.
func fakeGo(t *testing.T, dir, out, also string) string {
	t.Helper()
	p := filepath.Join(dir, "fakego")
	s := "#!/bin/sh\n" + also + "\ncat <<'EOF'\n" + out + "EOF\nexit 1\n"
	if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// What Go 1.26 prints when the race of go.dev/issue/75804 ends a run.
const raced = `=== RUN   FuzzThing
fuzz: elapsed: 0s, gathering baseline coverage: 57/57 completed, now fuzzing with 2 workers
fuzz: elapsed: 1s, execs: 44567 (14854/sec), new interesting: 0 (total: 57)
--- FAIL: FuzzThing (1.05s)
    context deadline exceeded
=== NAME  
FAIL
exit status 1
FAIL	example/thing	1.077s
`

func TestFuzzRaceCountsAsPassed(t *testing.T) {
	dir := t.TempDir()
	out, ok := fuzz(t, dir, fakeGo(t, dir, raced, ""), "./thing:FuzzThing")
	if !ok || !strings.Contains(out, "go.dev/issue/75804") {
		t.Fatalf("the race failed the run, or was not reported (passed %v):\n%s", ok, out)
	}
}

func TestFuzzDeadlineWithInputFails(t *testing.T) {
	dir := t.TempDir()
	// The same words, but an input was written: a failure.
	also := "mkdir -p thing/testdata/fuzz/FuzzThing && echo x > thing/testdata/fuzz/FuzzThing/1"
	out, ok := fuzz(t, dir, fakeGo(t, dir, raced, also), "./thing:FuzzThing")
	if ok {
		t.Fatalf("a run that wrote a failing input passed:\n%s", out)
	}
}

func TestFuzzOtherFailureFails(t *testing.T) {
	dir := t.TempDir()
	other := strings.Replace(raced, "    context deadline exceeded\n",
		"    context deadline exceeded\n    fuzz_test.go:9: and something else\n", 1)
	out, ok := fuzz(t, dir, fakeGo(t, dir, other, ""), "./thing:FuzzThing")
	if ok {
		t.Fatalf("a failure saying more than the race passed:\n%s", out)
	}
}

// TestFuzzRealFailureFails fuzzes, with the real go command, a target
// that fails on its first input of two bytes or more, one that finds
// nothing, and one that is not there.
func TestFuzzRealFailureFails(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and fuzzes a module: not in -short")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command on PATH")
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example\n\ngo 1.26\n",
		// Indented, so that make fuzz, which finds targets by
		// "^func Fuzz", does not take these for the tree's own.
		"thing/thing_test.go": `package thing

import "testing"

	func FuzzThing(f *testing.F) {
		f.Add([]byte("a"))
		f.Fuzz(func(t *testing.T, b []byte) {
			if len(b) > 1 {
				t.Fatalf("found %q", b)
			}
		})
	}

	func FuzzFine(f *testing.F) {
		f.Fuzz(func(t *testing.T, b []byte) {})
	}
`,
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, ok := fuzz(t, dir, goCmd, "./thing:FuzzThing")
	if ok {
		t.Fatalf("a target that fails passed:\n%s", out)
	}
	if !strings.Contains(out, "Failing input written to") {
		t.Fatalf("go did not report the failing input it found:\n%s", out)
	}
	if out, ok := fuzz(t, dir, goCmd, "./thing:FuzzFine"); !ok {
		t.Fatalf("a target that finds nothing failed:\n%s", out)
	}
	// go test passes when -fuzz names no target; fuzz.sh must not.
	out, ok = fuzz(t, dir, goCmd, "./thing:FuzzMissing")
	if ok || !strings.Contains(out, "no fuzz target FuzzMissing in ./thing") {
		t.Fatalf("a target that is not there passed, or was not named (passed %v):\n%s", ok, out)
	}
}
