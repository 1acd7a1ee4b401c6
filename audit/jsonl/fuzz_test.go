package jsonl_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sstar-project/sstar/audit/jsonl"
)

// FuzzVerify feeds the verifier arbitrary logs (it reads files an
// attacker may have written). It must not panic, must account for every
// line, must report problems in line order, and must find an untouched
// log intact.
func FuzzVerify(f *testing.F) {
	path := filepath.Join(f.TempDir(), "seed.jsonl")
	writeRun(f, path, 3)
	writeRun(f, path, 2)
	seed, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-7])
	f.Add([]byte("{}\n\n{\"seq\":1}\nnot json"))
	f.Add([]byte(" \t\n\r\n\n"))
	life := filepath.Join(f.TempDir(), "life.jsonl")
	writeLife(f, life, 2, true)
	writeLife(f, life, 1, false)
	if data, err := os.ReadFile(life); err == nil {
		f.Add(data)
		f.Add(data[:len(data)-9])
	}
	f.Add([]byte(`{"seq":1,"time":"2026-01-01T00:00:00Z","pid":1,"run":"r","event":"e","args":[],"prev":"` + string(bytes.Repeat([]byte("0"), 64)) + `","cut":"` + string(bytes.Repeat([]byte("a"), 64)) + "\"}\n"))
	if r := verify(f, seed); !r.Intact() {
		f.Fatalf("seed log not intact: %v", r.Problems)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := jsonl.Verify(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Count(data, []byte("\n"))
		if len(data) > 0 && data[len(data)-1] != '\n' {
			want++
		}
		if r.Lines != want {
			t.Errorf("Lines = %d, want %d", r.Lines, want)
		}
		for i := 1; i < len(r.Problems); i++ {
			if r.Problems[i].Line < r.Problems[i-1].Line {
				t.Fatalf("problems out of order: %v", r.Problems)
			}
		}
		for _, p := range r.Problems {
			if p.Line < 1 || p.Line > r.Lines || p.Detail == "" {
				t.Fatalf("bad problem %+v (of %d lines)", p, r.Lines)
			}
		}
		if r.Intact() && r.Records > r.Lines {
			t.Fatalf("more records than lines")
		}
	})
}
