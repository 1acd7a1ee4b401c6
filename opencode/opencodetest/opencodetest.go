// Package opencodetest stamps files for tests, with the code `sstar
// trust` uses, so that tests of anything that runs scripts (package
// interp, builtins, the sstar command) run them the way users must:
// stamped.
package opencodetest

import (
	"os"
	"testing"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/opencode"
)

// Stamp stamps each file with the default Opener's stamp, failing the
// test if one cannot be stamped (a file system without user xattrs).
func Stamp(tb testing.TB, paths ...string) {
	tb.Helper()
	o := new(opencode.Opener)
	for _, p := range paths {
		if _, _, err := o.Stamp(new(audit.Dispatcher), p); err != nil {
			tb.Fatalf("opencodetest: %v", err)
		}
	}
}

// StampTree stamps every *.star file under dir, as `sstar trust dir` does.
func StampTree(tb testing.TB, dir string) {
	tb.Helper()
	o := new(opencode.Opener)
	err := opencode.WalkCode(dir, func(path string) error {
		_, _, err := o.Stamp(new(audit.Dispatcher), path)
		return err
	})
	if err != nil {
		tb.Fatalf("opencodetest: %v", err)
	}
}

// WriteFile writes data to path (mode 0644) and stamps it.
func WriteFile(tb testing.TB, path string, data string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		tb.Fatal(err)
	}
	Stamp(tb, path)
}
