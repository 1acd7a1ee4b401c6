package record_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/record"
)

// sink keeps copies of the records it is given, as a real sink would
// write them out.
type sink struct {
	name    string
	recs    []record.Record
	failAt  uint64 // Write of this seq fails
	closed  *[]string
	closeEr error
}

func (s *sink) Write(r *record.Record) error {
	if r.Seq == s.failAt {
		return fmt.Errorf("%w: %s: disk full", audit.ErrNotRecorded, s.name)
	}
	c := *r
	c.Args = append([]byte(nil), r.Args...)
	s.recs = append(s.recs, c)
	return nil
}

func (s *sink) Close() error {
	if s.closed != nil {
		*s.closed = append(*s.closed, s.name)
	}
	return s.closeEr
}

func ev(i int) audit.Event {
	return audit.NewEvent("app.tick", starlark.MakeInt(i), starlark.String("x"))
}

// Every sink gets the same record of each event, numbered once, from
// however many threads the events come.
func TestEverySinkGetsTheSameRecord(t *testing.T) {
	f := new(record.Fanout)
	a, b := &sink{name: "a"}, &sink{name: "b"}
	if err := f.Add(a); err != nil {
		t.Fatal(err)
	}
	if err := f.Add(b); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if err := f.Hook(ev(g*100 + i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if len(a.recs) != 200 || !reflect.DeepEqual(a.recs, b.recs) {
		t.Fatalf("sinks got %d and %d records, or different ones", len(a.recs), len(b.recs))
	}
	for i, r := range a.recs {
		if r.Seq != uint64(i+1) || r.Run != f.Run() || r.PID == 0 || r.Time.IsZero() || r.Kind != audit.Script || r.Name != "app.tick" {
			t.Fatalf("record %d: %+v", i, r)
		}
		if !strings.HasPrefix(string(r.Args), "[") || !strings.HasSuffix(string(r.Args), `,"x"]`) {
			t.Fatalf("record %d: args %s", i, r.Args)
		}
	}
	if len(f.Run()) != 32 {
		t.Errorf("run id %q, want 32 hex digits", f.Run())
	}
}

// A record knows its event's table entry: severity is the table's.
func TestRecordKind(t *testing.T) {
	f := new(record.Fanout)
	s := &sink{}
	f.Add(s)
	f.Hook(audit.NewEvent("sstar.code_integrity_failure", starlark.String("/x"), starlark.String("no stamp")))
	if r := s.recs[0]; r.Kind != audit.CodeIntegrityFailure || r.Severity() != audit.Critical || string(r.Args) != `["/x","no stamp"]` {
		t.Fatalf("record %+v, severity %v", r, r.Severity())
	}
}

// Sinks added while records are kept first get every record they missed,
// so that they too hold the run from seq 1; a sink that would miss
// records is refused.
func TestKeptRecordsReplayed(t *testing.T) {
	f := &record.Fanout{RunID: "0123456789abcdef0123456789abcdef"}
	early := &sink{name: "early"}
	f.Add(early)
	f.Keep(true)
	for i := range 3 {
		f.Hook(ev(i))
	}
	late := &sink{name: "late"}
	if err := f.Add(late); err != nil {
		t.Fatal(err)
	}
	f.Keep(false)
	f.Hook(ev(3))
	if len(late.recs) != 4 || !reflect.DeepEqual(early.recs, late.recs) {
		t.Fatalf("early sink has %d records, late one %d: %+v", len(early.recs), len(late.recs), late.recs)
	}
	if late.recs[0].Run != f.RunID {
		t.Errorf("run %q, want the one set", late.recs[0].Run)
	}
	if err := f.Add(&sink{name: "too late"}); err == nil || !strings.Contains(err.Error(), "miss") {
		t.Fatalf("Add after unkept records = %v, want a refusal", err)
	}
}

// With no sink and nothing kept there is nothing to record: no seq is
// used up, and a sink added then starts at 1.
func TestNoSinkNoRecord(t *testing.T) {
	f := new(record.Fanout)
	if err := f.Hook(ev(0)); err != nil {
		t.Fatal(err)
	}
	s := &sink{}
	if err := f.Add(s); err != nil {
		t.Fatal(err)
	}
	f.Hook(ev(1))
	if len(s.recs) != 1 || s.recs[0].Seq != 1 {
		t.Fatalf("records %+v", s.recs)
	}
}

// A sink that cannot take a record fails the event and every later one;
// sinks after it are not given the record.
func TestSinkFailureFailsClosed(t *testing.T) {
	f := new(record.Fanout)
	a, b := &sink{name: "a", failAt: 2}, &sink{name: "b"}
	f.Add(a)
	f.Add(b)
	if err := f.Hook(ev(0)); err != nil {
		t.Fatal(err)
	}
	err := f.Hook(ev(1))
	if !errors.Is(err, audit.ErrNotRecorded) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Hook with a failing sink = %v", err)
	}
	if err := f.Hook(ev(2)); !errors.Is(err, audit.ErrNotRecorded) {
		t.Fatalf("a failed fan-out took a later event: %v", err)
	}
	if len(b.recs) != 1 {
		t.Errorf("the sink after the failing one got %d records, want 1", len(b.recs))
	}
	if err := f.Add(&sink{}); !errors.Is(err, audit.ErrNotRecorded) {
		t.Errorf("Add after a failure = %v", err)
	}
}

// panicky is a value whose String method panics, as a buggy value type of
// an embedding program's might.
type panicky struct{ starlark.Tuple }

func (panicky) String() string { panic("String of a buggy value") }
func (panicky) Type() string   { return "panicky" }

// The dispatcher does not recover a Go hook's panic; the fan-out does, and
// fails closed: the event was not recorded.
func TestPanicWhileRecordingFailsClosed(t *testing.T) {
	f := new(record.Fanout)
	s := &sink{}
	f.Add(s)
	err := f.Hook(audit.NewEvent("app.bad", panicky{}))
	if !errors.Is(err, audit.ErrNotRecorded) || !strings.Contains(err.Error(), "String of a buggy value") {
		t.Fatalf("Hook of an event that panics = %v, want ErrNotRecorded with the panic", err)
	}
	if err := f.Hook(ev(1)); !errors.Is(err, audit.ErrNotRecorded) {
		t.Fatalf("a failed fan-out took a later event: %v", err)
	}
	if len(s.recs) != 0 {
		t.Errorf("a sink got %d records", len(s.recs))
	}
}

// Close closes the sinks last added first, reports all their errors, and
// events after it fail.
func TestClose(t *testing.T) {
	var order []string
	f := new(record.Fanout)
	f.Add(&sink{name: "a", closed: &order, closeEr: errors.New("a: not flushed")})
	f.Add(&sink{name: "b", closed: &order})
	f.Add(&sink{name: "c", closed: &order, closeEr: errors.New("c: server gone")})
	err := f.Close()
	if want := []string{"c", "b", "a"}; !reflect.DeepEqual(order, want) {
		t.Errorf("closed %v, want %v", order, want)
	}
	if err == nil || !strings.Contains(err.Error(), "not flushed") || !strings.Contains(err.Error(), "server gone") {
		t.Errorf("Close = %v, want both errors", err)
	}
	if err := f.Hook(ev(0)); !errors.Is(err, audit.ErrNotRecorded) {
		t.Errorf("Hook after Close = %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// BenchmarkFanout is the cost of one record for two sinks that do
// nothing: numbering, the clock and rendering, done once.
func BenchmarkFanout(b *testing.B) {
	f := new(record.Fanout)
	f.Add(nopSink{})
	f.Add(nopSink{})
	e := audit.NewEvent("open", starlark.String("/etc/hosts"), starlark.String("r"), starlark.MakeInt(0))
	b.ReportAllocs()
	for b.Loop() {
		if err := f.Hook(e); err != nil {
			b.Fatal(err)
		}
	}
}

type nopSink struct{}

func (nopSink) Write(*record.Record) error { return nil }
func (nopSink) Close() error               { return nil }

// A sink's error names the sink, the event, the cause and what to do,
// and wraps ErrNotRecorded (the cause only as text, as the sinks always
// gave it).
func TestNotRecorded(t *testing.T) {
	r := &record.Record{Run: "0123456789abcdef", Seq: 7, Name: "open"}
	cause := errors.New("connection reset")
	for _, c := range []struct {
		what, hint, want string
	}{
		{"not delivered", "check the server", `sink x: event "open" (#7 of run 0123456789abcdef) not delivered: connection reset; check the server`},
		{"", "", `sink x: event "open" (#7 of run 0123456789abcdef): connection reset`},
	} {
		err := r.NotRecorded("sink x", c.what, cause, c.hint)
		if !errors.Is(err, audit.ErrNotRecorded) || !strings.HasSuffix(err.Error(), c.want) {
			t.Errorf("NotRecorded = %v, want …%s wrapping ErrNotRecorded", err, c.want)
		}
	}
}
