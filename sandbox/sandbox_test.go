package sandbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/sstar-project/sstar/sandbox"
)

// sstarBin is the sstar binary the tests and examples run, built from
// this module by TestMain.
var sstarBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sandbox-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	sstarBin = filepath.Join(dir, "sstar")
	// The system policy path points into the test's directory, so that
	// no test depends on the machine's /etc.
	build := exec.Command("go", "build", "-o", sstarBin,
		"-ldflags", "-X github.com/sstar-project/sstar/policy.SystemPath="+filepath.Join(dir, "no-policy.star"),
		"github.com/sstar-project/sstar/cmd/sstar")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building sstar: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// script writes src to dir/name and stamps it with sstar trust.
func script(t testing.TB, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sstarBin, "trust", p).CombinedOutput(); err != nil {
		t.Fatalf("sstar trust: %v: %s", err, out)
	}
	return p
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	// Opening a FIFO nobody writes blocks in the kernel, where the
	// timeout cannot reach: the watchdog ends the run.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, src string
		cfg       sandbox.Config
		want      error
		limit     string
	}{
		{"steps", "x = 0\nwhile True:\n    x += 1\n", sandbox.Config{MaxSteps: 10000}, sandbox.ErrLimit, "steps"},
		{"timeout", "x = 0\nwhile True:\n    x += 1\n", sandbox.Config{Timeout: 200 * time.Millisecond}, sandbox.ErrLimit, "timeout"},
		{"watchdog", fmt.Sprintf("fs.read(%q)\n", fifo), sandbox.Config{Timeout: 200 * time.Millisecond}, sandbox.ErrLimit, "timeout"},
		{"memory", "x = []\nfor i in range(1 << 40):\n    x.append('y' * 1000 + str(i))\n", sandbox.Config{MaxMemory: 256 << 20}, sandbox.ErrLimit, "memory"},
		{"crash", "x = []\nfor i in range(12000000):\n    x = [x]\n", sandbox.Config{}, sandbox.ErrCrash, ""},
		{"fail", "fail('bad config')\n", sandbox.Config{}, sandbox.ErrScript, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "crash" && testing.Short() {
				t.Skip("nests a list 12 million deep (about 2 GB for seconds)")
			}
			cfg := c.cfg
			cfg.Sstar, cfg.Script = sstarBin, script(t, dir, c.name+".star", c.src)
			cfg.AuditLog = filepath.Join(dir, c.name+".jsonl")
			_, err := sandbox.Run(context.Background(), cfg)
			var e *sandbox.Error
			if !errors.Is(err, c.want) || !errors.As(err, &e) || e.Limit != c.limit {
				t.Fatalf("err = %v, want %v (limit %q)", err, c.want, c.limit)
			}
			t.Logf("%v", err)
		})
	}
	// Unstamped code is refused.
	p := filepath.Join(dir, "unstamped.star")
	os.WriteFile(p, []byte("x = 1\n"), 0o644)
	if _, err := sandbox.Run(context.Background(), sandbox.Config{Sstar: sstarBin, Script: p}); !errors.Is(err, sandbox.ErrRefused) {
		t.Fatalf("unstamped: %v", err)
	}
	if _, err := sandbox.Run(context.Background(), sandbox.Config{Sstar: "sstar", Script: p}); err == nil || !strings.Contains(err.Error(), "absolute path") {
		t.Fatalf("relative Sstar: %v", err)
	}
}

// The caller's context stops the run too.
func TestRunContext(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "spin.star", "x = 0\nwhile True:\n    x += 1\n")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := sandbox.Run(ctx, sandbox.Config{Sstar: sstarBin, Script: p})
	var e *sandbox.Error
	if !errors.Is(err, sandbox.ErrLimit) || !errors.As(err, &e) || e.Limit != "timeout" || time.Since(start) > 10*time.Second {
		t.Fatalf("err = %v after %s", err, time.Since(start))
	}
}

// BenchmarkRun is the cost of one evaluation of a small configuration
// script: two processes (sstar and its monitored run), verification,
// the run, the result as JSON.
func BenchmarkRun(b *testing.B) {
	dir := b.TempDir()
	p := script(b, dir, "config.star", "name = 'web'\nports = [80, 443]\nreplicas = 3 if name == 'web' else 1\n")
	cfg := sandbox.Config{Sstar: sstarBin, Script: p, Timeout: 5 * time.Second, MaxMemory: 256 << 20}
	for b.Loop() {
		res, err := sandbox.Run(context.Background(), cfg)
		if err != nil || len(res.Globals) != 3 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/eval")
	// What isolation is compared with: the same script read and run in
	// the embedding process by go.starlark.net itself, its globals
	// encoded as JSON as the sandbox's are.
	start := time.Now()
	for range b.N {
		src, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		g, err := starlark.ExecFileOptions(&syntax.FileOptions{}, &starlark.Thread{}, p, src, nil)
		if err != nil || len(g) != 3 {
			b.Fatal(err)
		}
		if _, err := json.Marshal(map[string]string{"name": g["name"].String(), "ports": g["ports"].String(), "replicas": g["replicas"].String()}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "in-process-µs/eval")
}

func ExampleRun() {
	dir, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(dir)
	config := filepath.Join(dir, "config.star")
	os.WriteFile(config, []byte(`
name = "web"
ports = [80, 443]
replicas = 3 if name == "web" else 1
_scratch = "not exported"
`), 0o644)
	// Only vouched-for code runs: stamp it (or sign a catalog).
	exec.Command(sstarBin, "trust", config).Run()

	res, err := sandbox.Run(context.Background(), sandbox.Config{
		Sstar:     sstarBin, // e.g. /usr/local/bin/sstar
		Script:    config,
		Timeout:   5 * time.Second,
		MaxMemory: 256 << 20,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var ports []int
	json.Unmarshal(res.Globals["ports"], &ports)
	fmt.Println(string(res.Globals["name"]), ports, string(res.Globals["replicas"]), len(res.Globals))
	// Output: "web" [80 443] 3 3
}

// A script that loops forever, or allocates without end, cannot stop
// the program that runs it: the error says which limit ended it.
func ExampleRun_limit() {
	dir, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(dir)
	hog := filepath.Join(dir, "hog.star")
	os.WriteFile(hog, []byte("x = []\nfor i in range(1 << 40):\n    x.append(str(i) * 100)\n"), 0o644)
	exec.Command(sstarBin, "trust", hog).Run()

	_, err := sandbox.Run(context.Background(), sandbox.Config{Sstar: sstarBin, Script: hog, MaxMemory: 256 << 20})
	var e *sandbox.Error
	if errors.As(err, &e) && errors.Is(err, sandbox.ErrLimit) {
		fmt.Println("stopped by its", e.Limit, "limit; sstar exit status", e.Status)
	}
	// Output: stopped by its memory limit; sstar exit status 71
}
