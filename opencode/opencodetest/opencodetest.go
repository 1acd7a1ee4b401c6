// Package opencodetest stamps files for tests, with the code `sstar
// trust` uses, so that tests of anything that runs scripts (package
// interp, builtins, the sstar command, or a program that embeds the
// host) run them the way users must: stamped. The stamp is whatever
// opencode.Opener writes and checks, so no test spells out the attribute
// or its format.
//
// Stamping needs a file system that keeps user extended attributes; where
// the test's files are on one that does not, the helpers skip the test,
// saying so, and fail it for any other reason.
package opencodetest

import (
	"errors"
	"os"
	"testing"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/opencode"
)

// Stamp stamps each file with the default Opener's stamp.
func Stamp(tb testing.TB, paths ...string) {
	tb.Helper()
	o := new(opencode.Opener)
	for _, p := range paths {
		_, _, err := o.Stamp(new(audit.Dispatcher), p)
		check(tb, err)
	}
}

func check(tb testing.TB, err error) {
	tb.Helper()
	switch {
	case errors.Is(err, opencode.ErrNoXattrSupport):
		tb.Skipf("opencodetest: needs a file system with user extended attributes to stamp scripts: %v", err)
	case err != nil:
		tb.Fatalf("opencodetest: %v", err)
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
	check(tb, err)
}

// WriteFile writes data to path (mode 0644) and stamps it.
func WriteFile(tb testing.TB, path string, data string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		tb.Fatal(err)
	}
	Stamp(tb, path)
}
