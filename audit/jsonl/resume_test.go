package jsonl_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/jsonl"
	"github.com/sstar-project/sstar/audit/record"
	"github.com/sstar-project/sstar/internal/render"
)

// endRecord is the run_end a crash monitor writes for run after seq.
func endRecord(run string, seq uint64) *record.Record {
	return &record.Record{Run: run, Seq: seq, Time: time.Now(), PID: os.Getpid(), Kind: audit.RunEnd, Name: "sstar.run_end",
		Args: render.AppendArgs(nil, starlark.Tuple{starlark.MakeInt(137), starlark.String("killed SIGKILL"),
			starlark.Float(0), starlark.MakeUint64(seq - 1), starlark.NewDict(0), starlark.NewDict(0)}, 0)}
}

// A run that died mid-way, with another run appended after it: Resume
// continues the dead run's chain, and the log verifies intact.
func TestResumeContinuesRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.jsonl")
	dead := new(record.Fanout)
	l, err := jsonl.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	dead.Add(l)
	for i := range 3 {
		if err := dead.Hook(tick(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The process "dies": its log is never closed. Another run appends.
	other := writeRun(t, path, 2)

	r, err := jsonl.Resume(path, dead.Run())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Write(endRecord(dead.Run(), 4)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if rep := verify(t, data); !rep.Intact() || rep.Runs != 2 {
		t.Fatalf("runs %d, problems %v\n%s", rep.Runs, rep.Problems, data)
	}
	ls := lines(data)
	var last line
	json.Unmarshal(ls[len(ls)-1], &last)
	if last.Run != dead.Run() || last.Seq != 4 || last.Event != "sstar.run_end" || other == dead.Run() {
		t.Fatalf("last line %+v", last)
	}
}

// A run whose last write was cut short: the monitor's line ends the
// incomplete one first, so that its own is whole; the records that never
// arrived are a gap in the chain, which Verify reports.
func TestResumeAfterCutLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.jsonl")
	run := writeRun(t, path, 3)
	data, _ := os.ReadFile(path)
	ls := lines(data)
	// Drop the last line (seq 3) but keep half of it, as a write cut short.
	half := ls[len(ls)-1][:len(ls[len(ls)-1])/2]
	os.WriteFile(path, append(bytes.Join(ls[:len(ls)-1], nil), half...), 0o600)

	r, err := jsonl.Resume(path, run)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Write(endRecord(run, 4)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	data, _ = os.ReadFile(path)
	ls = lines(data)
	var last line
	if err := json.Unmarshal(ls[len(ls)-1], &last); err != nil || last.Seq != 4 || last.Run != run {
		t.Fatalf("last line %q: %v", ls[len(ls)-1], err)
	}
	rep := verify(t, data)
	if rep.Intact() {
		t.Fatalf("a log with a cut line and a missing record verified intact:\n%s", data)
	}
	t.Logf("problems, as expected: %v", rep.Problems)
}

// A run the file has no line of (it died before its first record
// reached this log) chains from the file's last line.
func TestResumeUnknownRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.jsonl")
	writeRun(t, path, 2)
	r, err := jsonl.Resume(path, record.NewRunID())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Write(endRecord("0123456789abcdef0123456789abcdef", 1)); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := jsonl.Resume(filepath.Join(t.TempDir(), "missing"), "x"); err == nil {
		t.Fatal("Resume of a missing log succeeded")
	}
}
