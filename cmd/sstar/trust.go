package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/opencode"
)

// codeOpener is the opencode configuration of `sstar trust` and `sstar
// verify`. It must be the one runs use, so that what trust stamps is what
// verify and runs check (the same xattr name, the same size limit, the
// same kernel-check enforcement): those settings come from the system
// policy only.
var codeOpener = func() *opencode.Opener { return new(opencode.Opener) }

const trustUsage = "usage: sstar trust [-v] PATH..."

// cmdTrust is `sstar trust [-v] PATH...`: stamp each file (each *.star
// file under a directory) with the SHA-256 of its content, so that sstar
// will run it. It is idempotent. It does not install the run mode's
// seccomp filter: writing stamps is its job.
func cmdTrust(args []string, stdout, stderr io.Writer) int {
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
	o, d := codeOpener(), new(audit.Dispatcher)
	failed := false
	for _, root := range fs.Args() {
		n := 0
		opencode.WalkCode(root, func(p string) error {
			n++
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
			return nil
		})
		if n == 0 {
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
