package interp_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/opencode"
)

// A host has no default Opener: a run that names none fails before it
// raises an event or reads a file, and one run may name its own.
func TestRunNeedsAnOpener(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.star": "print('ran')\n"})
	main := filepath.Join(dir, "main.star")
	var events []string
	d := new(audit.Dispatcher)
	d.AddHook(func(ev audit.Event) error { events = append(events, ev.Name); return nil })
	var out bytes.Buffer
	h := interp.New(interp.Options{Audit: d, Stdout: &out})

	_, err := h.RunFile(context.Background(), main, nil)
	if err == nil || !strings.Contains(err.Error(), "no Opener to verify "+main) {
		t.Fatalf("err = %v, want no Opener", err)
	}
	if len(events) != 0 || out.Len() != 0 {
		t.Errorf("a run without an Opener raised %v and printed %q", events, out.String())
	}

	_, err = h.Exec(context.Background(), interp.Exec{Path: main, Event: audit.RunFile, Opener: &opencode.Opener{}})
	if err != nil || out.String() != "ran\n" {
		t.Errorf("with Exec.Opener: err = %v, output %q", err, out.String())
	}
}
