// Command startupcost measures what sstar's crash monitor costs at
// start-up: whole-process wall time of a one-line script, for each
// command given, in interleaved rounds (round r starts with the r-th
// command), so that a shared machine's drift falls on all of them. It
// prints the median, the quartiles, each command's median ratio to the
// first command within a round, and the median user+system CPU time (of
// the process and the children it waited for).
//
//	go run ./internal/startupcost -n 400 plain=/tmp/starlark old=/tmp/sstar-old new=bin/sstar
//
// Each command runs as CMD [ARGS] SCRIPT in a temporary directory where
// SCRIPT (hello.star, stamped with the last sstar given, if any) prints
// one line. Write NAME=PATH; extra arguments go after a comma:
// NAME=PATH,--audit-log,log.jsonl.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type command struct {
	name string
	argv []string
	wall []time.Duration
	cpu  []time.Duration // user+system, the run's processes together
}

func main() {
	n := flag.Int("n", 200, "rounds")
	trust := flag.String("trust", "", "sstar binary to stamp the script with (default: none)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "startupcost-")
	check(err)
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "hello.star")
	check(os.WriteFile(script, []byte("print('hello')\n"), 0o644))
	if *trust != "" {
		out, err := exec.Command(*trust, "trust", script).CombinedOutput()
		if err != nil {
			check(fmt.Errorf("%s trust: %v: %s", *trust, err, out))
		}
	}
	var cmds []*command
	for _, arg := range flag.Args() {
		name, spec, ok := strings.Cut(arg, "=")
		if !ok {
			check(fmt.Errorf("want NAME=PATH[,ARG...], got %q", arg))
		}
		argv := strings.Split(spec, ",")
		cmds = append(cmds, &command{name: name, argv: append(argv, "hello.star")})
	}
	run := func(c *command) (time.Duration, time.Duration) {
		cmd := exec.Command(c.argv[0], c.argv[1:]...)
		cmd.Dir = dir
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil || strings.TrimSpace(string(out)) != "hello" {
			check(fmt.Errorf("%s: %v: %s", c.name, err, out))
		}
		return d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	for _, c := range cmds {
		run(c) // warm-up, and a check of the output
	}
	ratios := make([][]float64, len(cmds))
	for r := 0; r < *n; r++ {
		times := make([]time.Duration, len(cmds))
		for i := range cmds {
			j := (r + i) % len(cmds)
			var cpu time.Duration
			times[j], cpu = run(cmds[j])
			cmds[j].wall = append(cmds[j].wall, times[j])
			cmds[j].cpu = append(cmds[j].cpu, cpu)
		}
		for i := range cmds {
			ratios[i] = append(ratios[i], float64(times[i])/float64(times[0]))
		}
	}
	fmt.Printf("%-10s %10s %10s %10s %8s %10s\n", "command", "median", "q1", "q3", "ratio", "CPU")
	for i, c := range cmds {
		slices.Sort(c.wall)
		slices.Sort(c.cpu)
		slices.Sort(ratios[i])
		q := func(p float64) time.Duration { return c.wall[int(p*float64(len(c.wall)-1))] }
		fmt.Printf("%-10s %10s %10s %10s %7.3f× %10s\n", c.name, q(0.5).Round(time.Microsecond), q(0.25).Round(time.Microsecond), q(0.75).Round(time.Microsecond), ratios[i][len(ratios[i])/2], c.cpu[len(c.cpu)/2])
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "startupcost: %v\n", err)
		os.Exit(2)
	}
}
