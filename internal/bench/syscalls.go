package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sstar-project/sstar/opencode"
)

// Syscalls counts the system calls of one run, by name.
type Syscalls map[string]int

// Total is the number of calls of every kind.
func (s Syscalls) Total() int {
	n := 0
	for _, c := range s {
		n += c
	}
	return n
}

// ParseStraceSummary reads the table `strace -c` writes and returns the
// calls per system call (the "total" line is left out).
func ParseStraceSummary(r io.Reader) (Syscalls, error) {
	s := Syscalls{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// % time, seconds, usecs/call, calls, [errors,] syscall
		if len(f) < 5 || len(f) > 6 {
			continue
		}
		if _, err := strconv.ParseFloat(f[0], 64); err != nil {
			continue
		}
		calls, err := strconv.Atoi(f[3])
		if err != nil {
			continue
		}
		name := f[len(f)-1]
		if name == "total" {
			continue
		}
		s[name] += calls
	}
	return s, sc.Err()
}

// CountSyscalls runs c under `strace -f -c` and returns its system calls.
func CountSyscalls(strace string, c Command, tmp string) (Syscalls, error) {
	out := filepath.Join(tmp, "strace.out")
	defer os.Remove(out)
	argv := append([]string{strace, "-f", "-c", "-o", out, "--"}, c.Argv...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = c.Dir, c.Env
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("strace %s: %v\n%s", c.Name, err, tail(string(b), 1000))
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseStraceSummary(f)
}

// A SyscallDiff is how many more calls of one system call a run made than
// another, per unit of work (per module, say).
type SyscallDiff struct {
	Name    string
	A, B    int     // calls in each run
	PerUnit float64 // (A-B)/units
}

// DiffSyscalls returns the system calls whose count differs between a and
// b by at least min per unit, largest difference first.
func DiffSyscalls(a, b Syscalls, units int, min float64) []SyscallDiff {
	names := map[string]bool{}
	for n := range a {
		names[n] = true
	}
	for n := range b {
		names[n] = true
	}
	var out []SyscallDiff
	for n := range names {
		d := SyscallDiff{Name: n, A: a[n], B: b[n], PerUnit: float64(a[n]-b[n]) / float64(units)}
		if d.PerUnit >= min || d.PerUnit <= -min {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PerUnit != out[j].PerUnit {
			return out[i].PerUnit > out[j].PerUnit
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// syscalls counts system calls of the loading and start-up workloads
// under strace, and measures what one cheap system call costs.
func (h *harness) syscalls() error {
	if h.strace == "" {
		return nil
	}
	cost := syscallCost(filepath.Join(h.wl, ModulePath(0)))
	for _, w := range []struct {
		title, script, want, unit string
		units                     int
	}{
		{"loading", LoadScript, WantLoad, "module", h.rep.Params.Modules},
		{"start-up", StartupScript, WantStartup, "run", 1},
	} {
		a, err := CountSyscalls(h.strace, h.cmd("sstar", w.want, h.sstar, w.script), h.work)
		if err != nil {
			h.note("Counting system calls failed: %v", err)
			return nil
		}
		b, err := CountSyscalls(h.strace, h.cmd("plain", w.want, h.plain, w.script), h.work)
		if err != nil {
			h.note("Counting system calls failed: %v", err)
			return nil
		}
		min := 0.5
		if w.units == 1 {
			min = 1
		}
		h.rep.Syscalls = append(h.rep.Syscalls, SyscallSection{
			Title: w.title, A: "sstar", B: "plain starlark", TotalA: a.Total(), TotalB: b.Total(),
			Units: w.units, Unit: w.unit, Diffs: DiffSyscalls(a, b, w.units, min),
			SyscallNS: cost, SyscallWhich: "getxattr(2) of a module",
		})
	}
	return nil
}

// syscallCost returns the median time of getxattr(2) on path, in ns.
func syscallCost(path string) float64 {
	buf := make([]byte, 128)
	const n = 20000
	var trials []float64
	for t := 0; t < 5; t++ {
		start := time.Now()
		for i := 0; i < n; i++ {
			syscall.Getxattr(path, opencode.DefaultXattrName, buf)
		}
		trials = append(trials, float64(time.Since(start))/n)
	}
	return MedianFloat(trials)
}
