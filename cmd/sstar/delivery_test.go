package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sstar-project/sstar/audit/kaudit"
	"github.com/sstar-project/sstar/internal/journaldtest"
	"github.com/sstar-project/sstar/internal/kaudittest"
	"github.com/sstar-project/sstar/internal/relptest"
)

// sstarCmd is the sstar command as the stories run it: this test binary
// under the name sstar (TestMain dispatches on it), with no system
// policy, in dir.
func sstarCmd(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: exe, Args: append([]string{"sstar"}, args...), Dir: dir}
	cmd.Env = []string{"PATH=" + sinksBin(t, exe) + ":/usr/bin:/bin", "TEST_SYSTEM_POLICY=" + filepath.Join(dir, "etc/sstar/policy.star")}
	return cmd
}

// sinksBin returns a directory holding sstar-sinks, a link to this test
// binary, which TestMain runs as the sink process under that name.
func sinksBin(t *testing.T, exe string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(bin, "sstar-sinks")); err != nil {
		t.Fatal(err)
	}
	return bin
}

// script writes a stamped script into a new directory.
func script(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "script.star"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := sstarCmd(t, dir, "trust", "script.star").CombinedOutput(); err != nil {
		t.Skipf("cannot stamp a script here (%v): %s", err, out)
	}
	return dir
}

// A run with --relp: every event of the run arrives, in order, from
// sstar.run_file to the script's last, with seq 1, 2, 3, ...
func TestRELPRun(t *testing.T) {
	srv := relptest.Start(t, relptest.Options{})
	dir := script(t, "for i in range(200):\n    sys.audit(\"app.step\", i)\nprint(\"done\")\n")
	out, err := sstarCmd(t, dir, "--relp", srv.Addr(), "script.star").CombinedOutput()
	if err != nil || string(out) != "done\n" {
		t.Fatalf("sstar: %v\n%s", err, out)
	}
	msgs := srv.Messages()
	if len(msgs) < 201 {
		t.Fatalf("%d messages", len(msgs))
	}
	steps := 0
	for i, m := range msgs {
		if m.Params["seq"] != strconv.Itoa(i+1) || m.Params["run"] != msgs[0].Params["run"] {
			t.Fatalf("message %d: %v", i, m.Params)
		}
		if m.Params["event"] == "app.step" {
			if m.Params["args"] != "["+strconv.Itoa(steps)+"]" {
				t.Fatalf("message %d: %v", i, m.Params)
			}
			steps++
		}
	}
	if steps != 200 || msgs[0].Params["event"] != "sstar.run_start" || msgs[len(msgs)-1].Params["event"] != "sstar.run_end" || msgs[len(msgs)-2].Params["args"] != "[199]" {
		t.Fatalf("%d steps; first %s, last %s", steps, msgs[0].Params["event"], msgs[len(msgs)-1].Params["event"])
	}
}

// The RELP server killed mid-run: the script stops at the first event
// that was not acknowledged, and sstar exits 255. Every step the script
// took (it prints after each event) has its record on the server.
func TestRELPServerKilledMidRun(t *testing.T) {
	srv := relptest.Start(t, relptest.Options{})
	dir := script(t, "for i in range(1000000):\n    sys.audit(\"app.step\", i)\n    print(i)\n")
	cmd := sstarCmd(t, dir, "--relp", srv.Addr(), "script.star")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	printed := -1
	for sc.Scan() {
		n, err := strconv.Atoi(sc.Text())
		if err != nil {
			t.Fatalf("stdout: %q", sc.Text())
		}
		printed = n
		if n == 100 {
			srv.Kill()
		}
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 255 {
		t.Fatalf("sstar after the server was killed: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "sstar: CRITICAL: ") || !strings.Contains(stderr.String(), "not acknowledged") {
		t.Fatalf("stderr: %s", stderr.String())
	}
	if printed < 100 || printed > 100000 {
		t.Fatalf("the script printed up to %d", printed)
	}
	got := map[string]bool{}
	for _, m := range srv.Messages() {
		if m.Params["event"] == "app.step" {
			got[m.Params["args"]] = true
		}
	}
	for i := 0; i <= printed; i++ {
		if !got["["+strconv.Itoa(i)+"]"] {
			t.Fatalf("step %d ran, but its record is not on the server (%d steps ran, %d recorded)", i, printed+1, len(got))
		}
	}
	t.Logf("%d steps ran, %d recorded; %s", printed+1, len(got), strings.TrimSpace(stderr.String()))
}

// A run with --kernel-audit: the kernel's records of the run parse back
// to its events, in order.
func TestKernelAuditRun(t *testing.T) {
	kaudittest.Enable(t)
	rd := kaudittest.Read(t, kaudit.RecordType)
	dir := script(t, "sys.audit(\"app.hello\", 1, \"two words\")\nprint(\"hello\")\n")
	out, err := sstarCmd(t, dir, "--kernel-audit", "script.star").CombinedOutput()
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("sstar: %v\n%s", err, out)
	}
	var run string
	for _, rec := range rd.Wait(1, "event=\"app.hello\"", 10*time.Second) {
		e, err := kaudit.Parse(rec.Text)
		if err != nil {
			t.Fatal(err)
		}
		if string(e.Args) != `[1,"two words"]` {
			t.Fatalf("app.hello args %s", e.Args)
		}
		run = e.Run
	}
	if run == "" {
		t.Fatal("no record of app.hello")
	}
	recs := rd.Wait(4, "run=\""+run+"\"", 10*time.Second)
	var names []string
	for i, rec := range recs {
		e, err := kaudit.Parse(rec.Text)
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, e.Seq)
		}
		names = append(names, e.Event)
	}
	got := strings.Join(names, " ")
	if !strings.HasPrefix(got, "sstar.run_start sstar.run_file ") || !strings.HasSuffix(got, " app.hello sstar.run_end") {
		t.Fatalf("events: %s", got)
	}
}

// The RELP server stopped (SIGSTOP) mid-run: the script waits at its
// next event, prints nothing meanwhile, and goes on once the server
// does; nothing is dropped.
func TestRELPServerStoppedMidRun(t *testing.T) {
	srv := relptest.Start(t, relptest.Options{})
	// Enough steps that the run cannot end before the pause takes effect,
	// however slow the machine: each waits for the server's answer.
	dir := script(t, "for i in range(20000):\n    sys.audit(\"app.step\", i)\n    print(i)\n")
	cmd := sstarCmd(t, dir, "--relp", srv.Addr(), "script.star")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 20000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for l := range lines {
		if l == "100" {
			break
		}
	}
	srv.Pause()
	// What was printed before the pause took effect is in the pipe;
	// then nothing, while the server is stopped.
	time.Sleep(200 * time.Millisecond)
	drained := len(lines)
	for range drained {
		<-lines
	}
	time.Sleep(time.Second)
	if n := len(lines); n != 0 {
		srv.Continue()
		t.Fatalf("the script printed %d lines while the server was stopped", n)
	}
	srv.Continue()
	last := ""
	for l := range lines {
		last = l
	}
	if err := cmd.Wait(); err != nil || last != "19999" {
		t.Fatalf("sstar: %v, last line %q", err, last)
	}
	steps := 0
	for _, m := range srv.Messages() {
		if m.Params["event"] == "app.step" {
			if m.Params["args"] != "["+strconv.Itoa(steps)+"]" {
				t.Fatalf("step record %d: %v", steps, m.Params)
			}
			steps++
		}
	}
	if steps != 20000 {
		t.Fatalf("%d step records, want 20000", steps)
	}
}

// A RELP server that answers an event with an error: the event's action
// does not happen, sstar exits 255.
func TestRELPServerError(t *testing.T) {
	srv := relptest.StartScripted(t, func(_ int, msg []byte) string {
		if bytes.Contains(msg, []byte(`event="app.step" `)) && bytes.Contains(msg, []byte(`args="[3\]"`)) {
			return "500 disk full"
		}
		return "200 OK"
	})
	dir := script(t, "for i in range(10):\n    sys.audit(\"app.step\", i)\n    print(i)\n")
	out, err := sstarCmd(t, dir, "--relp", srv.Addr(), "script.star").Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 255 {
		t.Fatalf("sstar: %v", err)
	}
	if string(out) != "0\n1\n2\n" {
		t.Fatalf("the script printed %q; want the steps before the refused one", out)
	}
	if ee := err.(*exec.ExitError); !bytes.Contains(ee.Stderr, []byte("500 disk full")) {
		t.Fatalf("stderr: %s", ee.Stderr)
	}
}

// A run with --journald, which always uses journald's fixed socket
// /run/systemd/journal/socket: sstar runs in the test journald's mount
// namespace, where that path is the test journald's socket. journalctl
// shows every event of the run, in order.
func TestJournaldRun(t *testing.T) {
	j := journaldtest.Start(t)
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Skip("needs nsenter (Debian package util-linux)")
	}
	dir := script(t, "for i in range(50):\n    sys.audit(\"app.step\", i)\nprint(\"done\")\n")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The test binary is sstar when its name is.
	link := filepath.Join(t.TempDir(), "sstar")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	// The working directory is changed inside the namespace: one opened
	// outside it (nsenter --wd) is unreachable from its root.
	cmd := exec.Command(nsenter, "--mount", "--target", strconv.Itoa(j.Pid()), "--", "sh", "-c", `cd "$1" && exec "$2" --journald script.star`, "sh", dir, link)
	cmd.Env = []string{"PATH=" + sinksBin(t, exe) + ":/usr/bin:/bin", "TEST_SYSTEM_POLICY=" + filepath.Join(dir, "etc/sstar/policy.star")}
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "done\n" {
		t.Fatalf("sstar --journald: %v\n%s", err, out)
	}
	entries := j.WaitEntries(51, 20*time.Second, "SYSLOG_IDENTIFIER=sstar")
	if len(entries) < 51 {
		t.Fatalf("%d entries", len(entries))
	}
	steps := 0
	for i, e := range entries {
		seq, _ := journaldtest.Field(e, "SSTAR_SEQ")
		if seq != strconv.Itoa(i+1) {
			t.Fatalf("entry %d has seq %s", i, seq)
		}
		if ev, _ := journaldtest.Field(e, "SSTAR_EVENT"); ev == "app.step" {
			if args, _ := journaldtest.Field(e, "SSTAR_ARGS"); args != "["+strconv.Itoa(steps)+"]" {
				t.Fatalf("entry %d: args %s", i, args)
			}
			steps++
		}
	}
	if first, _ := journaldtest.Field(entries[0], "SSTAR_EVENT"); first != "sstar.run_start" || steps != 50 {
		t.Fatalf("first event %s, %d steps", first, steps)
	}
}

// --relp tls:// takes the syslog flags' CA and client certificate.
func TestRELPTLSRun(t *testing.T) {
	srv := relptest.Start(t, relptest.Options{TLS: true})
	dir := script(t, "sys.audit(\"app.hello\")\nprint(\"hello\")\n")
	out, err := sstarCmd(t, dir, "--relp", srv.Addr(), "--syslog-ca", srv.CAFile, "--syslog-cert", srv.ClientCert, "--syslog-key", srv.ClientKey, "script.star").CombinedOutput()
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("sstar: %v\n%s", err, out)
	}
	msgs := srv.Messages()
	if len(msgs) < 2 || msgs[len(msgs)-2].Params["event"] != "app.hello" || msgs[len(msgs)-1].Params["event"] != "sstar.run_end" {
		t.Fatalf("%d messages, the last %v", len(msgs), msgs)
	}
	// Without the client certificate the server refuses the session:
	// nothing runs.
	out, err = sstarCmd(t, dir, "--relp", srv.Addr(), "--syslog-ca", srv.CAFile, "script.star").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 255 || strings.Contains(string(out), "hello") {
		t.Fatalf("sstar without a client certificate: %v\n%s", err, out)
	}
}

// The same server as a mandatory sink of the system policy, which names
// the client certificate (policy.sink(syslog_cert=, syslog_key=)).
func TestRELPTLSMandatory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the system policy must be owned by root")
	}
	srv := relptest.Start(t, relptest.Options{TLS: true})
	dir := script(t, "sys.audit(\"app.hello\")\nprint(\"hello\")\n")
	if err := os.MkdirAll(filepath.Join(dir, "etc/sstar"), 0o755); err != nil {
		t.Fatal(err)
	}
	sys := fmt.Sprintf("policy.sink(relp = %q, syslog_ca = %q, syslog_cert = %q, syslog_key = %q)\n", srv.Addr(), srv.CAFile, srv.ClientCert, srv.ClientKey)
	if err := os.WriteFile(filepath.Join(dir, "etc/sstar/policy.star"), []byte(sys), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := sstarCmd(t, dir, "trust", "etc/sstar/policy.star").CombinedOutput(); err != nil {
		t.Fatalf("sstar trust: %v\n%s", err, out)
	}
	out, err := sstarCmd(t, dir, "script.star").CombinedOutput()
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("sstar: %v\n%s", err, out)
	}
	msgs := srv.Messages()
	if len(msgs) < 2 || msgs[len(msgs)-2].Params["event"] != "app.hello" || msgs[len(msgs)-1].Params["event"] != "sstar.run_end" {
		t.Fatalf("%d messages, the last %v", len(msgs), msgs)
	}
}
