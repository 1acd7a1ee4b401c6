package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/opencode"
	"github.com/sstar-project/sstar/policy"
)

const trustUsage = "usage: sstar trust [-v] PATH..."

// cmdTrust is `sstar trust [-v] PATH...`: stamp each file (each *.star
// file under a directory) with the SHA-256 of its content, so that sstar
// will run it. It is idempotent. It does not install the run mode's
// seccomp filter: writing stamps is its job.
func cmdTrust(args []string, stdout, stderr io.Writer) (status int) {
	fs := flag.NewFlagSet("sstar trust", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	verbose := fs.Bool("v", false, "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "sstar trust: %v\n%s\n", err, trustUsage)
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "sstar trust: no files given; %s\n", trustUsage)
		return exitUsage
	}
	// The system policy is stamped first, with the built-in settings it
	// is always checked with: until it is stamped it cannot run, and the
	// rest is stamped with the settings it sets.
	defaults := policy.Defaults()
	failed := false
	stamp := func(o *opencode.Opener, d *audit.Dispatcher, p string) {
		did, _, err := o.Stamp(d, p)
		switch {
		case err != nil:
			failed = true
			var se *opencode.StampError
			if errors.As(err, &se) {
				fmt.Fprintf(stderr, "sstar trust: %v\n", err)
			} else {
				fmt.Fprintf(stderr, "sstar trust: cannot stamp %s: %v\n", p, err)
			}
		case *verbose && did != opencode.Unchanged:
			fmt.Fprintf(stdout, "%s %s\n", did, p)
		}
	}
	found := map[string]int{}
	for _, root := range fs.Args() {
		opencode.WalkCode(root, func(p string) error {
			found[root]++
			if policy.IsSystemPath(p) {
				stamp(defaults.OpenerFor(p), new(audit.Dispatcher), p)
			}
			return nil
		})
	}

	// Then the rest, with the settings the system policy decides; the
	// events go to its hooks and mandatory sinks, as a run's would.
	s, status := boot(nil, false, stderr, stderr)
	defer func() { status = s.close(stderr, s.end(stderr, status, reason(s.d, status, nil))) }()
	if status != exitOK {
		return status
	}
	d := s.d
	for _, root := range fs.Args() {
		opencode.WalkCode(root, func(p string) error {
			if !policy.IsSystemPath(p) {
				stamp(s.settings.OpenerFor(p), d, p)
			}
			return nil
		})
		if found[root] == 0 {
			fmt.Fprintf(stderr, "sstar trust: no *.star files under %s; nothing stamped there\n", root)
		}
	}
	if d.Failed() != nil {
		return fatal(stderr, d, d.Failed())
	}
	if failed {
		return exitFailed
	}
	return exitOK
}
