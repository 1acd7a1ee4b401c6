// Package sinks tests the audit sinks end to end: the sstar binary,
// built once, runs real scripts with --audit-log and --syslog against
// real files, a real rsyslogd on loopback, a real full disk and a real
// read-only file, and what arrived is checked event by event.
package sinks

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit/render"
	"github.com/sstar-project/sstar/internal/rsyslogtest"
)

var sstarBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sstar-sinks-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sstarBin = filepath.Join(dir, "sstar")
	build := exec.Command("go", "build", "-o", sstarBin, "github.com/sstar-project/sstar/cmd/sstar")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sstar:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// script writes a Starlark file and vouches for it the way `sstar trust`
// does (the SHA-256 of its content in user.sstar.sha256).
func script(t *testing.T, dir, name, src string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(src))
	if err := syscall.Setxattr(path, "user.sstar.sha256", []byte(hex.EncodeToString(sum[:])), 0); err != nil {
		t.Skipf("needs user extended attributes in %s to stamp scripts: %v", dir, err)
	}
	return path
}

// ticks raises n tick events whose arguments exercise the renderer, and
// prints each index once its event was recorded.
const ticks = `
def args(i):
    return (i, "s%d \"q\" [b] \\ é" % i, (i, [i, None]), {i: True, "k": 1.5}, b"\x00\xff", -((1 << 80) + i))

for i in range(int(sys.argv[1])):
    sys.audit("tick", *args(i))
    print(i)
print("done")
`

// wantArgs are the arguments the ticks script raises tick i with.
func wantArgs(i int) starlark.Tuple {
	d := starlark.NewDict(2)
	d.SetKey(starlark.MakeInt(i), starlark.True)
	d.SetKey(starlark.String("k"), starlark.Float(1.5))
	big := starlark.MakeInt(2).Mul(starlark.MakeInt(1 << 40)).Mul(starlark.MakeInt(1 << 39))
	return starlark.Tuple{
		starlark.MakeInt(i),
		starlark.String(fmt.Sprintf("s%d \"q\" [b] \\ é", i)),
		starlark.Tuple{starlark.MakeInt(i), starlark.NewList([]starlark.Value{starlark.MakeInt(i), starlark.None})},
		d,
		starlark.Bytes("\x00\xff"),
		starlark.MakeInt(0).Sub(big.Add(starlark.MakeInt(i))),
	}
}

func checkArgs(t *testing.T, what string, i int, data []byte) {
	t.Helper()
	got, err := render.Parse(data)
	if err != nil {
		t.Fatalf("%s: args %s: %v", what, data, err)
	}
	if eq, err := starlark.Equal(got, wantArgs(i)); err != nil || !eq {
		t.Fatalf("%s: args came back as %s, want %s", what, got, wantArgs(i))
	}
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(sstarBin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

type record struct {
	Seq   uint64          `json:"seq"`
	Time  string          `json:"time"`
	PID   int             `json:"pid"`
	Run   string          `json:"run"`
	Event string          `json:"event"`
	Args  json.RawMessage `json:"args"`
	Prev  string          `json:"prev"`
}

// readLog returns the complete records of a log.
func readLog(t *testing.T, path string) []record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []record
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if !bytes.HasSuffix(line, []byte("\n")) || len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%s: %v: %s", path, err, line)
		}
		out = append(out, r)
	}
	return out
}

func only(recs []record, event string) []record {
	var out []record
	for _, r := range recs {
		if r.Event == event {
			out = append(out, r)
		}
	}
	return out
}

func TestAuditLog(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "ticks.star", ticks)
	const n = 500
	res := run(t, dir, "--audit-log", "audit.jsonl", "ticks.star", strconv.Itoa(n))
	if res.code != 0 || !strings.HasSuffix(res.stdout, "done\n") {
		t.Fatalf("sstar exited %d\nstdout %s\nstderr %s", res.code, res.stdout, res.stderr)
	}
	fi, _ := os.Stat(filepath.Join(dir, "audit.jsonl"))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode %v, want 0600", fi.Mode().Perm())
	}
	recs := readLog(t, filepath.Join(dir, "audit.jsonl"))
	if recs[0].Seq != 1 || recs[0].Prev != strings.Repeat("0", 64) || len(only(recs, "sstar.run_file")) != 1 {
		t.Errorf("first record %+v", recs[0])
	}
	got := only(recs, "tick")
	if len(got) != n {
		t.Fatalf("%d tick events in the log, want %d", len(got), n)
	}
	for i, r := range got {
		checkArgs(t, fmt.Sprintf("tick %d", i), i, r.Args)
		if i > 0 && r.Seq != got[i-1].Seq+1 {
			t.Fatalf("tick %d has seq %d after %d", i, r.Seq, got[i-1].Seq)
		}
	}
	v := run(t, dir, "log", "verify", "audit.jsonl")
	if v.code != 0 || !strings.Contains(v.stdout, "intact") {
		t.Errorf("sstar log verify: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
}

// Several sstar processes append to one log at once: each run's chain
// stays intact and no line is torn.
func TestConcurrentRuns(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "ticks.star", ticks)
	const procs, n = 4, 2000
	var wg sync.WaitGroup
	results := make([]result, procs)
	for p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[p] = run(t, dir, "--audit-log", "audit.jsonl", "ticks.star", strconv.Itoa(n))
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.code != 0 {
			t.Fatalf("sstar exited %d: %s", r.code, r.stderr)
		}
	}
	recs := readLog(t, filepath.Join(dir, "audit.jsonl"))
	runs := map[string]int{}
	for _, r := range only(recs, "tick") {
		runs[r.Run]++
	}
	if len(runs) != procs {
		t.Fatalf("%d runs in the log, want %d", len(runs), procs)
	}
	for id, c := range runs {
		if c != n {
			t.Errorf("run %s: %d ticks, want %d", id, c, n)
		}
	}
	v := run(t, dir, "log", "verify", "audit.jsonl")
	if v.code != 0 {
		t.Errorf("sstar log verify: exit %d\n%s", v.code, v.stdout)
	}
}

// `sstar log verify` on logs that were edited, cut, reordered...
func TestVerifyTampered(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "ticks.star", ticks)
	if res := run(t, dir, "--audit-log", "audit.jsonl", "ticks.star", "20"); res.code != 0 {
		t.Fatalf("sstar: %s", res.stderr)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	lines := bytes.SplitAfter(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	lines[len(lines)-1] = append(lines[len(lines)-1], '\n')
	with := func(f func(ls [][]byte) [][]byte) []byte {
		ls := make([][]byte, len(lines))
		for i := range lines {
			ls[i] = append([]byte(nil), lines[i]...)
		}
		return bytes.Join(f(ls), nil)
	}
	for _, tc := range []struct {
		name string
		log  []byte
		code int
		want string
	}{
		{"intact", data, 0, `audit.jsonl: \d+ lines, \d+ records, 1 runs: intact`},
		{"edited", with(func(ls [][]byte) [][]byte {
			ls[10] = bytes.Replace(ls[10], []byte(`"s`), []byte(`"S`), 1)
			return ls
		}), 1, "audit.jsonl:11: edited: line 12 .* line 11 was changed"},
		{"deleted", with(func(ls [][]byte) [][]byte { return append(ls[:10], ls[11:]...) }), 1, "audit.jsonl:11: removed: run .* jumps from seq 10 .* to seq 12: 1 lines missing"},
		{"reordered", with(func(ls [][]byte) [][]byte { ls[10], ls[11] = ls[11], ls[10]; return ls }), 1, "audit.jsonl:12: reordered"},
		{"inserted", with(func(ls [][]byte) [][]byte {
			return append(ls[:12], append([][]byte{ls[5]}, ls[12:]...)...)
		}), 1, "audit.jsonl:13: inserted: a copy of line 6"},
		{"truncated", data[:len(data)-30], 3, `audit.jsonl:\d+: truncated: .*\n.*TRUNCATED`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(dir, "audit.jsonl"), tc.log, 0o600)
			v := run(t, dir, "log", "verify", "audit.jsonl")
			if v.code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", v.code, tc.code, v.stdout, v.stderr)
			}
			if !matches(tc.want, v.stdout) {
				t.Errorf("output does not match %q:\n%s", tc.want, v.stdout)
			}
		})
	}
}

func matches(re, s string) bool {
	return regexp.MustCompile(re).MatchString(s)
}

// loop runs the ticks script for ever (until its sink fails), printing
// each index after its event was recorded. It calls fault once index
// `after` has been printed, then waits for sstar to exit.
type loopRun struct {
	code    int
	printed int // the last index printed, -1 if none
	done    bool
	stderr  string
}

func loop(t *testing.T, dir string, after int, fault func(), args ...string) loopRun {
	t.Helper()
	cmd := exec.Command(sstarBin, append(args, "ticks.star", "1000000000")...)
	cmd.Dir = dir
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	res := loopRun{printed: -1}
	sc := bufio.NewScanner(out)
	faulted := false
	for sc.Scan() {
		line := sc.Text()
		if line == "done" {
			res.done = true
			continue
		}
		i, err := strconv.Atoi(line)
		if err != nil {
			t.Fatalf("unexpected output %q", line)
		}
		res.printed = i
		if i >= after && !faulted {
			faulted = true
			fault()
		}
	}
	io.Copy(io.Discard, out)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	}
	res.stderr = errb.String()
	if !faulted {
		t.Fatalf("sstar stopped after printing %d, before the fault: exit %d: %s", res.printed, res.code, res.stderr)
	}
	return res
}

// checkStopped checks that sstar stopped with 255 and said why (a
// regular expression), and that
// the event that could not be recorded (the log's last record, whose
// index the script would have printed next) did not let anything after
// it run.
func checkStopped(t *testing.T, res loopRun, lastLogged int, why string) {
	t.Helper()
	if res.code != 255 {
		t.Fatalf("exit %d, want 255; stderr: %s", res.code, res.stderr)
	}
	if res.done {
		t.Fatal("the script ran to the end after its sink failed")
	}
	if !strings.HasPrefix(res.stderr, "sstar: CRITICAL: audit event could not be recorded: ") || !matches(why, res.stderr) || strings.Count(strings.TrimSpace(res.stderr), "\n") > 1 {
		t.Errorf("stderr does not say %q on one line: %s", why, res.stderr)
	}
	if res.printed != lastLogged {
		t.Errorf("the script printed %d; the last event the sink took was tick %d", res.printed, lastLogged)
	}
}

// lastTick returns the index of the last complete tick record in a log.
func lastTick(t *testing.T, path string) int {
	t.Helper()
	ticks := only(readLog(t, path), "tick")
	if len(ticks) == 0 {
		t.Fatal("no tick in the log")
	}
	args, err := render.Parse(ticks[len(ticks)-1].Args)
	if err != nil {
		t.Fatal(err)
	}
	i, _ := starlark.AsInt32(args[0])
	return i
}

func TestLogRemovedMidRun(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "ticks.star", ticks)
	log := filepath.Join(dir, "audit.jsonl")
	var removed *os.File // the removed log, still readable through it
	res := loop(t, dir, 100, func() {
		removed, _ = os.Open(log)
		os.Remove(log)
	}, "--audit-log", log)
	defer removed.Close()
	data, _ := io.ReadAll(removed)
	os.WriteFile(log, data, 0o600)
	checkStopped(t, res, lastTick(t, log), "the log file was removed")
}

// requireRoot skips tests that mount file systems or set inode flags.
func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts a small tmpfs / sets the immutable flag); CI runs as root")
	}
}

func TestDiskFull(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	script(t, dir, "ticks.star", ticks)
	mnt := filepath.Join(dir, "small")
	os.Mkdir(mnt, 0o700)
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("needs to mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	log := filepath.Join(mnt, "audit.jsonl")
	res := loop(t, dir, 0, func() {}, "--audit-log", log)
	checkStopped(t, res, lastTick(t, log), `no space left on device|short write: \d+ of \d+ bytes \(disk full\?\)`)
	v := run(t, dir, "log", "verify", log)
	if v.code != 0 && v.code != 3 {
		t.Errorf("a log cut by a full disk verifies as %d (want intact or truncated):\n%s", v.code, v.stdout)
	}
}

// TestLogMadeReadOnly makes the log immutable mid-run (chattr +i), which
// stops writes through descriptors already open, even root's.
func TestLogMadeReadOnly(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	script(t, dir, "ticks.star", ticks)
	log := filepath.Join(dir, "audit.jsonl")
	if why := immutableStopsWrites(dir); why != "" {
		t.Skip(why)
	}
	t.Cleanup(func() { setImmutable(log, false) })
	res := loop(t, dir, 100, func() {
		if err := setImmutable(log, true); err != nil {
			t.Errorf("chattr +i: %v", err)
		}
	}, "--audit-log", log)
	checkStopped(t, res, lastTick(t, log), "operation not permitted")
}

const fsImmutable = 0x10 // FS_IMMUTABLE_FL

func setImmutable(path string, on bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var flags int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), 0x80086601 /* FS_IOC_GETFLAGS */, uintptr(unsafe.Pointer(&flags))); e != 0 {
		return e
	}
	if on {
		flags |= fsImmutable
	} else {
		flags &^= fsImmutable
	}
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), 0x40086602 /* FS_IOC_SETFLAGS */, uintptr(unsafe.Pointer(&flags))); e != 0 {
		return e
	}
	return nil
}

// immutableStopsWrites says why dir's file system cannot run the test
// ("" if it can): the immutable flag must exist there and stop writes
// through an open descriptor (ext4, xfs, btrfs do; tmpfs does not).
func immutableStopsWrites(dir string) string {
	p := filepath.Join(dir, "probe")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err.Error()
	}
	defer os.Remove(p)
	defer f.Close()
	if err := setImmutable(p, true); err != nil {
		return fmt.Sprintf("needs the immutable flag (chattr +i) in %s: %v", dir, err)
	}
	defer setImmutable(p, false)
	if _, err := f.Write([]byte("x")); err == nil {
		return fmt.Sprintf("needs a file system where chattr +i stops writes on open files (ext4, xfs, btrfs); %s is not one", dir)
	}
	return ""
}

func TestSyslog(t *testing.T) {
	for _, tls := range []bool{false, true} {
		name := "tcp"
		if tls {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			srv := rsyslogtest.Start(t, rsyslogtest.Options{TLS: tls})
			dir := t.TempDir()
			script(t, dir, "ticks.star", ticks)
			args := []string{"--audit-log", "audit.jsonl", "--syslog", srv.Addr()}
			if tls {
				args = append(args, "--syslog-ca", srv.CAFile)
			}
			const n = 1000
			res := run(t, dir, append(args, "ticks.star", strconv.Itoa(n))...)
			if res.code != 0 {
				t.Fatalf("sstar exited %d: %s\n%s", res.code, res.stderr, srv.Output())
			}
			srv.Stop()
			recs := readLog(t, filepath.Join(dir, "audit.jsonl"))
			msgs := srv.Messages()
			if len(msgs) != len(recs) {
				t.Fatalf("%d messages arrived, %d events in the log", len(msgs), len(recs))
			}
			tick := 0
			for i, m := range msgs {
				r := recs[i]
				p := m.Params
				if p["event"] != r.Event || p["seq"] != strconv.FormatUint(r.Seq, 10) || p["run"] != r.Run || p["pid"] != strconv.Itoa(r.PID) || p["args"] != string(r.Args) {
					t.Fatalf("message %d %v differs from log record %+v", i, p, r)
				}
				if r.Event == "tick" {
					checkArgs(t, fmt.Sprintf("message %d", i), tick, []byte(p["args"]))
					tick++
				}
			}
			if tick != n {
				t.Fatalf("%d ticks arrived, want %d", tick, n)
			}
		})
	}
}

// Nothing runs when the syslog server is not there.
func TestSyslogDownAtStart(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "ticks.star", ticks)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	l.Close()
	res := run(t, dir, "--audit-log", "audit.jsonl", "--syslog", addr, "ticks.star", "5")
	if res.code != 255 || res.stdout != "" {
		t.Fatalf("exit %d, stdout %q, want 255 and nothing run", res.code, res.stdout)
	}
	if !strings.HasPrefix(res.stderr, "sstar: CRITICAL: syslog "+addr+": cannot connect: ") || !strings.HasSuffix(res.stderr, "nothing ran\n") {
		t.Errorf("stderr: %s", res.stderr)
	}
	if recs := readLog(t, filepath.Join(dir, "audit.jsonl")); len(only(recs, "sstar.run_file")) != 0 {
		t.Errorf("the script was started: %+v", recs)
	}
}

// The syslog server is killed mid-run: sstar stops at the next event it
// cannot deliver, and nothing after that event runs.
func TestSyslogKilledMidRun(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{})
	dir := t.TempDir()
	script(t, dir, "ticks.star", ticks)
	log := filepath.Join(dir, "audit.jsonl")
	res := loop(t, dir, 200, srv.Kill, "--audit-log", log, "--syslog", srv.Addr())
	// The log (first sink) took the event syslog could not: the last
	// record is the event that stopped the run.
	last := lastTick(t, log)
	checkStopped(t, res, last-1, regexp.QuoteMeta("syslog "+srv.Addr()))
	if !strings.Contains(res.stderr, `event "tick"`) {
		t.Errorf("stderr does not name the event: %s", res.stderr)
	}
}

// The environment cannot choose whom the syslog sink trusts: with no
// --syslog-ca, SSL_CERT_FILE and SSL_CERT_DIR naming the server's CA
// (which Go's system pool would read) change nothing.
func TestSyslogTLSIgnoresCertEnvironment(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{TLS: true})
	dir := t.TempDir()
	script(t, dir, "ticks.star", ticks)
	cmd := exec.Command(sstarBin, "--syslog", srv.Addr(), "ticks.star", "1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+srv.CAFile, "SSL_CERT_DIR="+filepath.Dir(srv.CAFile))
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 255 || !strings.Contains(string(out), "certificate signed by unknown authority") {
		t.Fatalf("sstar with SSL_CERT_FILE naming the server's CA: %v\n%s", err, out)
	}
}
