package bench

import (
	"fmt"
	"strings"
	"time"
)

// A Row is one line of the results table.
type Row struct {
	Workload string  // what ran
	Sstar    string  // sstar's median
	Base     string  // the baseline's median, if any
	Versus   string  // what the baseline is
	Ratio    string  // sstar / baseline, or the factor a budget speaks of
	CPU      string  // ratio of the medians of user+system CPU time, for whole processes
	Budget   *Budget // the budget checked on this row, if any
}

// A Report is everything one run of the harness measured.
type Report struct {
	Machine Machine
	Command string // how the harness was run
	Quick   bool
	Params  Params
	Rounds  map[string]int // timed runs per command, by workload group
	// EvBenchtime is the -benchtime of the per-event Go benchmark runs.
	EvBenchtime string
	// ComputeOps and ComputeCount are the -benchtime and -count of
	// BenchmarkCompute.
	ComputeOps   string
	ComputeCount int
	Rows         []Row
	Budgets      []*Budget
	Micro        []*Micro
	Syscalls     []SyscallSection
	Notes        []string
	Elapsed      time.Duration
}

// A SyscallSection is one strace comparison.
type SyscallSection struct {
	Title        string
	A, B         string // names of the two runs
	TotalA       int
	TotalB       int
	Units        int    // units of work the difference is divided by
	Unit         string // "module", "run"
	Diffs        []SyscallDiff
	SyscallNS    float64 // measured cost of one cheap system call, ns (0 if not measured)
	SyscallWhich string
}

// Missed reports whether any budget failed.
func (r *Report) Missed() bool { return Missed(r.Budgets) }

// Undecided reports whether any budget was neither met nor missed
// beyond the run's noise.
func (r *Report) Undecided() bool { return Undecided(r.Budgets) }

// Table renders the results table as Markdown.
func (r *Report) Table() string {
	rows := [][]string{}
	for _, row := range r.Rows {
		limit, result := "", ""
		if b := row.Budget; b != nil {
			limit, result = b.Limit, b.Status.String()
			if b.Why != "" {
				result += ": " + b.Why
			}
		}
		rows = append(rows, []string{row.Workload, row.Sstar, row.Base, row.Versus, row.Ratio, row.CPU, limit, result})
	}
	return markdownTable([]string{"workload", "sstar", "baseline", "baseline is", "ratio", "CPU ratio", "budget", "result"}, rows)
}

// MicroTable renders the Go micro-benchmarks as Markdown.
func (r *Report) MicroTable() string {
	rows := [][]string{}
	for _, m := range r.Micro {
		ns, _ := m.Metric("ns/op")
		row := []string{strings.TrimPrefix(m.Pkg, modulePath+"/"), m.Name, formatNS(ns), "", ""}
		if v, ok := m.Metric("B/op"); ok {
			row[3] = fmt.Sprintf("%g", v)
		}
		if v, ok := m.Metric("allocs/op"); ok {
			row[4] = fmt.Sprintf("%g", v)
		}
		var extra []string
		for _, u := range m.Units() {
			if u == "ns/op" || u == "B/op" || u == "allocs/op" {
				continue
			}
			extra = append(extra, fmt.Sprintf("%g %s", m.Metrics[u], u))
		}
		row = append(row, strings.Join(extra, ", "))
		rows = append(rows, row)
	}
	return markdownTable([]string{"package", "benchmark", "time/op", "B/op", "allocs/op", "other"}, rows)
}

// BudgetSummary renders one line per budget.
func (r *Report) BudgetSummary() string {
	var b strings.Builder
	for _, bu := range r.Budgets {
		fmt.Fprintf(&b, "- %s %s: %s (budget %s)", bu.Status, bu.Name, bu.Measured, bu.Limit)
		if bu.Why != "" {
			fmt.Fprintf(&b, " — %s", bu.Why)
		}
		b.WriteString("\n")
	}
	return b.String()
}

const modulePath = "github.com/sstar-project/sstar"

// Markdown renders the whole report: BENCHMARKS.md.
func (r *Report) Markdown() string {
	var b strings.Builder
	m := r.Machine
	b.WriteString("# Benchmarks\n\n")
	fmt.Fprintf(&b, "Written by `%s` on %s; do not edit, run it again. ", r.Command, m.Date.UTC().Format("2006-01-02 15:04 MST"))
	if r.Quick {
		b.WriteString("**Quick mode: fewer runs and smaller workloads, for development only; the budgets are checked but the numbers are rough.** ")
	}
	b.WriteString("How the numbers are made is under [Method](#method); what they mean, and what was done about the budgets, is in [docs/performance.md](docs/performance.md).\n\n")

	b.WriteString("## Machine\n\n")
	fmt.Fprintf(&b, "- CPU: %s; `nproc`: %d; %s\n", m.CPU, m.NProc, m.Kernel)
	fmt.Fprintf(&b, "- %s; go.starlark.net %s; sstar %s\n", m.Go, m.Starlark, m.Commit)
	if m.Python != "" {
		fmt.Fprintf(&b, "- %s\n", m.Python)
	} else {
		b.WriteString("- python3: not found (the CPython comparisons were skipped)\n")
	}
	fmt.Fprintf(&b, "- mitigations (/sys/devices/system/cpu/vulnerabilities): %s. Where one says \"seccomp\", sstar's filter turns it on for sstar's process only, which can cost CPU-bound code a few per cent; the whole-process compute row shows that, the in-process one cannot.\n", m.Speculation)
	fmt.Fprintf(&b, "- load average (1, 5, 15 min) before: %s; after: %s; the harness took %s\n\n", m.LoadStart, m.LoadEnd, r.Elapsed.Round(time.Second))

	b.WriteString("## Results\n\n")
	b.WriteString("Medians of whole-process wall time over interleaved runs (± is half the interquartile range, as a share of the median), unless a row says otherwise. Ratios are sstar ÷ baseline (below 1, sstar is faster); for sstar against the plain command, the median over rounds of the two runs' ratio within each round, followed by a distribution-free interval for it (at least 90%: two order statistics of the per-round ratios). A budget on such a ratio passes when the whole interval is within it, fails when the whole interval is over it, and is otherwise UNRESOLVED: the run was too noisy to tell. The noise control row runs the plain command against itself in the same rounds; its distance from 1.000× is what the machine's noise alone does to a ratio. The budgets are checked on wall time; \"CPU ratio\" is the same comparison of user+system CPU time, less disturbed by other tenants of a shared machine (it counts the Go garbage collector's work on other cores too). The rows \"in one process\" come from `BenchmarkCompute` (internal/bench): rounds of the same script run plainly and through sstar's host in turn in one process, so they show what the host adds per round without process start-up, another binary's code layout, or load between two processes.\n\n")
	b.WriteString(r.Table())
	b.WriteString("\n## Budgets\n\n")
	b.WriteString(r.BudgetSummary())

	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes on this run\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}

	for _, s := range r.Syscalls {
		fmt.Fprintf(&b, "\n## System calls: %s\n\n", s.Title)
		fmt.Fprintf(&b, "Counted with `strace -f -c` (one run each): %s made %d system calls, %s %d", s.A, s.TotalA, s.B, s.TotalB)
		if s.Units > 1 {
			fmt.Fprintf(&b, "; %+.1f per %s", float64(s.TotalA-s.TotalB)/float64(s.Units), s.Unit)
		}
		b.WriteString(".")
		if s.SyscallNS > 0 {
			fmt.Fprintf(&b, " One %s costs %s here (measured in the harness's process, without seccomp).", s.SyscallWhich, formatNS(s.SyscallNS))
		}
		b.WriteString("\n\n")
		if len(s.Diffs) > 0 {
			rows := [][]string{}
			for _, d := range s.Diffs {
				rows = append(rows, []string{d.Name, fmt.Sprint(d.A), fmt.Sprint(d.B), fmt.Sprintf("%+.2f", d.PerUnit)})
			}
			b.WriteString(markdownTable([]string{"system call", s.A, s.B, "difference per " + s.Unit}, rows))
		}
	}

	b.WriteString("\n## Go micro-benchmarks\n\n")
	b.WriteString("`go test -run '^$' -bench . -benchmem` over every package; medians over `-count` runs.\n\n")
	if len(r.Micro) == 0 {
		b.WriteString("None ran (see the notes).\n")
	} else {
		b.WriteString(r.MicroTable())
	}

	b.WriteString("\n## Method\n\n")
	b.WriteString(r.method())
	return b.String()
}

func (r *Report) method() string {
	p := r.Params
	var b strings.Builder
	fmt.Fprintf(&b, `- Both interpreters are built in the same run with the same Go toolchain, both static (`+"`CGO_ENABLED=0`"+`; by default the plain command links libc through its REPL's dependencies, which would slow its start-up): sstar from this tree (`+"`go build ./cmd/sstar`"+`), and the plain `+"`starlark`"+` command of go.starlark.net at the version in go.mod (`+"`go build ./cmd/starlark`"+` in that module's directory, with its own go.sum), which is the same interpreter with none of sstar's hardening. Each is timed as a copy of what the linker wrote (written with write(2), as an installed program is): on this machine a program run from the linker's own output file starts up to 10%% slower, and the larger program more so.
- The workloads are generated into a fresh temporary directory; every Starlark file is valid in both dialects, and each run is checked for its expected output (a failing run is never timed).
- Each comparison runs its commands once untimed (warm-up and output check), then %s rounds, interleaved: round r starts with the r-th command, so drift of this shared machine falls on every command alike. The tables show medians. A ratio against the plain command is the median of the per-round ratios (the two runs of a round are adjacent in time, so a burst of load is one outlier instead of a shift of one median); other ratios are ratios of medians.
- start-up: a one-line script (%d rounds). compute: loops, small function calls, dicts, strings, comprehensions and sorting, calibrated to about %s with the plain command (%d rounds of the script's loop), run by sstar, the plain command and the plain command again (the noise control) in every round; then `+"`BenchmarkCompute`"+` (`+"`-benchtime %s -count %d`"+`: one op is one round of the script plainly, with the guarded universe, and through interp.Host, in turn; its ratios are medians of per-op ratios). loading: one script that loads %d small modules, stamped with `+"`sstar trust`"+`; the plain command loads the same files without verification (%d rounds); then the same with the modules at mode 0755, where the kernel's exec check (AT_EXECVE_CHECK) does its whole work instead of refusing at the permission bits.
- events: %d calls of `+"`sys.audit`"+` from a Starlark (or Python) loop, with no hook, with one Go hook (sstar's JSON Lines sink, `+"`--audit-log`"+` to a file in the workload directory, removed before each run), with one no-op Starlark (or Python) hook. Per-event costs subtract the same loop run empty, in the same interpreter. The CPython sink is a Python hook that writes one JSON line per event with one write(2), as sstar's sink does.
- The "one Go hook vs CPython" budget compares what one event costs with one hook installed: for sstar, Go code raising an event with one Go hook (`+"`BenchmarkRaise/1go`"+`, as every builtin raises its events); for CPython, `+"`sys.audit`"+` called from Python with one no-op Python hook, minus the empty loop, timed inside one process. The same call from a Starlark script (`+"`BenchmarkScriptEvent`"+` in internal/bench, loop subtracted) is shown beside it. These run side by side: %d rounds, each of one run of both Go benchmarks (`+"`-benchtime %s`"+`) and one CPython process (3 trials of 200,000 calls each); the figures are medians over the rounds, and so is the no-hook budget's.
- file work: %d reads of %d-byte files with `+"`fs.read`"+`, and the same with CPython's `+"`open().read()`"+` with no hook, a no-op hook and the JSON-line hook.
- System calls are counted with `+"`strace -f -c`"+` when strace is installed; that run is separate from the timed ones.
- Run it: `+"`make bench`"+` (full) or `+"`make bench BENCHFLAGS=-quick`"+` (a rough check in under a minute). The harness is internal/bench/cmd/sstarbench; it exits 1 when a budget is missed, 3 when none is missed but one is unresolved, 2 when it could not measure.
`, roundsSummary(r.Rounds), r.Rounds["startup"], FormatDuration(computeTarget(r.Quick)), p.ComputeRounds, r.ComputeOps, r.ComputeCount, p.Modules, r.Rounds["loading"], p.Events, r.Rounds["per-event"], r.EvBenchtime, p.Files, p.FileSize)
	return b.String()
}

func roundsSummary(m map[string]int) string {
	var parts []string
	for _, k := range []string{"startup", "compute", "loading", "events", "files"} {
		if n, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	return strings.Join(parts, ", ")
}

// markdownTable renders a Markdown table whose columns are padded to line
// up in a terminal too.
func markdownTable(header []string, rows [][]string) string {
	esc := func(c string) string { return strings.ReplaceAll(c, "|", `\|`) }
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len([]rune(esc(h)))
	}
	for _, row := range rows {
		for i, c := range row {
			if i < len(width) && len([]rune(esc(c))) > width[i] {
				width[i] = len([]rune(esc(c)))
			}
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i := range header {
			c := ""
			if i < len(cells) {
				c = esc(cells[i])
			}
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-len([]rune(c))) + " |")
		}
		b.WriteString("\n")
	}
	line(header)
	b.WriteString("|")
	for i := range header {
		b.WriteString(strings.Repeat("-", width[i]+2) + "|")
	}
	b.WriteString("\n")
	for _, row := range rows {
		line(row)
	}
	return b.String()
}
