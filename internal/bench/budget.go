package bench

import (
	"fmt"
	"math"
	"strings"
)

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

// A Budget is one of the limits and how the run did against it.
type Budget struct {
	Name     string // what is limited, e.g. "start-up"
	Limit    string // the limit, e.g. "≤ 1.25× plain"
	Measured string // the measured value, e.g. "1.08×"
	Status   Status
	Why      string // for a failure or a skip: the reason, in one line
}

// MaxRatioCI checks that the ratio e is at most limit, taking the
// interval around it at its word: a pass needs the whole interval at or
// under the limit, a miss the whole interval over it. Otherwise the run
// cannot tell, and the budget is Unresolved, which is not a pass.
func MaxRatioCI(name string, e Estimate, limit float64, versus string) Budget {
	b := Budget{Name: name, Limit: fmt.Sprintf("≤ %.2f× %s", limit, versus)}
	if !e.Valid() {
		b.Status, b.Measured, b.Why = Fail, "not measured", "no valid measurement"
		return b
	}
	b.Measured = fmt.Sprintf("%s, %.0f%% interval", e, e.Coverage*100)
	switch {
	case e.Hi <= limit:
		b.Status = Pass
	case e.Lo > limit:
		b.Status = Fail
		b.Why = fmt.Sprintf("%.1f%% over the limit, and the whole interval is over it", (e.Median/limit-1)*100)
	default:
		b.Status = Unresolved
		b.Why = "the interval holds the limit: this run was too noisy to tell; rerun on a quieter machine"
	}
	return b
}

// MaxRatioInProcess judges a budget on an in-process estimate (the same
// work through sstar's host and through the plain interpreter, in one
// process, interleaved), which resolves what sstar's hardening costs to
// a fraction of a percent, where whole processes on a shared machine
// cannot; unless the whole-process estimate shows a miss by itself (its
// whole interval over the limit: something the in-process comparison
// cannot see, such as another binary's code layout, is then over it).
func MaxRatioInProcess(name string, in, whole Estimate, limit float64, versus string) Budget {
	b := MaxRatioCI(name, in, limit, versus)
	if !in.Valid() {
		return b
	}
	b.Measured = fmt.Sprintf("%s in one process, %.0f%% interval; whole processes %s, which alone would be %s",
		in, in.Coverage*100, whole, MaxRatioCI(name, whole, limit, versus).Status)
	if whole.Valid() && whole.Lo > limit {
		b.Status = Fail
		b.Why = fmt.Sprintf("whole processes are %.1f%% over the limit, and their whole interval is over it", (whole.Median/limit-1)*100)
	}
	return b
}

// MinFactor checks that cost is at least factor times cheaper than the
// reference cost (both in ns per event).
func MinFactor(name string, cost, reference, factor float64, versus string) Budget {
	b := Budget{Name: name, Limit: fmt.Sprintf("≥ %.0f× cheaper than %s", factor, versus)}
	if math.IsNaN(cost) || math.IsNaN(reference) || cost <= 0 || reference <= 0 {
		b.Status, b.Measured, b.Why = Fail, "not measured", "no valid measurement"
		return b
	}
	got := reference / cost
	b.Measured = fmt.Sprintf("%.1f× (%s vs %s)", got, formatNS(cost), formatNS(reference))
	if got < factor {
		b.Status = Fail
		b.Why = fmt.Sprintf("needs ≤ %s per event", formatNS(reference/factor))
	}
	return b
}

// NoHookRaise checks a no-hook raise benchmark: under maxNS and no
// allocations. m may be nil (benchmark missing: a failure).
func NoHookRaise(name string, m *Micro, maxNS float64) Budget {
	b := Budget{Name: name, Limit: fmt.Sprintf("< %.0f ns, 0 allocs", maxNS)}
	ns, okNS := m.Metric("ns/op")
	allocs, okA := m.Metric("allocs/op")
	if !okNS || !okA {
		b.Status, b.Measured = Fail, "not measured"
		b.Why = "benchmark with -benchmem not found in the go test output"
		return b
	}
	b.Measured = fmt.Sprintf("%s, %g allocs", formatNS(ns), allocs)
	var why []string
	if ns >= maxNS {
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
func Skip(name, limit, why string) Budget {
	return Budget{Name: name, Limit: limit, Measured: "—", Status: Skipped, Why: why}
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
