package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// A log as sstar writes it, with what a hostile script or editor may put
// in one: a terminal escape and a bidi override in a string, a finished
// run, a critical event, an unfinished run, and lines that are not
// records.
const showLog = `{"seq":1,"time":"2026-12-01T20:07:21.701400945Z","pid":42,"run":"8ef36820e52ccda28a3ff8f1ac54d77c","event":"sstar.run_start","args":["sstar (devel)",["sstar","--audit-log","a.jsonl","x.star","two words"],0,0,"/tmp"],"prev":"0000000000000000000000000000000000000000000000000000000000000000"}
{"seq":2,"time":"2026-12-01T20:07:21.702341774Z","pid":42,"run":"8ef36820e52ccda28a3ff8f1ac54d77c","event":"subprocess.Popen","args":["/usr/bin/curl",["curl","https://example.net/\u001b[2J\u202eevil"],"/tmp",{"PATH":"/usr/bin"}],"prev":"x"}
{"seq":3,"time":"2026-12-01T20:07:21.703450884Z","pid":42,"run":"8ef36820e52ccda28a3ff8f1ac54d77c","event":"app.big","args":[{"$omitted":{"type":"string","len":70000,"sha256":"b80935d45c7fcb544ad1b841005e50e452239aef65d3e0b6c07976a50f356c69","prefix":"AAAA"}},{"$bytes":"/w=="},{"$dict":[[1,2]]}],"prev":"x"}
{"seq":1,"time":"2026-12-01T20:08:00.000000000Z","pid":43,"run":"bd236dbd496270a6828a346ddf392ae6","event":"sstar.run_start","args":["sstar (devel)",["sstar","u.star"],0,0,"/tmp"],"prev":"x"}
{"seq":4,"time":"2026-12-01T20:07:21.705541041Z","pid":42,"run":"8ef36820e52ccda28a3ff8f1ac54d77c","event":"sstar.run_end","args":[0,"ok",0.004,3,{},{"steps":0,"timeout":0.0}],"prev":"x"}
{"seq":2,"time":"2026-12-01T20:08:00.100000000Z","pid":43,"run":"bd236dbd496270a6828a346ddf392ae6","event":"sstar.code_integrity_failure","args":["/tmp/u.star","no stamp"],"prev":"x"}
 	
not a record
{"seq":3,"time":"2026-12-01T20:08:00.200000000Z","pid":43,"run":"bd236dbd496270a6828a346ddf392ae6","event":"sstar.abort","args":["app.x","no"],"prev":"x"}
`

func runShow(t *testing.T, log string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	status = sstar(append([]string{"log", "show", path}, args...), &out, &errb)
	return out.String(), errb.String(), status
}

func TestLogShow(t *testing.T) {
	out, errs, status := runShow(t, showLog)
	if status != exitShowUnreadable || !strings.Contains(errs, "2 lines are not audit records (lines 7, 8)") {
		t.Errorf("status %d, stderr %q", status, errs)
	}
	for _, want := range []string{
		"== run 8ef36820e52ccda28a3ff8f1ac54d77c, pid 42, from 2026-12-01 20:07:21.701400 UTC\n   argv: sstar --audit-log a.jsonl x.star \"two words\"\n   end:  status 0, ok, after 0.004s, 3 events before it\n",
		`   20:07:21.702341     2 subprocess.Popen         "/usr/bin/curl", ["curl", "https://example.net/\x1b[2J\u202eevil"], "/tmp", {"PATH": "/usr/bin"}`,
		`<string of 70000 omitted, sha256 b80935d45c7f…, "AAAA">, <bytes base64 /w==>, {1: 2}`,
		"== run bd236dbd496270a6828a346ddf392ae6, pid 43, from 2026-12-01 20:08:00.000000 UTC\n   argv: sstar u.star\n   end:  UNFINISHED: no sstar.run_end (still running, killed, or its last lines removed)\n",
		"== run 8ef36820e52ccda28a3ff8f1ac54d77c (continued), pid 42",
		"!! 20:08:00.100000     2 sstar.code_integrity_failure \"/tmp/u.star\", \"no stamp\"\n",
		"?? line 7 is not an audit record: only white space\n?? line 8 is not an audit record: not valid JSON, or not a record\n",
		"! " + ` 20:08:00.200000     3 sstar.abort`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("colour or a raw escape on a standard output that is no terminal:\n%q", out)
	}

	// Filters: a run by a prefix of its id, an event by name.
	out, _, _ = runShow(t, showLog, "--run", "bd23")
	if strings.Contains(out, "8ef36820") || !strings.Contains(out, "sstar.abort") {
		t.Errorf("--run bd23:\n%s", out)
	}
	out, _, _ = runShow(t, showLog, "--event", "subprocess.Popen")
	if n := strings.Count(out, "\n   "); !strings.Contains(out, "subprocess.Popen") || strings.Contains(out, "sstar.run_start ") || n != 3 {
		t.Errorf("--event subprocess.Popen:\n%s", out)
	}
	_, errs, status = runShow(t, showLog, "--run", "ffff")
	if !strings.Contains(errs, "no run in") {
		t.Errorf("--run matching nothing: status %d, %q", status, errs)
	}
}

// printable reports whether s is what a terminal shows as it is: valid
// UTF-8 of printable runes and newlines.
func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || (r != '\n' && !unicode.IsPrint(r)) {
			return false
		}
	}
	return true
}

// FuzzLogShow: whatever a log holds, `sstar log show` does not crash,
// prints nothing a terminal would interpret, and lists what it cannot
// read.
func FuzzLogShow(f *testing.F) {
	for _, l := range strings.SplitAfter(showLog, "\n") {
		f.Add(l)
	}
	f.Add(showLog)
	f.Add(`{"seq":1,"run":"r","event":"e","args":[` + strings.Repeat("[", 200) + "]")
	f.Add(`{"seq":1,"run":"\u001b]0;x\u0007","event":"\u0000","args":[{"$omitted":1},{"$type":1,"$repr":2},{"$dict":[1,[2]]},{"$set":"x"}]}`)
	seqLine := regexp.MustCompile(`^(\?\? line \d+ |== run |   [a-z(]|!! |! |   )`)
	f.Fuzz(func(t *testing.T, log string) {
		sh := &shower{}
		var b strings.Builder
		if err := sh.showLog(strings.NewReader(log), &b); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		if !printable(out) {
			t.Fatalf("output a terminal would interpret: %q", out)
		}
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if l != "" && !seqLine.MatchString(l) {
				t.Fatalf("a line of no known shape: %q", l)
			}
		}
		if len(sh.unreadable) > 0 != strings.Contains(out, "?? line ") {
			t.Fatalf("%d lines unreadable, but the output says otherwise:\n%s", len(sh.unreadable), out)
		}
	})
}

// growing is a log another process appends to while it is shown: the
// second read finds more than the first.
type growing struct {
	*strings.Reader
	more  string
	grown bool
}

func (g *growing) Seek(off int64, whence int) (int64, error) {
	if !g.grown {
		s := make([]byte, g.Size())
		g.ReadAt(s, 0)
		g.Reader, g.grown = strings.NewReader(string(s)+g.more), true
	}
	return g.Reader.Seek(off, whence)
}

// A live log: a run that begins between the two reads is shown, as
// unfinished.
func TestLogShowLive(t *testing.T) {
	first, rest, _ := strings.Cut(showLog, "\n")
	sh := &shower{}
	var b strings.Builder
	if err := sh.showLog(&growing{Reader: strings.NewReader(first + "\n"), more: rest}, &b); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "== run bd236dbd496270a6828a346ddf392ae6, pid 43, from 2026-12-01 20:08:00.000000 UTC\n   argv: (no sstar.run_start)\n   end:  UNFINISHED") {
		t.Errorf("a run that began between the reads:\n%s", out)
	}
}

// Colour only on a terminal: on a pseudo-terminal the marks and headers
// are coloured; on a file (TestLogShow) nothing is.
func TestLogShowColourOnATerminal(t *testing.T) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("needs a pseudo-terminal: %v", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(master) // ends with EIO once the terminal is closed
		got <- string(b)
	}()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	os.WriteFile(path, []byte(showLog), 0o600)
	var errb bytes.Buffer
	sstar([]string{"log", "show", path}, tty, &errb)
	tty.Close()
	out := <-got
	for _, want := range []string{"\x1b[1m== run 8ef36820", "\x1b[1;31m!! 20:08:00.100000", "\x1b[33m!  20:08:00.200000", "\x1b[1;31mUNFINISHED"} {
		if !strings.Contains(out, want) {
			t.Errorf("on a terminal, no %q in:\n%q", want, out)
		}
	}
}
