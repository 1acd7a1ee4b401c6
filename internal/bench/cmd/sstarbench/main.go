// Command sstarbench is sstar's benchmark harness, run by `make bench`:
// it times sstar against the plain go.starlark.net starlark command and
// CPython, prints the results table, writes BENCHMARKS.md, and exits with
// status 1 when a budget is missed, 3 when none is missed but one could be
// neither confirmed nor refuted because the machine was too noisy for its
// margin (its interval holds the limit), and 2 when it could not measure.
//
// Usage:
//
//	sstarbench [-quick] [-out BENCHMARKS.md] [-keep] [-micro=false]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/sstar-project/sstar/internal/bench"
)

func main() {
	quick := flag.Bool("quick", false, "fewer runs and a smaller events workload: a rough check for development")
	out := flag.String("out", "BENCHMARKS.md", "write the report here (relative to the module root); empty: do not write")
	keep := flag.Bool("keep", false, "keep the work directory (binaries, workloads, go test output)")
	micro := flag.Bool("micro", true, "run the Go micro-benchmarks (go test -bench) of every package")
	goCmd := flag.String("go", "go", "the go command")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "sstarbench: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}

	root, err := moduleRoot(*goCmd)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sstarbench: %v\n", err)
		os.Exit(2)
	}
	command := "make bench"
	if *quick {
		command = "make bench BENCHFLAGS=-quick"
	}
	rep, err := bench.Run(bench.Config{
		Root: root, Go: *goCmd, Quick: *quick, Keep: *keep, Micro: *micro,
		Command: command, Log: os.Stderr,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "sstarbench: %v\n", err)
		os.Exit(2)
	}
	fmt.Print(rep.Table())
	fmt.Println()
	fmt.Print(rep.BudgetSummary())
	if *out != "" {
		path := *out
		if !filepath.IsAbs(path) {
			path = filepath.Join(root, path)
		}
		if err := os.WriteFile(path, []byte(rep.Markdown()), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "sstarbench: %v\n", err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "sstarbench: wrote %s\n", path)
	}
	if rep.Missed() {
		fmt.Fprintln(os.Stderr, "sstarbench: a budget was missed (see above and BENCHMARKS.md)")
		os.Exit(1)
	}
	if rep.Undecided() {
		fmt.Fprintln(os.Stderr, "sstarbench: no budget was missed, but this run could not decide one (UNRESOLVED above): its noise is larger than the budget's margin; rerun on a quieter machine")
		os.Exit(3)
	}
}

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot(goCmd string) (string, error) {
	out, err := exec.Command(goCmd, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("run sstarbench inside the sstar module (go env GOMOD is empty)")
	}
	return filepath.Dir(mod), nil
}
