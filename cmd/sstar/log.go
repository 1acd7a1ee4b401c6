package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sstar-project/sstar/audit/jsonl"
)

// Exit statuses of `sstar log verify`.
const (
	exitLogIntact    = 0 // every chain intact
	exitLogTampered  = 1 // a line was edited, removed, inserted or reordered
	exitLogUsage     = 2 // usage error, or the log cannot be read
	exitLogTruncated = 3 // cut off by a crash or a full disk, otherwise intact
	// A run has no sstar.run_end: still running, killed, or its last
	// lines removed; no line was changed.
	exitLogUnfinished = 4
)

// maxProblems is how many problems `sstar log verify` lists.
const maxProblems = 20

const logUsage = `usage: sstar log verify PATH
       sstar log show PATH [--run ID] [--event NAME]

Checks every run's hash chain in the JSON Lines audit log PATH (written by
--audit-log) and that every run that began with sstar.run_start ended
with sstar.run_end, and lists what is wrong, line by line, then a summary.

Exit status:
  0  intact: every chain is whole, every run ended
  1  tampered: a line was edited, removed, inserted or reordered
  2  usage error, or PATH cannot be read
  3  truncated: cut off by a crash or a full disk, not tampered with
  4  unfinished: a run has no sstar.run_end; it is still running, was
     killed (SIGKILL, power lost), or its last lines were removed

sstar log show prints the log for people: see sstar log show --help.
`

func cmdLog(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "show" {
		return cmdLogShow(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "verify" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, logUsage)
			return exitOK
		}
		fmt.Fprint(stderr, logUsage)
		return exitLogUsage
	}
	fs := flag.NewFlagSet("sstar log verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdout, logUsage)
			return exitOK
		}
		fmt.Fprintf(stderr, "sstar log verify: %v\n%s", err, logUsage)
		return exitLogUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, logUsage)
		return exitLogUsage
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(stderr, "sstar log verify: %v\n", err)
		return exitLogUsage
	}
	defer f.Close()
	r, err := jsonl.Verify(f)
	if err != nil {
		fmt.Fprintf(stderr, "sstar log verify: reading %s: %v\n", path, err)
		return exitLogUsage
	}
	for i, p := range r.Problems {
		if i == maxProblems {
			fmt.Fprintf(stdout, "%s: ... and %d more problems\n", path, len(r.Problems)-maxProblems)
			break
		}
		fmt.Fprintf(stdout, "%s:%d: %s: %s\n", path, p.Line, p.Kind, escape(p.Detail)) // run ids come from the log
	}
	summary := fmt.Sprintf("%s: %d lines, %d records, %d runs", path, r.Lines, r.Records, r.Runs)
	switch {
	case r.Intact():
		fmt.Fprintf(stdout, "%s: intact\n", summary)
		return exitLogIntact
	case r.Tampered():
		fmt.Fprintf(stdout, "%s: TAMPERED: %d problems, the first at line %d\n", summary, len(r.Problems), r.Problems[0].Line)
		return exitLogTampered
	case r.Unfinished():
		n, first := 0, 0
		for _, p := range r.Problems {
			if p.Kind == jsonl.Unfinished {
				if n++; first == 0 {
					first = p.Line
				}
			}
		}
		fmt.Fprintf(stdout, "%s: UNFINISHED: %d runs have no sstar.run_end (still running, killed, or their last lines removed), the first at line %d\n", summary, n, first)
		return exitLogUnfinished
	}
	fmt.Fprintf(stdout, "%s: TRUNCATED at line %d (cut off by a crash or a full disk), otherwise intact\n", summary, r.Problems[0].Line)
	return exitLogTruncated
}
