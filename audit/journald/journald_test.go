package journald_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/journald"
	"github.com/sstar-project/sstar/audit/record"
	"github.com/sstar-project/sstar/internal/docblock"
	"github.com/sstar-project/sstar/internal/journaldtest"
	"github.com/sstar-project/sstar/internal/render"
	"github.com/sstar-project/sstar/internal/testcert"
)

func dial(opts journald.Options) (*record.Fanout, *journald.Sink, error) {
	s, err := journald.Dial(opts)
	if err != nil {
		return nil, nil, err
	}
	f := new(record.Fanout)
	if err := f.Add(s); err != nil {
		return nil, nil, err
	}
	return f, s, nil
}

func events(n int) []audit.Event {
	d := starlark.NewDict(1)
	d.SetKey(starlark.MakeInt(1), starlark.String("one"))
	kinds := []audit.Event{
		audit.NewEvent("open", starlark.String("/etc/hosts"), starlark.String("r"), starlark.MakeInt(0)),
		audit.NewEvent("sstar.code_integrity_failure", starlark.String("/x/evil.star"), starlark.String("no stamp")),
		audit.NewEvent("sstar.abort", starlark.String("app.x"), starlark.String("line\nbreak \"quoted\"")),
		audit.NewEvent("app.custom\nevent", starlark.Float(0.5), d, starlark.Bytes("\x00\xff"), starlark.String("é\t#")),
	}
	out := make([]audit.Event, n)
	for i := range out {
		k := kinds[i%len(kinds)]
		out[i] = audit.NewEvent(k.Name, append(starlark.Tuple{starlark.MakeInt(i)}, k.Args()...)...)
	}
	return out
}

func wantPriority(name string) string {
	switch name {
	case "sstar.code_integrity_failure":
		return "2"
	case "sstar.abort":
		return "3"
	}
	return "6"
}

// checkArrived checks that journalctl shows exactly the events sent, in
// order, with every field, the arguments parsing back to the same values.
func checkArrived(t *testing.T, j *journaldtest.Journald, sent []audit.Event, run string) {
	t.Helper()
	checkEntries(t, j.WaitEntries(len(sent), 30*time.Second, "SSTAR_RUN="+run), sent)
}

// checkEntries checks that got are exactly the entries of the events
// sent, in order, with every field.
func checkEntries(t *testing.T, got []map[string]any, sent []audit.Event) {
	t.Helper()
	if len(got) != len(sent) {
		t.Fatalf("%d entries in the journal, %d sent", len(got), len(sent))
	}
	for i, e := range got {
		ev := sent[i]
		field := func(name string) string {
			v, err := journaldtest.Field(e, name)
			if err != nil {
				t.Fatalf("entry %d: %v", i, err)
			}
			return v
		}
		if field("SSTAR_SEQ") != strconv.Itoa(i+1) || field("SSTAR_EVENT") != ev.Name || field("SYSLOG_IDENTIFIER") != "sstar" ||
			field("PRIORITY") != wantPriority(ev.Name) || field("SYSLOG_FACILITY") != "10" {
			t.Fatalf("entry %d: %v, want seq %d event %q", i, e, i+1, ev.Name)
		}
		if _, err := time.Parse(time.RFC3339Nano, field("SSTAR_TIME")); err != nil {
			t.Fatalf("entry %d: SSTAR_TIME: %v", i, err)
		}
		if !strings.HasPrefix(field("MESSAGE"), ev.Name+"(") {
			t.Fatalf("entry %d: MESSAGE %q", i, field("MESSAGE"))
		}
		args, err := render.Parse([]byte(field("SSTAR_ARGS")))
		if err != nil {
			t.Fatalf("entry %d: SSTAR_ARGS: %v", i, err)
		}
		if eq, err := starlark.Equal(args, ev.Args()); err != nil || !eq {
			t.Fatalf("entry %d: args came back as %s, sent %s", i, args, ev.Args())
		}
	}
}

func TestEntries(t *testing.T) {
	sendAll(t, journaldtest.Start(t), 1000)
}

// sendAll sends n events to j through a fan-out, checks that every one
// arrived with its fields, and returns them and the run's id.
func sendAll(t *testing.T, j *journaldtest.Journald, n int) (evs []audit.Event, run string) {
	t.Helper()
	f, _, err := dial(journald.Options{Socket: j.Socket})
	if err != nil {
		t.Fatalf("%v\n%s", err, j.Output())
	}
	evs = events(n)
	for i, ev := range evs {
		if err := f.Hook(ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	checkArrived(t, j, evs, f.Run())
	return evs, f.Run()
}

// A fleet: the host's journal, with sstar's entries in it, is sent by
// systemd-journal-upload to a central systemd-journal-remote over HTTPS
// (both with the configuration docs/sinks.md shows, on loopback, with
// certificates of the test's), and the central journal has every entry,
// in order, with every SSTAR_ field; uploading again sends nothing twice.
func TestUploadToCentral(t *testing.T) {
	central := journaldtest.NewRemote(t)
	j := journaldtest.Start(t)
	evs, run := sendAll(t, j, 300)
	j.Stop() // journald syncs the journal files, which are then complete

	central.Start(docblock.Replace(t, docblock.Find(t, "sinks.md", "# central: /etc/systemd/journal-remote.conf"),
		"/etc/ssl/private/journal-remote.pem", central.File(testcert.ServerKey),
		"/etc/ssl/certs/journal-remote.pem", central.File(testcert.ServerCert),
		"/etc/ssl/ca/trusted.pem", central.File(testcert.CA)))
	upload := docblock.Replace(t, docblock.Find(t, "sinks.md", "# each host: /etc/systemd/journal-upload.conf"),
		"https://central.example.net:19532", fmt.Sprintf("https://127.0.0.1:%d", central.Port),
		"/etc/ssl/private/journal-upload.pem", central.File(testcert.ClientKey),
		"/etc/ssl/certs/journal-upload.pem", central.File(testcert.ClientCert),
		"/etc/ssl/ca/trusted.pem", central.File(testcert.CA))
	for range 2 {
		// The second time it starts from its state file, after the
		// last entry: nothing is sent twice.
		if out, err := central.Upload(upload, j.JournalDir()); err != nil {
			t.Fatalf("systemd-journal-upload: %v\n%s\ncentral:\n%s", err, out, central.Output())
		}
	}
	central.Stop() // closes the central journal files
	checkEntries(t, central.Entries("SSTAR_RUN="+run), evs)
}

// An entry larger than a datagram may be goes through a sealed memfd,
// and arrives whole.
func TestLargeEntry(t *testing.T) {
	j := journaldtest.Start(t)
	f, s, err := dial(journald.Options{Socket: j.Socket})
	if err != nil {
		t.Fatal(err)
	}
	f.SetMaxRecord(record.MaxMaxRecord)              // as policy.audit(max_record=1048576)
	big := strings.Repeat("0123456789abcdef", 1<<15) // 512 KiB: past a datagram's limit, within the record's
	evs := []audit.Event{
		audit.NewEvent("open", starlark.String("/before")),
		audit.NewEvent("app.big", starlark.String(big), starlark.String("line\nbreak")),
		audit.NewEvent("open", starlark.String("/after")),
	}
	for _, ev := range evs {
		if err := f.Hook(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Memfds() != 1 {
		t.Errorf("%d entries went through a memfd, want 1", s.Memfds())
	}
	checkArrived(t, j, evs, f.Run())
}

// A burst of more entries than journald's default rate limit burst
// (10000 in 30s): all arrive. journald rate-limits per systemd unit
// only, and this test's process is in none; docs/sinks.md says how to
// turn the limit off for sstar's unit.
func TestBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("a burst of 12000 entries")
	}
	j := journaldtest.Start(t)
	f, _, err := dial(journald.Options{Socket: j.Socket})
	if err != nil {
		t.Fatal(err)
	}
	ev := audit.NewEvent("open", starlark.String("/etc/hosts"), starlark.String("r"), starlark.MakeInt(0))
	const n = 12000
	for i := 0; i < n; i++ {
		if err := f.Hook(ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got := j.WaitEntries(n, 60*time.Second, "SSTAR_RUN="+f.Run())
	if len(got) != n {
		t.Fatalf("%d of %d entries in the journal", len(got), n)
	}
	for i, e := range got {
		if v, _ := journaldtest.Field(e, "SSTAR_SEQ"); v != strconv.Itoa(i+1) {
			t.Fatalf("entry %d has seq %s", i, v)
		}
	}
}

// journald not running: Dial fails; journald gone mid-run: the next
// event fails closed, and so does every later one.
func TestJournaldGone(t *testing.T) {
	if _, err := journald.Dial(journald.Options{Socket: t.TempDir() + "/no.sock"}); err == nil || !strings.Contains(err.Error(), "cannot connect") {
		t.Errorf("Dial to no socket = %v", err)
	}
	j := journaldtest.Start(t)
	f, _, err := dial(journald.Options{Socket: j.Socket})
	if err != nil {
		t.Fatal(err)
	}
	send := func(i int) error { return f.Hook(audit.NewEvent("open", starlark.String(fmt.Sprint(i)))) }
	for i := range 10 {
		if err := send(i); err != nil {
			t.Fatal(err)
		}
	}
	j.Kill()
	err = send(10)
	if !errors.Is(err, audit.ErrNotRecorded) || !errors.Is(err, syscall.ECONNREFUSED) && !strings.Contains(err.Error(), "refused") {
		t.Fatalf("event after journald died = %v", err)
	}
	if err := send(11); err == nil {
		t.Fatal("a failed sink took a later event")
	}
	f.Close()
}

// A stopped journald (SIGSTOP) holds the script up once its queue is
// full; past WriteTimeout, the sink fails closed.
func TestJournaldStopped(t *testing.T) {
	j := journaldtest.Start(t)
	f, _, err := dial(journald.Options{Socket: j.Socket, WriteTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syscall.Kill(j.Pid(), syscall.SIGSTOP)
	defer syscall.Kill(j.Pid(), syscall.SIGCONT)
	ev := audit.NewEvent("open", starlark.String(strings.Repeat("x", 4000)))
	for i := 0; i < 1e6; i++ {
		if err := f.Hook(ev); err != nil {
			if !errors.Is(err, audit.ErrNotRecorded) || !strings.Contains(err.Error(), "did not take the entry within") {
				t.Fatalf("error: %v", err)
			}
			t.Logf("failed closed after %d entries: %v", i, err)
			return
		}
	}
	t.Fatal("a million entries went to a stopped journald")
}

// BenchmarkJournald measures entries per second to a real journald, and
// checks that every one arrived.
func BenchmarkJournald(b *testing.B) {
	j := journaldtest.Start(b)
	s, err := journald.Dial(journald.Options{Socket: j.Socket})
	if err != nil {
		b.Fatal(err)
	}
	f := new(record.Fanout)
	if err := f.Add(s); err != nil {
		b.Fatal(err)
	}
	ev := audit.NewEvent("open", starlark.String("/etc/hosts"), starlark.String("r"), starlark.MakeInt(0))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := f.Hook(ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if got := j.WaitEntries(b.N, 60*time.Second, "SSTAR_RUN="+f.Run()); len(got) != b.N {
		b.Fatalf("%d events sent, %d arrived", b.N, len(got))
	}
}
