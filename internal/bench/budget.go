package bench

import (
	"fmt"
	"math"
	"strings"
)

// A BudgetID names one of the budgets in Budgets.
type BudgetID int

const (
	RaiseNoHooks   BudgetID = iota // an event raised by Go with no hooks
	GoHook                         // an event with one Go hook, against CPython's with one Python hook
	Startup                        // a one-line script, whole process
	Compute                        // a CPU-bound script, per round in one process
	Loading                        // loading verified modules, whole process
	CatalogLoading                 // loading modules vouched for by a catalog, in one process
	JSONLRate                      // events appended to a JSON Lines audit log
	RELPRate                       // events delivered over RELP, each acknowledged
	JournaldRate                   // entries sent to journald
	PermStartup                    // start-up with a 20-rule policy.allow
	PermFiles                      // 10,000 fs.read with read= declared
)

// A Limit is one budget as the issue states it: what is limited, the
// bound, and what it is measured against.
type Limit struct {
	Name   string // what is limited, as the results name it
	Kind   Kind   // how Bound reads
	Bound  float64
	Versus string // the baseline, for ratios and factors
	Why    string // what is measured, in one sentence, for the report
}

// Kind says how a Limit's Bound reads.
type Kind int

const (
	MaxRatio  Kind = iota // sstar's time ≤ Bound × the baseline's
	MaxNS                 // < Bound ns, and no allocations
	MinFactor             // at least Bound times cheaper than the baseline
	MinRate               // at least Bound events per second
)

// Budgets is every budget `make bench` checks, the one place each is
// stated: the package documentation, the report and the judging
// functions all read it from here.
var Budgets = [...]Limit{
	RaiseNoHooks: {Name: "raise, no hooks", Kind: MaxNS, Bound: 5,
		Why: "an event raised by Go with no hooks installed (audit's BenchmarkRaise/0hooks) costs nanoseconds and allocates nothing"},
	GoHook: {Name: "one Go hook vs CPython", Kind: MinFactor, Bound: 10, Versus: "CPython",
		Why: "an event with one Go hook (BenchmarkRaise/1go) against CPython's sys.audit with one no-op Python hook, in one process each"},
	Startup: {Name: "start-up", Kind: MaxRatio, Bound: 1.25, Versus: "plain",
		Why: "a one-line script, whole processes, against the plain starlark command"},
	Compute: {Name: "compute (per round, in one process)", Kind: MaxRatio, Bound: 1.03, Versus: "plain",
		Why: "a CPU-bound script, a round through sstar's host against the plain interpreter in one process (BenchmarkCompute), unless whole processes alone show a miss"},
	Loading: {Name: "loading", Kind: MaxRatio, Bound: 1.3, Versus: "plain, unverified",
		Why: "a script that loads many small stamped modules, whole processes, against the plain command loading them unverified"},
	CatalogLoading: {Name: "loading, one catalog (in one process)", Kind: MaxRatio, Bound: 1.3, Versus: "plain, unverified",
		Why: "500 modules vouched for by one catalog, its signature checked once per run, loaded through sstar's host with a fresh Opener each time, against the plain host loading them unverified, in turn in one process (interp's BenchmarkLoadCatalog, catalog/plain)"},
	JSONLRate: {Name: "JSON Lines sink", Kind: MinRate, Bound: 500_000,
		Why: "events appended to a JSON Lines audit log by its hook, every one found intact in the file afterwards (audit/jsonl's BenchmarkJSONL)"},
	RELPRate: {Name: "RELP sink", Kind: MinRate, Bound: 20_000,
		Why: "events delivered to a real rsyslogd over RELP, each acknowledged before the next, every one checked to have arrived, the sender and rsyslogd on one CPU (audit/relp's BenchmarkDelivery/relp-one-cpu; needs rsyslogd and its imrelp input; docs/performance.md says why one CPU)"},
	JournaldRate: {Name: "journald sink", Kind: MinRate, Bound: 50_000,
		Why: "entries sent to a journald of the benchmark's own by its native protocol, every one checked to have arrived (audit/journald's BenchmarkJournald; needs root and systemd-journald)"},
	PermStartup: {Name: "permissions: start-up", Kind: MaxRatio, Bound: 1.10, Versus: "without policy.allow",
		Why: "an empty script under a system policy with a 20-rule policy.allow (enforced by sstar and by Landlock) against the same system policy without it, whole processes, in turn (cmd/sstar's BenchmarkPermissions/startup; needs root)"},
	PermFiles: {Name: "permissions: file work", Kind: MaxRatio, Bound: 1.10, Versus: "without policy.allow",
		Why: "10,000 fs.read with read= declared against the same without, whole processes, in turn (cmd/sstar's BenchmarkPermissions/read10k; needs root)"},
}

// String renders the bound: "≤ 1.25× plain", "< 5 ns, 0 allocs",
// "≥ 10× cheaper than CPython", "≥ 500,000 events/s".
func (l Limit) String() string {
	switch l.Kind {
	case MaxNS:
		return fmt.Sprintf("< %g ns, 0 allocs", l.Bound)
	case MinFactor:
		return fmt.Sprintf("≥ %g× cheaper than %s", l.Bound, l.Versus)
	case MinRate:
		return "≥ " + formatRate(l.Bound) + " events/s"
	}
	return fmt.Sprintf("≤ %.2f× %s", l.Bound, l.Versus)
}

// Status is the outcome of a budget check.
type Status int

const (
	Pass    Status = iota // measured and within the budget
	Fail                  // measured and over, or not measured though required
	Skipped               // could not be measured for an accepted reason (no python3)
	// Unresolved: measured, but the run's interval around the
	// measurement holds the limit, so it shows neither a pass nor a miss.
	Unresolved
)

func (s Status) String() string {
	switch s {
	case Pass:
		return "PASS"
	case Fail:
		return "FAIL"
	case Unresolved:
		return "UNRESOLVED"
	}
	return "skipped"
}

// A Budget is how one run did against one Limit.
type Budget struct {
	Name     string // the Limit's name
	Limit    string // the Limit, rendered
	Measured string // the measured value, e.g. "1.08×"
	Status   Status
	Why      string // for a failure or a skip: the reason, in one line
}

func newBudget(l Limit) Budget { return Budget{Name: l.Name, Limit: l.String()} }

// MaxRatioCI checks a MaxRatio limit against the ratio e, taking the
// interval around it at its word: a pass needs the whole interval at or
// under the bound, a miss the whole interval over it. Otherwise the run
// cannot tell, and the budget is Unresolved, which is not a pass.
func MaxRatioCI(l Limit, e Estimate) Budget {
	b := newBudget(l)
	if !e.Valid() {
		b.Status, b.Measured, b.Why = Fail, "not measured", "no valid measurement"
		return b
	}
	b.Measured = fmt.Sprintf("%s, %.0f%% interval", e, e.Coverage*100)
	switch {
	case e.Hi <= l.Bound:
		b.Status = Pass
	case e.Lo > l.Bound:
		b.Status = Fail
		b.Why = fmt.Sprintf("%.1f%% over the limit, and the whole interval is over it", (e.Median/l.Bound-1)*100)
	default:
		b.Status = Unresolved
		b.Why = "the interval holds the limit: this run was too noisy to tell; rerun on a quieter machine"
	}
	return b
}

// MaxRatioInProcess judges a MaxRatio limit on an in-process estimate
// (the same work through sstar's host and through the plain
// interpreter, in one process, interleaved), which resolves what sstar's
// hardening costs to a fraction of a percent, where whole processes on a
// shared machine cannot; unless the whole-process estimate shows a miss
// by itself (its whole interval over the bound: something the
// in-process comparison cannot see, such as another binary's code
// layout, is then over it).
func MaxRatioInProcess(l Limit, in, whole Estimate) Budget {
	b := MaxRatioCI(l, in)
	if !in.Valid() {
		return b
	}
	b.Measured = fmt.Sprintf("%s in one process, %.0f%% interval; whole processes %s, which alone would be %s",
		in, in.Coverage*100, whole, MaxRatioCI(l, whole).Status)
	if whole.Valid() && whole.Lo > l.Bound {
		b.Status = Fail
		b.Why = fmt.Sprintf("whole processes are %.1f%% over the limit, and their whole interval is over it", (whole.Median/l.Bound-1)*100)
	}
	return b
}

// MinRateCI checks a MinRate limit against the rate e (events per
// second, the median over runs with its interval), as MaxRatioCI does a
// ratio: a pass needs the whole interval at or over the bound, a miss
// the whole interval under it; otherwise the budget is Unresolved.
func MinRateCI(l Limit, e Estimate) Budget {
	b := newBudget(l)
	if !e.Valid() {
		b.Status, b.Measured, b.Why = Fail, "not measured", "no valid measurement"
		return b
	}
	b.Measured = fmt.Sprintf("%s, %.0f%% interval", rateCell(e), e.Coverage*100)
	switch {
	case e.Lo >= l.Bound:
		b.Status = Pass
	case e.Hi < l.Bound:
		b.Status = Fail
		b.Why = fmt.Sprintf("%.1f%% under the limit, and the whole interval is under it", (1-e.Median/l.Bound)*100)
	default:
		b.Status = Unresolved
		b.Why = "the interval holds the limit: this run was too noisy to tell; rerun on a quieter machine"
	}
	return b
}

// Unmeasured records a budget whose benchmark could not run here,
// saying why (a prerequisite is missing: root, a package): Unresolved,
// since nothing shows it met or missed.
func Unmeasured(l Limit, why string) Budget {
	b := newBudget(l)
	b.Measured, b.Status, b.Why = "not measured", Unresolved, why
	return b
}

// AtLeastFactor checks a MinFactor limit: cost at least Bound times
// cheaper than the reference cost (both in ns per event).
func AtLeastFactor(l Limit, cost, reference float64) Budget {
	b := newBudget(l)
	if math.IsNaN(cost) || math.IsNaN(reference) || cost <= 0 || reference <= 0 {
		b.Status, b.Measured, b.Why = Fail, "not measured", "no valid measurement"
		return b
	}
	got := reference / cost
	b.Measured = fmt.Sprintf("%.1f× (%s vs %s)", got, formatNS(cost), formatNS(reference))
	if got < l.Bound {
		b.Status = Fail
		b.Why = fmt.Sprintf("needs ≤ %s per event", formatNS(reference/l.Bound))
	}
	return b
}

// NoHookRaise checks a MaxNS limit on a no-hook raise benchmark: under
// Bound ns and no allocations. m may be nil (benchmark missing: a
// failure).
func NoHookRaise(l Limit, m *Micro) Budget {
	b := newBudget(l)
	ns, okNS := m.Metric("ns/op")
	allocs, okA := m.Metric("allocs/op")
	if !okNS || !okA {
		b.Status, b.Measured = Fail, "not measured"
		b.Why = "benchmark with -benchmem not found in the go test output"
		return b
	}
	b.Measured = fmt.Sprintf("%s, %g allocs", formatNS(ns), allocs)
	var why []string
	if ns >= l.Bound {
		why = append(why, "too slow")
	}
	if allocs != 0 {
		why = append(why, fmt.Sprintf("%g allocations per event", allocs))
	}
	if len(why) > 0 {
		b.Status, b.Why = Fail, strings.Join(why, ", ")
	}
	return b
}

// Skip records a budget that could not be measured for an accepted
// reason.
func Skip(l Limit, why string) Budget {
	b := newBudget(l)
	b.Measured, b.Status, b.Why = "—", Skipped, why
	return b
}

// Missed reports whether any budget failed.
func Missed(bs []*Budget) bool { return anyStatus(bs, Fail) }

// Undecided reports whether any budget could be neither confirmed nor
// refuted by the run (Unresolved).
func Undecided(bs []*Budget) bool { return anyStatus(bs, Unresolved) }

func anyStatus(bs []*Budget, s Status) bool {
	for _, b := range bs {
		if b.Status == s {
			return true
		}
	}
	return false
}
