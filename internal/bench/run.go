package bench

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// CleanEnv is the whole environment of every timed process, the same
// for every interpreter, so that nothing of the caller's (GOGC,
// GOMAXPROCS, PYTHON*) changes what is measured. The programs are run
// by absolute path, so PATH only serves what they might start.
var CleanEnv = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}

// A Command is one program run of a comparison.
type Command struct {
	Name string   // short label, e.g. "sstar"
	Argv []string // program and arguments
	Dir  string   // working directory
	Env  []string // the whole environment of the process
	// Want, if set, must occur in the standard output or error of every
	// run, so that a failing command is never timed as a fast one.
	Want string
}

func (c Command) String() string { return strings.Join(c.Argv, " ") }

// RunOnce runs c once and returns its wall and CPU time and its output.
// A non-zero exit status or a missing Want is an error.
func RunOnce(c Command) (wall, cpu time.Duration, stdout []byte, err error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(c.Argv[0], c.Argv[1:]...)
	cmd.Dir, cmd.Env = c.Dir, c.Env
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err = cmd.Run()
	wall = time.Since(start)
	if cmd.ProcessState != nil {
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return wall, cpu, out.Bytes(), fmt.Errorf("%s: %v\n%s", c.Name, err, tail(errb.String(), 2000))
	}
	// The plain starlark command prints to standard error.
	if c.Want != "" && !bytes.Contains(out.Bytes(), []byte(c.Want)) && !bytes.Contains(errb.Bytes(), []byte(c.Want)) {
		return wall, cpu, out.Bytes(), fmt.Errorf("%s: output lacks %q:\n%s%s", c.Name, c.Want, tail(out.String(), 1000), tail(errb.String(), 1000))
	}
	return wall, cpu, out.Bytes(), nil
}

// Interleave runs every command once untimed (a warm-up that also checks
// its output), then rounds times each, interleaved: round r runs the
// commands in order starting from the r-th, so drift of the machine
// (another tenant, frequency, page cache) falls on all of them alike and
// no command is always first. before, if set, runs before every timed
// run of a command (to remove its previous audit log, say) and is not
// timed. It returns one Sample per command, in the order given.
func Interleave(cmds []Command, rounds int, before func(Command)) ([]*Sample, error) {
	samples := make([]*Sample, len(cmds))
	for i, c := range cmds {
		samples[i] = new(Sample)
		if before != nil {
			before(c)
		}
		if _, _, _, err := RunOnce(c); err != nil {
			return nil, err
		}
	}
	for r := 0; r < rounds; r++ {
		for k := range cmds {
			i := (r + k) % len(cmds)
			c := cmds[i]
			if before != nil {
				before(c)
			}
			wall, cpu, _, err := RunOnce(c)
			if err != nil {
				return nil, err
			}
			samples[i].Wall = append(samples[i].Wall, wall)
			samples[i].CPU = append(samples[i].CPU, cpu)
		}
	}
	return samples, nil
}
