package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/rogpeppe/go-internal/testscript"
	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/harden"
	"github.com/sstar-project/sstar/internal/render"
	"github.com/sstar-project/sstar/internal/rsyslogtest"
)

// The commands stories use beyond testscript's own, for what a story
// cannot say with exec and files: an exact exit status, a real rsyslogd,
// a full disk, a file made immutable, a fault while sstar runs, and
// reading the audit log's records back.
var storyCommands = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"status":     cmdStatus,
	"ticks":      cmdTicks,
	"ticker":     cmdTicker,
	"unlink":     cmdUnlink,
	"restore":    cmdRestore,
	"tmpfs":      cmdTmpfs,
	"immutable":  cmdImmutable,
	"rsyslogd":   cmdRsyslogd,
	"freeport":   cmdFreeport,
	"signal":     cmdSignal,
	"waitfor":    cmdWaitfor,
	"buildsstar": cmdBuildSstar,

	"unprivileged":   cmdUnprivileged,
	"fusedev":        cmdFusedev,
	"fusemount":      cmdFusemount,
	"unmount-at-end": cmdUnmountAtEnd,
}

// buildsstar PATH: builds the sstar command into PATH as a site builds
// it, with the system policy's path fixed at build time (go build
// -ldflags "-X github.com/sstar-project/sstar/policy.SystemPath=...") to
// the story's etc/sstar/policy.star. Needs the go command: [exec:go].
func cmdBuildSstar(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: buildsstar PATH")
	}
	pkg, err := os.Getwd() // the test runs in cmd/sstar
	ts.Check(err)
	cmd := exec.Command("go", "build", "-o", ts.MkAbs(args[0]),
		"-ldflags", "-X github.com/sstar-project/sstar/policy.SystemPath="+ts.MkAbs("etc/sstar/policy.star"), ".")
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		ts.Fatalf("go build: %v\n%s", err, out)
	}
}

// storyConditions are the conditions stories test beyond testscript's own.
var storyConditions = map[string]func() bool{
	"root":         func() bool { return os.Geteuid() == 0 },
	"rsyslogd":     func() bool { return rsyslogtest.Missing(rsyslogtest.Options{}) == "" },
	"rsyslogd-tls": func() bool { return rsyslogtest.Missing(rsyslogtest.Options{TLS: true}) == "" },
	"tmpfs":        canMountTmpfs,
	"immutable":    func() bool { return immutableStopsWrites(os.TempDir()) == nil },
	"securebits":   haveExecSecurebits,
	"fuse":         func() bool { _, err := os.Stat("/dev/fuse"); return err == nil },
	"amd64":        func() bool { return runtime.GOARCH == "amd64" },
	"landlock":     func() bool { return harden.ABI() > 0 },
	"race":         func() bool { return raceEnabled },
}

// A story's state for the commands that span several lines of it.
type story struct {
	env      []string // the environment the story started with, for ticker
	ticker   *ticker
	rsyslogd *rsyslogtest.Server
	unlinked map[string]*os.File
	user     *unprivilegedUser // see cmdUnprivileged
}

type storyKey struct{}

func state(ts *testscript.TestScript) *story { return ts.Value(storyKey{}).(*story) }

// status CODE PROGRAM [ARGS...]: runs PROGRAM as exec does and fails
// unless it exits with status CODE ("0|3": either). Its standard output
// and error are then what stdout and stderr check.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status CODE PROGRAM [ARGS...]")
	}
	want := map[int]bool{}
	for _, c := range strings.Split(args[0], "|") {
		n, err := strconv.Atoi(c)
		if err != nil {
			ts.Fatalf("status: %q is not an exit status", c)
		}
		want[n] = true
	}
	err := ts.Exec(args[1], args[2:]...)
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("%s: %v", args[1], err)
	}
	if !want[code] {
		ts.Fatalf("%s exited with status %d, want %s", args[1], code, args[0])
	}
}

// A logLine is one line of a JSON audit log.
type logLine struct {
	Seq   uint64          `json:"seq"`
	PID   int             `json:"pid"`
	Run   string          `json:"run"`
	Event string          `json:"event"`
	Args  json.RawMessage `json:"args"`
}

// readLog returns the complete records of a log (a line cut short by a
// full disk is not one).
func readLog(ts *testscript.TestScript, path string) []logLine {
	data, err := os.ReadFile(ts.MkAbs(path))
	ts.Check(err)
	var out []logLine
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if !bytes.HasSuffix(line, []byte("\n")) || len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r logLine
		if err := json.Unmarshal(line, &r); err != nil {
			ts.Fatalf("%s: %v: %s", path, err, line)
		}
		out = append(out, r)
	}
	return out
}

// tickArgs are the arguments testdata/ticks.star raises tick i with.
func tickArgs(i int) starlark.Tuple {
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

// tickIndex returns the index of a tick record, checking that its
// arguments come back as ticks.star raised them.
func tickIndex(ts *testscript.TestScript, what string, args []byte) int {
	got, err := render.Parse(args)
	if err != nil {
		ts.Fatalf("%s: args %s: %v", what, args, err)
	}
	i, err := starlark.AsInt32(got[0])
	if err != nil {
		ts.Fatalf("%s: args %s: the first is not an index", what, args)
	}
	// Parsed and rendered again they are what was raised, as rendered (a
	// tuple comes back a list: JSON has one kind of array).
	if again, want := render.AppendArgs(nil, got, 0), render.AppendArgs(nil, tickArgs(i), 0); string(again) != string(want) {
		ts.Fatalf("%s: args came back as %s, want %s", what, again, want)
	}
	return i
}

// ticks [-runs R] LOG N: LOG holds the tick events of R runs (1 if not
// given) of ticks.star N: in each, ticks 0 to N-1 in order, with
// consecutive sequence numbers, their arguments as raised.
func cmdTicks(ts *testscript.TestScript, neg bool, args []string) {
	runs := 1
	if len(args) == 4 && args[0] == "-runs" {
		var err error
		runs, err = strconv.Atoi(args[1])
		ts.Check(err)
		args = args[2:]
	}
	if neg || len(args) != 2 {
		ts.Fatalf("usage: ticks [-runs R] LOG N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	byRun := map[string][]logLine{}
	for _, r := range readLog(ts, args[0]) {
		if r.Event == "tick" {
			byRun[r.Run] = append(byRun[r.Run], r)
		}
	}
	if len(byRun) != runs {
		ts.Fatalf("%s: ticks of %d runs, want %d", args[0], len(byRun), runs)
	}
	for run, recs := range byRun {
		if len(recs) != n {
			ts.Fatalf("%s: run %s has %d tick events, want %d", args[0], run, len(recs), n)
		}
		for i, r := range recs {
			what := fmt.Sprintf("%s: run %s: tick %d", args[0], run, i)
			if got := tickIndex(ts, what, r.Args); got != i {
				ts.Fatalf("%s is tick %d", what, got)
			}
			if i > 0 && r.Seq != recs[i-1].Seq+1 {
				ts.Fatalf("%s has seq %d after %d", what, r.Seq, recs[i-1].Seq)
			}
		}
	}
}

// A ticker is an sstar running ticks.star in the background, watched
// line by line, so that a story can break something while it runs.
type ticker struct {
	cmd     *exec.Cmd
	stderr  bytes.Buffer
	timer   *time.Timer
	scanned chan struct{} // closed when its standard output is closed

	mu      sync.Mutex
	lines   []string
	printed int // the last index printed, -1 if none
	bad     string
}

// ticker start PROGRAM [ARGS...]: starts PROGRAM (sstar running
// ticks.star) in the background, with the story's environment.
// ticker wait I: waits until it has printed index I.
// ticker end CODE: waits for it to exit, with status CODE; stdout and
// stderr then check what it printed. After two minutes it is killed.
// ticker logged LOG [AHEAD]: the last tick LOG took is AHEAD (default
// 0) after the last index the script printed.
func cmdTicker(ts *testscript.TestScript, neg bool, args []string) {
	st := state(ts)
	if neg || len(args) < 2 {
		ts.Fatalf("usage: ticker start PROGRAM [ARGS...] | wait I | end CODE | logged LOG [AHEAD]")
	}
	tk := st.ticker
	if args[0] != "start" && tk == nil {
		ts.Fatalf("ticker %s: no ticker started", args[0])
	}
	switch args[0] {
	case "start":
		if tk != nil {
			ts.Fatalf("ticker start: a ticker is already running")
		}
		path, err := lookPath(ts, args[1])
		ts.Check(err)
		tk = &ticker{printed: -1, scanned: make(chan struct{})}
		tk.cmd = exec.Command(path, args[2:]...)
		tk.cmd.Dir = ts.MkAbs(".")
		for _, kv := range st.env {
			k, _, _ := strings.Cut(kv, "=")
			tk.cmd.Env = append(tk.cmd.Env, k+"="+ts.Getenv(k))
		}
		tk.cmd.Stderr = &tk.stderr
		out, err := tk.cmd.StdoutPipe()
		ts.Check(err)
		ts.Check(tk.cmd.Start())
		tk.timer = time.AfterFunc(2*time.Minute, func() { tk.cmd.Process.Kill() })
		st.ticker = tk
		ts.Defer(func() { tk.cmd.Process.Kill(); <-tk.scanned; tk.cmd.Wait() })
		go tk.scan(out)
	case "wait":
		want, err := strconv.Atoi(args[1])
		ts.Check(err)
		for stopped := false; ; {
			tk.mu.Lock()
			printed, bad := tk.printed, tk.bad
			tk.mu.Unlock()
			switch {
			case bad != "":
				ts.Fatalf("ticker: unexpected output %q", bad)
			case printed >= want:
				return
			case stopped:
				tk.cmd.Wait()
				ts.Fatalf("ticker: sstar stopped after printing %d, before %d:\n%s", printed, want, tk.stderr.String())
			}
			select {
			case <-tk.scanned:
				stopped = true // look at what it printed once more
			case <-time.After(time.Millisecond):
			}
		}
	case "end":
		code, err := strconv.Atoi(args[1])
		ts.Check(err)
		<-tk.scanned
		err = tk.cmd.Wait()
		tk.timer.Stop()
		got := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			got = ee.ExitCode()
		} else if err != nil {
			ts.Fatalf("ticker: %v", err)
		}
		tk.mu.Lock()
		for _, l := range tk.lines {
			fmt.Fprintln(ts.Stdout(), l)
		}
		tk.mu.Unlock()
		ts.Stderr().Write(tk.stderr.Bytes())
		if got != code {
			ts.Fatalf("ticker: sstar exited with status %d, want %d:\n%s", got, code, tk.stderr.String())
		}
	case "logged":
		ahead := 0
		if len(args) > 2 {
			var err error
			ahead, err = strconv.Atoi(args[2])
			ts.Check(err)
		}
		last := -1
		for _, r := range readLog(ts, args[1]) {
			if r.Event == "tick" {
				last = tickIndex(ts, args[1], r.Args)
			}
		}
		if last == -1 {
			ts.Fatalf("%s: no tick in the log", args[1])
		}
		tk.mu.Lock()
		printed := tk.printed
		tk.mu.Unlock()
		if printed+ahead != last {
			ts.Fatalf("the script printed %d; the last tick %s took is %d, want %d", printed, args[1], last, printed+ahead)
		}
	default:
		ts.Fatalf("ticker %s: unknown", args[0])
	}
}

func (tk *ticker) scan(out io.Reader) {
	defer close(tk.scanned)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		tk.mu.Lock()
		tk.lines = append(tk.lines, line)
		if i, err := strconv.Atoi(line); err == nil {
			tk.printed = i
		} else if line != "done" && tk.bad == "" {
			tk.bad = line
		}
		tk.mu.Unlock()
	}
	io.Copy(io.Discard, out)
}

// lookPath finds a program on the story's PATH.
func lookPath(ts *testscript.TestScript, name string) (string, error) {
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on the story's PATH", name)
}

// unlink FILE: removes FILE, as rm does, but keeps it open, so that
// restore FILE can put back what was written to it after the removal.
func cmdUnlink(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: unlink FILE")
	}
	st := state(ts)
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	ts.Defer(func() { f.Close() })
	ts.Check(os.Remove(ts.MkAbs(args[0])))
	if st.unlinked == nil {
		st.unlinked = map[string]*os.File{}
	}
	st.unlinked[args[0]] = f
}

// restore FILE: writes what the removed FILE holds now back at FILE.
func cmdRestore(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: restore FILE")
	}
	f := state(ts).unlinked[args[0]]
	if f == nil {
		ts.Fatalf("restore %s: not unlinked", args[0])
	}
	data, err := io.ReadAll(f)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), data, 0o600))
}

// tmpfs DIR SIZE [noexec]: mounts a tmpfs of SIZE (as mount -o size= takes
// it) on DIR, a new directory, until the story ends; noexec mounts it so.
// Needs root: [tmpfs].
func cmdTmpfs(ts *testscript.TestScript, neg bool, args []string) {
	var flags uintptr
	if len(args) == 3 && args[2] == "noexec" {
		flags, args = unix.MS_NOEXEC, args[:2]
	}
	if neg || len(args) != 2 {
		ts.Fatalf("usage: tmpfs DIR SIZE [noexec]")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.Mkdir(dir, 0o700))
	ts.Check(unix.Mount("tmpfs", dir, "tmpfs", flags, "size="+args[1]))
	ts.Defer(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

func canMountTmpfs() bool {
	dir, err := os.MkdirTemp("", "sstar-tmpfs-probe-")
	if err != nil {
		return false
	}
	defer os.Remove(dir)
	if unix.Mount("tmpfs", dir, "tmpfs", 0, "size=4k") != nil {
		return false
	}
	return unix.Unmount(dir, unix.MNT_DETACH) == nil
}

// immutable FILE: sets FILE's immutable flag (chattr +i), which stops
// writes even through descriptors already open, even root's; it is
// cleared when the story ends. Needs root and a file system that has
// the flag: [immutable].
func cmdImmutable(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: immutable FILE")
	}
	p := ts.MkAbs(args[0])
	ts.Check(setImmutable(p, true))
	ts.Defer(func() { setImmutable(p, false) })
}

// From linux/fs.h, which golang.org/x/sys/unix does not carry.
const (
	fsImmutableFL = 0x10       // FS_IMMUTABLE_FL
	fsIocGetflags = 0x80086601 // FS_IOC_GETFLAGS
	fsIocSetflags = 0x40086602 // FS_IOC_SETFLAGS
)

func setImmutable(path string, on bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var flags int32
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocGetflags, uintptr(unsafe.Pointer(&flags))); e != 0 {
		return e
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocSetflags, uintptr(unsafe.Pointer(&flags))); e != 0 {
		return e
	}
	return nil
}

// immutableStopsWrites says why dir's file system cannot make a file
// immutable under an open descriptor (nil if it can): ext4, xfs and
// btrfs can; tmpfs cannot.
func immutableStopsWrites(dir string) error {
	f, err := os.CreateTemp(dir, "sstar-immutable-probe-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := setImmutable(f.Name(), true); err != nil {
		return err
	}
	defer setImmutable(f.Name(), false)
	if _, err := f.Write([]byte("x")); err == nil {
		return errors.New("writes go on")
	}
	return nil
}

// rsyslogd start [-tls] [-udp] [-unix] [-max SIZE] DIR: starts a real
// rsyslogd on 127.0.0.1 with its files in DIR, a new directory (with
// -tls, its CA in DIR/ca.pem), and sets $SYSLOG to its address for
// --syslog; with -udp also $SYSLOG_UDP, with -unix $SYSLOG_UNIX (a local
// socket read by imuxsock at its defaults); -max sets its maxMessageSize
// (default 64k). Needs [rsyslogd] or [rsyslogd-tls].
// rsyslogd stop: stops it gracefully, so it writes out what it received.
// rsyslogd kill: kills it.
// rsyslogd received LOG: what it received is the records of LOG, one
// message each, in order, with the same event, seq, run, pid and args.
func cmdRsyslogd(ts *testscript.TestScript, neg bool, args []string) {
	st := state(ts)
	if neg || len(args) == 0 {
		ts.Fatalf("usage: rsyslogd start [-tls] [-udp] [-unix] [-max SIZE] DIR | stop | kill | received LOG")
	}
	if args[0] != "start" && st.rsyslogd == nil {
		ts.Fatalf("rsyslogd %s: not started", args[0])
	}
	switch {
	case args[0] == "start" && len(args) >= 2:
		var o rsyslogtest.Options
		for i := 1; i < len(args)-1; i++ {
			switch args[i] {
			case "-tls":
				o.TLS = true
			case "-udp":
				o.UDP = true
			case "-unix":
				o.Unix = true
			case "-max":
				i++
				if i == len(args)-1 {
					ts.Fatalf("rsyslogd start: -max wants a size such as 8k")
				}
				o.MaxMessageSize = args[i]
			default:
				ts.Fatalf("rsyslogd start: unknown option %q", args[i])
			}
		}
		dir := ts.MkAbs(args[len(args)-1])
		ts.Check(os.Mkdir(dir, 0o700))
		srv, err := rsyslogtest.Launch(dir, o)
		if srv != nil {
			ts.Defer(srv.Kill)
		}
		ts.Check(err)
		st.rsyslogd = srv
		ts.Setenv("SYSLOG", srv.Addr())
		if o.UDP {
			ts.Setenv("SYSLOG_UDP", fmt.Sprintf("udp://127.0.0.1:%d", srv.UDPPort))
		}
		if o.Unix {
			ts.Setenv("SYSLOG_UNIX", "unix://"+srv.Socket)
		}
	case args[0] == "stop" && len(args) == 1:
		st.rsyslogd.Stop()
	case args[0] == "kill" && len(args) == 1:
		st.rsyslogd.Kill()
	case args[0] == "received" && len(args) == 2:
		msgs, err := st.rsyslogd.ReadMessages()
		ts.Check(err)
		recs := readLog(ts, args[1])
		if len(msgs) != len(recs) {
			ts.Fatalf("%d messages arrived, %d events in %s", len(msgs), len(recs), args[1])
		}
		for i, m := range msgs {
			r, p := recs[i], m.Params
			if p["event"] != r.Event || p["seq"] != strconv.FormatUint(r.Seq, 10) || p["run"] != r.Run || p["pid"] != strconv.Itoa(r.PID) || p["args"] != string(r.Args) {
				ts.Fatalf("message %d %v differs from log record %+v", i, p, r)
			}
		}
	default:
		ts.Fatalf("usage: rsyslogd start [-tls] [-udp] [-unix] [-max SIZE] DIR | stop | kill | received LOG")
	}
}

// freeport VAR: sets $VAR to a TCP port of 127.0.0.1 that nobody listens
// on (one that was free a moment ago).
func cmdFreeport(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Setenv(args[0], strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	l.Close()
}

// signal SIG PIDFILE: waits (up to 30 s) for PIDFILE, which a script
// writes with its own pid, then sends that process SIG (INT, TERM, HUP,
// PIPE, KILL, ...): testscript's kill sends only INT and KILL.
func cmdSignal(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: signal SIG PIDFILE")
	}
	sig := unix.SignalNum("SIG" + args[0])
	if sig == 0 {
		ts.Fatalf("signal: unknown signal %q", args[0])
	}
	data := waitFor(ts, args[1])
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		ts.Fatalf("signal: %s holds %q, not a pid", args[1], data)
	}
	ts.Check(unix.Kill(pid, sig))
}

// waitfor FILE: waits (up to 30 s) until FILE exists and is not empty,
// as a script in the background writes it to say where it is.
func cmdWaitfor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfor FILE")
	}
	waitFor(ts, args[0])
}

func waitFor(ts *testscript.TestScript, file string) []byte {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if data, err := os.ReadFile(ts.MkAbs(file)); err == nil && len(data) > 0 {
			return data
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitfor: %s still missing or empty after 30s", file)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
