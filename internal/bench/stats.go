package bench

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// A Sample is the repeated measurements of one command or benchmark.
type Sample struct {
	Wall []time.Duration // wall-clock time of each run
	CPU  []time.Duration // user+system CPU time of each run (processes only)
}

// Median returns the median wall time.
func (s *Sample) Median() time.Duration { return Median(s.Wall) }

// MedianCPU returns the median CPU time.
func (s *Sample) MedianCPU() time.Duration { return Median(s.CPU) }

// Spread returns half the interquartile range of the wall times as a
// fraction of their median: a robust "±" for the table.
func (s *Sample) Spread() float64 { return Spread(s.Wall) }

// Median returns the median of ds (the mean of the middle two for an even
// count), or 0 for none. ds is not modified.
func Median(ds []time.Duration) time.Duration {
	f := make([]float64, len(ds))
	for i, d := range ds {
		f[i] = float64(d)
	}
	return time.Duration(math.Round(MedianFloat(f)))
}

// MedianFloat returns the median of xs, or 0 for none. xs is not modified.
func MedianFloat(xs []float64) float64 {
	return quantile(xs, 0.5)
}

// Spread returns half the interquartile range of ds divided by its
// median, or 0 when there are fewer than 4 values.
func Spread(ds []time.Duration) float64 {
	if len(ds) < 4 {
		return 0
	}
	f := make([]float64, len(ds))
	for i, d := range ds {
		f[i] = float64(d)
	}
	m := quantile(f, 0.5)
	if m == 0 {
		return 0
	}
	return (quantile(f, 0.75) - quantile(f, 0.25)) / 2 / m
}

// quantile returns the q-quantile of xs by linear interpolation between
// closest ranks (the method of R's default and numpy's "linear").
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}

// PairedRatio returns the median over rounds of a's time divided by b's
// in the same round (wall time, or CPU time if cpu), for samples taken by
// Interleave: runs of one round are next to each other in time, so a
// burst of load that hits one round is one outlier among the ratios
// instead of a shift of one median. NaN without rounds.
func PairedRatio(a, b *Sample, cpu bool) float64 {
	return PairedEstimate(a, b, cpu).Median
}

// An Estimate is a median with a confidence interval around it.
type Estimate struct {
	Median   float64
	Lo, Hi   float64 // the interval
	Coverage float64 // the probability that the interval holds the true median
}

// Valid reports whether e was measured (and is a positive ratio).
func (e Estimate) Valid() bool {
	return !math.IsNaN(e.Median) && !math.IsInf(e.Median, 0) && e.Median > 0 && !math.IsNaN(e.Lo) && !math.IsNaN(e.Hi)
}

// String renders e as a ratio with its interval: "1.012× (0.970–1.051)".
func (e Estimate) String() string {
	if !e.Valid() {
		return "—"
	}
	return fmt.Sprintf("%.3f× (%.3f–%.3f)", e.Median, e.Lo, e.Hi)
}

// ciLevel is the least coverage of the intervals the harness reports.
const ciLevel = 0.90

// PairedEstimate is PairedRatio with a distribution-free interval
// (MedianCI, at least 90%) around the median of the per-round ratios.
func PairedEstimate(a, b *Sample, cpu bool) Estimate {
	x, y := a.Wall, b.Wall
	if cpu {
		x, y = a.CPU, b.CPU
	}
	n := min(len(x), len(y))
	rs := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		if y[i] > 0 {
			rs = append(rs, float64(x[i])/float64(y[i]))
		}
	}
	if len(rs) == 0 {
		return Estimate{Median: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
	}
	lo, hi, cov := MedianCI(rs, ciLevel)
	return Estimate{Median: MedianFloat(rs), Lo: lo, Hi: hi, Coverage: cov}
}

// MedianCI returns a confidence interval for the median of the
// distribution xs were drawn from, assuming nothing about its shape: the
// order statistics x(k) and x(n+1-k) of the sorted values (1-based), for
// the largest k whose coverage, 1 - 2·P(B < k) with B ~ Binomial(n, 1/2),
// is at least level. It returns the interval and its coverage; with too
// few values to reach level, the whole range and its lower coverage.
// NaNs for no values.
func MedianCI(xs []float64, level float64) (lo, hi, coverage float64) {
	n := len(xs)
	if n == 0 {
		return math.NaN(), math.NaN(), 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	k := 1
	cdf := binomHalfPMF(n, 0) // P(B < k) for k = 1
	for k+1 <= n+1-(k+1) {
		next := cdf + binomHalfPMF(n, k) // P(B < k+1)
		if 1-2*next < level {
			break
		}
		k, cdf = k+1, next
	}
	return s[k-1], s[n-k], 1 - 2*cdf
}

// binomHalfPMF returns P(B = i) for B ~ Binomial(n, 1/2).
func binomHalfPMF(n, i int) float64 {
	lg := func(x int) float64 { v, _ := math.Lgamma(float64(x + 1)); return v }
	return math.Exp(lg(n) - lg(i) - lg(n-i) - float64(n)*math.Ln2)
}

// Ratio returns a/b, or NaN when b is zero.
func Ratio(a, b time.Duration) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
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
