// Package jsonl is the JSON Lines audit sink: one JSON object per event,
// appended to a file, each line carrying the SHA-256 of the line before it
// in the same run, so that an edited, removed, inserted or reordered line
// is found by Verify (and `sstar log verify`).
//
// A line looks like this (one line in the file; wrapped here):
//
//	{"seq":2,"time":"2026-11-22T12:34:56.123456789Z","pid":4242,
//	 "run":"6f1c0a4e9b2d4c8f8e7a5b3c1d2e4f60","event":"open",
//	 "args":["/etc/hosts","r",524288],
//	 "prev":"9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab"}
//
// The fields, always in this order:
//
//   - seq: the event's number in its run, from 1.
//   - time: when the event was raised, RFC 3339 in UTC with nanoseconds.
//   - pid: the process that raised it.
//   - run: the run id, 32 hex digits, random per sstar process.
//   - event, args: the event's name and arguments (see internal/render
//     for how Starlark values are written).
//
// seq, time, pid, run and args come from the run's record (package
// record), made once per event for every sink: every sink of a run
// carries the same run id, seq and time for an event, so its copies in
// this log and on a syslog server can be matched.
//   - prev: the chain. For seq > 1, the SHA-256 (lowercase hex) of the
//     previous line of the same run, its exact bytes without the newline.
//     For seq 1, what the run chains from: the SHA-256 of the last line
//     in the file when the run opened it, or 64 zeros if the file was
//     empty.
//   - cut (seq 1 only, rare): present when the run found the file ending
//     in an incomplete line (a writer that crashed, or met a full disk,
//     in mid-line). The run ends that line with a newline before its own
//     first line, and records the SHA-256 of the incomplete line here, so
//     that Verify can tell the damage from an edit.
//
// Each line is written with a single write(2) on a file opened with
// O_APPEND, so several processes can append to one log at once: their
// lines interleave whole, and each run's chain stays intact. A write that
// fails or is short fails closed: Hook returns an error wrapping
// audit.ErrNotRecorded and every later event is refused. So does a log
// file that was removed, noticed within a millisecond (see linkCheck) and
// at the latest by Close; removing a file takes every line in it, so what
// protects a log is its directory's permissions and a copy off the
// machine. Appends are atomic on local file systems; NFS does not promise
// it.
//
// sstar's runs begin with sstar.run_start and end with sstar.run_end,
// which counts the records before it: Verify reports a run that began so
// and has no end as unfinished (still running, killed, or its tail
// removed). The Log itself writes whatever records it is given.
//
// A Log is a record.Sink: add it to the run's record.Fanout.
package jsonl

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/record"
	"github.com/sstar-project/sstar/internal/ospath"
	"github.com/sstar-project/sstar/internal/render"
)

// A Log appends records to a file. It is safe for concurrent use.
type Log struct {
	path string

	mu      sync.Mutex
	f       *os.File
	fd      int // f's descriptor, written with write(2) itself
	seq     uint64
	prev    [sha256.Size]byte
	cut     *[sha256.Size]byte // hash of an incomplete last line found at Open
	buf     []byte
	failed  error // sticky: once a line could not be written, nothing more is
	closed  bool
	written bool // at least one line written by this Log
	// resumed: opened by Resume, to continue a run another process wrote.
	// Its first record may have any seq after l.seq, and is preceded by a
	// newline if endCut (the file ended in an incomplete line).
	resumed, endCut bool

	checked time.Time // when the link count was last seen non-zero
	// stamp is the timestamp up to the second of the record before
	// ("2006-01-02T15:04:05."), second its Unix second: most records
	// fall in the second of the one before, and formatting a time whole
	// costs a sixth of a record.
	stamp  []byte
	second int64
}

// linkCheck is how often Write checks that the log file still has a
// name: at the first record, at the first one more than linkCheck after
// the last check, and at Close. A check is an fstat(2), which costs as
// much as the line's write(2) on a file being written; once a
// millisecond it costs nothing measurable.
const linkCheck = time.Millisecond

// Open opens the log at path for appending, creating it with mode 0600
// if it does not exist, and reads its last line to chain from.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %v", path, ospath.Reason(err))
	}
	l := &Log{path: path, f: f, buf: make([]byte, 0, 512)}
	fail := func(err error) (*Log, error) {
		f.Close()
		return nil, fmt.Errorf("audit log %s: %v", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(ospath.Reason(err))
	}
	if !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("not a regular file (%s)", fi.Mode().Type()))
	}
	// The descriptor itself, not a RawConn: a regular file is never in
	// the poller, and Write and Control would cost a closure, an
	// allocation and the descriptor's lock on every line. l.f keeps it
	// open until Close.
	l.fd = int(f.Fd())
	last, cut, err := settledLastLine(f, fi.Size())
	if err != nil {
		return fail(fmt.Errorf("reading its last line: %v", err))
	}
	l.prev, l.cut = last, cut
	return l, nil
}

// SameFile reports whether l and o append to the same file (the same
// device and inode), however they were named: two sinks on one file
// would interleave two chains of the same run, so a run keeps one.
func (l *Log) SameFile(o *Log) bool {
	a, aerr := l.f.Stat()
	b, berr := o.f.Stat()
	return aerr == nil && berr == nil && os.SameFile(a, b)
}

// cutSettle is how long the end of a log must stay the same before an
// incomplete last line counts as cut off (by a crash or a full disk).
const cutSettle = 50 * time.Millisecond

// settledLastLine is lastLine for a file other processes may be appending
// to. One write(2) of a line is atomic for other writers, but not for a
// reader: ext4 grows the file page by page while it copies, so a line
// that straddles a page can be seen half-written. A crashed writer's line
// never completes, a live writer's does within microseconds: an
// incomplete end counts as cut only once the size stayed the same for
// cutSettle.
func settledLastLine(f *os.File, size int64) (last [sha256.Size]byte, cut *[sha256.Size]byte, err error) {
	last, cut, err = lastLine(f, size)
	for waited := time.Duration(0); err == nil && cut != nil && waited < cutSettle; waited += 5 * time.Millisecond {
		time.Sleep(5 * time.Millisecond)
		fi, serr := f.Stat()
		if serr != nil {
			return last, nil, serr
		}
		if fi.Size() != size {
			size, waited = fi.Size(), 0
			last, cut, err = lastLine(f, size)
		}
	}
	return last, cut, err
}

// Write records r as one line. If the line cannot be written whole, it
// returns an error wrapping audit.ErrNotRecorded, and so does every later
// call. Records must come in seq order from 1, as a record.Fanout gives
// them: the chain links each line to the one before it.
func (l *Log) Write(r *record.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failed != nil {
		return l.failed
	}
	if l.closed {
		return l.fail(r, errors.New("the log is closed"))
	}
	if r.Seq != l.seq+1 && !(l.resumed && !l.written && r.Seq > l.seq) {
		return l.fail(r, fmt.Errorf("record #%d after #%d: a log takes every record of its run, in order", r.Seq, l.seq))
	}
	seq := r.Seq
	b := l.buf[:0]
	if seq == 1 && l.cut != nil || l.endCut && !l.written {
		b = append(b, '\n') // end the incomplete line we found
	}
	start := len(b)
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"time":"`...)
	b = l.appendTime(b, r.Time)
	b = append(b, `","pid":`...)
	b = strconv.AppendInt(b, int64(r.PID), 10)
	b = append(b, `,"run":`...)
	b = render.AppendString(b, r.Run)
	b = append(b, `,"event":`...)
	b = appendName(b, r.Name)
	b = append(b, `,"args":`...)
	b = append(b, r.Args...)
	b = append(b, `,"prev":"`...)
	b = hex.AppendEncode(b, l.prev[:])
	if seq == 1 && l.cut != nil {
		b = append(b, `","cut":"`...)
		b = hex.AppendEncode(b, l.cut[:])
	}
	b = append(b, `"}`...)
	sum := sha256.Sum256(b[start:])
	b = append(b, '\n')
	l.buf = b

	if d := r.Time.Sub(l.checked); l.checked.IsZero() || d < 0 || d >= linkCheck {
		if err := l.checkLinked(); err != nil {
			return l.fail(r, err)
		}
		l.checked = r.Time
	}
	n, err := l.write(b)
	if err != nil {
		return l.fail(r, err)
	}
	if n != len(b) {
		return l.fail(r, fmt.Errorf("short write: %d of %d bytes (disk full?)", n, len(b)))
	}
	l.seq, l.prev, l.written = seq, sum, true
	return nil
}

// appendTime appends t in UTC as 2006-01-02T15:04:05.000000000Z,
// formatting the part up to the second only when the second changes.
func (l *Log) appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	if sec := t.Unix(); sec != l.second || l.stamp == nil {
		l.stamp = t.AppendFormat(l.stamp[:0], "2006-01-02T15:04:05.")
		l.second = sec
	}
	b = append(b, l.stamp...)
	ns := t.Nanosecond()
	for div := 100_000_000; div > 0; div /= 10 {
		b = append(b, byte('0'+ns/div%10))
	}
	return append(b, 'Z')
}

// appendName writes an event name as a JSON string; a name from sys.audit
// that is not valid UTF-8 is written with its bad bytes replaced, which
// keeps the line valid JSON (its args are exact).
func appendName(b []byte, name string) []byte {
	return render.AppendString(b, strings.ToValidUTF8(name, "\uFFFD"))
}

// write makes exactly one write(2): os.File.Write would retry a short
// write, and the second half of a line could then land after another
// process's line.
func (l *Log) write(b []byte) (n int, err error) {
	for {
		n, err = syscall.Write(l.fd, b)
		if err != syscall.EINTR {
			break
		}
	}
	if n < 0 {
		n = 0
	}
	return n, err
}

// checkLinked fails if the log file has been removed: lines written to an
// unlinked file reach nobody.
func (l *Log) checkLinked() error {
	var st syscall.Stat_t
	if err := syscall.Fstat(l.fd, &st); err != nil {
		return fmt.Errorf("fstat: %v", err)
	}
	if st.Nlink == 0 {
		return errors.New("the log file was removed")
	}
	return nil
}

func (l *Log) fail(r *record.Record, err error) error {
	l.failed = r.NotRecorded("audit log "+l.path, "", err, "free space or restore the file, and check `sstar log verify "+l.path+"`")
	return l.failed
}

// Close flushes the log to disk (fsync) and closes it. An error means the
// last lines may not be on disk.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var err error
	if l.written {
		err = l.f.Sync()
		if err == nil && l.failed == nil {
			if lerr := l.checkLinked(); lerr != nil { // the last millisecond's lines
				l.f.Close()
				return fmt.Errorf("%w: audit log %s: %v; the run's lines went nowhere", audit.ErrNotRecorded, l.path, lerr)
			}
		}
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: audit log %s: flushing to disk: %v; the last events may be lost", audit.ErrNotRecorded, l.path, ospath.Reason(err))
	}
	return nil
}

// lastLine finds what a new run chains from: the hash of the last
// complete line of the file that is not blank (zero if there is none)
// and, if the file ends in an incomplete line, that line's hash. A blank
// line (empty, or nothing but white space: see blank) is not a record,
// and Verify reports one that is not empty as inserted; chaining from it
// would make the run the one to blame when it is removed.
func lastLine(r io.ReaderAt, size int64) (last [sha256.Size]byte, cut *[sha256.Size]byte, err error) {
	end := size // the end of the region still to search
	if end == 0 {
		return last, nil, nil
	}
	nl, err := lastIndexByte(r, end, '\n')
	if err != nil {
		return last, nil, err
	}
	if nl != end-1 {
		h, err := hashRange(r, nl+1, end)
		if err != nil {
			return last, nil, err
		}
		cut = &h
	}
	end = nl
	for end > 0 {
		start, err := lastIndexByte(r, end, '\n')
		if err != nil {
			return last, nil, err
		}
		isBlank, err := blankRange(r, start+1, end)
		if err != nil {
			return last, cut, err
		}
		if !isBlank {
			last, err = hashRange(r, start+1, end)
			return last, cut, err
		}
		end = start
	}
	return last, cut, nil
}

// lastIndexByte returns the offset of the last c in r[0:end], or -1.
func lastIndexByte(r io.ReaderAt, end int64, c byte) (int64, error) {
	var buf [32 << 10]byte
	for end > 0 {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		chunk := buf[:n]
		if _, err := r.ReadAt(chunk, end-n); err != nil {
			return 0, err
		}
		for i := n - 1; i >= 0; i-- {
			if chunk[i] == c {
				return end - n + i, nil
			}
		}
		end -= n
	}
	return -1, nil
}

// blankRange reports whether r[start:end] is blank: empty, or white
// space only. It reads no further than the first byte that is not.
func blankRange(r io.ReaderAt, start, end int64) (bool, error) {
	var buf [4 << 10]byte
	for start < end {
		n := int64(len(buf))
		if n > end-start {
			n = end - start
		}
		chunk := buf[:n]
		if _, err := r.ReadAt(chunk, start); err != nil {
			return false, err
		}
		if !blank(chunk) {
			return false, nil
		}
		start += n
	}
	return true, nil
}

func hashRange(r io.ReaderAt, start, end int64) ([sha256.Size]byte, error) {
	h := sha256.New()
	var sum [sha256.Size]byte
	if _, err := io.Copy(h, io.NewSectionReader(r, start, end-start)); err != nil {
		return sum, err
	}
	h.Sum(sum[:0])
	return sum, nil
}
