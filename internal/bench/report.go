package bench

import (
	_ "embed"
	"fmt"
	"strings"
	"text/template"
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
	// ComputeTarget is what the compute script was calibrated to take
	// with the plain command.
	ComputeTarget time.Duration
	// FeatureRuns lists the features' benchmarks, as run once a round:
	// "`BenchmarkJSONL` (audit/jsonl, `-benchtime 1s`)".
	FeatureRuns []string
	Rows        []Row
	Budgets     []*Budget
	Micro       []*Micro
	Syscalls    []SyscallSection
	Notes       []string
	Elapsed     time.Duration
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

//go:embed report.md.tmpl
var reportTemplate string

// markdown is BENCHMARKS.md: its prose is the template report.md.tmpl,
// its tables come from the Report's methods.
var markdown = template.Must(template.New("report.md.tmpl").Funcs(template.FuncMap{
	"duration": FormatDuration,
	"ns":       formatNS,
	"utc":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 MST") },
	"seconds":  func(d time.Duration) time.Duration { return d.Round(time.Second) },
	"perUnit":  func(s SyscallSection) float64 { return float64(s.TotalA-s.TotalB) / float64(s.Units) },
	"syscallTable": func(s SyscallSection) string {
		rows := [][]string{}
		for _, d := range s.Diffs {
			rows = append(rows, []string{d.Name, fmt.Sprint(d.A), fmt.Sprint(d.B), fmt.Sprintf("%+.2f", d.PerUnit)})
		}
		return markdownTable([]string{"system call", s.A, s.B, "difference per " + s.Unit}, rows)
	},
}).Parse(reportTemplate))

// Markdown renders the whole report: BENCHMARKS.md.
func (r *Report) Markdown() string {
	var b strings.Builder
	if err := markdown.Execute(&b, r); err != nil {
		// The template is fixed and checked by the tests: a failure is a
		// bug in it, not in the run.
		panic(fmt.Sprintf("bench: rendering BENCHMARKS.md: %v", err))
	}
	return b.String()
}

// Limits lists every budget in Budgets, for the report.
func (r *Report) Limits() []Limit { return Budgets[:] }

// RoundsSummary lists the timed rounds per workload group.
func (r *Report) RoundsSummary() string {
	var parts []string
	for _, k := range []string{"startup", "compute", "loading", "events", "files"} {
		if n, ok := r.Rounds[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	return strings.Join(parts, ", ")
}
