package bench

import (
	"bufio"
	"io"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/perf/benchfmt"
)

// A Micro is one Go benchmark's result: the median of each metric over
// the runs of `go test -bench -count N`.
type Micro struct {
	Pkg     string             // import path
	Name    string             // e.g. "BenchmarkRaise/0hooks", without the -GOMAXPROCS suffix
	Runs    int                // how many result lines were seen
	Metrics map[string]float64 // unit -> median value ("ns/op", "B/op", "allocs/op", custom)
	// Samples are each run's values, in the order the runs were seen.
	Samples map[string][]float64
}

// Estimate returns the median of the unit's values over the runs, with
// benchmath's distribution-free interval around it (that of
// RatioEstimate); a NaN median if the unit was not reported.
func (m *Micro) Estimate(unit string) Estimate {
	if m == nil {
		return medianEstimate(nil)
	}
	return medianEstimate(m.Samples[unit])
}

// Metric returns the named metric and whether it was reported.
func (m *Micro) Metric(unit string) (float64, bool) {
	if m == nil {
		return 0, false
	}
	v, ok := m.Metrics[unit]
	return v, ok
}

// ParseGoBench reads the text output of `go test -bench` (any number of
// packages, any -count) with golang.org/x/perf/benchfmt and returns the
// benchmarks in the order first seen, each metric the median over its
// runs. Lines benchfmt cannot read as results (a benchmark's failure,
// the test log) are not results and are left out. Metrics keep the
// units the benchmark printed ("ns/op", not benchfmt's tidied "sec/op"),
// as the report and the budgets speak of them.
func ParseGoBench(r io.Reader) ([]*Micro, error) {
	type key struct{ pkg, name string }
	var order []key
	values := map[key]map[string][]float64{}
	runs := map[key]int{}
	br := benchfmt.NewReader(r, "go test -bench")
	for br.Scan() {
		res, ok := br.Result().(*benchfmt.Result)
		if !ok {
			continue // a *benchfmt.SyntaxError or unit metadata
		}
		// benchfmt's names leave out the "Benchmark" that go test
		// prints, and the -GOMAXPROCS suffix is a part of its own.
		base, parts := res.Name.Parts()
		name := "Benchmark" + string(base)
		for _, p := range parts {
			if p[0] == '/' {
				name += string(p)
			}
		}
		k := key{res.GetConfig("pkg"), name}
		if _, seen := values[k]; !seen {
			values[k] = map[string][]float64{}
			order = append(order, k)
		}
		for _, v := range res.Values {
			unit, val := v.Unit, v.Value
			if v.OrigUnit != "" {
				unit, val = v.OrigUnit, v.OrigValue
			}
			values[k][unit] = append(values[k][unit], val)
		}
		runs[k]++
	}
	if err := br.Err(); err != nil {
		return nil, err
	}
	out := make([]*Micro, 0, len(order))
	for _, k := range order {
		m := &Micro{Pkg: k.pkg, Name: k.name, Runs: runs[k], Metrics: map[string]float64{}, Samples: values[k]}
		for unit, vs := range values[k] {
			m.Metrics[unit] = MedianFloat(vs)
		}
		out = append(out, m)
	}
	return out, nil
}

// FindMicro returns the first benchmark whose name matches re, or nil.
func FindMicro(ms []*Micro, re *regexp.Regexp) *Micro {
	for _, m := range ms {
		if re.MatchString(m.Name) {
			return m
		}
	}
	return nil
}

// Units lists the metric units of m: ns/op first, then B/op and
// allocs/op, then the others sorted.
func (m *Micro) Units() []string {
	rank := map[string]int{"ns/op": 0, "B/op": 1, "allocs/op": 2}
	us := make([]string, 0, len(m.Metrics))
	for u := range m.Metrics {
		us = append(us, u)
	}
	sort.Slice(us, func(i, j int) bool {
		ri, iok := rank[us[i]]
		rj, jok := rank[us[j]]
		switch {
		case iok && jok:
			return ri < rj
		case iok != jok:
			return iok
		}
		return us[i] < us[j]
	})
	return us
}

// A NoResult is a benchmark that gave no result line: it skipped,
// saying why (a prerequisite is missing: root, a package), or failed.
type NoResult struct {
	Name   string // e.g. "BenchmarkDelivery", without the -GOMAXPROCS suffix
	Failed bool   // it failed, rather than skipped
	Why    string // the first line it logged, without its file:line prefix
}

// reLogLine is a line a benchmark logged (t.Skip's and t.Fatal's
// message among them), as a verbose test binary prints it: indented,
// with the file and line.
var reLogLine = regexp.MustCompile(`^\s+[^\s:]+\.go:\d+: (.*)$`)

// ParseNoResults reads the verbose (-test.v) output of `go test -bench`
// and returns the benchmarks that skipped or failed, in order, each with
// the first line it logged before its "--- SKIP" or "--- FAIL" line
// (without -test.v, a skip prints nothing).
func ParseNoResults(r io.Reader) ([]NoResult, error) {
	var out []NoResult
	why := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := reLogLine.FindStringSubmatch(line); m != nil {
			if why == "" {
				why = strings.TrimSpace(m[1])
			}
			continue
		}
		if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			if t := strings.TrimSpace(line); !strings.HasPrefix(t, "--- ") {
				continue // a continuation of a logged line
			}
		}
		t := strings.TrimSpace(line)
		for _, verdict := range []string{"--- SKIP: ", "--- FAIL: "} {
			if rest, ok := strings.CutPrefix(t, verdict); ok {
				name, _, _ := strings.Cut(rest, " ") // a test's "(0.01s)" follows
				out = append(out, NoResult{Name: trimProcs(name), Failed: verdict == "--- FAIL: ", Why: why})
			}
		}
		why = ""
	}
	return out, sc.Err()
}

var reProcs = regexp.MustCompile(`-\d+$`)

// trimProcs removes the -GOMAXPROCS suffix that go test adds to a
// failed benchmark's name.
func trimProcs(name string) string { return reProcs.ReplaceAllString(name, "") }

// FindNoResult returns the first NoResult of the benchmark name (as
// "BenchmarkDelivery/relp") or of one of its parents, or nil.
func FindNoResult(nrs []NoResult, name string) *NoResult {
	for i, nr := range nrs {
		if nr.Name == name || strings.HasPrefix(name, nr.Name+"/") {
			return &nrs[i]
		}
	}
	return nil
}
