package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sstar-project/sstar/audit"
)

// Every sink of a run records the same run id, made when the first sink
// opens, so that the copies of one run can be matched line by line.
func TestSinksShareRunID(t *testing.T) {
	dir := t.TempDir()
	logs := []string{filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl"), filepath.Join(dir, "mandatory.jsonl")}
	var s sinks
	d := new(audit.Dispatcher)
	if err := s.add(d, []sinkSpec{{AuditLog: logs[0]}, {AuditLog: logs[1]}}); err != nil {
		t.Fatal(err)
	}
	// As the system policy's mandatory sinks are opened: later, one by one.
	hook, err := s.open(sinkSpec{AuditLog: logs[2]})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.AddHook(hook); err != nil {
		t.Fatal(err)
	}
	if err := d.Raise(nil, audit.RunStdin); err != nil {
		t.Fatal(err)
	}
	if status := s.close(io.Discard, exitOK); status != exitOK {
		t.Fatalf("close: status %d", status)
	}

	ids := map[string]bool{}
	for _, p := range logs {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			var line struct{ Run string }
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			ids[line.Run] = true
			n++
		}
		f.Close()
		if n == 0 {
			t.Errorf("%s: no events", p)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("run ids %v, want one for the whole run", ids)
	}
	for id := range ids {
		if len(id) != 32 {
			t.Errorf("run id %q, want 32 hex digits", id)
		}
	}
}
