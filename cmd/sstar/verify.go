package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sstar-project/sstar/opencode"
)

const verifyUsage = "usage: sstar verify PATH..."

// cmdVerify is `sstar verify PATH...`: check each file (each *.star file
// under a directory) exactly as a run would before compiling it, and say
// so in one line per file. It exits 0 only if every file verifies.
func cmdVerify(args []string, stdout, stderr io.Writer) (status int) {
	fs := flag.NewFlagSet("sstar verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "sstar verify: %v\n%s\n", err, verifyUsage)
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "sstar verify: no files given; %s\n", verifyUsage)
		return exitUsage
	}
	// Checked as a run would check them: with the system policy's
	// settings, its hooks and mandatory sinks seeing every check.
	s, status := boot(nil, false, stderr, stderr)
	defer func() { status = s.close(stderr, s.end(stderr, status, reason(s.d, status, nil))) }()
	if status != exitOK {
		return status
	}
	d := s.d
	bad := false
	for _, root := range fs.Args() {
		n := 0
		opencode.WalkCode(root, func(p string) error {
			n++
			o := s.settings.OpenerFor(p)
			code, err := o.Verify(d, p)
			if err != nil || code.Unenforced != nil {
				bad = true
			}
			fmt.Fprintf(stdout, "%s: %s\n", p, verdict(o, code, err))
			return nil
		})
		if n == 0 {
			bad = true
			fmt.Fprintf(stderr, "sstar verify: no *.star files under %s\n", root)
		}
	}
	if d.Failed() != nil {
		return fatal(stderr, d, d.Failed())
	}
	if bad {
		return exitFailed
	}
	return exitOK
}

// verdict words a verification's outcome for its line: why the file
// would run (its stamp, or which catalog), or why not.
func verdict(o *opencode.Opener, code opencode.Code, err error) string {
	var me *opencode.MismatchError
	var re *opencode.RefusedError
	switch {
	case err == nil && code.Unenforced != nil:
		return "refused, not enforced (audit mode: a run records this and runs it): " + code.Unenforced.Reason.Error()
	case err == nil && code.Catalog != nil:
		return "ok: " + code.Catalog.Describe()
	case err == nil:
		return "ok: stamp"
	case errors.As(err, &me) && o.Require == opencode.RequireStamp:
		return fmt.Sprintf("mismatch: stamp sha256 %s, content sha256 %s", me.Stamp, me.Content)
	case errors.Is(err, opencode.ErrNoStamp) && o.Require == opencode.RequireStamp:
		return "missing stamp"
	case errors.As(err, &re):
		return "refused: " + re.Reason.Error()
	}
	return "error: " + err.Error()
}

// interactiveNote adds the kernel's word to the refusal of a launch mode
// that runs code not read from a file (-c, standard input, a REPL).
func interactiveNote() string {
	if opencode.InteractiveDenied() {
		return " (and this process has SECBIT_EXEC_DENY_INTERACTIVE set: the kernel's word that only code from files may run here)"
	}
	return ""
}
