package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// A featureBench is a Go benchmark of a feature's package that gives
// rows of the results table as it is: the sinks' throughput against
// real receivers, and what catalogs cost. Each checks its own work (every
// event arrived, every module loaded) and fails otherwise, and skips,
// saying why, where what it needs is missing.
type featureBench struct {
	pkg   string // the package, as go test names it
	bench string // the top-level benchmark
	// benchtime and quick: -test.benchtime of each run. A count ("5000x")
	// where a fixed cost inside the timer (the final flush) would
	// otherwise make the first, one-iteration run the whole measurement.
	benchtime, quick string
}

// featureBenches are run in rounds by features and judged by
// featureRows; the micro-benchmarks of every package leave them out, so
// each runs in one step only.
var featureBenches = []featureBench{
	{"./audit/jsonl", "BenchmarkJSONL", "1s", "100ms"},
	{"./audit/relp", "BenchmarkDelivery", "1s", "100ms"},
	{"./audit/journald", "BenchmarkJournald", "40000x", "5000x"},
	{"./audit/kaudit", "BenchmarkKernelAudit", "1s", "100ms"},
	{"./interp", "BenchmarkLoadCatalog", "20x", "3x"},
	{"./opencode", "BenchmarkOpenCatalog", "500ms", "100ms"},
	{"./harden", "BenchmarkWorkload", "3x", "1x"},
	{"./harden", "BenchmarkInstall", "30x", "5x"},
	{"./cmd/sstar", "BenchmarkPermissions", "20x", "3x"},
	{"./sandbox", "BenchmarkRun", "20x", "5x"},
}

// featureSkip is the -skip pattern that leaves featureBenches out of the
// micro-benchmarks of every package. Their names are unique in the
// module; a benchmark of the same name elsewhere would be left out too.
func featureSkip() string {
	var names []string
	for _, f := range featureBenches {
		names = append(names, regexp.QuoteMeta(f.bench))
	}
	return "^(" + strings.Join(names, "|") + ")$"
}

// features runs every featureBench once a round, for the plan's rounds:
// the median over rounds of each metric, with an interval, and for
// BenchmarkDelivery the RELP and TCP runs of one round paired. A round
// runs them in turn, each in its package's directory, verbose, so that
// a skip says why.
func (h *harness) features() error {
	bins := make([]string, len(featureBenches))
	for i, f := range featureBenches {
		bin, err := h.testBinary(f.pkg)
		if err != nil {
			return err
		}
		bins[i] = bin
	}
	rounds := h.plan.featureRounds
	h.logf("  %d rounds of %d benchmarks of the sinks and catalogs", rounds, len(featureBenches))
	var all bytes.Buffer
	var died []NoResult
	for r := 0; r < rounds; r++ {
		for i, f := range featureBenches {
			bt := f.benchtime
			if h.cfg.Quick {
				bt = f.quick
			}
			cmd := exec.Command(bins[i], "-test.run", "^$", "-test.bench", "^"+regexp.QuoteMeta(f.bench)+"$", "-test.benchmem",
				"-test.benchtime", bt, "-test.v", "-test.timeout", "10m")
			cmd.Dir = filepath.Join(h.cfg.Root, strings.TrimPrefix(f.pkg, "./"))
			out, err := cmd.CombinedOutput()
			all.Write(out)
			nrs, _ := ParseNoResults(bytes.NewReader(out))
			if err != nil && !anyFailed(nrs) {
				// Killed, timed out, or failed before a benchmark said so:
				// the benchmark failed, with the binary's last words.
				died = append(died, NoResult{Name: f.bench, Failed: true, Why: fmt.Sprintf("%s: %v: %s", filepath.Base(bins[i]), err,
					strings.ReplaceAll(tail(strings.TrimSpace(string(out)), 300), "\n", " "))})
			}
			if r == 0 {
				h.rep.FeatureRuns = append(h.rep.FeatureRuns, fmt.Sprintf("`%s` (%s, `-benchtime %s`)", f.bench, strings.TrimPrefix(f.pkg, "./"), bt))
			}
		}
	}
	os.WriteFile(filepath.Join(h.work, "features.txt"), all.Bytes(), 0o644)
	ms, err := ParseGoBench(bytes.NewReader(all.Bytes()))
	if err != nil {
		return err
	}
	nrs, err := ParseNoResults(bytes.NewReader(all.Bytes()))
	if err != nil {
		return err
	}
	h.featureMicro, h.featureNo = ms, append(nrs, died...)
	return nil
}

func anyFailed(nrs []NoResult) bool {
	for _, nr := range nrs {
		if nr.Failed {
			return true
		}
	}
	return false
}

// featureResults are the features' benchmarks of one run, for
// featureRows.
type featureResults struct {
	ms  []*Micro
	nrs []NoResult
}

// find returns the named benchmark's result, or, if it has none, why
// not in one line and whether that is a failure (a skip is not: a
// prerequisite is missing).
func (fr featureResults) find(name string) (m *Micro, why string, failed bool) {
	// Any failure in any round decides: a sink that lost events once
	// lost events.
	if nr := FindNoResult(fr.nrs, name); nr != nil {
		reason := nr.Why
		if reason == "" {
			reason = "no reason given"
		}
		if nr.Failed {
			return nil, nr.Name + " failed: " + reason, true
		}
		return nil, "not measured: " + reason, false
	}
	m = FindMicro(fr.ms, regexp.MustCompile("^"+regexp.QuoteMeta(name)+"$"))
	if m == nil {
		return nil, name + " did not run", true
	}
	return m, "", false
}

// rateRow is a row of events per second: the median over rounds with
// its interval, and per event the time and allocations.
func (fr featureResults) rateRow(workload, name string, limit *Limit) (Row, *Micro) {
	row := Row{Workload: workload}
	m, why, failed := fr.find(name)
	if m == nil {
		return missingRow(row, why, failed, limit), nil
	}
	e := m.Estimate("events/s")
	row.Sstar = rateCell(e)
	if ns, ok := m.Metric("ns/op"); ok {
		row.Sstar += "; " + cellNS(ns, m) + " per event"
	}
	if limit != nil {
		b := MinRateCI(*limit, e)
		row.Budget = &b
	}
	return row, m
}

// featureRows adds the rows of the features' benchmarks, judges their
// budgets, and lists the benchmarks with the micro-benchmarks.
func (h *harness) featureRows() error {
	fr := featureResults{h.featureMicro, h.featureNo}
	h.rep.Micro = append(h.rep.Micro, h.featureMicro...)
	add := func(row Row) {
		if row.Budget != nil {
			row.Budget = h.budget(*row.Budget)
		}
		h.rep.Rows = append(h.rep.Rows, row)
	}

	// JSON Lines beside its floor on this machine, measured in the same
	// benchmark: one write(2) and one SHA-256 of a line of the same size.
	row, jl := fr.rateRow("JSON Lines sink: events appended to the log (audit/jsonl BenchmarkJSONL)", "BenchmarkJSONL", &Budgets[JSONLRate])
	if jl != nil {
		if floor := jl.Estimate("floor-events/s"); floor.Valid() {
			row.Base = rateCell(floor)
			row.Versus = "the floor: one SHA-256 and one write(2) of a line of the same size, same run (BenchmarkJSONL floor-events/s)"
			row.Ratio = RatioEstimate(jl.Samples["floor-events/s"], jl.Samples["events/s"]).String() + " cost per event"
		}
	}
	add(row)

	// RELP beside plain syslog over TCP to the same rsyslogd, in the same
	// process: the cost of the acknowledgement per event, paired by
	// round. The budget is judged with the sender and rsyslogd on one
	// CPU: on a virtual machine that wakes a process on another CPU by
	// an interrupt through the hypervisor (tens of microseconds), that
	// wake-up, twice an event, is the cost on two CPUs, shown as a row
	// of its own.
	relpRows := func(workload, sub, versus string, limit *Limit) {
		row, relp := fr.rateRow(workload, "BenchmarkDelivery/relp"+sub, limit)
		tcpRow, tcp := fr.rateRow("", "BenchmarkDelivery/syslog-tcp"+sub, nil)
		row.Base, row.Versus = tcpRow.Sstar, versus
		if relp != nil && tcp != nil {
			row.Ratio = RELPCost(relp, tcp).String() + " cost per event"
		}
		add(row)
	}
	relpRows("RELP sink: events to rsyslogd, each acknowledged, both on one CPU (audit/relp BenchmarkDelivery/relp-one-cpu)", "-one-cpu",
		"plain syslog over TCP to the same rsyslogd, on one CPU, same run (BenchmarkDelivery/syslog-tcp-one-cpu)", &Budgets[RELPRate])
	relpRows("RELP sink, sender and rsyslogd free to run on two CPUs (audit/relp BenchmarkDelivery/relp)", "",
		"plain syslog over TCP to the same rsyslogd, same run (BenchmarkDelivery/syslog-tcp)", nil)

	row, _ = fr.rateRow("journald sink: entries by the native protocol (audit/journald BenchmarkJournald)", "BenchmarkJournald", &Budgets[JournaldRate])
	add(row)
	row, _ = fr.rateRow("kernel audit sink: records, each acknowledged (audit/kaudit BenchmarkKernelAudit)", "BenchmarkKernelAudit", nil)
	add(row)

	// Catalogs: loading 500 modules vouched for by one, against the plain
	// host, in one process (the benchmark's own per-iteration ratios,
	// medians over its runs); and the one-time cost of opening one.
	row = Row{Workload: "loading 500 modules, one catalog, in one process (interp BenchmarkLoadCatalog)", Versus: "plain host, unverified, same process"}
	m, why, failed := fr.find("BenchmarkLoadCatalog")
	if m == nil {
		add(missingRow(row, why, failed, &Budgets[CatalogLoading]))
	} else {
		e := m.Estimate("catalog/plain")
		row.Sstar = timeEstimateCell(m.Estimate("catalog-ms").scale(1e6))
		row.Base = timeEstimateCell(m.Estimate("plain-ms").scale(1e6))
		row.Ratio = e.String()
		b := MaxRatioCI(Budgets[CatalogLoading], e)
		if !e.Valid() {
			b.Why = "BenchmarkLoadCatalog did not report catalog/plain"
		}
		row.Budget = &b
		add(row)
		if s := m.Estimate("stamp/plain"); s.Valid() {
			add(Row{Workload: "loading 500 modules, stamped, in one process (interp BenchmarkLoadCatalog)",
				Sstar: timeEstimateCell(m.Estimate("stamp-ms").scale(1e6)), Base: row.Base, Versus: row.Versus, Ratio: s.String()})
		}
	}
	for _, n := range []int{500, 10000} {
		name := fmt.Sprintf("BenchmarkOpenCatalog/%d", n)
		row := Row{Workload: "open and check a catalog of " + thousands(n) + " entries, once per run (opencode " + name + ")"}
		if m, why, _ := fr.find(name); m == nil {
			row.Sstar = why
		} else {
			row.Sstar = timeEstimateCell(m.Estimate("ns/op"))
			if a, ok := m.Metric("allocs/op"); ok {
				row.Sstar += fmt.Sprintf(", %g allocs", a)
			}
		}
		add(row)
	}
	h.hardeningRows(fr, add)
	return nil
}

// missingRow is the row of a benchmark that gave no result, saying why,
// and its budget, if any, unmeasured (a skip: a prerequisite is missing)
// or failed.
func missingRow(row Row, why string, failed bool, limit *Limit) Row {
	row.Sstar = why
	if limit != nil {
		b := Unmeasured(*limit, why)
		if failed {
			b.Status = Fail
		}
		row.Budget = &b
	}
	return row
}

// hardeningRows adds the rows of what the seccomp filter, declared
// permissions and the isolation API cost, from their packages' own
// benchmarks: each runs its ways in turn in one benchmark and reports
// their medians and the per-iteration ratio, here the median over
// rounds with an interval.
func (h *harness) hardeningRows(fr featureResults, add func(Row)) {
	ms := func(m *Micro, unit string) string { return timeEstimateCell(m.Estimate(unit).scale(1e6)) }
	us := func(m *Micro, unit string) string { return timeEstimateCell(m.Estimate(unit).scale(1e3)) }

	for _, w := range []struct{ sub, what string }{
		{"load", "loading 500 modules"},
		{"fsread", "10,000 fs.read"},
	} {
		name := "BenchmarkWorkload/" + w.sub
		row := Row{Workload: "seccomp filter: " + w.what + ", in one child process per way (harden " + name + ")",
			Versus: "the same child without the filter, in turn"}
		m, why, failed := fr.find(name)
		if m == nil {
			add(missingRow(row, why, failed, nil))
			continue
		}
		row.Sstar, row.Base, row.Ratio = ms(m, "filter-ms/run"), ms(m, "none-ms/run"), m.Estimate("filter/none").String()
		add(row)
	}
	row := Row{Workload: "seccomp filter: building and installing it, once per process (harden BenchmarkInstall, asm)"}
	if m, why, failed := fr.find("BenchmarkInstall"); m == nil {
		add(missingRow(row, why, failed, nil))
	} else {
		row.Sstar = us(m, "asm-µs/install")
		add(row)
	}

	for _, w := range []struct {
		sub, what string
		limit     BudgetID
	}{
		{"startup", "an empty script, 20 rules", PermStartup},
		{"read10k", "10,000 fs.read, read= declared", PermFiles},
	} {
		name := "BenchmarkPermissions/" + w.sub
		row := Row{Workload: "permissions (policy.allow, Landlock): " + w.what + " (cmd/sstar " + name + ")",
			Versus: "sstar under the same system policy without policy.allow, in turn"}
		m, why, failed := fr.find(name)
		if m == nil {
			add(missingRow(row, why, failed, &Budgets[w.limit]))
			continue
		}
		e := m.Estimate("with/without")
		row.Sstar, row.Base, row.Ratio = ms(m, "with-ms"), ms(m, "without-ms"), e.String()
		b := MaxRatioCI(Budgets[w.limit], e)
		row.Budget = &b
		add(row)
	}

	row = Row{Workload: "isolation API: sandbox.Run of a three-line configuration script, per evaluation (sandbox BenchmarkRun)",
		Versus: "the same script run by go.starlark.net in the embedding process"}
	if m, why, failed := fr.find("BenchmarkRun"); m == nil {
		add(missingRow(row, why, failed, nil))
	} else {
		row.Sstar, row.Base = us(m, "µs/eval"), us(m, "in-process-µs/eval")
		row.Ratio = RatioEstimate(m.Samples["µs/eval"], m.Samples["in-process-µs/eval"]).String()
		add(row)
	}
}

// RELPCost is what an event costs over RELP as a multiple of what it
// costs over plain syslog TCP: the median over rounds of the two
// sub-benchmarks' rates, paired by round (both ran in one process,
// against one rsyslogd), with RatioEstimate's interval.
func RELPCost(relp, tcp *Micro) Estimate {
	// Cost per event is 1/rate: relp's cost over tcp's is tcp's rate
	// over relp's.
	return RatioEstimate(tcp.Samples["events/s"], relp.Samples["events/s"])
}

// scale returns e with every bound multiplied by f (ms to ns).
func (e Estimate) scale(f float64) Estimate {
	e.Median, e.Lo, e.Hi = e.Median*f, e.Lo*f, e.Hi*f
	return e
}
