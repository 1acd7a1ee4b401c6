// Package record turns audit events into records and hands every record
// to every sink of a run, in the manner of log/slog's Record and its
// multi-handler: one value per event, built once, the same for everyone.
//
// A Fanout is an audit.Hook. For each event it assigns the next sequence
// number of the run, reads the clock once, renders the arguments once as
// plain JSON (see internal/render), and then calls every Sink with the
// same *Record, in the order the sinks were added. Sinks therefore never
// number, timestamp or render anything themselves, and the copies of one
// event in a JSON Lines log and on a syslog server carry the same run id,
// seq and time, so that they can be matched.
//
// Sinks that become known only after events were raised (the mandatory
// sinks a system policy names, which exist only once it has run) are
// added while the Fanout keeps records (Keep): a sink added then first
// receives every record it missed, in order, so that it too has the whole
// run from seq 1. Adding a sink after records went by unkept is an error:
// every sink has every record of its run, or it is not a sink of the run.
//
// Delivery is fail-closed. A sink that cannot take a record (its disk is
// full, its server gone) returns an error; the Fanout then fails the event
// with an error wrapping audit.ErrNotRecorded, and every later event too,
// so that the dispatcher stops the run. A panic while rendering or in a
// sink is such a failure as well: the Fanout recovers it, since the
// dispatcher does not recover Go hooks.
package record

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/internal/render"
)

// A Record is one event as every sink receives it.
type Record struct {
	Run  string     // the run id: 32 lowercase hex digits, the same for every record of a run
	Seq  uint64     // the event's number in its run, from 1, without gaps
	Time time.Time  // when the event was raised
	PID  int        // the process that raised it
	Kind audit.Kind // the event's entry in the table; audit.Script for sys.audit's
	Name string     // the event's name, as raised (a script's may be any string)
	// Args is the JSON array of the event's arguments, rendered once by
	// internal/render. The record and Args are valid only during the call
	// that received them; a sink that keeps them copies them.
	Args []byte
}

// Severity is how serious the record's event is, from the event table.
func (r *Record) Severity() audit.Severity { return r.Kind.Severity() }

// NotRecorded is a sink's error for r: it wraps audit.ErrNotRecorded
// and reads "SINK: event NAME (#SEQ of run RUN) WHAT: ERR; HINT", where
// sink names the sink and its destination, what (may be empty) says
// what did not happen, and hint (may be empty) what to do.
func (r *Record) NotRecorded(sink, what string, err error, hint string) error {
	if what != "" {
		what = " " + what
	}
	if hint != "" {
		hint = "; " + hint
	}
	return fmt.Errorf("%w: %s: event %q (#%d of run %s)%s: %v%s", audit.ErrNotRecorded, sink, r.Name, r.Seq, r.Run, what, err, hint)
}

// AppendCall appends the record as a call for people, name(args), with
// the arguments as they were rendered (the JSON array's elements), cut
// at max bytes with "…": the free text of syslog's MSG and journald's
// MESSAGE.
func (r *Record) AppendCall(b []byte, max int) []byte {
	start := len(b)
	b = append(b, strings.ToValidUTF8(r.Name, "\uFFFD")...)
	b = append(b, '(')
	args := r.Args
	if len(args) >= 2 && args[0] == '[' && args[len(args)-1] == ']' {
		args = args[1 : len(args)-1]
	}
	if len(args) > max {
		args = args[:max+1]
	}
	b = append(b, args...)
	b = append(b, ')')
	if len(b)-start > max {
		cut := start + max
		for cut > start && !utf8.RuneStart(b[cut]) {
			cut--
		}
		b = append(b[:cut], "…"...)
	}
	return b
}

// A Sink receives the records of a run. Write is called with the Fanout's
// lock held, one record at a time, in seq order; it returns only once the
// record is recorded as far as the sink can know, or an error saying why
// not. Close is called once, at the end of the run, after the last Write.
type Sink interface {
	Write(r *Record) error
	Close() error
}

// NewRunID returns a random run id: 32 lowercase hex digits.
func NewRunID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather)
	return hex.EncodeToString(b[:])
}

// DefaultMaxRecord is the bound on a record's name and arguments, in
// bytes, unless the system policy sets another (policy.audit). It is
// chosen so that the largest syslog message it can make, with every byte
// of the arguments escaped, fits rsyslog's default maxMessageSize of
// 8 KiB (see audit/syslog.MessageSize); a JSON Lines line is at most
// about 300 bytes more; both fit a UDP datagram and a journald entry.
const DefaultMaxRecord = 3584

// MinMaxRecord and MaxMaxRecord bound what a policy may set.
const (
	MinMaxRecord = 2048
	MaxMaxRecord = 1 << 20
)

// A Fanout builds one Record per event and writes it to every sink. The
// zero value is ready to use; it makes its run id when it first needs
// one. A Fanout is safe for concurrent use.
type Fanout struct {
	// RunID, if set before first use, is the run id of every record.
	RunID string
	// MaxRecord bounds each record's name and arguments in bytes (0:
	// DefaultMaxRecord). An argument that does not fit is recorded by
	// its marker (see internal/render). Set it before the first event,
	// or between events with SetMaxRecord.
	MaxRecord int
	// Progress, if set before first use, is given each record's seq
	// before any sink receives the record: a monitor in another process
	// that shares the word (cmd/sstar's crash monitor) then knows the
	// seq its own record of the run's end must follow, whatever killed
	// this process.
	Progress *atomic.Uint64

	mu     sync.Mutex
	pid    int
	sinks  []Sink
	seq    uint64
	buf    []byte
	cur    Record // the record being written: reused, so that writing one allocates nothing
	keep   bool
	kept   []Record // with their own Args, while keep is on
	failed error    // sticky: set once a record could not be written
	closed bool
}

// Run returns the run id, making one if there is none yet.
func (f *Fanout) Run() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.run()
}

// run returns the run id; f.mu is held. The id is made on first use: a
// run without sinks needs none, and crypto/rand arms a timer that starts
// the runtime's network poller (tens of microseconds of start-up).
func (f *Fanout) run() string {
	if f.RunID == "" {
		f.RunID = NewRunID()
	}
	return f.RunID
}

// Seq returns how many records the run has had so far.
func (f *Fanout) Seq() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seq
}

// Keep says whether records are kept for sinks added later. Turning it
// off drops what was kept.
func (f *Fanout) Keep(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keep = on
	if !on {
		f.kept = nil
	}
}

// Add adds s after the sinks already there, and writes to it every
// record kept so far. It fails if records were written that were not
// kept (s would miss them), if the Fanout is closed or has failed, or if
// s cannot take a kept record; s is then not added, and the caller
// closes it.
func (f *Fanout) Add(s Sink) (err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return errors.New("record: Add after Close")
	case f.failed != nil:
		return f.failed
	case f.seq > uint64(len(f.kept)):
		return fmt.Errorf("record: a sink added after %d records went by unkept would miss them", f.seq-uint64(len(f.kept)))
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: a sink panicked while taking the records it missed: %v", audit.ErrNotRecorded, p)
		}
	}()
	for i := range f.kept {
		if err := s.Write(&f.kept[i]); err != nil {
			return err
		}
	}
	f.sinks = append(f.sinks, s)
	return nil
}

// Hook is the audit.Hook that records ev in every sink. Its error wraps
// audit.ErrNotRecorded.
func (f *Fanout) Hook(ev audit.Event) (err error) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed != nil {
		return f.failed
	}
	if f.closed {
		return f.fail(ev.Name, f.seq+1, errors.New("the run's sinks are closed"))
	}
	if len(f.sinks) == 0 && !f.keep {
		return nil // nobody to record for: no record, no seq
	}
	defer func() {
		if p := recover(); p != nil {
			err = f.fail(ev.Name, f.seq+1, fmt.Errorf("panic while recording it: %v", p))
		}
	}()
	if f.pid == 0 {
		f.pid = os.Getpid()
	}
	f.buf = render.AppendArgs(f.buf[:0], ev.Args(), f.argsBound(ev.Name))
	r := &f.cur
	*r = Record{Run: f.run(), Seq: f.seq + 1, Time: now, PID: f.pid, Kind: ev.Kind, Name: ev.Name, Args: f.buf}
	if f.Progress != nil {
		f.Progress.Store(r.Seq)
	}
	for _, s := range f.sinks {
		if err := s.Write(r); err != nil {
			return f.fail(ev.Name, r.Seq, err)
		}
	}
	f.seq = r.Seq
	if f.keep {
		k := *r
		k.Args = append([]byte(nil), r.Args...)
		f.kept = append(f.kept, k)
	}
	return nil
}

// SetMaxRecord sets MaxRecord for the records after this call.
func (f *Fanout) SetMaxRecord(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.MaxRecord = n
}

// argsBound is how many bytes the arguments of an event named name may
// take; f.mu is held. Names are short (sys.audit bounds a script's), so
// most of the bound is the arguments'.
func (f *Fanout) argsBound(name string) int {
	max := f.MaxRecord
	if max <= 0 {
		max = DefaultMaxRecord
	}
	return max - min(len(name), max/4)
}

// fail makes the Fanout refuse every later event; f.mu is held.
func (f *Fanout) fail(name string, seq uint64, err error) error {
	if !errors.Is(err, audit.ErrNotRecorded) {
		err = fmt.Errorf("%w: event %q (#%d of run %s): %v", audit.ErrNotRecorded, name, seq, f.run(), err)
	}
	f.failed = err
	return err
}

// Close closes every sink, last added first, and returns their errors
// joined: an error means the last records may not have been recorded.
// Events after Close fail.
func (f *Fanout) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	f.kept = nil
	var errs []error
	for i := len(f.sinks) - 1; i >= 0; i-- {
		if err := closeSink(f.sinks[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func closeSink(s Sink) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: a sink panicked while closing: %v", audit.ErrNotRecorded, p)
		}
	}()
	return s.Close()
}
