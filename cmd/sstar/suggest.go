package main

import (
	"fmt"
	"io"
	"os"

	"github.com/sstar-project/sstar/policy"
)

const policyUsage = `usage: sstar policy suggest LOG...

Reads JSON Lines audit logs (--audit-log, policy.sink(audit_log=)) and
prints a policy file with one policy.allow(...) call that would have
allowed exactly what those runs did through sstar: the files they read,
the directories they wrote in, the programs they started and the names
of the environment variables they used (never the values). Run with the
system policy's policy.allow(mode="report") first; see docs/policy.md,
"Permissions".
`

// cmdPolicy is `sstar policy suggest LOG...`.
func cmdPolicy(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(stdout, policyUsage)
		return exitOK
	}
	if len(args) < 2 || args[0] != "suggest" {
		fmt.Fprint(stderr, policyUsage)
		return exitUsage
	}
	s := policy.NewSuggestion()
	for _, path := range args[1:] {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintf(stderr, "sstar policy suggest: %v\n", err)
			return exitUsage
		}
		err = s.Read(f, path)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "sstar policy suggest: %v\n", err)
			return exitFailed
		}
	}
	if _, err := io.WriteString(stdout, s.String()); err != nil {
		fmt.Fprintf(stderr, "sstar policy suggest: %v\n", err)
		return exitFailed
	}
	return exitOK
}
