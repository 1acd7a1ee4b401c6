package bench

import (
	"io"
	"time"
)

// Config configures one run of the harness.
type Config struct {
	Root    string    // sstar's module root (where go.mod is)
	Go      string    // the go command
	Quick   bool      // fewer runs and smaller workloads, for development
	Keep    bool      // keep the work directory
	Micro   bool      // run the Go micro-benchmarks
	Command string    // how the harness was invoked, for the report
	Log     io.Writer // progress messages
}

// A plan is how much of everything one run measures.
type plan struct {
	rounds      map[string]int // timed rounds, by workload group
	params      Params
	goCount     int    // -count of the micro-benchmarks
	goBenchtime string // ... and their -benchtime
	evRounds    int    // rounds of the per-event comparison
	evBenchtime string // -benchtime of each of its Go benchmark runs
	// computeOps and computeCount: -benchtime and -count of
	// BenchmarkCompute (an op is one round of the compute script, three
	// ways).
	computeOps   string
	computeCount int
	// featureRounds: rounds of the features' benchmarks (featureBenches),
	// each run once a round. Five is the fewest whose interval reaches
	// 90% (the whole range of the five).
	featureRounds int
}

// computeTarget is how long one run of the compute script takes with
// the plain command, once calibrated.
func computeTarget(quick bool) time.Duration {
	if quick {
		return 300 * time.Millisecond
	}
	return time.Second
}

func makePlan(quick bool) plan {
	p := plan{
		// 801 start-up rounds: a single start-up scatters by ±35% on the
		// project's machines, and 201 rounds left the interval around the
		// ratio about ±6% wide, too wide to decide the budget.
		rounds:       map[string]int{"startup": 801, "monitor": 301, "compute": 11, "loading": 31, "events": 5, "files": 11},
		params:       Params{Modules: 500, Events: 1_000_000, Files: 10_000, FileSize: 100},
		goCount:      3,
		goBenchtime:  "500ms",
		evRounds:     7,
		evBenchtime:  "300ms",
		computeOps:   "3000x",
		computeCount: 1,
		// Nine rounds: the interval of the median of nine reaches 96%
		// (the second-lowest to the second-highest).
		featureRounds: 9,
	}
	if quick {
		p = plan{
			rounds:        map[string]int{"startup": 21, "monitor": 11, "compute": 3, "loading": 7, "events": 2, "files": 3},
			params:        Params{Modules: 500, Events: 200_000, Files: 10_000, FileSize: 100},
			goCount:       1,
			goBenchtime:   "100ms",
			evRounds:      3,
			evBenchtime:   "100ms",
			computeOps:    "200x",
			computeCount:  1,
			featureRounds: 5,
		}
	}
	p.rounds["per-event"] = p.evRounds
	p.rounds["features"] = p.featureRounds
	return p
}
