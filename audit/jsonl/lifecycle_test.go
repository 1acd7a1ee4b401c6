package jsonl_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/jsonl"
)

// writeLife appends a run as sstar writes one: sstar.run_start, n ticks,
// and (if end) sstar.run_end counting the records before it.
func writeLife(t testing.TB, path string, n int, end bool) string {
	t.Helper()
	f, err := openRun(path)
	if err != nil {
		t.Fatal(err)
	}
	hook := func(name string, args ...starlark.Value) {
		t.Helper()
		if err := f.Hook(audit.NewEvent(name, args...)); err != nil {
			t.Fatal(err)
		}
	}
	hook("sstar.run_start", starlark.String("sstar test"), starlark.NewList([]starlark.Value{starlark.String("sstar"), starlark.String("x.star")}), starlark.MakeInt(0), starlark.MakeInt(0), starlark.String("/"))
	for i := range n {
		if err := f.Hook(tick(i)); err != nil {
			t.Fatal(err)
		}
	}
	if end {
		hook("sstar.run_end", starlark.MakeInt(0), starlark.String("ok"), starlark.Float(0.5), starlark.MakeUint64(f.Seq()), starlark.NewDict(0), starlark.NewDict(0))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return f.Run()
}

func kinds(r *jsonl.Report) string {
	var b strings.Builder
	for _, p := range r.Problems {
		b.WriteString(p.String())
		b.WriteString("\n")
	}
	return b.String()
}

// A run that began with run_start and has no run_end is unfinished:
// still running, killed, or its tail removed. It is neither tampering nor
// a crash's cut line.
func TestUnfinished(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLife(t, path, 3, true)
	writeLife(t, path, 3, true)
	data, _ := os.ReadFile(path)
	if r := verify(t, data); !r.Intact() || r.Runs != 2 || r.Finished != 2 {
		t.Fatalf("two finished runs: %+v", r)
	}
	ls := lines(data)

	// The last two lines of the last run removed: its run_end is gone.
	r := verify(t, join(ls[:len(ls)-2]))
	if r.Intact() || r.Tampered() || !r.Unfinished() || len(r.Problems) != 1 {
		t.Fatalf("tail removed: %s", kinds(r))
	}
	if p := r.Problems[0]; p.Kind != jsonl.Unfinished || p.Line != 8 || !strings.Contains(p.Detail, "seq 3 at ") {
		t.Errorf("tail removed: %v", p)
	}

	// A run killed before its end: the same, from the writer.
	writeLife(t, path, 2, false)
	data, _ = os.ReadFile(path)
	r = verify(t, data)
	if r.Tampered() || !r.Unfinished() || len(r.Problems) != 1 || r.Problems[0].Line != 13 || r.Finished != 2 {
		t.Fatalf("killed run: %s", kinds(r))
	}

	// A run of the old kind (no run_start) promises nothing about its end.
	writeRun(t, path, 2)
	data, _ = os.ReadFile(path)
	if r := verify(t, data); len(r.Problems) != 1 || r.Problems[0].Kind != jsonl.Unfinished {
		t.Fatalf("with a run without run_start: %s", kinds(r))
	}
}

// A crash that cuts the end of a run mid-line explains why it has no
// run_end: the log is truncated (or cut off), not unfinished.
func TestUnfinishedByACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLife(t, path, 3, true)
	data, _ := os.ReadFile(path)
	cut := data[:len(data)-40]
	r := verify(t, cut)
	if r.Tampered() || r.Unfinished() || len(r.Problems) != 1 || r.Problems[0].Kind != jsonl.Truncated || !strings.Contains(r.Problems[0].Detail, "it was the end of run") {
		t.Fatalf("run_end cut mid-line: %s", kinds(r))
	}
	os.WriteFile(path, cut, 0o600)
	writeLife(t, path, 1, true)
	data, _ = os.ReadFile(path)
	r = verify(t, data)
	if r.Tampered() || r.Unfinished() || len(r.Problems) != 1 || r.Problems[0].Kind != jsonl.CutOff || !strings.Contains(r.Problems[0].Detail, "it was the end of run") {
		t.Fatalf("cut line ended by a later run: %s", kinds(r))
	}
}

// Removing a whole run from the middle: the run after it chained from its
// last line, and the record before the gap is a run's end.
func TestRemovedMiddleRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLife(t, path, 2, true)
	writeLife(t, path, 2, true)
	writeLife(t, path, 2, true)
	ls := lines(mustRead(t, path))
	r := verify(t, join(append(append([][]byte(nil), ls[:4]...), ls[8:]...)))
	if !r.Tampered() || len(r.Problems) != 1 {
		t.Fatalf("middle run removed: %s", kinds(r))
	}
	if p := r.Problems[0]; p.Kind != jsonl.Removed || p.Line != 5 || !strings.Contains(p.Detail, "lines after line 4 (the sstar.run_end of run") {
		t.Errorf("middle run removed: %v", p)
	}
}

// run_end counts the records before it: lines removed and the rest
// renumbered (and rehashed, by someone who knows the format) still show.
func TestRunEndCount(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLife(t, path, 3, true)
	ls := lines(mustRead(t, path))
	// Drop tick 1 (line 3) and rebuild the chain, renumbering.
	out := rechain(t, [][]byte{ls[0], ls[1], ls[3], ls[4]}, strings.Repeat("0", 64))
	r := verify(t, join(out))
	if !r.Tampered() || len(r.Problems) != 1 || r.Problems[0].Kind != jsonl.Removed || r.Problems[0].Line != 4 || !strings.Contains(r.Problems[0].Detail, "counts 4 records before it, and the log has 3") {
		t.Fatalf("renumbered run: %s", kinds(r))
	}
}

// A line of only white space is not a record: the writer chains past it,
// and the verifier reports it, not the run after it.
func TestWhitespaceLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLife(t, path, 1, true)
	before := mustRead(t, path)
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(" \t \r\n\n")
	f.Close()
	writeLife(t, path, 1, true)
	data := mustRead(t, path)
	ls := lines(data)
	var first line
	json.Unmarshal(ls[5], &first)
	sum := sha256.Sum256(bytes.TrimSuffix(lines(before)[2], []byte("\n")))
	if first.Seq != 1 || first.Prev != hex.EncodeToString(sum[:]) {
		t.Errorf("the run after a white-space line chains from %s, want the last record before it", first.Prev)
	}
	r := verify(t, data)
	if len(r.Problems) != 1 || r.Problems[0].Kind != jsonl.Malformed || r.Problems[0].Line != 4 || !r.Tampered() {
		t.Fatalf("white-space line: %s", kinds(r))
	}

	// As a writer that chained from it left the log: the same one problem.
	ws := sha256.Sum256([]byte(" \t \r"))
	old := append(append([]byte(nil), before...), " \t \r\n"...)
	old = append(old, join(rechain(t, ls[5:], hex.EncodeToString(ws[:])))...)
	if r := verify(t, old); len(r.Problems) != 1 || r.Problems[0].Kind != jsonl.Malformed || r.Problems[0].Line != 4 {
		t.Fatalf("a run chained from a white-space line: %s", kinds(r))
	}
}

// rechain rewrites records as a writer would have, numbered from 1 and
// chained from prev: what someone who knows the format can do.
func rechain(t testing.TB, recs [][]byte, prev string) [][]byte {
	t.Helper()
	var out [][]byte
	for i, l := range recs {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(bytes.TrimSpace(l), &m); err != nil {
			t.Fatal(err)
		}
		b := fmt.Appendf(nil, `{"seq":%d,"time":%s,"pid":%s,"run":%s,"event":%s,"args":%s,"prev":"%s"}`, i+1, m["time"], m["pid"], m["run"], m["event"], m["args"], prev)
		sum := sha256.Sum256(b)
		prev = hex.EncodeToString(sum[:])
		out = append(out, append(b, '\n'))
	}
	return out
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A full disk can cut a line before its run id: the cut line is then
// taken as the end of the unfinished run nearest before it.
func TestUnfinishedCutBeforeRunID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeLife(t, path, 3, true)
	writeLife(t, path, 2, false)
	data := mustRead(t, path)
	cut := append(append([]byte(nil), data...), `{"seq":4,"time":"2026-12-01T20:25:`...)
	r := verify(t, cut)
	if r.Tampered() || r.Unfinished() || len(r.Problems) != 1 || r.Problems[0].Kind != jsonl.Truncated || !strings.Contains(r.Problems[0].Detail, "it was probably (it is cut before its run id) the end of run") {
		t.Fatalf("cut before the run id: %s", kinds(r))
	}
	// Two unfinished runs, one cut line: the other stays unfinished.
	os.WriteFile(path, data, 0o600)
	writeLife(t, path, 1, false)
	cut = append(mustRead(t, path), `{"seq":3,"ti`...)
	r = verify(t, cut)
	if r.Tampered() || !r.Unfinished() || len(r.Problems) != 2 || r.Problems[0].Kind != jsonl.Unfinished || r.Problems[0].Line != 8 || r.Problems[1].Kind != jsonl.Truncated {
		t.Fatalf("two unfinished runs, one cut line: %s", kinds(r))
	}
}
