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
)

func (s Status) String() string {
	switch s {
	case Pass:
		return "PASS"
	case Fail:
		return "FAIL"
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

// MaxRatio checks that ratio is at most limit.
func MaxRatio(name string, ratio, limit float64, versus string) Budget {
	b := Budget{Name: name, Limit: fmt.Sprintf("≤ %.2f× %s", limit, versus)}
	if math.IsNaN(ratio) || math.IsInf(ratio, 0) || ratio <= 0 {
		b.Status, b.Measured, b.Why = Fail, "not measured", "no valid measurement"
		return b
	}
	b.Measured = fmt.Sprintf("%.3f×", ratio)
	if ratio > limit {
		b.Status = Fail
		b.Why = fmt.Sprintf("%.1f%% over the limit", (ratio/limit-1)*100)
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
func Missed(bs []*Budget) bool {
	for _, b := range bs {
		if b.Status == Fail {
			return true
		}
	}
	return false
}
