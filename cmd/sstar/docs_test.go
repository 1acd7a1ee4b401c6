package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sstar-project/sstar/audit"
)

// The documentation's samples are checked against what sstar writes:
// the story docs_records.txt runs the script docs/records.md shows, then
// `docsamples` compares.

// docsDir is the repository's docs directory (tests start in the
// package's directory).
var docsDir, _ = filepath.Abs("../../docs")

// docPages are the pages whose samples are checked.
var docPages = []string{"records.md", "sinks.md"}

// docWorkDir is where the documented runs happen.
const docWorkDir = "/srv/app"

func init() {
	storyCommands["docsamples"] = cmdDocSamples
}

// docsamples script FILE: FILE is shown, exactly, in a fenced block of
// docs/records.md.
// docsamples json LOG: every JSON sample in the pages is what LOG has.
// docsamples jq LOG: every `$ jq` (and `$ run=...`) command in an sh
// block of the pages, run in the story's directory on LOG, prints what
// the page shows under it.
func cmdDocSamples(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: docsamples script FILE | json LOG | jq LOG")
	}
	switch args[0] {
	case "script":
		data, err := os.ReadFile(ts.MkAbs(args[1]))
		ts.Check(err)
		page := readDoc(ts, "records.md")
		for _, b := range fencedBlocks(page) {
			if b.text == string(data) {
				return
			}
		}
		ts.Fatalf("docs/records.md does not show %s as it is run:\n%s", args[1], data)
	case "json":
		recs := readRealLog(ts, args[1])
		n := 0
		for _, page := range docPages {
			for _, b := range fencedBlocks(readDoc(ts, page)) {
				if b.lang != "json" {
					continue
				}
				dec := json.NewDecoder(strings.NewReader(b.text))
				dec.UseNumber()
				for {
					var v any
					if err := dec.Decode(&v); err == io.EOF {
						break
					} else if err != nil {
						ts.Fatalf("docs/%s:%d: a json block that is not JSON: %v", page, b.line, err)
					}
					n++
					if err := matchSample(v, recs); err != nil {
						ts.Fatalf("docs/%s: the json block at line %d is not what sstar writes: %v", page, b.line, err)
					}
				}
			}
		}
		ts.Logf("%d JSON samples checked", n)
	case "jq":
		checkCommands(ts, args[1])
	default:
		ts.Fatalf("docsamples: unknown %q", args[0])
	}
}

func readDoc(ts *testscript.TestScript, page string) string {
	data, err := os.ReadFile(filepath.Join(docsDir, page))
	ts.Check(err)
	return string(data)
}

type fenced struct {
	lang, text string
	line       int // of the opening fence
}

// fencedBlocks returns the page's ``` blocks.
func fencedBlocks(page string) []fenced {
	var out []fenced
	var cur *fenced
	for i, l := range strings.SplitAfter(page, "\n") {
		trimmed := strings.TrimSpace(l)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &fenced{lang: strings.TrimPrefix(trimmed, "```"), line: i + 1}
		case cur != nil && trimmed == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += l
		}
	}
	return out
}

// readRealLog reads LOG as records, with the story's directory written
// as docWorkDir, as the pages show it.
func readRealLog(ts *testscript.TestScript, log string) []map[string]any {
	data, err := os.ReadFile(ts.MkAbs(log))
	ts.Check(err)
	data = bytes.ReplaceAll(data, []byte(ts.Getenv("WORK")), []byte(docWorkDir))
	var recs []map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			ts.Fatalf("%s: %v", log, err)
		}
		recs = append(recs, m)
	}
	return recs
}

// normal is a record with what differs from run to run set aside: the
// time, pid, run id and chain; the version, uid and gid of run_start;
// run_end's duration.
func normal(rec map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range rec {
		switch k {
		case "time", "pid", "run", "prev", "cut":
		default:
			out[k] = v
		}
	}
	args, _ := out["args"].([]any)
	args = slices.Clone(args)
	ignore := map[string][]int{"sstar.run_start": {0, 2, 3}, "sstar.run_end": {2}}[fmt.Sprint(out["event"])]
	for _, i := range ignore {
		if i < len(args) {
			args[i] = "(differs per run)"
		}
	}
	out["args"] = args
	return out
}

// matchSample checks that v, a record, is a record of recs (see normal),
// or, a value that is not a record, is an argument (or part of one) of
// a record of recs.
func matchSample(v any, recs []map[string]any) error {
	m, ok := v.(map[string]any)
	if ok && m["event"] != nil && m["seq"] != nil {
		for _, k := range []string{"seq", "time", "pid", "run", "event", "args", "prev"} {
			if _, ok := m[k]; !ok {
				return fmt.Errorf("a record without %q", k)
			}
		}
		want := normal(m)
		var near map[string]any
		for _, r := range recs {
			got := normal(r)
			if reflect.DeepEqual(got, want) {
				return nil
			}
			if got["event"] == want["event"] && near == nil {
				near = r
			}
		}
		shown, _ := json.Marshal(m)
		if near == nil {
			return fmt.Errorf("no %v event in the log: %s", m["event"], shown)
		}
		written, _ := json.Marshal(near)
		return fmt.Errorf("the page shows\n%s\nand sstar wrote\n%s", shown, written)
	}
	for _, r := range recs {
		if within(v, r["args"]) {
			return nil
		}
	}
	shown, _ := json.Marshal(v)
	return fmt.Errorf("no argument of any record is %s", shown)
}

// within reports whether v is x or part of it.
func within(v, x any) bool {
	if reflect.DeepEqual(v, x) {
		return true
	}
	switch x := x.(type) {
	case []any:
		for _, e := range x {
			if within(v, e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if within(v, e) {
				return true
			}
		}
	}
	return false
}

var runID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// checkCommands runs the pages' jq commands and compares their output.
// Run ids differ per run: the page's ids (and 8-digit prefixes) are those
// of the page's records, and the story's are written as those before
// comparing, matched through the records (the first record of each run).
func checkCommands(ts *testscript.TestScript, log string) {
	if _, err := exec.LookPath("jq"); err != nil {
		ts.Fatalf("jq is not installed (Debian's package jq); the story should have skipped")
	}
	toReal, toDoc := map[string]string{}, map[string]string{}
	for d, r := range runMap(ts, readRealLog(ts, log)) {
		toReal[d], toDoc[r] = r, d
	}
	n := 0
	for _, page := range docPages {
		for _, b := range fencedBlocks(readDoc(ts, page)) {
			if b.lang != "sh" || !strings.Contains(b.text, "$ jq ") {
				continue
			}
			cmds, wants := splitSession(b.text)
			var script strings.Builder
			for i, c := range cmds {
				for d, r := range toReal {
					c = strings.ReplaceAll(c, d[:8], r[:8])
				}
				fmt.Fprintf(&script, "echo '@@ %d'\n%s\n", i, c)
			}
			cmd := exec.Command("sh", "-c", script.String())
			cmd.Dir = ts.Getenv("WORK")
			cmd.Env = []string{"PATH=" + ts.Getenv("PATH")}
			out, err := cmd.CombinedOutput()
			if err != nil {
				ts.Fatalf("docs/%s:%d: %v\n%s", page, b.line, err, out)
			}
			got := strings.ReplaceAll(string(out), ts.Getenv("WORK"), docWorkDir)
			for r, d := range toDoc {
				got = strings.ReplaceAll(strings.ReplaceAll(got, r, d), r[:8], d[:8])
			}
			parts := regexp.MustCompile(`(?m)^@@ \d+\n`).Split(got, -1)[1:]
			for i, c := range cmds {
				n++
				if i >= len(parts) || parts[i] != wants[i] {
					have := ""
					if i < len(parts) {
						have = parts[i]
					}
					ts.Fatalf("docs/%s:%d: $ %s\nthe page shows:\n%sjq prints:\n%s", page, b.line, c, wants[i], have)
				}
			}
		}
	}
	checkCriticalList(ts)
	ts.Logf("%d commands checked", n)
}

// runMap matches the pages' runs to the log's: the page's run id of
// each record shown, to the story's run id of the record it matches.
func runMap(ts *testscript.TestScript, recs []map[string]any) map[string]string {
	out := map[string]string{}
	for _, page := range docPages {
		for _, b := range fencedBlocks(readDoc(ts, page)) {
			if b.lang != "json" {
				continue
			}
			dec := json.NewDecoder(strings.NewReader(b.text))
			dec.UseNumber()
			for {
				var m map[string]any
				if dec.Decode(&m) != nil {
					break
				}
				id, _ := m["run"].(string)
				if !runID.MatchString(id) {
					continue
				}
				want := normal(m)
				for _, r := range recs {
					if reflect.DeepEqual(normal(r), want) {
						out[id] = fmt.Sprint(r["run"])
						break
					}
				}
			}
		}
	}
	return out
}

// splitSession splits a shell session as the pages show one: "$ " lines
// are commands, the lines after each its output.
func splitSession(text string) (cmds, outs []string) {
	for _, l := range strings.SplitAfter(text, "\n") {
		if c, ok := strings.CutPrefix(l, "$ "); ok {
			cmds = append(cmds, strings.TrimSuffix(c, "\n"))
			outs = append(outs, "")
			continue
		}
		if len(outs) > 0 {
			outs[len(outs)-1] += l
		}
	}
	return cmds, outs
}

// checkCriticalList: the jq query for critical events names every event
// the table calls critical, and no other.
func checkCriticalList(ts *testscript.TestScript) {
	var want []string
	for _, k := range audit.Kinds() {
		if k.Severity() == audit.Critical {
			want = append(want, k.Name())
		}
	}
	m := regexp.MustCompile(`IN\(([^)]*)\)`).FindStringSubmatch(readDoc(ts, "records.md"))
	if m == nil {
		ts.Fatalf("docs/records.md has no query for critical events")
	}
	var got []string
	for _, s := range strings.Split(m[1], ",") {
		got = append(got, strings.Trim(strings.TrimSpace(s), `"`))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		ts.Fatalf("docs/records.md's critical events are %v; the event table's are %v", got, want)
	}
}
