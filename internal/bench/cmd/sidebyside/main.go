// Command sidebyside times the start-up of programs side by side, as
// `make bench` times sstar's against the plain starlark command: each
// program runs a one-line script (stamped with opencode's Stamp, so
// that sstar runs it) in interleaved rounds, and each is shown against
// the last with the median of per-round ratios and its interval. It is
// for comparing builds of sstar with a part changed (a scratch patch, a
// dependency removed) against each other and the plain command in one
// run, which is how docs/performance.md measures where start-up goes.
//
// Usage:
//
//	go run ./internal/bench/cmd/sidebyside [-n ROUNDS] PROGRAM... BASELINE
//
// The programs are copied first, all at the same moment, and the copies
// are timed (see bench.CopyProgram); BASELINE is also timed a second time
// under the name "again", a noise control.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/internal/bench"
	"github.com/sstar-project/sstar/opencode"
)

func main() {
	rounds := flag.Int("n", 1501, "timed rounds")
	flag.Parse()
	if flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: sidebyside [-n ROUNDS] PROGRAM... BASELINE")
		os.Exit(2)
	}
	if err := run(*rounds, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "sidebyside: %v\n", err)
		os.Exit(1)
	}
}

func run(rounds int, progs []string) error {
	dir, err := os.MkdirTemp("", "sidebyside-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, bench.StartupScript)
	if err := os.WriteFile(script, []byte("print(\""+bench.WantStartup+"\")\n"), 0o644); err != nil {
		return err
	}
	if _, _, err := new(opencode.Opener).Stamp(new(audit.Dispatcher), script); err != nil {
		return err
	}
	base := progs[len(progs)-1]
	progs = append(progs[:len(progs)-1:len(progs)-1], base, base)
	var cmds []bench.Command
	for i, p := range progs {
		name := filepath.Base(p)
		if i == len(progs)-2 {
			name += " (again)"
		}
		copied := filepath.Join(dir, fmt.Sprintf("%d-%s", i, filepath.Base(p)))
		if err := bench.CopyProgram(p, copied); err != nil {
			return err
		}
		cmds = append(cmds, bench.Command{Name: name, Argv: []string{copied, bench.StartupScript}, Dir: dir,
			Env: bench.CleanEnv, Want: bench.WantStartup})
	}
	s, err := bench.Interleave(cmds, rounds, nil)
	if err != nil {
		return err
	}
	last := s[len(s)-1]
	fmt.Printf("%d rounds; ratios to %s: median of per-round ratios, and its interval\n", rounds, cmds[len(cmds)-1].Name)
	for i, c := range cmds {
		w := bench.PairedEstimate(s[i], last, false)
		fmt.Printf("%-28s %9s ±%4.1f%%  wall %s, %.0f%%  CPU %s\n", c.Name,
			bench.FormatDuration(s[i].Median()), s[i].Spread()*100, w, w.Coverage*100, bench.PairedEstimate(s[i], last, true))
	}
	return nil
}
