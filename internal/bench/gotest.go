package bench

import (
	"bufio"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
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

var procSuffix = regexp.MustCompile(`-\d+$`)

// ParseGoBench reads the text output of `go test -bench` (any number of
// packages, any -count) and returns the benchmarks in the order first
// seen, each metric the median over its runs.
func ParseGoBench(r io.Reader) ([]*Micro, error) {
	type key struct{ pkg, name string }
	var order []key
	values := map[key]map[string][]float64{}
	runs := map[key]int{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		// name, iterations, then value-unit pairs.
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		k := key{pkg, procSuffix.ReplaceAllString(f[0], "")}
		if _, seen := values[k]; !seen {
			values[k] = map[string][]float64{}
			order = append(order, k)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			values[k][f[i+1]] = append(values[k][f[i+1]], v)
		}
		runs[k]++
	}
	if err := sc.Err(); err != nil {
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
