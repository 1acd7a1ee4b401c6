package builtins_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sstar-project/sstar/builtins"
)

// spawner starts a grandchild (sleep) in the background, writes its pid
// to the file pid, and waits: killing only the child would leave the
// grandchild running.
const spawner = `proc.run(["sh", "-c", "sleep 600 & echo $! > pid.tmp; mv pid.tmp pid; wait"]%s)`

// A timeout kills the child and everything in its process group.
func TestProcTimeoutKillsGroup(t *testing.T) {
	dir := setupDir(t)
	th, _ := newThread(t)
	_, err := run(th, strings.Replace(spawner, "%s", ", timeout = 1", 1))
	if err == nil || !strings.Contains(err.Error(), "timed out after 1s (process group killed)") {
		t.Fatalf("error = %v, want a timeout", err)
	}
	waitGone(t, readPid(t, dir))
}

// A timeout too large for a duration is refused by its size, not printed
// whole: an int of a million digits takes seconds to print, and the
// message would be as long.
func TestProcTimeoutTooLarge(t *testing.T) {
	setupDir(t)
	th, _ := newThread(t)
	_, err := run(th, `
def huge():
    x = 1
    for _ in range(400):
        x = x << 500
    return x

proc.run(["true"], timeout = huge())
`)
	if err == nil || !strings.Contains(err.Error(), "timeout of 200001 bits (over 9223372036 seconds) is too large") || len(err.Error()) > 200 {
		t.Fatalf("error = %.300v", err)
	}
}

// When the host's context ends (the script's --timeout, say), a running
// child is killed with its process group, and none is started after.
func TestProcContextKillsGroup(t *testing.T) {
	dir := setupDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	th, _ := newThread(t)
	builtins.SetContext(th, ctx)
	go func() {
		// Cancel once the grandchild is running.
		for ctx.Err() == nil && !exists(filepath.Join(dir, "pid")) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	_, err := run(th, strings.Replace(spawner, "%s", "", 1))
	if err == nil || !strings.Contains(err.Error(), "stopped: the script was cancelled (process group killed)") {
		t.Fatalf("error = %v, want a cancellation", err)
	}
	waitGone(t, readPid(t, dir))

	_, err = run(th, `proc.run(["touch", "made"])`)
	if err == nil || !strings.Contains(err.Error(), "not started: stopped: the script was cancelled") {
		t.Fatalf("error = %v, want not started", err)
	}
	if exists(filepath.Join(dir, "made")) {
		t.Error("a process ran after the context ended")
	}
}

// The child of a script whose context has a deadline says so.
func TestProcContextDeadline(t *testing.T) {
	setupDir(t)
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	th, _ := newThread(t)
	builtins.SetContext(th, ctx)
	_, err := run(th, `proc.run(["true"])`)
	if err == nil || !strings.Contains(err.Error(), "the script's time limit was reached") {
		t.Fatalf("error = %v", err)
	}
}

// A program that exists but cannot be executed: not executable, not a
// program, a directory.
func TestProcNotExecutable(t *testing.T) {
	dir := setupDir(t)
	must(t, os.WriteFile("plain", []byte("#!/bin/sh\n"), 0o644))
	must(t, os.WriteFile("garbage", []byte("\x00\x01\x02 not a program"), 0o755))
	for src, want := range map[string]string{
		`proc.run(["./plain"])`:   `proc.run: ["./plain"]: ` + dir + `/plain: permission denied`,
		`proc.run(["./garbage"])`: `proc.run: ["./garbage"]: ` + dir + `/garbage: exec format error`,
		`proc.run(["./d"])`:       `proc.run: ["./d"]: ` + dir + `/d: is a directory`,
	} {
		th, _ := newThread(t)
		_, err := run(th, src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error = %v, want %q", src, err, want)
		}
	}
}

func readPid(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitGone waits until pid is dead (gone, or a zombie nobody reaped).
// SIGKILL is delivered asynchronously, so it may take a moment.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		// pid (comm) state ...
		if j := strings.LastIndexByte(string(stat), ')'); j >= 0 && strings.HasPrefix(string(stat[j:]), ") Z") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Errorf("process %d survived its process group's kill", pid)
}
