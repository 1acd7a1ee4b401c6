package bench

import (
	"strings"
	"testing"
)

// The rows of a run in which JSONL was measured, RELP and journald
// skipped and kernel audit failed: each says so, and a skip is not a
// pass.
func TestFeatureRows(t *testing.T) {
	ms, _ := ParseGoBench(strings.NewReader(featureOutput))
	nrs, _ := ParseNoResults(strings.NewReader(featureOutput))
	h := &harness{rep: &Report{}, featureMicro: ms, featureNo: nrs}
	if err := h.featureRows(); err != nil {
		t.Fatal(err)
	}
	rows := map[string]Row{}
	for _, r := range h.rep.Rows {
		key, _, _ := strings.Cut(r.Workload, ":")
		rows[key] = r
	}
	jsonl := rows["JSON Lines sink"]
	if jsonl.Budget == nil || jsonl.Budget.Status != Unresolved || !strings.Contains(jsonl.Sstar, "93,400 events/s (too few runs for an interval); 10.7 µs, 0 allocs per event") {
		t.Errorf("JSONL row = %+v, budget %+v", jsonl, jsonl.Budget)
	}
	relp := rows["RELP sink"]
	if relp.Budget == nil || relp.Budget.Status != Unresolved || !strings.Contains(relp.Sstar, "not measured: needs rsyslog's RELP input") {
		t.Errorf("RELP row = %+v, budget %+v", relp, relp.Budget)
	}
	if j := rows["journald sink"]; j.Budget == nil || j.Budget.Status != Unresolved || j.Budget.Why != "not measured: needs root: journald runs in a mount namespace of its own" {
		t.Errorf("journald row = %+v, budget %+v", j, j.Budget)
	}
	if k := rows["kernel audit sink"]; k.Budget != nil || k.Sstar != "BenchmarkKernelAudit failed: 100 records sent, 99 read back" {
		t.Errorf("kernel audit row = %+v", k)
	}
	cat := rows["loading 500 modules, one catalog, in one process (interp BenchmarkLoadCatalog)"]
	if cat.Budget == nil || cat.Budget.Status != Fail || cat.Sstar != "BenchmarkLoadCatalog did not run" {
		t.Errorf("catalog row = %+v, budget %+v", cat, cat.Budget)
	}
	perm := rows["permissions (policy.allow, Landlock)"]
	if perm.Budget == nil || perm.Budget.Status != Fail || !strings.Contains(perm.Sstar, "did not run") {
		t.Errorf("permissions row = %+v, budget %+v", perm, perm.Budget)
	}
	if len(h.rep.Budgets) != 6 || !h.rep.Missed() {
		t.Errorf("budgets = %d, missed %v", len(h.rep.Budgets), h.rep.Missed())
	}
	if len(h.rep.Micro) != 3 {
		t.Errorf("the features' benchmarks are not listed with the micro-benchmarks: %d", len(h.rep.Micro))
	}
}

func TestRELPCost(t *testing.T) {
	// Five rounds: RELP at a quarter of TCP's rate but one, which is an
	// outlier of its round, not a shift of a median.
	relp := &Micro{Samples: map[string][]float64{"events/s": {25_000, 20_000, 30_000, 5_000, 26_000}}}
	tcp := &Micro{Samples: map[string][]float64{"events/s": {100_000, 80_000, 120_000, 100_000, 104_000}}}
	e := RELPCost(relp, tcp)
	if e.Median != 4 || e.Lo != 4 || e.Hi != 20 || e.Coverage != 1-2.0/32 {
		t.Errorf("RELPCost = %+v (%s)", e, e)
	}
	if relp.Samples["events/s"][3] != 5_000 {
		t.Error("RELPCost reordered the samples")
	}
}

func TestLoadCatalogRow(t *testing.T) {
	var out strings.Builder
	out.WriteString("pkg: github.com/sstar-project/sstar/interp\n")
	for _, r := range []string{"1.10", "1.20", "1.05", "1.15", "1.12"} {
		out.WriteString("BenchmarkLoadCatalog-2 \t 5 \t 218335964 ns/op \t 44.0 catalog-ms \t " + r + " catalog/plain \t 40.0 plain-ms \t 46.0 stamp-ms \t 1.2 stamp/plain \t 18314230 B/op \t 292978 allocs/op\n")
	}
	ms, err := ParseGoBench(strings.NewReader(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{rep: &Report{}, featureMicro: ms}
	h.featureRows()
	for _, r := range h.rep.Rows {
		switch {
		case strings.HasPrefix(r.Workload, "loading 500 modules, one catalog"):
			if r.Budget == nil || r.Budget.Status != Pass || r.Ratio != "1.120× (1.050–1.200)" || r.Sstar != "44.0 ms (44.0 ms–44.0 ms)" || r.Base != "40.0 ms (40.0 ms–40.0 ms)" {
				t.Errorf("catalog row = %+v, budget %+v", r, r.Budget)
			}
		case strings.HasPrefix(r.Workload, "loading 500 modules, stamped"):
			if r.Budget != nil || r.Ratio != "1.200× (1.200–1.200)" {
				t.Errorf("stamp row = %+v", r)
			}
		}
	}
}

// The hardening rows: the filter, permissions (one skipped: no root)
// and the isolation API, each a median over rounds of the benchmark's
// own per-iteration ratio.
func TestHardeningRows(t *testing.T) {
	var out strings.Builder
	out.WriteString("pkg: github.com/sstar-project/sstar/harden\n")
	for _, r := range []string{"1.01", "1.03", "1.02", "1.02", "1.02"} {
		out.WriteString("BenchmarkWorkload/load-2 \t 3 \t 1 ns/op \t 30.0 none-ms/run \t 31.0 filter-ms/run \t 30.5 xattr-ms/run \t " + r + " filter/none \t 1.0 filter/xattr\n")
	}
	out.WriteString("pkg: github.com/sstar-project/sstar/cmd/sstar\n")
	for _, r := range []string{"1.05", "1.08", "1.06", "1.06", "1.06"} {
		out.WriteString("BenchmarkPermissions/startup-2 \t 20 \t 1 ns/op \t 8.0 with-ms \t " + r + " with/without \t 7.5 without-ms\n")
	}
	out.WriteString(`BenchmarkPermissions/read10k
    permissions_bench_test.go:25: needs root: the system policy must be owned by root
--- SKIP: BenchmarkPermissions/read10k
`)
	out.WriteString("pkg: github.com/sstar-project/sstar/sandbox\n")
	for range 5 {
		out.WriteString("BenchmarkRun-2 \t 20 \t 8000000 ns/op \t 40.0 in-process-µs/eval \t 8000 µs/eval\n")
	}
	ms, _ := ParseGoBench(strings.NewReader(out.String()))
	nrs, _ := ParseNoResults(strings.NewReader(out.String()))
	h := &harness{rep: &Report{}, featureMicro: ms, featureNo: nrs}
	h.featureRows()
	found := 0
	for _, r := range h.rep.Rows {
		switch {
		case strings.HasPrefix(r.Workload, "seccomp filter: loading 500 modules"):
			found++
			if r.Budget != nil || r.Ratio != "1.020× (1.010–1.030)" || !strings.HasPrefix(r.Sstar, "31.0 ms") || !strings.HasPrefix(r.Base, "30.0 ms") {
				t.Errorf("filter row = %+v", r)
			}
		case strings.Contains(r.Workload, "an empty script, 20 rules"):
			found++
			if r.Budget == nil || r.Budget.Status != Pass || r.Ratio != "1.060× (1.050–1.080)" {
				t.Errorf("permissions start-up row = %+v, budget %+v", r, r.Budget)
			}
		case strings.Contains(r.Workload, "read= declared"):
			found++
			if r.Budget == nil || r.Budget.Status != Unresolved || !strings.Contains(r.Sstar, "needs root") {
				t.Errorf("permissions file row = %+v, budget %+v", r, r.Budget)
			}
		case strings.HasPrefix(r.Workload, "isolation API"):
			found++
			if r.Ratio != "200.000× (200.000–200.000)" || !strings.HasPrefix(r.Sstar, "8.00 ms") || !strings.HasPrefix(r.Base, "40.0 µs") {
				t.Errorf("sandbox row = %+v", r)
			}
		}
	}
	if found != 4 {
		t.Errorf("%d of the 4 rows checked were there", found)
	}
}

// A sink that lost events in one round fails its budget, whatever the
// other rounds measured.
func TestFeatureFailedRound(t *testing.T) {
	out := `pkg: github.com/sstar-project/sstar/audit/journald
BenchmarkJournald
BenchmarkJournald-2 	 5000 	 30213 ns/op 	 60000 events/s 	 32 B/op 	 2 allocs/op
BenchmarkJournald
    journald_test.go:255: 5000 events sent, 4990 arrived
--- FAIL: BenchmarkJournald-2
`
	ms, _ := ParseGoBench(strings.NewReader(out))
	nrs, _ := ParseNoResults(strings.NewReader(out))
	h := &harness{rep: &Report{}, featureMicro: ms, featureNo: nrs}
	h.featureRows()
	for _, r := range h.rep.Rows {
		if strings.HasPrefix(r.Workload, "journald sink") {
			if r.Budget == nil || r.Budget.Status != Fail || r.Budget.Why != "BenchmarkJournald failed: 5000 events sent, 4990 arrived" {
				t.Errorf("journald row = %+v, budget %+v", r, r.Budget)
			}
			return
		}
	}
	t.Error("no journald row")
}
