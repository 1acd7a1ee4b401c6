package bench

import (
	"io"
	"regexp"
	"sort"

	"golang.org/x/perf/benchfmt"
)

// A Micro is one Go benchmark's result: the median of each metric over
// the runs of `go test -bench -count N`.
type Micro struct {
	Pkg     string             // import path
	Name    string             // e.g. "BenchmarkRaise/0hooks", without the -GOMAXPROCS suffix
	Runs    int                // how many result lines were seen
	Metrics map[string]float64 // unit -> median value ("ns/op", "B/op", "allocs/op", custom)
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
		m := &Micro{Pkg: k.pkg, Name: k.name, Runs: runs[k], Metrics: map[string]float64{}}
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
