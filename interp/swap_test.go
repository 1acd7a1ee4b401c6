package interp_test

// These tests check, through the host, that what is compiled is exactly
// what was verified: a file swapped, edited or restamped after
// verification cannot change what runs.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/audittest"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/opencode/opencodetest"
)

const (
	original = "print('the verified bytes ran')\n"
	planted  = "print('PLANTED bytes ran')\n"
)

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// runSwapping runs path on a host whose Go hook calls swap(event) for
// every event, and returns the output and the sha256 argument of the last
// compile event.
func runSwapping(t *testing.T, path string, swap func(audit.Event)) (out, compiled string) {
	t.Helper()
	h, rec, buf := newHost(t, interp.Options{})
	h.Audit().AddHook(func(ev audit.Event) error { swap(ev); return nil })
	if _, err := h.RunFile(context.Background(), path, nil); err != nil {
		t.Fatalf("run: %v", err)
	}
	if c := rec.Named("compile"); len(c) > 0 {
		compiled = audittest.StringArg(c[len(c)-1], 1)
	}
	return buf.String(), compiled
}

// replace puts a stamped file with content at path, as a new inode
// (rename) or in place (the same inode, the descriptor sstar holds).
func replace(t *testing.T, path, content string, inPlace bool) {
	if inPlace {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Error(err)
		}
		opencodetest.Stamp(t, path)
		return
	}
	tmp := path + ".new"
	opencodetest.WriteFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Error(err)
	}
}

// TestSwapAfterVerification swaps the file, with a valid stamp for the
// new content, after sstar verified it and before it compiles (from the
// compile event's hook): the verified bytes run, and the hash in the
// compile event is theirs. Were anything to reopen the file by name,
// the planted bytes would run.
func TestSwapAfterVerification(t *testing.T) {
	for _, inPlace := range []bool{false, true} {
		name := map[bool]string{false: "new inode", true: "in place"}[inPlace]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			main := filepath.Join(dir, "main.star")
			opencodetest.WriteFile(t, main, original)
			done := false
			out, compiled := runSwapping(t, main, func(ev audit.Event) {
				if ev.Name == "compile" && !done {
					done = true
					replace(t, main, planted, inPlace)
				}
			})
			if out != "the verified bytes ran\n" {
				t.Errorf("output %q: the swapped-in file ran", out)
			}
			if compiled != hashOf(original) {
				t.Errorf("compile event hash %s, want that of the verified bytes %s", compiled, hashOf(original))
			}
			// The planted file is on disk, stamped: a later run takes it.
			if out, _ := runSwapping(t, main, func(audit.Event) {}); out != "PLANTED bytes ran\n" {
				t.Errorf("the swap did not happen (next run printed %q), so the test proved nothing", out)
			}
		})
	}
}

// TestSwapAfterOpen swaps in a new inode after the open, between the
// kernel check and the read: sstar reads through the descriptor it
// opened, so it reads and runs the file it checked.
func TestSwapAfterOpen(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "main.star")
	opencodetest.WriteFile(t, main, original)
	out, compiled := runSwapping(t, main, func(ev audit.Event) {
		if ev.Name == "sstar.exec_check" {
			replace(t, main, planted, false)
		}
	})
	if out != "the verified bytes ran\n" || compiled != hashOf(original) {
		t.Errorf("output %q, compiled %s: want the file that was opened", out, compiled)
	}
}

// TestSwappedModule does the same to a loaded module.
func TestSwappedModule(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "main.star")
	lib := filepath.Join(dir, "lib.star")
	opencodetest.WriteFile(t, main, "load('lib.star', 'x')\nprint(x)\n")
	opencodetest.WriteFile(t, lib, "x = 'verified module'\n")
	var hashes []string
	out, _ := runSwapping(t, main, func(ev audit.Event) {
		if ev.Name == "compile" {
			if audittest.StringArg(ev, 0) == lib {
				hashes = append(hashes, audittest.StringArg(ev, 1))
				replace(t, lib, "x = 'PLANTED module'\n", false)
			}
		}
	})
	if strings.TrimSpace(out) != "verified module" {
		t.Errorf("output %q", out)
	}
	if len(hashes) != 1 || hashes[0] != hashOf("x = 'verified module'\n") {
		t.Errorf("module compile hashes %q", hashes)
	}
}
