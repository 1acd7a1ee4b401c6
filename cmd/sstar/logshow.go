package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/jsonl"
)

// `sstar log show`: the log as an operator reads it first during an
// incident, as `ausearch -i` shows auditd's: one line per event, each run
// under a header that says what ran and how it ended. It reads the file
// twice (the first time for the headers: a run's end comes last), and
// keeps only a summary per run, so a log of any size can be shown.
//
// Everything it prints from the log is escaped: a log may hold what a
// script chose (strings with terminal escapes, bidi controls, invalid
// UTF-8), or be written by an attacker. A line that is not a record is
// listed as such, never a reason to stop.

const logShowUsage = `usage: sstar log show PATH [--run ID] [--event NAME]

Prints the JSON Lines audit log PATH for people: one line per event (time,
seq, event, arguments abbreviated), each run under a header with its run
id, pid, argv and how it ended, or UNFINISHED if it has no sstar.run_end.
Critical events are marked !!, errors !; in colour when standard output
is a terminal. What the log holds is printed escaped. It does not check
the hash chains: that is sstar log verify PATH.

  --run ID      only the runs whose id starts with ID
  --event NAME  only the events named NAME, under their runs' headers

Exit status: 0 shown; 1 some lines are not records (each is listed);
2 usage error, PATH cannot be read, or the output cannot be written.
`

// Exit statuses of `sstar log show`.
const (
	exitShowOK         = 0 // every line shown
	exitShowUnreadable = 1 // some lines are not records; they are listed
	exitShowUsage      = 2 // usage, PATH unreadable, output unwritable
)

// Bounds of what one event line shows.
const (
	showArgsWidth = 240 // characters of arguments per event
	showString    = 120 // characters of one string
	showItems     = 6   // elements of one list or dict
	showDepth     = 64  // nesting past this is not shown (render stops at 32)
)

func cmdLogShow(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sstar log show", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	run := fs.String("run", "", "")
	event := fs.String("event", "", "")
	// Flags may come before or after PATH.
	var paths []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if err == flag.ErrHelp {
				fmt.Fprint(stdout, logShowUsage)
				return exitOK
			}
			fmt.Fprintf(stderr, "sstar log show: %v\n%s", err, logShowUsage)
			return exitShowUsage
		}
		if fs.NArg() == 0 {
			break
		}
		paths, rest = append(paths, fs.Arg(0)), fs.Args()[1:]
	}
	if len(paths) != 1 {
		fmt.Fprint(stderr, logShowUsage)
		return exitShowUsage
	}
	path := paths[0]
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "sstar log show: %v\n", err)
		return exitShowUsage
	}
	defer f.Close()
	sh := &shower{runFilter: *run, eventFilter: *event}
	if file, ok := stdout.(*os.File); ok {
		sh.colour = isTerminal(file)
	}
	if err := sh.showLog(f, stdout); err != nil {
		fmt.Fprintf(stderr, "sstar log show: %s: %v\n", path, err)
		return exitShowUsage
	}
	if *run != "" && sh.matched == 0 {
		fmt.Fprintf(stderr, "sstar log show: no run in %s has an id that starts with %s\n", path, escape(*run))
	}
	if len(sh.unreadable) > 0 {
		fmt.Fprintf(stderr, "sstar log show: %s: %d lines are not audit records (%s); check it with: sstar log verify %s\n",
			path, len(sh.unreadable), lineList(sh.unreadable), path)
		return exitShowUnreadable
	}
	return exitShowOK
}

// showLog reads the log r twice, first for the runs' headers, then to
// show it on w.
func (sh *shower) showLog(r io.ReadSeeker, w io.Writer) error {
	sh.runs = map[string]*runSummary{}
	if err := sh.scan(r, sh.summarize); err != nil {
		return fmt.Errorf("reading: %v", err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("reading: %v", err)
	}
	bw := bufio.NewWriter(w)
	sh.w = bw
	if err := sh.scan(r, sh.show); err != nil {
		return fmt.Errorf("reading: %v", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing the output: %v", err)
	}
	return nil
}

// isTerminal reports whether f is a terminal (the ioctl isatty(3) makes).
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// lineList names line numbers, the first few of many.
func lineList(ls []int) string {
	var b strings.Builder
	b.WriteString("line")
	if len(ls) > 1 {
		b.WriteString("s")
	}
	for i, n := range ls {
		if i == 10 {
			fmt.Fprintf(&b, ", and %d more", len(ls)-10)
			break
		}
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %d", n)
	}
	return b.String()
}

// A showRecord is a line read as a record, for showing.
type showRecord struct {
	Seq   uint64          `json:"seq"`
	Time  string          `json:"time"`
	PID   int64           `json:"pid"`
	Run   string          `json:"run"`
	Event string          `json:"event"`
	Args  json.RawMessage `json:"args"`
}

// parseShowLine reads one line of a log. A line that is not a record
// (with at least a run, an event and an args array) is an error saying
// why.
func parseShowLine(line []byte) (*showRecord, error) {
	var r showRecord
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, errors.New("not valid JSON, or not a record")
	}
	if r.Run == "" || r.Event == "" || len(r.Args) == 0 || r.Args[0] != '[' {
		return nil, errors.New(`no "run", "event" or "args"`)
	}
	return &r, nil
}

// A runSummary is what a run's header says.
type runSummary struct {
	pid   int64
	start string // time of its first record
	argv  string // from sstar.run_start, shown
	end   string // from sstar.run_end, shown; "" if it has none
	shown bool   // its header was printed
}

type shower struct {
	runFilter, eventFilter string
	colour                 bool
	runs                   map[string]*runSummary
	w                      *bufio.Writer
	last                   string // the run of the last event shown
	matched                int    // runs that pass the run filter
	unreadable             []int  // lines that are not records (second pass)
}

// scan calls fn for each line of r, with its number from 1; a line
// longer than jsonl.MaxLine is not read (tooLong).
func (sh *shower) scan(r io.Reader, fn func(n int, line []byte, tooLong bool)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, tooLong, err := readLogLine(br)
		if err == io.EOF && len(line) == 0 && !tooLong {
			return nil
		}
		if err != nil && err != io.EOF {
			return err
		}
		fn(n, line, tooLong)
		if err == io.EOF {
			return nil
		}
	}
}

// readLogLine reads a line without its newline, dropping (tooLong) one
// longer than jsonl.MaxLine rather than holding it.
func readLogLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > jsonl.MaxLine+1 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimSuffix(line, []byte("\n")), tooLong, err
	}
}

// summarize is the first pass: each run's header.
func (sh *shower) summarize(_ int, line []byte, tooLong bool) {
	if tooLong {
		return
	}
	r, err := parseShowLine(line)
	if err != nil {
		return
	}
	s := sh.runs[r.Run]
	if s == nil {
		s = &runSummary{pid: r.PID, start: r.Time}
		sh.runs[r.Run] = s
		if strings.HasPrefix(r.Run, sh.runFilter) {
			sh.matched++
		}
	}
	switch r.Event {
	case "sstar.run_start":
		if args := parseArgs(r.Args); len(args) > 1 && args[1].kind == '[' {
			s.argv = showArgv(args[1].items)
		}
	case "sstar.run_end":
		s.end = showEnd(parseArgs(r.Args))
	}
}

// show is the second pass: the headers and the events.
func (sh *shower) show(n int, line []byte, tooLong bool) {
	switch {
	case tooLong:
		sh.unread(n, fmt.Sprintf("longer than %d bytes", jsonl.MaxLine))
		return
	case len(line) == 0:
		return // an empty line carries nothing (see jsonl's verifier)
	case len(bytes.TrimLeft(line, " \t\r\v\f")) == 0:
		sh.unread(n, "only white space")
		return
	}
	r, err := parseShowLine(line)
	if err != nil {
		sh.unread(n, err.Error())
		return
	}
	if !strings.HasPrefix(r.Run, sh.runFilter) {
		return
	}
	if sh.eventFilter != "" && r.Event != sh.eventFilter {
		return
	}
	if r.Run != sh.last {
		sh.header(r)
		sh.last = r.Run
	}
	mark, on := "  ", ""
	if k, ok := audit.KindOf(r.Event); ok {
		switch k.Severity() {
		case audit.Critical:
			mark, on = "!!", "\x1b[1;31m"
		case audit.Error:
			mark, on = "! ", "\x1b[33m"
		}
	}
	if !sh.colour {
		on = ""
	}
	off := ""
	if on != "" {
		off = "\x1b[0m"
	}
	fmt.Fprintf(sh.w, "%s%s %s %5d %-24s %s%s\n", on, mark, showTime(r.Time), r.Seq, escape(abbrevString(r.Event, 64)), showArgs(r.Args), off)
}

// unread lists a line that is not a record, where it is.
func (sh *shower) unread(n int, why string) {
	sh.unreadable = append(sh.unreadable, n)
	on, off := "", ""
	if sh.colour {
		on, off = "\x1b[35m", "\x1b[0m"
	}
	fmt.Fprintf(sh.w, "%s?? line %d is not an audit record: %s%s\n", on, n, why, off)
	sh.last = ""
}

func (sh *shower) header(r *showRecord) {
	run := r.Run
	s := sh.runs[run]
	if s == nil {
		// A run that began between the two passes (a live log): what
		// the first pass saw of it is nothing, so it has not ended.
		s = &runSummary{pid: r.PID, start: r.Time}
		sh.runs[run] = s
	}
	on, off := "", ""
	if sh.colour {
		on, off = "\x1b[1m", "\x1b[0m"
	}
	cont := ""
	if s.shown {
		cont = " (continued)"
	}
	start := escape(abbrevString(s.start, 40))
	if t, err := time.Parse(time.RFC3339Nano, s.start); err == nil {
		start = t.UTC().Format("2006-01-02 15:04:05.000000 UTC")
	}
	fmt.Fprintf(sh.w, "%s== run %s%s, pid %d, from %s%s\n", on, escape(abbrevString(run, 64)), cont, s.pid, start, off)
	if s.shown {
		return
	}
	s.shown = true
	argv := s.argv
	if argv == "" {
		argv = "(no sstar.run_start)"
	}
	fmt.Fprintf(sh.w, "   argv: %s\n", argv)
	if s.end == "" {
		unOn := ""
		if sh.colour {
			unOn = "\x1b[1;31m"
		}
		fmt.Fprintf(sh.w, "   end:  %sUNFINISHED: no sstar.run_end (still running, killed, or its last lines removed)%s\n", unOn, off)
	} else {
		fmt.Fprintf(sh.w, "   end:  %s\n", s.end)
	}
}

// showTime is a record's time of day, to the microsecond (the header has
// the date); the time as written if it is not one.
func showTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return escape(abbrevString(s, 30))
	}
	return t.UTC().Format("15:04:05.000000")
}

// showArgv is a run's argv, each argument escaped, quoted if it needs it.
func showArgv(items []jnode) string {
	var b strings.Builder
	for i, it := range items {
		if i > 0 {
			b.WriteByte(' ')
		}
		if b.Len() > 2*showArgsWidth {
			b.WriteString("…")
			break
		}
		if it.kind != 's' {
			writeNode(&b, it, 0)
			continue
		}
		s := abbrevString(it.str, 2*showString)
		if s == "" || strings.ContainsAny(s, " \t\"'\\$`*?[]{}()<>|&;#~") || escape(s) != s {
			b.WriteString(`"` + escapeRunes(s, true) + `"`)
		} else {
			b.WriteString(s)
		}
	}
	return b.String()
}

// showEnd is how a run ended, from run_end(status, reason, seconds,
// events, ...).
func showEnd(args []jnode) string {
	var b strings.Builder
	get := func(i int) string {
		if i >= len(args) {
			return "?"
		}
		if args[i].kind == 's' {
			return escape(abbrevString(args[i].str, 2*showString))
		}
		var nb strings.Builder
		writeNode(&nb, args[i], 0)
		return nb.String()
	}
	fmt.Fprintf(&b, "status %s, %s, after %ss, %s events before it", get(0), get(1), get(2), get(3))
	return b.String()
}

// showArgs abbreviates a record's arguments to about showArgsWidth
// characters: strings cut, long lists and dicts cut, sstar's $-wrappers
// written as what they stand for.
func showArgs(raw json.RawMessage) string {
	args := parseArgs(raw)
	if args == nil {
		return "(arguments not readable)"
	}
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteString(", ")
		}
		if b.Len() > showArgsWidth {
			fmt.Fprintf(&b, "… (%d more)", len(args)-i)
			break
		}
		writeNode(&b, a, 0)
	}
	s := b.String()
	if utf8.RuneCountInString(s) > showArgsWidth+40 {
		s = string([]rune(s)[:showArgsWidth+40]) + "…"
	}
	return s
}

// A jnode is a JSON value with its object keys in order (sstar's dicts
// are in insertion order).
type jnode struct {
	kind  byte // 's' string, 'n' number, 'b' true/false/null, '[' array, '{' object
	str   string
	keys  []string // for '{'
	items []jnode  // for '[' and '{'
}

// parseArgs reads an args array; nil if it is not one, or nests past
// showDepth.
func parseArgs(raw json.RawMessage) []jnode {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	n, err := readNode(dec, 0)
	if err != nil || n.kind != '[' {
		return nil
	}
	return n.items
}

var errTooDeep = errors.New("nested too deep")

// readNode recurses once per level, at most showDepth levels. (The line
// went through json.Unmarshal first, which refuses nesting past 10,000;
// a json.Decoder's Token does not, and nothing else bounds readNode.)
func readNode(dec *json.Decoder, depth int) (jnode, error) {
	if depth > showDepth {
		return jnode{}, errTooDeep
	}
	tok, err := dec.Token()
	if err != nil {
		return jnode{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := jnode{kind: byte(t)}
		if t != '[' && t != '{' {
			return jnode{}, errors.New("unexpected delimiter")
		}
		for dec.More() {
			if t == '{' {
				k, err := dec.Token()
				if err != nil {
					return jnode{}, err
				}
				ks, ok := k.(string)
				if !ok {
					return jnode{}, errors.New("object key is not a string")
				}
				n.keys = append(n.keys, ks)
			}
			c, err := readNode(dec, depth+1)
			if err != nil {
				return jnode{}, err
			}
			n.items = append(n.items, c)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return jnode{}, err
		}
		return n, nil
	case string:
		return jnode{kind: 's', str: t}, nil
	case json.Number:
		return jnode{kind: 'n', str: t.String()}, nil
	case bool:
		return jnode{kind: 'b', str: strconv.FormatBool(t)}, nil
	case nil:
		return jnode{kind: 'b', str: "null"}, nil
	}
	return jnode{}, fmt.Errorf("unexpected token %v", tok)
}

// writeNode writes n abbreviated. Strings are quoted and escaped; an
// object with one $-key is sstar's wrapper for a value JSON cannot say.
func writeNode(b *strings.Builder, n jnode, depth int) {
	if depth > 4 {
		b.WriteString("…")
		return
	}
	switch n.kind {
	case 's':
		b.WriteString(quote(n.str))
	case 'n', 'b':
		b.WriteString(abbrevString(n.str, showString))
	case '[':
		b.WriteByte('[')
		writeItems(b, n.items, nil, depth)
		b.WriteByte(']')
	case '{':
		if len(n.keys) >= 1 && strings.HasPrefix(n.keys[0], "$") && writeWrapper(b, n, depth) {
			return
		}
		b.WriteByte('{')
		writeItems(b, n.items, n.keys, depth)
		b.WriteByte('}')
	}
}

func writeItems(b *strings.Builder, items []jnode, keys []string, depth int) {
	for i, it := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == showItems {
			fmt.Fprintf(b, "… %d more", len(items)-i)
			return
		}
		if keys != nil {
			b.WriteString(quote(keys[i]))
			b.WriteString(": ")
		}
		writeNode(b, it, depth+1)
	}
}

// writeWrapper writes one of render's $-wrappers as what it stands for,
// and reports whether n was one it knows.
func writeWrapper(b *strings.Builder, n jnode, depth int) bool {
	v := n.items[0]
	field := func(obj jnode, key string) (jnode, bool) {
		for i, k := range obj.keys {
			if k == key {
				return obj.items[i], true
			}
		}
		return jnode{}, false
	}
	str := func(obj jnode, key string) string {
		f, ok := field(obj, key)
		if !ok || (f.kind != 's' && f.kind != 'n') {
			return "?"
		}
		return escape(abbrevString(f.str, showString))
	}
	switch {
	case n.keys[0] == "$omitted" && len(n.keys) == 1 && v.kind == '{':
		// {"$omitted":{"type":T,"len":N,"sha256":H,"prefix":P}}
		fmt.Fprintf(b, "<%s of %s omitted, sha256 %s", str(v, "type"), str(v, "len"), abbrevString(str(v, "sha256"), 12))
		if p, ok := field(v, "prefix"); ok && p.kind == 's' {
			b.WriteString(", " + quote(p.str))
		}
		b.WriteString(">")
	case n.keys[0] == "$more" && len(n.keys) == 1:
		fmt.Fprintf(b, "<%s more arguments omitted>", escape(abbrevString(v.str, showString)))
	case n.keys[0] == "$truncated" && len(n.keys) == 1:
		fmt.Fprintf(b, "<%s nested too deep>", escape(abbrevString(v.str, showString)))
	case (n.keys[0] == "$int" || n.keys[0] == "$float") && len(n.keys) == 1 && v.kind == 's':
		b.WriteString(escape(abbrevString(v.str, showString)))
	case (n.keys[0] == "$bytes" || n.keys[0] == "$str") && len(n.keys) == 1 && v.kind == 's':
		fmt.Fprintf(b, "<%s base64 %s>", n.keys[0][1:], escape(abbrevString(v.str, showString)))
	case n.keys[0] == "$set" && len(n.keys) == 1 && v.kind == '[':
		b.WriteString("set(")
		writeNode(b, v, depth)
		b.WriteString(")")
	case n.keys[0] == "$dict" && len(n.keys) == 1 && v.kind == '[':
		b.WriteByte('{')
		for i, pair := range v.items {
			if i > 0 {
				b.WriteString(", ")
			}
			if i == showItems {
				fmt.Fprintf(b, "… %d more", len(v.items)-i)
				break
			}
			if pair.kind == '[' && len(pair.items) == 2 {
				writeNode(b, pair.items[0], depth+1)
				b.WriteString(": ")
				writeNode(b, pair.items[1], depth+1)
			} else {
				writeNode(b, pair, depth+1)
			}
		}
		b.WriteByte('}')
	case n.keys[0] == "$type" && len(n.keys) == 2 && n.keys[1] == "$repr" && n.items[1].kind == 's':
		b.WriteString(escape(abbrevString(n.items[1].str, showString)))
	default:
		return false
	}
	return true
}

// quote is s abbreviated, quoted and escaped (see escape); a cut string
// is followed by "…".
func quote(s string) string {
	short := abbrevString(s, showString)
	cut := ""
	if len(short) < len(s) {
		short, cut = strings.TrimSuffix(short, "…"), "…"
	}
	return `"` + escapeRunes(short, true) + `"` + cut
}

// abbrevString cuts s to at most max runes, marking the cut with "…".
func abbrevString(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max]) + "…"
}

// escape is s with every rune that is not printable written as a Go
// escape (see escapeRunes), and no quotes added.
func escape(s string) string { return escapeRunes(s, false) }

// escapeRunes escapes what a terminal would interpret or a reader
// misread: control characters (terminal escapes among them), bidi and
// other format characters, every other rune that is not printable, and
// the backslash; a byte that is not UTF-8 as \xNN, a real U+FFFD as
// \ufffd, so the two differ. In quotes, " too.
func escapeRunes(s string, quoted bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case r == '\\' || quoted && r == '"':
			b.WriteByte('\\')
			b.WriteRune(r)
		case unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r) // '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}
