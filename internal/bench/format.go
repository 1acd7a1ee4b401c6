package bench

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

func timeCell(s *Sample) string {
	cell := FormatDuration(s.Median())
	if sp := s.Spread(); sp > 0 {
		cell += fmt.Sprintf(" ±%.1f%%", sp*100)
	}
	return cell
}

func ratioCell(r float64) string {
	if math.IsNaN(r) {
		return "—"
	}
	return fmt.Sprintf("%.3f×", r)
}

// cellNS renders a per-event time with the benchmark's allocations.
func cellNS(ns float64, m *Micro) string {
	if math.IsNaN(ns) {
		return "not measured"
	}
	s := formatNS(ns)
	if a, ok := m.Metric("allocs/op"); ok {
		s += fmt.Sprintf(", %g allocs", a)
	}
	return s
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// FormatDuration renders d with three significant figures in a unit that
// suits it (ns, µs, ms or s).
func FormatDuration(d time.Duration) string {
	return formatNS(float64(d))
}

func formatNS(ns float64) string {
	switch a := math.Abs(ns); {
	case a < 1e3:
		return sig3(ns) + " ns"
	case a < 1e6:
		return sig3(ns/1e3) + " µs"
	case a < 1e9:
		return sig3(ns/1e6) + " ms"
	}
	return sig3(ns/1e9) + " s"
}

// sig3 formats x with three significant figures, without an exponent.
func sig3(x float64) string {
	a := math.Abs(x)
	switch {
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// tail returns the last n bytes of s, marked as cut.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// formatRate renders a rate with three significant figures and
// thousands separators: "87,900", "4.62".
func formatRate(x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "—"
	}
	if math.Abs(x) < 1000 {
		return sig3(x)
	}
	p := math.Pow(10, math.Floor(math.Log10(math.Abs(x)))-2)
	return thousands(int(math.Round(x/p) * p))
}

// rateCell renders a rate over runs with its interval:
// "87,900 events/s (81,000–95,000)".
func rateCell(e Estimate) string {
	return estimateCell(e, formatRate, " events/s")
}

// timeEstimateCell renders a time per op over runs with its interval:
// "832 µs (801 µs–1.02 ms)".
func timeEstimateCell(e Estimate) string {
	return estimateCell(e, formatNS, "")
}

func estimateCell(e Estimate, f func(float64) string, unit string) string {
	if math.IsNaN(e.Median) {
		return "not measured"
	}
	s := f(e.Median) + unit
	if math.IsInf(e.Lo, 0) || math.IsInf(e.Hi, 0) || math.IsNaN(e.Lo) || math.IsNaN(e.Hi) {
		return s + " (too few runs for an interval)"
	}
	return s + " (" + f(e.Lo) + "–" + f(e.Hi) + ")"
}
