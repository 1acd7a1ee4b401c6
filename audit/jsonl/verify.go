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
	"math"
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
	// Unfinished: a run that began with sstar.run_start has no
	// sstar.run_end, and its last line is whole. It is still running,
	// or its process was killed outright (SIGKILL, the OOM killer, power
	// lost), or its last lines were removed: the log alone cannot tell
	// which. Not counted as tampering; a run whose end a crash cut off
	// mid-line is reported as Truncated or CutOff instead.
	Unfinished
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
	case Unfinished:
		return "unfinished"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Tampering reports whether a problem of this kind means the log was
// changed after it was written, rather than cut short by a crash or by
// the end of a run that has not been written (yet, or ever).
func (k Kind) Tampering() bool { return k != Truncated && k != CutOff && k != Unfinished }

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
	Finished int       // runs that began with sstar.run_start and have their sstar.run_end
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

// Unfinished reports whether a run that began with sstar.run_start has
// no sstar.run_end and was not cut off mid-line (see Unfinished).
func (r *Report) Unfinished() bool {
	for _, p := range r.Problems {
		if p.Kind == Unfinished {
			return true
		}
	}
	return false
}

// entry is what Verify keeps of a valid line.
type entry struct {
	line  int
	seq   uint64
	prev  [sha256.Size]byte
	hash  [sha256.Size]byte
	cut   *[sha256.Size]byte
	life  lifeEvent
	count uint64 // for a run_end: the records it says came before it
	pid   int64
	time  string
	run   string
}

// lifeEvent marks the records that begin and end a run.
type lifeEvent uint8

const (
	noLife lifeEvent = iota
	runStart
	runEnd
)

// The names of the lifecycle events (audit.RunStart and audit.RunEnd; a
// script cannot raise them, sys.audit refuses sstar's names).
const (
	runStartName = "sstar.run_start"
	runEndName   = "sstar.run_end"
)

type runRecords struct {
	id   string
	recs []*entry
	// cutEnd is the line of an incomplete line after its last whole
	// record that was its end (see attributeCuts): a crash cut it off.
	cutEnd int
	// started: a record seq 1 sstar.run_start; hasEnd: an sstar.run_end.
	started, hasEnd bool
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
// A run that began with sstar.run_start must end with sstar.run_end, and
// run_end's count of events must be the number of records before it:
// so lines removed from the end of such a run show as Unfinished (it is
// still running, was killed, or lost its tail), and lines removed and
// the rest renumbered as Removed. A run that does not begin with
// run_start (an older sstar's, or an embedder's that raises no
// lifecycle events) makes no promise about its end.
//
// What a hash chain cannot show: the last runs of a file removed whole
// (nothing after them refers back to them), a run removed whole while
// another run that began before it wrote on, and a run rewritten whole
// by someone who recomputed its hashes. The syslog copy of the same run
// ids and seqs, kept off the machine, is what shows those.
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
			v.truncated, v.truncRun = n, lineRun(line)
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
	all    []*entry  // every record, in line order
	cuts   []cutLine // incomplete lines, in line order
	// truncated is the number of an incomplete last line (0: none), and
	// truncRun the run id it begins with, if it got that far.
	truncated int
	truncRun  string
}

type badLine struct {
	line   int
	hash   [sha256.Size]byte
	reason string
	run    string // the run id the line begins with, if any (see lineRun)
}

// Blank lines. An empty line carries nothing: two runs that ended the
// same cut-off line leave one. A line of nothing but whitespace is no
// record either, and the writer never chains from it (see lastLine); it
// is reported as malformed, an insertion. Its hash is still a line a run
// may chain from, as writers before this rule did, so that such a run
// is not blamed for what was inserted before it.
func blank(line []byte) bool {
	for _, c := range line {
		if !isSpace(c) {
			return false
		}
	}
	return true
}

// isSpace is ASCII white space, as JSON and the shell tools see it.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

// lineRun returns the run id an incomplete line starts with, if it got
// that far: a line is written as {"seq":N,"time":"...","pid":N,"run":"ID",
// so a line cut after the id still says whose it was.
func lineRun(line []byte) string {
	const key = `,"run":"`
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return ""
	}
	rest := line[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j <= 0 || j > 64 {
		return ""
	}
	return string(rest[:j])
}

func (v *verifier) problem(line int, k Kind, run, detail string) {
	v.report.Problems = append(v.report.Problems, Problem{Line: line, Kind: k, Run: run, Detail: detail})
}

func (v *verifier) add(n int, line []byte) {
	if len(line) == 0 {
		return // see blank
	}
	h := sha256.Sum256(line)
	if _, seen := v.hashes[h]; !seen {
		v.hashes[h] = n
	}
	if blank(line) {
		v.bad = append(v.bad, badLine{line: n, hash: h, reason: "only white space"})
		return
	}
	rec, run, err := parseRecord(line)
	if err != nil {
		v.bad = append(v.bad, badLine{line: n, hash: h, reason: err.Error(), run: lineRun(line)})
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
	rr.started = rr.started || rec.seq == 1 && rec.life == runStart
	rr.hasEnd = rr.hasEnd || rec.life == runEnd
	rec.run = run
	v.all = append(v.all, rec)
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
	rec := &entry{seq: *w.Seq, pid: *w.PID, time: *w.Time}
	switch *w.Event {
	case runStartName:
		rec.life = runStart
	case runEndName:
		// run_end(status, reason, seconds, events, code, limits)
		var args []json.RawMessage
		if json.Unmarshal(w.Args, &args) != nil || len(args) < 4 || json.Unmarshal(args[3], &rec.count) != nil {
			return nil, "", errors.New(`an "sstar.run_end" whose fourth argument is not a count of events`)
		}
		rec.life = runEnd
	}
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
	if v.truncated > 0 {
		v.cut(v.truncated, Truncated, v.truncRun, "the log ends in an incomplete line: cut off by a crash or a full disk while it was written")
	}
	v.attributeCuts()
	for _, rr := range v.order {
		v.checkRun(rr)
	}
}

// A cutLine is an incomplete line (Truncated or CutOff), whose problem is
// at index problem.
type cutLine struct {
	line    int
	run     string // the run id it begins with, if it got that far
	problem int
}

func (v *verifier) cut(line int, k Kind, run, detail string) {
	v.cuts = append(v.cuts, cutLine{line: line, run: run, problem: len(v.report.Problems)})
	v.problem(line, k, run, detail)
}

// attributeCuts finds, for each incomplete line, the unfinished run it
// was the end of: a crash or a full disk is then why that run has no
// sstar.run_end, and checkRun does not report it again. A line that
// still has its run id names the run; one cut before it is taken as the
// end of the unfinished run whose last record comes nearest before it
// (the short write of a full disk ends a line early).
func (v *verifier) attributeCuts() {
	open := func(rr *runRecords, line int) bool {
		return rr != nil && rr.started && !rr.hasEnd && rr.cutEnd == 0 && rr.recs[len(rr.recs)-1].line < line
	}
	end := func(rr *runRecords, c cutLine, how string) {
		rr.cutEnd = c.line
		v.report.Problems[c.problem].Run = rr.id
		v.report.Problems[c.problem].Detail += fmt.Sprintf("; it was %sthe end of run %s, which has no sstar.run_end", how, short(rr.id))
	}
	for _, c := range v.cuts {
		if c.run != "" {
			if rr := v.byRun[c.run]; open(rr, c.line) {
				end(rr, c, "")
			}
		}
	}
	var cands []*runRecords // unfinished runs, by the line of their last record
	for _, rr := range v.order {
		if open(rr, math.MaxInt) {
			cands = append(cands, rr)
		}
	}
	last := func(rr *runRecords) int { return rr.recs[len(rr.recs)-1].line }
	slices.SortFunc(cands, func(a, b *runRecords) int { return cmp.Compare(last(a), last(b)) })
	var stack []*runRecords // candidates before the current line, nearest on top
	j := 0
	for _, c := range v.cuts { // in line order
		if c.run != "" {
			continue
		}
		for ; j < len(cands) && last(cands[j]) < c.line; j++ {
			stack = append(stack, cands[j])
		}
		if len(stack) > 0 {
			rr := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			end(rr, c, "probably (it is cut before its run id) ")
		}
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
			v.cut(b.line, CutOff, b.run, "an incomplete line left by a crash or a full disk, ended by a later run")
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
	gap := false // lines of the run are missing, and said so
	if first.seq != 1 {
		gap = true
		v.problem(first.line, Removed, id, fmt.Sprintf("run %s starts at seq %d: its first %d lines are missing (removed, or in an older log file)", s, first.seq, first.seq-1))
	} else if first.prev != ([sha256.Size]byte{}) {
		if at, ok := v.hashes[first.prev]; !ok || at >= first.line {
			v.problem(first.line, Removed, id, fmt.Sprintf("run %s chains from a line that is not before it in the log: %s", s, v.missingBefore(first.line)))
		}
	}
	for i := 1; i < len(recs); i++ {
		a, b := recs[i-1], recs[i]
		if b.seq != a.seq+1 {
			gap = true
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

	// The end: a run that began with run_start ends with run_end, which
	// counts the records before it.
	if first.seq != 1 || first.life != runStart {
		return
	}
	for i, r := range recs {
		if r.life != runEnd {
			continue
		}
		v.report.Finished++
		if !gap && uint64(i) != r.count {
			v.problem(r.line, Removed, id, fmt.Sprintf("the sstar.run_end of run %s counts %d records before it, and the log has %d: lines were removed, and the rest renumbered", s, r.count, i))
		}
		return
	}
	if rr.cutEnd > 0 {
		return // the crash that cut its last line says why (see attributeCuts)
	}
	last := rr.recs[len(rr.recs)-1] // in file order
	for _, r := range rr.recs {
		if r.seq > last.seq {
			last = r
		}
	}
	v.problem(last.line, Unfinished, id, fmt.Sprintf("run %s (pid %d) has no sstar.run_end after its last record, seq %d at %s: it is still running, or was killed, or its last lines were removed", s, last.pid, last.seq, last.time))
}

// missingBefore says what is gone when the run whose first record is at
// line chains from a line that is not before it. If the record just
// before it ends a run, that run is whole: what is missing is whole runs.
func (v *verifier) missingBefore(line int) string {
	i, _ := slices.BinarySearchFunc(v.all, line, func(e *entry, line int) int { return cmp.Compare(e.line, line) })
	if i > 0 && v.all[i-1].life == runEnd {
		before := v.all[i-1]
		return fmt.Sprintf("lines after line %d (the sstar.run_end of run %s) were removed: whole runs, or the last lines of a run that began before; or the line it chains from was edited", before.line, short(before.run))
	}
	return "that line was removed or edited"
}
