package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// A harness is one run: where its files are, what it found, and the
// report it fills in.
type harness struct {
	cfg    Config
	plan   plan
	work   string // work directory
	wl     string // workload directory
	sstar  string
	plain  string
	parent string // waitparent: a Go process that runs another and waits
	python string // real CPython executable, or ""
	strace string
	env    []string
	rep    *Report
	// Per-event costs, measured side by side (perEvent).
	eventMicro []*Micro // BenchmarkRaise and BenchmarkScriptEvent, medians over rounds
	pyLoop     float64  // CPython, ns per iteration of an empty loop
	pyNone     float64  // ... calling sys.audit with no hook
	pyHook     float64  // ... with one no-op Python hook
	havePy     bool
	// The features' benchmarks over rounds (features): results, and
	// those that skipped or failed.
	featureMicro []*Micro
	featureNo    []NoResult
	testBins     map[string]bool // test binaries built, by path
}

// Run builds both interpreters, generates the workloads, runs every
// comparison and returns the report. An error means the harness could
// not do its job (a build failed, a workload failed); a missed budget is
// not an error but Report.Missed.
func Run(cfg Config) (*Report, error) {
	start := time.Now()
	h := &harness{cfg: cfg, plan: makePlan(cfg.Quick)}
	h.rep = &Report{Command: cfg.Command, Quick: cfg.Quick, Rounds: h.plan.rounds, Params: h.plan.params,
		EvBenchtime: h.plan.evBenchtime, ComputeOps: h.plan.computeOps, ComputeCount: h.plan.computeCount,
		ComputeTarget: computeTarget(cfg.Quick)}
	h.rep.Machine = Machine{Date: start, NProc: nproc(), CPU: cpuModel(), Kernel: kernel(), LoadStart: loadavg(), Speculation: speculation()}

	work, err := os.MkdirTemp("", "sstarbench-")
	if err != nil {
		return nil, err
	}
	h.work, h.wl = work, filepath.Join(work, "w")
	if cfg.Keep {
		h.logf("work directory %s (kept)", work)
	} else {
		defer os.RemoveAll(work)
	}
	h.env = CleanEnv

	steps := []struct {
		name string
		fn   func() error
	}{
		{"build", h.build},
		{"workloads", h.workloads},
		{"start-up", h.startup},
		{"start-up, monitored", h.monitored},
		{"compute", h.compute},
		{"loading", h.loading},
		{"events", h.events},
		{"file work", h.files},
		{"system calls", h.syscalls},
		{"per-event costs", h.perEvent},
		{"sinks and catalogs", h.features},
		{"micro-benchmarks", h.micro},
		{"budgets", h.eventRows},
		{"budgets of the sinks and catalogs", h.featureRows},
	}
	for _, s := range steps {
		h.logf("%s", s.name)
		if err := s.fn(); err != nil {
			return h.rep, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	h.rep.Machine.LoadEnd = loadavg()
	h.rep.Elapsed = time.Since(start)
	return h.rep, nil
}

func (h *harness) logf(format string, args ...any) {
	if h.cfg.Log != nil {
		fmt.Fprintf(h.cfg.Log, "sstarbench: "+format+"\n", args...)
	}
}

// budget records b and returns it, for a row to point at.
func (h *harness) budget(b Budget) *Budget {
	p := &b
	h.rep.Budgets = append(h.rep.Budgets, p)
	return p
}

func (h *harness) note(format string, args ...any) {
	h.rep.Notes = append(h.rep.Notes, fmt.Sprintf(format, args...))
}

// cmd is a command run in the workload directory with the clean
// environment.
func (h *harness) cmd(name string, want string, argv ...string) Command {
	return Command{Name: name, Argv: argv, Dir: h.wl, Env: h.env, Want: want}
}
