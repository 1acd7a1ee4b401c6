package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The attacks of issue 17, each as an attacker ran it, and what must
// happen instead: the run ends with its documented status, within a
// bounded time, and the audit log's last record is a run_end saying why.
// They run the sstar command itself (this test binary, dispatched by
// testscript.Main on argv[0]).

// sstarRun is one sstar process of a test.
type sstarRun struct {
	status  int
	signal  syscall.Signal // if the process was killed
	stderr  string
	elapsed time.Duration
}

// attackCmd returns the command that runs sstar with args in dir, with no
// system policy.
func attackCmd(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: exe, Args: append([]string{"sstar"}, args...), Dir: dir}
	cmd.Env = append(os.Environ(), "TEST_SYSTEM_POLICY="+filepath.Join(dir, "no-system-policy.star"),
		"PATH="+sinksBin(t, exe)+":"+os.Getenv("PATH"))
	return cmd
}

// runSstar runs sstar and waits at most limit for it (then kills it and
// fails the test: the run did not end by itself).
func runSstar(t *testing.T, dir string, limit time.Duration, args ...string) sstarRun {
	t.Helper()
	cmd := attackCmd(t, dir, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("sstar %s still running after %s; killed it. stderr:\n%s", strings.Join(args, " "), limit, tail(stderr.String()))
	}
	r := sstarRun{status: cmd.ProcessState.ExitCode(), stderr: stderr.String(), elapsed: time.Since(start)}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		r.signal = ws.Signal()
	}
	return r
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// writeStamped writes the files and stamps them with sstar trust.
func writeStamped(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	var names []string
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if r := runSstar(t, dir, time.Minute, append([]string{"trust"}, names...)...); r.status != 0 {
		t.Fatalf("sstar trust: status %d: %s", r.status, r.stderr)
	}
}

// auditLine is a line of a JSON Lines audit log, as far as these tests
// read it.
type auditLine struct {
	Seq   uint64            `json:"seq"`
	Run   string            `json:"run"`
	Event string            `json:"event"`
	Args  []json.RawMessage `json:"args"`
}

// readAuditLog returns the lines of the audit log at path.
func readAuditLog(t *testing.T, path string) []auditLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []auditLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: %v: %s", path, err, sc.Bytes())
		}
		lines = append(lines, l)
	}
	return lines
}

// runEnd checks that the log's last line is a run_end, of the same run as
// the first line, with the seq after the line before it, and returns its
// status and reason.
func runEnd(t *testing.T, path string) (status int, reason string) {
	t.Helper()
	lines := readAuditLog(t, path)
	if len(lines) == 0 {
		t.Fatalf("%s is empty", path)
	}
	last := lines[len(lines)-1]
	if last.Event != "sstar.run_end" {
		t.Fatalf("%s ends with %s #%d, not sstar.run_end: the end of the run is not recorded", path, last.Event, last.Seq)
	}
	if last.Run != lines[0].Run || len(lines) > 1 && last.Seq != lines[len(lines)-2].Seq+1 {
		t.Fatalf("%s: run_end #%d of run %s does not follow #%d of run %s", path, last.Seq, last.Run, lines[len(lines)-2].Seq, lines[0].Run)
	}
	if err := json.Unmarshal(last.Args[0], &status); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(last.Args[1], &reason); err != nil {
		t.Fatal(err)
	}
	return status, reason
}

// verifyLog runs sstar log verify on path and fails unless the log is intact.
func verifyLog(t *testing.T, dir, path string) {
	t.Helper()
	cmd := attackCmd(t, dir, "log", "verify", path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sstar log verify %s: %v\n%s", path, err, out)
	}
}

// Attack 1: json.decode of a file of three million "[" under --max-steps
// 100 killed sstar with "fatal error: stack overflow" (exit 2, the usage
// status, and the log ended at exec). Now the decoder refuses the input
// at sstar's nesting limit: an ordinary error, status 1, recorded.
func TestAttackJSONDecodeDeep(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "input.json"), bytes.Repeat([]byte("["), 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	writeStamped(t, dir, map[string]string{"decode.star": `x = json.decode(fs.read("input.json"))` + "\n"})
	r := runSstar(t, dir, time.Minute, "--max-steps", "100", "--audit-log", "log.jsonl", "decode.star")
	if r.status != exitFailed || !strings.Contains(r.stderr, "nested deeper than 1000 levels") {
		t.Fatalf("status %d (want %d), stderr:\n%s", r.status, exitFailed, tail(r.stderr))
	}
	if status, reason := runEnd(t, filepath.Join(dir, "log.jsonl")); status != exitFailed || reason != "error" {
		t.Fatalf("run_end(%d, %q), want (%d, \"error\")", status, reason, exitFailed)
	}
	verifyLog(t, dir, "log.jsonl")
}

// json.encode of a value nested past the limit is refused the same way.
func TestJSONEncodeDeep(t *testing.T) {
	dir := t.TempDir()
	writeStamped(t, dir, map[string]string{"encode.star": `
def deep(n):
    x = []
    for i in range(n):
        x = [x]
    return x
json.encode(deep(999))
json.encode(deep(200000))
`})
	r := runSstar(t, dir, time.Minute, "--audit-log", "log.jsonl", "encode.star")
	if r.status != exitFailed || !strings.Contains(r.stderr, "json.encode: value nested deeper than 1000 levels") {
		t.Fatalf("status %d (want %d), stderr:\n%s", r.status, exitFailed, tail(r.stderr))
	}
	if status, reason := runEnd(t, filepath.Join(dir, "log.jsonl")); status != exitFailed || reason != "error" {
		t.Fatalf("run_end(%d, %q)", status, reason)
	}
}

// Attack 2: a module that nests a list twelve million deep crashes
// go.starlark.net when its globals are frozen (fatal error: stack
// overflow, no record). sstar cannot stop that recursion inside
// go.starlark.net; its monitor records the crash, with the runtime's
// first lines, and the run ends with the crash status.
func TestAttackFreezeDeep(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds a list nested 12 million deep (about 2 GB for a few seconds; many times that under the race detector)")
	}
	dir := t.TempDir()
	writeStamped(t, dir, map[string]string{
		"main.star": `load("deep.star", "x")` + "\n",
		"deep.star": "x = []\nfor i in range(12000000):\n    x = [x]\n",
	})
	r := runSstar(t, dir, 6*time.Minute, "--audit-log", "log.jsonl", "main.star")
	if r.status != exitCrash {
		t.Fatalf("status %d (signal %v), want %d (crash); stderr:\n%s", r.status, r.signal, exitCrash, tail(r.stderr))
	}
	status, reason := runEnd(t, filepath.Join(dir, "log.jsonl"))
	if status != exitCrash || !strings.HasPrefix(reason, "crash: ") || !strings.Contains(reason, "stack overflow") {
		t.Fatalf("run_end(%d, %q), want (%d, \"crash: …stack overflow…\")", status, reason, exitCrash)
	}
	verifyLog(t, dir, "log.jsonl")
}

// Attack 3: a 67-million-bit integer given to sys.audit under --timeout
// 1s ran for 30 seconds: the sink converted it to decimal while holding
// its lock, and the watchdog's own record waited on that lock. Rendering
// is bounded now (an int over 4096 bits is recorded by its bit length,
// a prefix and a hash): the run ends by its limits within seconds.
func TestAttackBigIntRecord(t *testing.T) {
	dir := t.TempDir()
	writeStamped(t, dir, map[string]string{"bigint.star": `
x = 2
for i in range(26):
    x = x * x
sys.audit("app.bigint", x)
`})
	r := runSstar(t, dir, 20*time.Second, "--timeout", "1s", "--max-steps", "1000", "--audit-log", "log.jsonl", "bigint.star")
	if r.elapsed > 10*time.Second {
		t.Fatalf("took %s", r.elapsed)
	}
	lines := readAuditLog(t, filepath.Join(dir, "log.jsonl"))
	found := false
	for _, l := range lines {
		if l.Event == "app.bigint" {
			found = true
			if len(l.Args[0]) > 1024 {
				t.Errorf("the int was recorded in %d bytes", len(l.Args[0]))
			}
		}
	}
	status, reason := runEnd(t, filepath.Join(dir, "log.jsonl"))
	switch {
	case r.status == exitOK && found && reason == "ok":
	case r.status == exitFailed && reason == "limit":
	default:
		t.Fatalf("status %d, run_end(%d, %q), app.bigint recorded: %v; stderr:\n%s", r.status, status, reason, found, tail(r.stderr))
	}
	t.Logf("status %d in %s, reason %q", r.status, r.elapsed, reason)
	verifyLog(t, dir, "log.jsonl")
}

// Attack 4: a --policy file with an endless loop ignored --timeout 1s
// and --max-steps 1000, which were applied only after policy files had
// run. Policy files run under the run's limits now.
func TestAttackPolicyLoop(t *testing.T) {
	dir := t.TempDir()
	writeStamped(t, dir, map[string]string{
		"loop.star":   "x = 0\nwhile True:\n    x += 1\n",
		"script.star": "print('never')\n",
	})
	for i, limit := range [][]string{{"--timeout", "1s"}, {"--max-steps", "1000"}} {
		log := strconv.Itoa(i) + ".jsonl"
		r := runSstar(t, dir, 20*time.Second, append(limit, "--policy", "loop.star", "--audit-log", log, "script.star")...)
		if r.status != exitFailed || !strings.Contains(r.stderr, "cancelled") {
			t.Fatalf("%v: status %d, stderr:\n%s", limit, r.status, tail(r.stderr))
		}
		if status, reason := runEnd(t, filepath.Join(dir, log)); status != exitFailed || reason != "limit" {
			t.Fatalf("%v: run_end(%d, %q), want (1, \"limit\")", limit, status, reason)
		}
		verifyLog(t, dir, log)
	}
}

// Attack 5: nothing bounded memory; a growing list ran until the OOM
// killer acted, unrecorded. Under --max-memory 256MiB the run stops
// within seconds with the memory status, and the log says so.
func TestAttackMemory(t *testing.T) {
	skipUnderRace(t)
	dir := t.TempDir()
	writeStamped(t, dir, map[string]string{
		"grow.star":  "x = []\nfor i in range(1 << 40):\n    x.append('y' * 1000 + str(i))\n",
		"small.star": "x = ['y' * 1000 + str(i) for i in range(10000)]\nprint(len(x))\n",
		"big.star":   "x = 'x' * (1 << 33)\n",
	})
	r := runSstar(t, dir, time.Minute, "--max-memory", "256MiB", "--audit-log", "log.jsonl", "grow.star")
	if r.status != exitMemory || r.elapsed > 30*time.Second {
		t.Fatalf("status %d (signal %v) after %s, want %d (memory); stderr:\n%s", r.status, r.signal, r.elapsed, exitMemory, tail(r.stderr))
	}
	status, reason := runEnd(t, filepath.Join(dir, "log.jsonl"))
	if status != exitMemory || !strings.HasPrefix(reason, "memory: ") {
		t.Fatalf("run_end(%d, %q), want (%d, \"memory: …\")", status, reason, exitMemory)
	}
	verifyLog(t, dir, "log.jsonl")

	// Under the limit, a script runs unchanged.
	if r := runSstar(t, dir, time.Minute, "--max-memory", "256MiB", "small.star"); r.status != exitOK {
		t.Fatalf("small.star under 256MiB: status %d: %s", r.status, tail(r.stderr))
	}
	// An allocation Starlark itself refuses is an ordinary error.
	if r := runSstar(t, dir, time.Minute, "--max-memory", "256MiB", "big.star"); r.status != exitFailed {
		t.Fatalf("big.star: status %d: %s", r.status, tail(r.stderr))
	}
}

// SIGKILL of a running sstar leaves a run_end with reason killed.
func TestKilledRecorded(t *testing.T) {
	dir := t.TempDir()
	writeStamped(t, dir, map[string]string{"spin.star": "fs.write('started', 'y')\nx = 0\nwhile True:\n    x += 1\n"})
	for _, who := range []string{"worker", "sstar"} {
		os.Remove(filepath.Join(dir, "started"))
		log := filepath.Join(dir, who+".jsonl")
		cmd := attackCmd(t, dir, "--audit-log", log, "spin.star")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Whatever fails below, nothing of the run is left spinning.
		top := cmd.Process.Pid
		var worker int
		t.Cleanup(func() {
			syscall.Kill(top, syscall.SIGKILL)
			if worker > 0 {
				syscall.Kill(worker, syscall.SIGKILL)
			}
		})
		waitFile(t, filepath.Join(dir, "started"))
		worker = workerOf(t, top)
		pid := top
		if who == "worker" {
			pid = worker
		}
		syscall.Kill(pid, syscall.SIGKILL)
		cmd.Wait()
		if who == "worker" && cmd.ProcessState.ExitCode() != 128+int(syscall.SIGKILL) {
			t.Errorf("%s killed: exit status %d, want %d; stderr:\n%s", who, cmd.ProcessState.ExitCode(), 128+int(syscall.SIGKILL), stderr.String())
		}
		// The other process writes the end; give it a moment when it is
		// the orphaned worker.
		var status int
		var reason string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			lines := readAuditLog(t, log)
			if time.Now().After(deadline) {
				t.Logf("%s killed: stderr:\n%s", who, stderr.String())
			}
			if lines[len(lines)-1].Event == "sstar.run_end" || time.Now().After(deadline) {
				status, reason = runEnd(t, log)
				break
			}
		}
		if !strings.HasPrefix(reason, "killed") || status != 128+int(syscall.SIGKILL) {
			t.Errorf("%s killed: run_end(%d, %q), want (137, \"killed …\")", who, status, reason)
		}
		verifyLog(t, dir, log)
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s never appeared", path)
}

// workerOf returns the pid of the only child of pid: the process that
// runs the script under sstar's monitor. (Each thread lists the children
// it started.)
func workerOf(t *testing.T, pid int) int {
	t.Helper()
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var kids []string
	for _, task := range tasks {
		data, _ := os.ReadFile(task)
		kids = append(kids, strings.Fields(string(data))...)
	}
	if len(kids) != 1 {
		t.Fatalf("sstar (pid %d) has children %q, want one worker", pid, kids)
	}
	n, err := strconv.Atoi(kids[0])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// allocChild is a child for proc.run that allocates and touches the
// number of MiB its argument says, then exits 0.
func allocChild() {
	n, _ := strconv.Atoi(os.Args[1])
	keep := make([][]byte, n)
	for i := range keep {
		keep[i] = bytes.Repeat([]byte{1}, 1<<20)
	}
	os.Exit(0)
}

// --max-memory holds for each process a run starts too (RLIMIT_DATA is
// inherited): a child that allocates 512 MiB under 256MiB fails, one
// that allocates 32 MiB runs.
func TestMemoryLimitChild(t *testing.T) {
	skipUnderRace(t)
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(dir, "sstar-alloc")); err != nil {
		t.Fatal(err)
	}
	writeStamped(t, dir, map[string]string{"child.star": `
small = proc.run(["./sstar-alloc", "32"])
big = proc.run(["./sstar-alloc", "512"])
print(small.code, big.code, "out of memory" in big.stderr)
`})
	cmd := attackCmd(t, dir, "--max-memory", "256MiB", "child.star")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "0 2 True" {
		t.Fatalf("small child's status, big child's status, out of memory: %q, want \"0 2 True\"", got)
	}
}

// The watchdog waits a bounded time for its record. Here a syslog server
// accepts the connection and never reads: the script blocks in the sink
// once the socket's buffers are full, the watchdog's own record waits
// behind it, and after watchdogRecordWait sstar ends anyway with status
// 255; the monitor writes the run's end into the audit log.
func TestWatchdogRecordBounded(t *testing.T) {
	// A small receive buffer, so that the sink blocks soon.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // never read
		}
	}()
	if os.Geteuid() != 0 {
		t.Skip("needs root: a system policy (owned by root) raises the record bound, so that a few records fill the socket")
	}
	dir := t.TempDir()
	// Records of up to 1 MiB (policy.audit), so that the socket's
	// buffers are full after a few of them, however slow the machine.
	writeStamped(t, dir, map[string]string{
		"no-system-policy.star": "policy.audit(max_record = 1048576)\n",
		"flood.star":            "x = 'y' * 1000000\nwhile True:\n    sys.audit('app.flood', x)\n",
	})
	r := runSstar(t, dir, time.Minute, "--timeout", "3s", "--audit-log", "log.jsonl", "--syslog", "tcp://"+ln.Addr().String(), "flood.star")
	if r.status != exitUnrecorded || !strings.Contains(r.stderr, "its record could not be written within 2s") {
		t.Fatalf("status %d after %s, stderr:\n%s", r.status, r.elapsed, tail(r.stderr))
	}
	if r.elapsed > 20*time.Second {
		t.Errorf("took %s", r.elapsed)
	}
	status, reason := runEnd(t, filepath.Join(dir, "log.jsonl"))
	if status != exitUnrecorded || !strings.HasPrefix(reason, "watchdog: ") {
		t.Fatalf("run_end(%d, %q)", status, reason)
	}
	t.Logf("stopped after %s: run_end(%d, %q)", r.elapsed, status, reason)
}

// skipUnderRace skips a test of memory limits in a race-detector build:
// its shadow memory counts against RLIMIT_DATA, so the limits mean
// something else there. make test runs such tests again without -race:
// the name of each must match the Makefile's NORACE (or, for a story,
// NORACE_STORIES), or CI never runs it.
func skipUnderRace(t *testing.T) {
	if raceEnabled {
		t.Skip("memory limits: needs a build without the race detector (go test without -race; make test runs it so)")
	}
}
