package bench

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// perEvent measures what one event costs, side by side: rounds of the
// Go benchmarks of raising an event (BenchmarkRaise in audit, and
// BenchmarkScriptEvent here) alternate with CPython timing sys.audit in
// one process, so that both meet the same state of the machine. Each
// figure is the median over the rounds.
func (h *harness) perEvent() error {
	type testBin struct{ pkg, bin, bench string }
	tests := []testBin{
		{"./audit", "", "^BenchmarkRaise$"},
		{"./internal/bench", "", "^Benchmark(ScriptEvent|RaiseCallSite)$"},
	}
	for i, t := range tests {
		bin, err := h.testBinary(t.pkg)
		if err != nil {
			return err
		}
		tests[i].bin = bin
	}
	rounds := h.plan.evRounds
	h.logf("  %d rounds of BenchmarkRaise, BenchmarkScriptEvent and CPython's sys.audit", rounds)
	var all bytes.Buffer
	var loops, nones, hooks []float64
	for r := 0; r < rounds; r++ {
		for _, t := range tests {
			cmd := exec.Command(t.bin, "-test.run", "^$", "-test.bench", t.bench, "-test.benchmem", "-test.benchtime", h.plan.evBenchtime)
			cmd.Dir = filepath.Join(h.cfg.Root, strings.TrimPrefix(t.pkg, "./"))
			out, err := output(cmd)
			if err != nil {
				return err
			}
			all.WriteString(out + "\n")
		}
		if h.python != "" {
			// 200,000 calls a trial, 3 trials: about as long as one
			// Go benchmark run.
			l, n, k, err := h.pyInProcess(200_000, 3)
			if err != nil {
				return err
			}
			loops, nones, hooks = append(loops, l), append(nones, n), append(hooks, k)
		}
	}
	ms, err := ParseGoBench(&all)
	if err != nil {
		return err
	}
	h.eventMicro = ms
	if h.python != "" {
		h.pyLoop, h.pyNone, h.pyHook, h.havePy = MedianFloat(loops), MedianFloat(nones), MedianFloat(hooks), true
	}
	return nil
}

// pyInProcess runs CPython's in-process timing: ns per iteration of an
// empty loop, of sys.audit with no hook, with one no-op hook.
func (h *harness) pyInProcess(n, trials int) (loop, none, hook float64, err error) {
	_, _, out, err := RunOnce(Command{Name: "python in-process", Argv: []string{h.python, "-I", PyInProcess, strconv.Itoa(n), strconv.Itoa(trials)}, Dir: h.wl, Env: h.env})
	if err != nil {
		return 0, 0, 0, err
	}
	f := strings.Fields(string(out))
	if len(f) != 3 {
		return 0, 0, 0, fmt.Errorf("python in-process timing printed %q", out)
	}
	var v [3]float64
	for i := range v {
		if v[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return 0, 0, 0, err
		}
	}
	return v[0], v[1], v[2], nil
}

// micro runs the Go micro-benchmarks of every package, and CPython's
// in-process sys.audit timing for the per-event comparison.
func (h *harness) micro() error {
	if !h.cfg.Micro {
		h.note("Go micro-benchmarks not run (-micro=false).")
		return nil
	}
	// The features' benchmarks ran in their own step, with rounds of
	// their own (features).
	args := []string{"test", "-run", "^$", "-bench", ".", "-skip", featureSkip(), "-benchmem", "-count", strconv.Itoa(h.plan.goCount), "-benchtime", h.plan.goBenchtime, "./..."}
	h.logf("  go %s", strings.Join(args, " "))
	cmd := h.goCmd(h.cfg.Root, nil, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	os.WriteFile(filepath.Join(h.work, "gobench.txt"), out.Bytes(), 0o644)
	ms, err := ParseGoBench(bytes.NewReader(out.Bytes()))
	if err != nil {
		return err
	}
	h.rep.Micro = ms
	if runErr != nil {
		var failed []string
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, "FAIL") || strings.HasPrefix(l, "--- FAIL") {
				failed = append(failed, strings.TrimSpace(l))
			}
		}
		h.note("`go test -bench` failed (%v): %s", runErr, strings.Join(failed, "; "))
	}
	return nil
}

var (
	reRaise0    = regexp.MustCompile(`^BenchmarkRaise/0hooks?$`)
	reRaise1Go  = regexp.MustCompile(`^BenchmarkRaise/1go$`)
	reSiteOpen0 = regexp.MustCompile(`^BenchmarkRaiseCallSite/thread-open/0hooks$`)
	reSiteOpen1 = regexp.MustCompile(`^BenchmarkRaiseCallSite/thread-open/1go$`)
	reScriptFor = func(sub string) *regexp.Regexp { return regexp.MustCompile(`^BenchmarkScriptEvent/` + sub + `$`) }
)

// eventRows adds the per-event rows and the budgets that come from the
// micro-benchmarks and CPython's in-process timing.
func (h *harness) eventRows() error {
	raise0 := FindMicro(h.eventMicro, reRaise0)
	raise1 := FindMicro(h.eventMicro, reRaise1Go)
	loop := FindMicro(h.eventMicro, reScriptFor("loop"))
	script1 := FindMicro(h.eventMicro, reScriptFor("1go"))

	pyLoop, pyNone, pyHook, havePy := h.pyLoop, h.pyNone, h.pyHook, h.havePy

	// No hooks.
	b0 := h.budget(NoHookRaise(Budgets[RaiseNoHooks], raise0))
	row := Row{Workload: "event raised by Go, no hooks (BenchmarkRaise/0hooks)", Sstar: b0.Measured, Budget: b0}
	if havePy {
		row.Base, row.Versus = formatNS(pyNone-pyLoop), "CPython sys.audit, no hook"
	}
	h.rep.Rows = append(h.rep.Rows, row)
	// The same where sstar raises its events: a builtin's call site.
	// Shown, not budgeted: the budget is the dispatcher's; here a dynamic
	// path is boxed into a starlark.String and the thread's dispatcher is
	// looked up, next to a read that costs microseconds.
	site0 := FindMicro(h.eventMicro, reSiteOpen0)
	bs := NoHookRaise(Budgets[RaiseNoHooks], site0)
	h.rep.Rows = append(h.rep.Rows, Row{Workload: "event raised as fs.read does, no hooks (BenchmarkRaiseCallSite/thread-open/0hooks)", Sstar: bs.Measured})

	// One Go hook against CPython's one Python hook.
	ns1 := math.NaN()
	if v, ok := raise1.Metric("ns/op"); ok {
		ns1 = v
	}
	var b1 Budget
	switch {
	case raise1 == nil:
		b1 = AtLeastFactor(Budgets[GoHook], math.NaN(), pyHook-pyLoop)
		b1.Why = "BenchmarkRaise/1go did not run"
	case !havePy:
		b1 = Skip(Budgets[GoHook], "python3 not found")
	default:
		b1 = AtLeastFactor(Budgets[GoHook], ns1, pyHook-pyLoop)
	}
	row = Row{Workload: "event raised by Go, one Go hook (BenchmarkRaise/1go)", Sstar: cellNS(ns1, raise1), Budget: h.budget(b1)}
	if havePy {
		row.Base, row.Versus = formatNS(pyHook-pyLoop), "CPython sys.audit, one no-op Python hook"
		row.Ratio = ratioCell(ns1 / (pyHook - pyLoop))
	}
	h.rep.Rows = append(h.rep.Rows, row)

	// The same at a builtin's call site.
	if m := FindMicro(h.eventMicro, reSiteOpen1); m != nil {
		v, _ := m.Metric("ns/op")
		row := Row{Workload: "event raised as fs.read does, one Go hook (BenchmarkRaiseCallSite/thread-open/1go)", Sstar: cellNS(v, m)}
		if havePy {
			row.Base, row.Versus, row.Ratio = formatNS(pyHook-pyLoop), "CPython sys.audit, one no-op Python hook", ratioCell(v/(pyHook-pyLoop))
		}
		h.rep.Rows = append(h.rep.Rows, row)
	}

	// The same from a script.
	for _, sub := range []struct{ name, what string }{{"0hooks", "no hook"}, {"1go", "one no-op Go hook"}, {"1starlark", "one no-op Starlark hook"}} {
		m := FindMicro(h.eventMicro, reScriptFor(sub.name))
		if m == nil || loop == nil {
			continue
		}
		v, _ := m.Metric("ns/op")
		l, _ := loop.Metric("ns/op")
		row := Row{Workload: "sys.audit from Starlark, " + sub.what + " (BenchmarkScriptEvent/" + sub.name + ")", Sstar: cellNS(v-l, m)}
		if havePy {
			py := pyNone - pyLoop
			versus := "CPython sys.audit, no hook"
			if sub.name != "0hooks" {
				py, versus = pyHook-pyLoop, "CPython sys.audit, one no-op Python hook"
			}
			row.Base, row.Versus, row.Ratio = formatNS(py), versus, ratioCell((v-l)/py)
		}
		h.rep.Rows = append(h.rep.Rows, row)
	}
	// Verification of one module, from opencode's own benchmarks.
	for _, size := range []string{"1KiB", "1KiB-exec"} {
		v := FindMicro(h.rep.Micro, regexp.MustCompile(`^BenchmarkVerify/`+size+`$`))
		r := FindMicro(h.rep.Micro, regexp.MustCompile(`^BenchmarkPlainRead/`+size+`$`))
		if v == nil || r == nil {
			continue
		}
		vn, _ := v.Metric("ns/op")
		rn, _ := r.Metric("ns/op")
		h.rep.Rows = append(h.rep.Rows, Row{
			Workload: "verify one " + size + " module (opencode BenchmarkVerify/" + size + ")",
			Sstar:    cellNS(vn, v), Base: cellNS(rn, r), Versus: "os.ReadFile (BenchmarkPlainRead/" + size + ")",
			Ratio: ratioCell(vn / rn),
		})
	}
	if script1 == nil {
		h.note("BenchmarkScriptEvent (internal/bench) did not run: the script-level per-event rows are missing.")
	}
	return nil
}
