package kaudit_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/kaudit"
	"github.com/sstar-project/sstar/audit/record"
	"github.com/sstar-project/sstar/internal/docblock"
	"github.com/sstar-project/sstar/internal/kaudittest"
	"github.com/sstar-project/sstar/internal/render"
)

func dial(t testing.TB) (*record.Fanout, *kaudit.Sink) {
	t.Helper()
	s, err := kaudit.Dial(kaudit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := new(record.Fanout)
	if err := f.Add(s); err != nil {
		t.Fatal(err)
	}
	return f, s
}

func events(n int) []audit.Event {
	d := starlark.NewDict(1)
	d.SetKey(starlark.MakeInt(1), starlark.String("one"))
	kinds := []audit.Event{
		audit.NewEvent("open", starlark.String("/etc/hosts"), starlark.String("r"), starlark.MakeInt(0)),
		audit.NewEvent("sstar.abort", starlark.String("app.x"), starlark.String("it's \"quoted\" msg='x'")),
		audit.NewEvent("app.custom event", starlark.Float(0.5), d, starlark.Bytes("\x00\xff"), starlark.String("é\n\t#")),
	}
	out := make([]audit.Event, n)
	for i := range out {
		k := kinds[i%len(kinds)]
		out[i] = audit.NewEvent(k.Name, append(starlark.Tuple{starlark.MakeInt(i)}, k.Args()...)...)
	}
	return out
}

// entries parses records and joins split ones, checking the parts.
func entries(t *testing.T, recs []kaudittest.Record) []kaudit.Entry {
	t.Helper()
	var out []kaudit.Entry
	for _, rec := range recs {
		e, err := kaudit.Parse(rec.Text)
		if err != nil {
			t.Fatalf("%v: %s", err, rec.Text)
		}
		if !strings.Contains(rec.Text, " pid="+strconv.Itoa(os.Getpid())+" ") {
			t.Fatalf("record without this process's pid: %s", rec.Text)
		}
		if e.Part > 1 {
			last := &out[len(out)-1]
			if last.Seq != e.Seq || last.Run != e.Run || last.Part != e.Part-1 || last.Parts != e.Parts {
				t.Fatalf("part %d/%d of #%d after part %d/%d of #%d", e.Part, e.Parts, e.Seq, last.Part, last.Parts, last.Seq)
			}
			last.Args = append(last.Args, e.Args...)
			last.Part = e.Part
			continue
		}
		out = append(out, e)
	}
	return out
}

func checkArrived(t *testing.T, got []kaudit.Entry, sent []audit.Event, run string) {
	t.Helper()
	if len(got) != len(sent) {
		t.Fatalf("%d records read back, %d sent", len(got), len(sent))
	}
	for i, e := range got {
		ev := sent[i]
		if e.Run != run || e.Seq != uint64(i+1) || e.Event != ev.Name || e.Part != e.Parts || e.Time.IsZero() {
			t.Fatalf("record %d: %+v, want seq %d event %q of run %s", i, e, i+1, ev.Name, run)
		}
		args, err := render.Parse(e.Args)
		if err != nil {
			t.Fatalf("record %d: args %q: %v", i, e.Args, err)
		}
		// Parsed and rendered again, the arguments are what was sent, as
		// rendered (a tuple comes back a list: JSON has one kind of array).
		if again, want := render.AppendArgs(nil, args, 0), render.AppendArgs(nil, ev.Args(), 0); string(again) != string(want) {
			t.Fatalf("record %d: args came back as %s, sent %s", i, again, want)
		}
	}
}

// Records sent are acknowledged, read back from the kernel, and parse
// back to the events; ausearch finds them in an audit log.
func TestRecords(t *testing.T) {
	kaudittest.Enable(t)
	rd := kaudittest.Read(t, kaudit.RecordType)
	f, _ := dial(t)
	evs := events(300)
	for i, ev := range evs {
		if err := f.Hook(ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	f.Close()
	recs := rd.Wait(len(evs), "run=\""+f.Run()+"\"", 20*time.Second)
	checkArrived(t, entries(t, recs), evs, f.Run())

	ausearch, err := exec.LookPath("ausearch")
	if err != nil {
		t.Log("ausearch (Debian package auditd) is not installed: not checking that it finds the records")
		return
	}
	// The records as auditd writes them to /var/log/audit/audit.log.
	var log strings.Builder
	for _, rec := range recs {
		fmt.Fprintf(&log, "type=TRUSTED_APP msg=%s\n", rec.Text)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(log.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ausearch, "--input", path, "-m", "TRUSTED_APP", "--raw").CombinedOutput()
	if err != nil {
		t.Fatalf("ausearch: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(recs) {
		t.Fatalf("ausearch found %d records, want %d:\n%.2000s", len(lines), len(recs), out)
	}
	for i, line := range lines {
		if _, err := kaudit.Parse(line); err != nil {
			t.Fatalf("ausearch line %d: %v: %s", i, err, line)
		}
	}
}

// A record whose text is longer than the kernel keeps is sent in parts
// that join back to the whole.
func TestSplit(t *testing.T) {
	kaudittest.Enable(t)
	rd := kaudittest.Read(t, kaudit.RecordType)
	f, s := dial(t)
	f.SetMaxRecord(64 << 10) // as policy.audit(max_record=65536): past the kernel's cut
	evs := []audit.Event{
		audit.NewEvent("open", starlark.String("/before")),
		audit.NewEvent("app.big", starlark.String(strings.Repeat("0123456789", 3000))),
		audit.NewEvent("open", starlark.String("/after")),
	}
	for _, ev := range evs {
		if err := f.Hook(ev); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	if s.Split() != 1 {
		t.Errorf("%d records split, want 1", s.Split())
	}
	recs := rd.Wait(10, "run=\""+f.Run()+"\"", 5*time.Second)
	for _, rec := range recs {
		if i := strings.Index(rec.Text, "msg='"); len(rec.Text)-i > kaudit.MaxText {
			t.Fatalf("a record of %d bytes: the kernel cuts at %d", len(rec.Text)-i, kaudit.MaxText)
		}
	}
	checkArrived(t, entries(t, recs), evs, f.Run())
}

// With auditing off the kernel would acknowledge records and drop them:
// Dial refuses. The test never switches auditing off: it runs where it
// is off (the default without auditd).
func TestAuditOff(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_AUDIT_CONTROL) to read the kernel's audit status")
	}
	kaudittest.Lock(t) // no other test has it on meanwhile
	st := kaudittest.Status(t)
	if st.Enabled != 0 {
		t.Skip("auditing is on here; the test does not switch it off")
	}
	_, err := kaudit.Dial(kaudit.Options{})
	if !errors.Is(err, kaudit.ErrAuditOff) || !strings.Contains(err.Error(), "auditctl -e 1") {
		t.Fatalf("Dial with auditing off = %v", err)
	}
}

// Without CAP_AUDIT_WRITE, Dial fails naming the capability. The test
// runs itself again without the capability (setpriv drops it from the
// bounding set, so the new program never gets it).
func TestNoCapability(t *testing.T) {
	if os.Getenv("KAUDIT_TEST_CHILD") == "1" {
		_, err := kaudit.Dial(kaudit.Options{})
		fmt.Println(err)
		if errors.Is(err, kaudit.ErrNoCapability) {
			os.Exit(0)
		}
		os.Exit(1)
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and setpriv (Debian package util-linux) to run without CAP_AUDIT_WRITE")
	}
	cmd := exec.Command(setpriv, "--bounding-set", "-audit_write", "--", os.Args[0], "-test.run=^TestNoCapability$")
	cmd.Env = append(os.Environ(), "KAUDIT_TEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "CAP_AUDIT_WRITE") {
		t.Fatalf("without the capability: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func TestParse(t *testing.T) {
	line := `type=TRUSTED_APP msg=audit(1764590000.123:4711): pid=42 uid=0 auid=4294967295 ses=4294967295 subj=unconfined msg='op=sstar event="open" run="6f1c" seq=2 time=2026-11-22T12:34:56.123456789Z args=5B2278225D'`
	e, err := kaudit.Parse(line)
	if err != nil {
		t.Fatal(err)
	}
	if e.Event != "open" || e.Run != "6f1c" || e.Seq != 2 || string(e.Args) != `["x"]` || e.Time.Nanosecond() != 123456789 {
		t.Errorf("Parse = %+v", e)
	}
	if got := string(kaudit.AppendValue(nil, "a b")); got != "612062" {
		t.Errorf("AppendValue(a b) = %s", got)
	}
	if got := string(kaudit.AppendValue(nil, "open")); got != `"open"` {
		t.Errorf("AppendValue(open) = %s", got)
	}
	for _, bad := range []string{"", "msg='op=sstar'", line[:len(line)-1], strings.Replace(line, "seq=2", "seq=x", 1), strings.Replace(line, "op=sstar", "op=other", 1), strings.Replace(line, "args=5B2278225D", "args=5G", 1), strings.Replace(line, "run=\"6f1c\"", "run=\"6f1c\" run=\"6f1c\"", 1)} {
		if e, err := kaudit.Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, e)
		}
	}
}

// FuzzParse feeds audit log lines to the parser: whatever parses has
// every field sstar's records have.
func FuzzParse(f *testing.F) {
	f.Add(`audit(1764590000.123:4711): pid=42 uid=0 msg='op=sstar event="open" run="6f1c" seq=2 time=2026-11-22T12:34:56Z args=5B5D'`)
	f.Add(`msg='op=sstar event=6F70656E run="r" seq=1 part=1/2 args=5B'`)
	f.Fuzz(func(t *testing.T, line string) {
		e, err := kaudit.Parse(line)
		if err != nil {
			return
		}
		if e.Parts < 0 || e.Part > e.Parts {
			t.Fatalf("part %d of %d", e.Part, e.Parts)
		}
		back, err := kaudit.Parse(" msg='op=sstar event=" + string(kaudit.AppendValue(nil, e.Event)) + " run=" + string(kaudit.AppendValue(nil, e.Run)) + " seq=" + strconv.FormatUint(e.Seq, 10) + " args=" + fmt.Sprintf("%X", e.Args) + "'")
		if err != nil || back.Event != e.Event || back.Run != e.Run || string(back.Args) != string(e.Args) {
			t.Fatalf("%+v re-encoded parses as %+v, %v", e, back, err)
		}
	})
}

// BenchmarkKernelAudit measures records per second into the kernel's
// audit log, each acknowledged, and checks that every one reached the
// log readers.
func BenchmarkKernelAudit(b *testing.B) {
	kaudittest.Enable(b)
	rd := kaudittest.Read(b, kaudit.RecordType)
	f, _ := dial(b)
	ev := audit.NewEvent("open", starlark.String("/etc/hosts"), starlark.String("r"), starlark.MakeInt(0))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f.Hook(ev); err != nil {
			b.Fatal(err)
		}
	}
	f.Close()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if got := rd.Wait(b.N, "run=\""+f.Run()+"\"", 60*time.Second); len(got) != b.N {
		b.Fatalf("%d records sent, %d read back", b.N, len(got))
	}
}

// In a user namespace of its own (a container), the kernel takes no
// audit records: Dial says so.
func TestUserNamespace(t *testing.T) {
	if os.Getenv("KAUDIT_TEST_CHILD") == "userns" {
		_, err := kaudit.Dial(kaudit.Options{})
		fmt.Println(err)
		if err != nil && strings.Contains(err.Error(), "initial user namespace") {
			os.Exit(0)
		}
		os.Exit(1)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare (Debian package util-linux)")
	}
	cmd := exec.Command(unshare, "--user", "--map-root-user", "--", os.Args[0], "-test.run=^TestUserNamespace$")
	cmd.Env = append(os.Environ(), "KAUDIT_TEST_CHILD=userns")
	out, err := cmd.CombinedOutput()
	if bytes.Contains(out, []byte("unshare failed")) {
		t.Skipf("cannot make a user namespace here: %s", out)
	}
	if err != nil {
		t.Fatalf("in a user namespace: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// With a real auditd (one of the test's own, with its own log file), the
// records are in its log, and ausearch finds them there next to the
// kernel's own records, parsing back to the events.
func TestAuditd(t *testing.T) {
	kaudittest.Enable(t)
	d := kaudittest.StartAuditd(t)
	// flush = SYNC: each record is on disk before auditd takes the next.
	sendAndFind(t, d, 50, 20*time.Second, func() string { return "" })
	if out, err := d.Search("-m", "TRUSTED_APP", "-i"); err != nil || !strings.Contains(out, `event=open`) && !strings.Contains(out, `event="open"`) {
		t.Errorf("ausearch -i shows no event=open: %v\n%.2000s", err, out)
	}
	if out, err := d.Search("-m", "DAEMON_START", "--raw"); err != nil || !strings.Contains(out, "type=DAEMON_START") {
		t.Errorf("no DAEMON_START in the log: the records are not next to auditd's own: %v\n%.1000s", err, out)
	}
}

// A fleet: the host's auditd sends every record with its audisp-remote
// plugin to a central auditd (each with the configuration
// docs/sinks.md shows, on loopback: both in a network namespace of their
// own), and the central log has every record, parsing back to the
// events. The machine's audit state is as before afterwards: auditing
// as enabled as it was, no daemon registered, no rules.
func TestForwardToCentral(t *testing.T) {
	before := auditState(t)
	t.Cleanup(func() {
		if after := auditState(t); after != before {
			t.Errorf("the kernel's audit state was %q before the test and is %q after it", before, after)
		}
	})
	kaudittest.Enable(t)
	central := kaudittest.StartCentral(t, docblock.Find(t, "sinks.md", "# central: /etc/audit/auditd.conf, added to the settings above"))
	host := kaudittest.StartForwarding(t, central,
		docblock.Find(t, "sinks.md", "# each host: /etc/audit/plugins.d/au-remote.conf"),
		func(dir string) string {
			return docblock.Replace(t, docblock.Find(t, "sinks.md", "# each host: /etc/audit/audisp-remote.conf"),
				"central.example.net", "127.0.0.1",
				"/var/spool/audit/remote.log", dir+"/remote.log",
				// Not on a shared test machine: a failure must fail
				// the test, not halt the machine.
				"network_failure_action = halt", "network_failure_action = syslog")
		})
	sendAndFind(t, central, 50, 30*time.Second, func() string {
		return "\nhost:\n" + host.Output() + "\ncentral:\n" + central.Output()
	})
}

// sendAndFind sends n events, waits up to wait for their records in d's
// log (ausearch), and checks that they parse back to the events;
// describe adds to the message of a failure.
func sendAndFind(t *testing.T, d *kaudittest.Auditd, n int, wait time.Duration, describe func() string) {
	t.Helper()
	f, _ := dial(t)
	evs := events(n)
	for i, ev := range evs {
		if err := f.Hook(ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	f.Close()
	var recs []kaudittest.Record
	deadline := time.Now().Add(wait)
	for {
		recs = recs[:0]
		out, err := d.Search("-m", "TRUSTED_APP", "--raw")
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, `run="`+f.Run()+`"`) {
				_, rec, _ := strings.Cut(line, "type=TRUSTED_APP msg=")
				recs = append(recs, kaudittest.Record{Type: kaudit.RecordType, Text: rec})
			}
		}
		if len(recs) >= len(evs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records in the auditd's log after %s; %v%s", len(recs), len(evs), wait, err, describe())
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkArrived(t, entries(t, recs), evs, f.Run())
}

// auditState is what the test must leave as it found: whether auditing
// is on, the registered daemon, and the rules.
func auditState(t *testing.T) string {
	st := kaudittest.Status(t)
	rules, _ := exec.Command("auditctl", "-l").CombinedOutput()
	return fmt.Sprintf("enabled=%d pid=%d rules=%s", st.Enabled, st.PID, strings.TrimSpace(string(rules)))
}
