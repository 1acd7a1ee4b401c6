package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// pair times sstar against the plain command and adds the row. A nil
// budget adds the row without one. With control, the plain command also
// runs a second time in every round, and a row shows it against itself:
// identical programs, so its ratio's distance from 1 and its interval are
// the noise of this machine at this workload.
func (h *harness) pair(group, workload string, sstar, plain Command, control bool, budget func(Estimate) Budget) (Estimate, error) {
	rounds := h.plan.rounds[group]
	cmds := []Command{sstar, plain}
	if control {
		again := plain
		again.Name = "plain (again)"
		cmds = append(cmds, again)
	}
	h.logf("  %s: %d rounds of %d commands", workload, rounds, len(cmds))
	s, err := Interleave(cmds, rounds, nil)
	if err != nil {
		return Estimate{}, err
	}
	wall := PairedEstimate(s[0], s[1], false)
	row := Row{
		Workload: workload, Sstar: timeCell(s[0]), Base: timeCell(s[1]),
		Versus: "plain starlark", Ratio: wall.String(),
		CPU: PairedEstimate(s[0], s[1], true).String(),
	}
	if budget != nil {
		row.Budget = h.budget(budget(wall))
	}
	h.rep.Rows = append(h.rep.Rows, row)
	if control {
		h.rep.Rows = append(h.rep.Rows, Row{
			Workload: "noise control: the plain command against itself, interleaved with the above",
			Sstar:    timeCell(s[2]), Base: timeCell(s[1]), Versus: "plain starlark",
			Ratio: PairedEstimate(s[2], s[1], false).String(),
			CPU:   PairedEstimate(s[2], s[1], true).String(),
		})
	}
	return wall, nil
}

// startup times a one-line script, with a noise control: a single
// start-up here scatters by a third, and the control row says how far
// from 1.000× the machine alone puts a ratio of two runs of one program.
func (h *harness) startup() error {
	_, err := h.pair("startup", "start-up: one-line script",
		h.cmd("sstar", WantStartup, h.sstar, StartupScript),
		h.cmd("plain", WantStartup, h.plain, StartupScript), true,
		func(e Estimate) Budget { return MaxRatioCI(Budgets[Startup], e) })
	return err
}

// monitored times runs the crash monitor supervises (two processes: the
// monitor and the run), a one-line script with --max-memory (which needs
// the monitor and nothing else) and with --audit-log (the monitor and a
// log, written and synced), against the plain command started by a Go
// parent that waits for it (waitparent: what two Go process starts in
// series cost at least) and against the plain command alone;
// interleaved, the log removed before each run. No budget: the start-up
// budget is for a run with nothing to record, which is not supervised;
// docs/performance.md argues what the monitor is worth.
func (h *harness) monitored() error {
	log := filepath.Join(h.work, "monitored.jsonl")
	cmds := []Command{
		h.cmd("sstar monitored", WantStartup, h.sstar, "--max-memory", "4GiB", StartupScript),
		h.cmd("sstar monitored, log", WantStartup, h.sstar, "--audit-log", log, StartupScript),
		h.cmd("plain under a parent", WantStartup, h.parent, h.plain, StartupScript),
		h.cmd("plain", WantStartup, h.plain, StartupScript),
	}
	rounds := h.plan.rounds["monitor"]
	h.logf("  start-up, monitored: %d rounds of %d commands", rounds, len(cmds))
	s, err := Interleave(cmds, rounds, func(c Command) {
		if c.Name == "sstar monitored, log" {
			os.Remove(log)
		}
	})
	if err != nil {
		return err
	}
	row := func(workload string, a, b int, versus string) Row {
		return Row{Workload: workload, Sstar: timeCell(s[a]), Base: timeCell(s[b]), Versus: versus,
			Ratio: PairedEstimate(s[a], s[b], false).String(), CPU: PairedEstimate(s[a], s[b], true).String()}
	}
	parent, plain := "plain starlark under a waiting Go parent (waitparent)", "plain starlark"
	h.rep.Rows = append(h.rep.Rows,
		row("start-up, monitored: one-line script, --max-memory 4GiB (the monitor and the run)", 0, 2, parent),
		row("start-up, monitored, against the plain command alone (the same runs)", 0, 3, plain),
		row("start-up, monitored, with --audit-log (the same, and a log written and synced)", 1, 2, parent),
		row("a waiting Go parent alone: the plain command under it (the same runs)", 2, 3, plain),
	)
	return nil
}

// compute times the CPU-bound script in whole processes, with a noise
// control, then what sstar's host adds per round inside one process
// (BenchmarkCompute), where neither process start-up nor another binary's
// code layout nor a burst of load between two processes can show. The
// budget is judged on the latter, which resolves a fraction of a percent,
// unless the whole processes show a miss by themselves
// (MaxRatioInProcess).
func (h *harness) compute() error {
	whole, err := h.pair("compute", fmt.Sprintf("compute: CPU-bound script (~%s)", FormatDuration(computeTarget(h.cfg.Quick))),
		h.cmd("sstar", WantCompute, h.sstar, ComputeScript),
		h.cmd("plain", WantCompute, h.plain, ComputeScript), true, nil)
	if err != nil {
		return err
	}
	bin, err := h.testBinary("./internal/bench")
	if err != nil {
		return err
	}
	h.logf("  BenchmarkCompute: %d runs of %s", h.plan.computeCount, h.plan.computeOps)
	cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", "^BenchmarkCompute$", "-test.benchmem",
		"-test.benchtime", h.plan.computeOps, "-test.count", strconv.Itoa(h.plan.computeCount))
	cmd.Dir = filepath.Join(h.cfg.Root, "internal", "bench")
	out, err := output(cmd)
	if err != nil {
		return err
	}
	ms, err := ParseGoBench(strings.NewReader(out))
	if err != nil {
		return err
	}
	m := FindMicro(ms, regexp.MustCompile(`^BenchmarkCompute$`))
	var v [7]float64
	for i, unit := range []string{"host-ns/round", "plain-ns/round", "host/plain", "guarded/plain", "host/plain-lo", "host/plain-hi", "host/plain-coverage"} {
		var ok bool
		if v[i], ok = m.Metric(unit); !ok {
			return fmt.Errorf("BenchmarkCompute did not report %s:\n%s", unit, tail(out, 2000))
		}
	}
	hostNS, plainNS, guarded := v[0], v[1], v[3]
	in := Estimate{Median: v[2], Lo: v[4], Hi: v[5], Coverage: v[6]}
	row := Row{Workload: "compute in one process: a round through sstar's host (BenchmarkCompute)",
		Sstar: formatNS(hostNS), Base: formatNS(plainNS), Versus: "plain starlark, same process", Ratio: in.String(),
		Budget: h.budget(MaxRatioInProcess(Budgets[Compute], in, whole))}
	h.rep.Rows = append(h.rep.Rows, row,
		Row{Workload: "compute in one process: a round with the guarded universe only",
			Versus: "plain starlark, same process", Ratio: ratioCell(guarded)},
	)
	return nil
}

func (h *harness) loading() error {
	_, err := h.pair("loading", fmt.Sprintf("loading: %d stamped modules", h.rep.Params.Modules),
		h.cmd("sstar", WantLoad, h.sstar, LoadScript),
		h.cmd("plain", WantLoad, h.plain, LoadScript), false,
		func(e Estimate) Budget { return MaxRatioCI(Budgets[Loading], e) })
	if err != nil {
		return err
	}
	// The same modules with exec permission: the kernel's exec check
	// (AT_EXECVE_CHECK) then does its whole work instead of refusing at
	// the permission bits, as it must for code where
	// SECBIT_EXEC_RESTRICT_FILE is enforced.
	_, err = h.pair("loading", fmt.Sprintf("loading: %d stamped modules, mode 0755", h.rep.Params.Modules),
		h.cmd("sstar", WantLoad, h.sstar, LoadExecScript),
		h.cmd("plain", WantLoad, h.plain, LoadExecScript), false,
		nil)
	return err
}

// events times sys.audit loops in sstar and CPython, whole process.
func (h *harness) events() error {
	n := h.rep.Params.Events
	sink := filepath.Join(h.work, "audit.jsonl")
	pysink := filepath.Join(h.work, "py-audit.jsonl")
	cmds := []Command{
		h.cmd("sstar loop", WantEvents, h.sstar, LoopScript),
		h.cmd("sstar none", WantEvents, h.sstar, EventsScript),
		h.cmd("sstar sink", WantEvents, h.sstar, "--audit-log", sink, EventsScript),
		h.cmd("sstar hook", WantEvents, h.sstar, HookScript),
	}
	if h.python != "" {
		cmds = append(cmds,
			h.cmd("python loop", WantEvents, h.python, "-I", PyLoop),
			h.cmd("python none", WantEvents, h.python, "-I", PyEvents),
			h.cmd("python sink", WantEvents, h.python, "-I", PySink, pysink),
			h.cmd("python hook", WantEvents, h.python, "-I", PyHook),
		)
	}
	h.logf("  %d events: %d rounds of %d commands", n, h.plan.rounds["events"], len(cmds))
	s, err := Interleave(cmds, h.plan.rounds["events"], removeLogs(sink, pysink))
	if err != nil {
		return err
	}
	if lines := countLines(sink); lines < n {
		return fmt.Errorf("the JSON Lines sink recorded %d lines for %d events", lines, n)
	}
	per := func(x, loop *Sample) float64 {
		return float64(x.Median()-loop.Median()) / float64(n)
	}
	perCell := func(x, loop *Sample) string {
		return fmt.Sprintf("%s/event (%s)", formatNS(per(x, loop)), timeCell(x))
	}
	label := fmt.Sprintf("%s sys.audit calls, ", thousands(n))
	rows := []struct {
		what, versus string
		sstar        int
	}{
		{"no hook", "CPython, no hook", 1},
		{"one Go hook: JSON Lines sink (--audit-log)", "CPython, Python hook writing JSON lines", 2},
		{"one no-op Starlark hook", "CPython, one no-op Python hook", 3},
	}
	for _, r := range rows {
		row := Row{Workload: label + r.what, Sstar: perCell(s[r.sstar], s[0])}
		if h.python != "" {
			py := s[4+r.sstar] // python none, sink, hook follow its loop in the same order
			row.Base, row.Versus = perCell(py, s[4]), r.versus
			row.Ratio = ratioCell(per(s[r.sstar], s[0]) / per(py, s[4]))
		}
		h.rep.Rows = append(h.rep.Rows, row)
	}
	return nil
}

// removeLogs returns a function for Interleave that removes, before a
// command runs, whichever of the logs it writes: each run starts with an
// empty log, and the last run's log stays to be checked.
func removeLogs(logs ...string) func(Command) {
	return func(c Command) {
		for _, a := range c.Argv {
			for _, l := range logs {
				if a == l {
					os.Remove(l)
				}
			}
		}
	}
}

func countLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte("\n"))
}

// files times fs.read of small files in sstar and open().read() in
// CPython.
func (h *harness) files() error {
	n := h.rep.Params.Files
	sink := filepath.Join(h.work, "audit.jsonl")
	pysink := filepath.Join(h.work, "py-audit.jsonl")
	cmds := []Command{
		h.cmd("sstar", WantRead, h.sstar, FSReadScript),
		h.cmd("sstar sink", WantRead, h.sstar, "--audit-log", sink, FSReadScript),
	}
	if h.python != "" {
		cmds = append(cmds,
			h.cmd("python none", WantRead, h.python, "-I", PyRead),
			h.cmd("python hook", WantRead, h.python, "-I", PyReadHook),
			h.cmd("python sink", WantRead, h.python, "-I", PyReadSink, pysink),
		)
	}
	h.logf("  %d reads: %d rounds of %d commands", n, h.plan.rounds["files"], len(cmds))
	s, err := Interleave(cmds, h.plan.rounds["files"], removeLogs(sink, pysink))
	if err != nil {
		return err
	}
	label := fmt.Sprintf("file work: %s fs.read of %d-byte files, ", thousands(n), h.rep.Params.FileSize)
	add := func(what string, ss *Sample, py *Sample, versus string) {
		row := Row{Workload: label + what, Sstar: "—"}
		if ss != nil {
			row.Sstar = timeCell(ss)
		}
		if py != nil {
			row.Base, row.Versus = timeCell(py), versus
			if ss != nil {
				row.Ratio = ratioCell(Ratio(ss.Median(), py.Median()))
				row.CPU = ratioCell(Ratio(ss.MedianCPU(), py.MedianCPU()))
			}
		}
		h.rep.Rows = append(h.rep.Rows, row)
	}
	if h.python == "" {
		add("no sink", s[0], nil, "")
		add("JSON Lines sink", s[1], nil, "")
		return nil
	}
	add("no sink", s[0], s[2], "CPython open().read(), no hook")
	add("(CPython only)", nil, s[3], "CPython, one no-op Python hook")
	add("JSON Lines sink", s[1], s[4], "CPython, Python hook writing JSON lines")
	return nil
}
