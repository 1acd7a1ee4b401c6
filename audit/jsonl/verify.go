package jsonl

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// MaxLine is the longest line Verify reads; a longer one is reported as
// malformed.
const MaxLine = 16 << 20

// A Kind is what Verify found wrong with a line.
type Kind int

// The kinds of problem, from tampering to mere damage.
const (
	// Edited: a line's bytes are not those that the next line of its run
	// (or a run that chained from it) recorded the hash of.
	Edited Kind = iota + 1
	// Removed: lines of a run are missing (a gap in seq, a run that does
	// not start at seq 1, or a line that a run chained from is gone).
	Removed
	// Inserted: a line repeats a seq that another line of its run has.
	Inserted
	// Reordered: a line comes after a later line of its own run.
	Reordered
	// Malformed: a line that is not an audit record at all.
	Malformed
	// Truncated: the log ends in an incomplete line, as a crash or a full
	// disk in mid-write leaves it. Damage, not tampering.
	Truncated
	// CutOff: an incomplete line in the middle of the log, which a later
	// run ended and recorded (field "cut"). Damage, not tampering.
	CutOff
)

func (k Kind) String() string {
	switch k {
	case Edited:
		return "edited"
	case Removed:
		return "removed"
	case Inserted:
		return "inserted"
	case Reordered:
		return "reordered"
	case Malformed:
		return "malformed"
	case Truncated:
		return "truncated"
	case CutOff:
		return "cut off"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Tampering reports whether a problem of this kind means the log was
// changed after it was written, rather than cut short by a crash.
func (k Kind) Tampering() bool { return k != Truncated && k != CutOff }

// A Problem is one thing wrong with a log.
type Problem struct {
	Line   int    // line number, from 1
	Kind   Kind   // what is wrong
	Run    string // the run whose chain it breaks, if known
	Detail string // why, in a sentence
}

func (p Problem) String() string {
	return fmt.Sprintf("line %d: %s: %s", p.Line, p.Kind, p.Detail)
}

// A Report is the result of Verify.
type Report struct {
	Lines    int       // lines read, blank ones included
	Records  int       // valid records among them
	Runs     int       // distinct run ids
	Problems []Problem // in line order
}

// Intact reports whether every chain is whole and nothing is cut off.
func (r *Report) Intact() bool { return len(r.Problems) == 0 }

// Tampered reports whether any problem means the log was changed.
func (r *Report) Tampered() bool {
	for _, p := range r.Problems {
		if p.Kind.Tampering() {
			return true
		}
	}
	return false
}

// entry is what Verify keeps of a valid line.
type entry struct {
	line int
	seq  uint64
	prev [sha256.Size]byte
	hash [sha256.Size]byte
	cut  *[sha256.Size]byte
}

type runRecords struct {
	id   string
	recs []*entry
}

// wire is a line as parsed; pointers tell a missing field from a zero.
type wire struct {
	Seq   *uint64         `json:"seq"`
	Time  *string         `json:"time"`
	PID   *int64          `json:"pid"`
	Run   *string         `json:"run"`
	Event *string         `json:"event"`
	Args  json.RawMessage `json:"args"`
	Prev  *string         `json:"prev"`
	Cut   *string         `json:"cut"`
}

// Verify reads a log and checks every run's chain (see the package
// comment for the rules). It returns an error only if r cannot be read;
// what is wrong with the log is in the Report.
//
// What a hash chain cannot show: lines removed from the end of a run
// (unless a later run chained from one of them), and a run rewritten
// whole by someone who recomputed its hashes. The syslog copy of the same
// run ids and seqs, kept off the machine, is what shows those.
func Verify(r io.Reader) (*Report, error) {
	v := &verifier{report: &Report{}, byRun: map[string]*runRecords{}, hashes: map[[sha256.Size]byte]int{}}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, complete, tooLong, err := readLine(br)
		if err != nil && err != io.EOF {
			return nil, err
		}
		if len(line) == 0 && !tooLong && err == io.EOF {
			break
		}
		v.report.Lines++
		n := v.report.Lines
		switch {
		case tooLong:
			v.problem(n, Malformed, "", fmt.Sprintf("longer than %d bytes: not an audit record", MaxLine))
		case !complete:
			v.problem(n, Truncated, "", "the log ends in an incomplete line: cut off by a crash or a full disk while it was written")
		default:
			v.add(n, line)
		}
		if err == io.EOF {
			break
		}
	}
	v.finish()
	slices.SortStableFunc(v.report.Problems, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
	return v.report, nil
}

// readLine reads one line without its newline. complete is false for a
// last line with no newline; tooLong is true (and the line dropped) past
// MaxLine.
func readLine(br *bufio.Reader) (line []byte, complete, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > MaxLine+1 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil:
			if !tooLong {
				line = line[:len(line)-1]
			}
			return line, true, tooLong, nil
		default:
			return line, false, tooLong, err
		}
	}
}

type verifier struct {
	report *Report
	byRun  map[string]*runRecords
	order  []*runRecords
	hashes map[[sha256.Size]byte]int // line hash -> first line number
	bad    []badLine
}

type badLine struct {
	line   int
	hash   [sha256.Size]byte
	reason string
}

func (v *verifier) problem(line int, k Kind, run, detail string) {
	v.report.Problems = append(v.report.Problems, Problem{Line: line, Kind: k, Run: run, Detail: detail})
}

func (v *verifier) add(n int, line []byte) {
	if len(bytes.TrimSpace(line)) == 0 {
		return // a blank line carries nothing (two runs ending the same cut line leave one)
	}
	h := sha256.Sum256(line)
	if _, seen := v.hashes[h]; !seen {
		v.hashes[h] = n
	}
	rec, run, err := parseRecord(line)
	if err != nil {
		v.bad = append(v.bad, badLine{line: n, hash: h, reason: err.Error()})
		return
	}
	rec.line, rec.hash = n, h
	v.report.Records++
	rr := v.byRun[run]
	if rr == nil {
		rr = &runRecords{id: run}
		v.byRun[run] = rr
		v.order = append(v.order, rr)
	}
	rr.recs = append(rr.recs, rec)
}

func parseRecord(line []byte) (*entry, string, error) {
	var w wire
	if err := json.Unmarshal(line, &w); err != nil {
		return nil, "", errors.New("not valid JSON")
	}
	switch {
	case w.Seq == nil || *w.Seq == 0:
		return nil, "", errors.New(`no "seq" of 1 or more`)
	case w.Time == nil:
		return nil, "", errors.New(`no "time"`)
	case w.PID == nil:
		return nil, "", errors.New(`no "pid"`)
	case w.Run == nil || *w.Run == "":
		return nil, "", errors.New(`no "run"`)
	case w.Event == nil:
		return nil, "", errors.New(`no "event"`)
	case len(w.Args) == 0 || w.Args[0] != '[':
		return nil, "", errors.New(`no "args" array`)
	case w.Prev == nil:
		return nil, "", errors.New(`no "prev"`)
	}
	if _, err := time.Parse(time.RFC3339Nano, *w.Time); err != nil {
		return nil, "", errors.New(`"time" is not an RFC 3339 time`)
	}
	rec := &entry{seq: *w.Seq}
	if err := decodeHash(*w.Prev, &rec.prev); err != nil {
		return nil, "", fmt.Errorf(`"prev" %v`, err)
	}
	if w.Cut != nil {
		if *w.Seq != 1 {
			return nil, "", errors.New(`"cut" on a line that is not the first of its run`)
		}
		rec.cut = new([sha256.Size]byte)
		if err := decodeHash(*w.Cut, rec.cut); err != nil {
			return nil, "", fmt.Errorf(`"cut" %v`, err)
		}
	}
	return rec, *w.Run, nil
}

func decodeHash(s string, dst *[sha256.Size]byte) error {
	if len(s) != hex.EncodedLen(sha256.Size) {
		return errors.New("is not a SHA-256 in hex")
	}
	if _, err := hex.Decode(dst[:], []byte(s)); err != nil {
		return errors.New("is not a SHA-256 in hex")
	}
	for _, c := range s {
		if c >= 'A' && c <= 'F' {
			return errors.New("is not lowercase hex")
		}
	}
	return nil
}

func short(run string) string {
	if len(run) > 8 {
		return run[:8]
	}
	return run
}

func (v *verifier) finish() {
	v.report.Runs = len(v.order)
	v.checkBad()
	for _, rr := range v.order {
		v.checkRun(rr)
	}
}

// checkBad sorts lines that are not records into damage a later run
// recorded (cut off) and the rest (malformed), and checks every run's
// claim to have ended a cut-off line.
func (v *verifier) checkBad() {
	lastClaim := map[[sha256.Size]byte]int{} // cut hash -> last line that claims it
	for _, rr := range v.order {
		for _, r := range rr.recs {
			if r.cut != nil && r.line > lastClaim[*r.cut] {
				lastClaim[*r.cut] = r.line
			}
		}
	}
	firstBad := map[[sha256.Size]byte]int{} // hash -> first bad line with it
	for _, b := range v.bad {
		if _, ok := firstBad[b.hash]; !ok {
			firstBad[b.hash] = b.line
		}
		if lastClaim[b.hash] > b.line {
			v.problem(b.line, CutOff, "", "an incomplete line left by a crash or a full disk, ended by a later run")
		} else {
			v.problem(b.line, Malformed, "", "not an audit record ("+b.reason+"): edited or inserted")
		}
	}
	for _, rr := range v.order {
		for _, r := range rr.recs {
			if r.cut == nil {
				continue
			}
			if at, ok := firstBad[*r.cut]; !ok || at > r.line {
				v.problem(r.line, Removed, rr.id, fmt.Sprintf("run %s says it ended an incomplete line before it, and that line is not in the log", short(rr.id)))
			}
		}
	}
}

func (v *verifier) checkRun(rr *runRecords) {
	id, s := rr.id, short(rr.id)

	// Two lines with one seq: keep the one that chains, report the other.
	bySeq := map[uint64][]*entry{}
	prevs := map[[sha256.Size]byte]bool{}
	for _, r := range rr.recs {
		bySeq[r.seq] = append(bySeq[r.seq], r)
		prevs[r.prev] = true
	}
	var recs []*entry
	for _, r := range rr.recs {
		group := bySeq[r.seq]
		if len(group) == 1 {
			recs = append(recs, r)
			continue
		}
		if r != group[0] {
			continue // the group is handled at its first line
		}
		keep := group[0]
		for _, g := range group {
			if prevs[g.hash] {
				keep = g
				break
			}
		}
		recs = append(recs, keep)
		for _, g := range group {
			if g == keep {
				continue
			}
			if g.hash == keep.hash {
				v.problem(g.line, Inserted, id, fmt.Sprintf("a copy of line %d (run %s, seq %d)", keep.line, s, g.seq))
			} else {
				v.problem(g.line, Inserted, id, fmt.Sprintf("claims seq %d of run %s, which line %d has", g.seq, s, keep.line))
			}
		}
	}
	slices.SortFunc(recs, func(a, b *entry) int { return cmp.Compare(a.line, b.line) })

	// A line after a later line of its own run: reordered.
	var max *entry
	for _, r := range recs {
		if max != nil && r.seq < max.seq {
			v.problem(r.line, Reordered, id, fmt.Sprintf("seq %d of run %s comes after seq %d (line %d)", r.seq, s, max.seq, max.line))
			break
		}
		if max == nil || r.seq > max.seq {
			max = r
		}
	}

	// In seq order: the start, the gaps, the links.
	slices.SortFunc(recs, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
	first := recs[0]
	if first.seq != 1 {
		v.problem(first.line, Removed, id, fmt.Sprintf("run %s starts at seq %d: its first %d lines are missing (removed, or in an older log file)", s, first.seq, first.seq-1))
	} else if first.prev != ([sha256.Size]byte{}) {
		if at, ok := v.hashes[first.prev]; !ok || at >= first.line {
			v.problem(first.line, Removed, id, fmt.Sprintf("run %s chains from a line that is not before it in the log: that line was removed or edited", s))
		}
	}
	for i := 1; i < len(recs); i++ {
		a, b := recs[i-1], recs[i]
		if b.seq != a.seq+1 {
			v.problem(b.line, Removed, id, fmt.Sprintf("run %s jumps from seq %d (line %d) to seq %d: %d lines missing", s, a.seq, a.line, b.seq, b.seq-a.seq-1))
			continue
		}
		if b.prev == a.hash {
			continue
		}
		// One changed line breaks the link after it; a changed "prev"
		// breaks the link before it too.
		if i+1 < len(recs) {
			if c := recs[i+1]; c.seq == b.seq+1 && c.prev != b.hash {
				v.problem(b.line, Edited, id, fmt.Sprintf("line %d does not chain from line %d, and line %d (next in run %s) does not chain from it: line %d was changed", b.line, a.line, c.line, s, b.line))
				i++
				continue
			}
		}
		v.problem(a.line, Edited, id, fmt.Sprintf("line %d (next in run %s) recorded a different hash for it: line %d was changed", b.line, s, a.line))
	}
}
