package bench

import (
	"fmt"
	"math"
	"sort"
	"time"

	"golang.org/x/perf/benchmath"
)

// The statistics: medians and quartiles for the tables, and the
// estimate a ratio budget is judged on. golang.org/x/perf/benchmath
// gives the interval around a median that assumes nothing about the
// distribution (AssumeNothing: two order statistics, their coverage
// from the binomial distribution). What it does not have is the
// pairing: its comparisons (Compare, a Mann-Whitney U test) are between
// two independent samples and give no interval on their ratio, while
// the harness's runs come in rounds whose two runs met the same state
// of the machine. So the ratio of each round is taken here, and
// benchmath summarises those ratios.

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
	return time.Duration(math.Round(MedianFloat(floats(ds))))
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
	f := floats(ds)
	m := quantile(f, 0.5)
	if m == 0 {
		return 0
	}
	return (quantile(f, 0.75) - quantile(f, 0.25)) / 2 / m
}

func floats(ds []time.Duration) []float64 {
	f := make([]float64, len(ds))
	for i, d := range ds {
		f[i] = float64(d)
	}
	return f
}

// quantile returns the q-quantile of xs by linear interpolation between
// closest ranks (the method of R's default and numpy's "linear"; for
// the median it agrees with benchmath's).
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

// An Estimate is a median with a confidence interval around it.
type Estimate struct {
	Median   float64
	Lo, Hi   float64 // the interval; ±Inf when there were too few values for one
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
	if math.IsInf(e.Lo, 0) || math.IsInf(e.Hi, 0) {
		return fmt.Sprintf("%.3f× (too few rounds for an interval)", e.Median)
	}
	return fmt.Sprintf("%.3f× (%.3f–%.3f)", e.Median, e.Lo, e.Hi)
}

// ciLevel is the least coverage of the intervals the harness reports.
const ciLevel = 0.90

// PairedEstimate estimates a's time over b's (wall time, or CPU time if
// cpu), for samples taken by Interleave: the median over rounds of the
// two runs' ratio within each round, with RatioEstimate's interval. The
// runs of one round are next to each other in time, so a burst of load
// that hits one round is one outlier among the ratios instead of a shift
// of one median. A NaN median without rounds.
func PairedEstimate(a, b *Sample, cpu bool) Estimate {
	x, y := a.Wall, b.Wall
	if cpu {
		x, y = a.CPU, b.CPU
	}
	return RatioEstimate(floats(x), floats(y))
}

// RatioEstimate returns the median of the paired ratios x[i]/y[i] (pairs
// with y[i] ≤ 0 left out) and benchmath's distribution-free interval
// for it, at least ciLevel. A NaN median for no pairs.
func RatioEstimate(x, y []float64) Estimate {
	n := min(len(x), len(y))
	rs := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		if y[i] > 0 {
			rs = append(rs, x[i]/y[i])
		}
	}
	return medianEstimate(rs)
}

// medianEstimate returns the median of xs with benchmath's
// distribution-free interval for it, at least ciLevel; a NaN median for
// none. xs is not modified (benchmath.NewSample sorts what it is given).
func medianEstimate(xs []float64) Estimate {
	if len(xs) == 0 {
		return Estimate{Median: math.NaN(), Lo: math.NaN(), Hi: math.NaN()}
	}
	xs = append([]float64(nil), xs...)
	s := benchmath.AssumeNothing.Summary(benchmath.NewSample(xs, &benchmath.DefaultThresholds), ciLevel)
	return Estimate{Median: s.Center, Lo: s.Lo, Hi: s.Hi, Coverage: s.Confidence}
}

// Ratio returns a/b, or NaN when b is zero.
func Ratio(a, b time.Duration) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}
