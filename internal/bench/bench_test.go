package bench

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{3 * ms}, 3 * ms},
		{[]time.Duration{5 * ms, 1 * ms, 3 * ms}, 3 * ms},
		{[]time.Duration{4 * ms, 1 * ms, 3 * ms, 2 * ms}, 2500 * time.Microsecond},
	} {
		in := append([]time.Duration(nil), c.in...)
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Fatalf("Median reordered its argument: %v", c.in)
			}
		}
	}
}

func TestSpread(t *testing.T) {
	// Quartiles of 1..5 (linear) are 2 and 4, the median 3: (4-2)/2/3.
	ds := []time.Duration{5, 1, 4, 2, 3}
	if got, want := Spread(ds), 1.0/3; math.Abs(got-want) > 1e-12 {
		t.Errorf("Spread = %v, want %v", got, want)
	}
	if got := Spread(ds[:3]); got != 0 {
		t.Errorf("Spread of 3 values = %v, want 0", got)
	}
}

func TestRatio(t *testing.T) {
	if got := Ratio(3, 2); got != 1.5 {
		t.Errorf("Ratio(3, 2) = %v", got)
	}
	if got := Ratio(3, 0); !math.IsNaN(got) {
		t.Errorf("Ratio(3, 0) = %v, want NaN", got)
	}
}

func TestPairedEstimate(t *testing.T) {
	// Round 2 is a burst that slowed only a: the paired median ignores it.
	a := &Sample{Wall: []time.Duration{110, 105, 300}, CPU: []time.Duration{10, 10, 10}}
	b := &Sample{Wall: []time.Duration{100, 100, 100}, CPU: []time.Duration{10, 20, 5}}
	if got := PairedEstimate(a, b, false).Median; got != 1.1 {
		t.Errorf("PairedEstimate wall = %v, want 1.1", got)
	}
	if got := PairedEstimate(a, b, true).Median; got != 1 {
		t.Errorf("PairedEstimate cpu = %v, want 1", got)
	}
	if got := PairedEstimate(&Sample{}, b, false); !math.IsNaN(got.Median) || got.Valid() {
		t.Errorf("PairedEstimate without rounds = %+v, want NaN", got)
	}
}

func TestRatioEstimate(t *testing.T) {
	xs := []float64{11, 3, 7, 1, 9, 5, 2, 10, 4, 8, 6} // 1..11, shuffled
	ones := []float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	in := append([]float64(nil), xs...)
	e := RatioEstimate(in, ones)
	// benchmath's interval for the median of 11 values at 90%: the
	// order statistics x(3) and x(9), which cover 1 - 2*(1+11+55)/2048
	// (B ~ Binomial(11, 1/2) falls in [3, 9) with that probability).
	if e.Median != 6 || e.Lo != 3 || e.Hi != 9 || math.Abs(e.Coverage-(1-2*67.0/2048)) > 1e-12 {
		t.Errorf("RatioEstimate(1..11) = %+v; want 6 in [3, 9], coverage %v", e, 1-2*67.0/2048)
	}
	for i := range in {
		if in[i] != xs[i] {
			t.Fatal("RatioEstimate reordered its argument")
		}
	}
	// Three rounds cannot give a 90% interval: it is unbounded, still
	// valid, and never decides a budget.
	e = RatioEstimate(xs[:3], ones[:3])
	if !e.Valid() || !math.IsInf(e.Lo, -1) || !math.IsInf(e.Hi, 1) || !strings.Contains(e.String(), "too few rounds") {
		t.Errorf("RatioEstimate of 3 = %+v (%s)", e, e)
	}
	if b := MaxRatioCI(Budgets[Startup], e); b.Status != Unresolved {
		t.Errorf("an unbounded interval is %v, want UNRESOLVED", b.Status)
	}
	// A pair with a zero denominator is left out; five rounds reach 90%
	// only with the whole range (1 - 2/32).
	a := &Sample{Wall: []time.Duration{110, 105, 300, 100, 120, 999}}
	b := &Sample{Wall: []time.Duration{100, 100, 100, 100, 100, 0}}
	if e := PairedEstimate(a, b, false); e.Median != 1.1 || e.String() != "1.100× (1.000–3.000)" || e.Coverage != 1-2.0/32 {
		t.Errorf("PairedEstimate = %+v (%s)", e, e)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2:                       "2.00 ns",
		1234:                    "1.23 µs",
		45_600_000:              "45.6 ms",
		1_020_000_000:           "1.02 s",
		123 * time.Microsecond:  "123 µs",
		-1500 * time.Nanosecond: "-1.50 µs",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%d) = %q, want %q", d, got, want)
		}
	}
}

func TestBudgets(t *testing.T) {
	compute := Limit{Name: "compute", Kind: MaxRatio, Bound: 1.03, Versus: "plain"}
	for _, c := range []struct {
		e    Estimate
		want Status
	}{
		{Estimate{1.02, 1.01, 1.03, 0.93}, Pass},
		{Estimate{1.04, 1.031, 1.05, 0.93}, Fail},
		{Estimate{1.02, 0.99, 1.05, 0.93}, Unresolved}, // under, but not shown to be
		{Estimate{1.05, 1.00, 1.08, 0.93}, Unresolved}, // over, but not shown to be
		{Estimate{math.NaN(), math.NaN(), math.NaN(), 0}, Fail},
	} {
		if b := MaxRatioCI(compute, c.e); b.Status != c.want {
			t.Errorf("%v against 1.03: %v (%s), want %v", c.e, b.Status, b.Why, c.want)
		}
	}
	noisy := Estimate{0.99, 0.88, 1.19, 0.93}
	for _, c := range []struct {
		in, whole Estimate
		want      Status
	}{
		{Estimate{1.009, 1.005, 1.012, 0.95}, noisy, Pass},                            // the precise one decides
		{Estimate{1.04, 1.035, 1.045, 0.95}, noisy, Fail},                             // the precise one is over
		{Estimate{1.02, 1.00, 1.04, 0.95}, noisy, Unresolved},                         // the precise one cannot tell
		{Estimate{1.009, 1.005, 1.012, 0.95}, Estimate{1.10, 1.06, 1.15, 0.93}, Fail}, // whole processes are over on their own
		{Estimate{math.NaN(), math.NaN(), math.NaN(), 0}, noisy, Fail},
	} {
		if b := MaxRatioInProcess(compute, c.in, c.whole); b.Status != c.want {
			t.Errorf("in one process %v, whole %v, against 1.03: %v (%s), want %v", c.in, c.whole, b.Status, b.Why, c.want)
		}
	}
	hook := Limit{Name: "hook", Kind: MinFactor, Bound: 10, Versus: "CPython"}
	if b := AtLeastFactor(hook, 20, 290); b.Status != Pass {
		t.Errorf("20 ns vs 290 ns: %v %s", b.Status, b.Why)
	}
	if b := AtLeastFactor(hook, 56, 290); b.Status != Fail || !strings.Contains(b.Why, "29.0 ns") {
		t.Errorf("56 ns vs 290 ns: %v %q", b.Status, b.Why)
	}
	ok := &Micro{Metrics: map[string]float64{"ns/op": 2.1, "allocs/op": 0}}
	slow := &Micro{Metrics: map[string]float64{"ns/op": 5.0, "allocs/op": 0}}
	allocs := &Micro{Metrics: map[string]float64{"ns/op": 2.1, "allocs/op": 1}}
	noMem := &Micro{Metrics: map[string]float64{"ns/op": 2.1}}
	for m, want := range map[*Micro]Status{ok: Pass, slow: Fail, allocs: Fail, noMem: Fail, nil: Fail} {
		if b := NoHookRaise(Limit{Name: "raise", Kind: MaxNS, Bound: 5}, m); b.Status != want {
			t.Errorf("NoHookRaise(%v) = %v, want %v", m, b.Status, want)
		}
	}
	if Missed([]*Budget{{Status: Pass}, {Status: Skipped}, {Status: Unresolved}}) {
		t.Error("Missed with a pass, a skip and an unresolved budget")
	}
	if !Undecided([]*Budget{{Status: Pass}, {Status: Unresolved}}) || Undecided([]*Budget{{Status: Pass}, {Status: Fail}}) {
		t.Error("Undecided is not about Unresolved budgets")
	}
	if !Missed([]*Budget{{Status: Pass}, {Status: Fail}}) {
		t.Error("not Missed with a failure")
	}
}

const goBenchOutput = `goos: linux
goarch: amd64
pkg: github.com/sstar-project/sstar/audit
cpu: Intel(R) Xeon(R) Processor
BenchmarkRaise/0hooks-2         	221231916	         2.493 ns/op	       0 B/op	       0 allocs/op
BenchmarkRaise/0hooks-2         	228349378	         2.960 ns/op	       0 B/op	       0 allocs/op
BenchmarkRaise/0hooks-2         	120834249	         4.764 ns/op	       0 B/op	       0 allocs/op
BenchmarkRaise/1go-2            	 2903198	       237.9 ns/op	      16 B/op	       1 allocs/op
PASS
ok  	github.com/sstar-project/sstar/audit	8.1s
goos: linux
pkg: github.com/sstar-project/sstar/audit/jsonl
BenchmarkHook-8   	 1000	  1500 ns/op	 312.5 MB/s	 400 B/op	 7 allocs/op
BenchmarkBroken-2 --- FAIL
FAIL	github.com/sstar-project/sstar/opencode [build failed]
`

func TestParseGoBench(t *testing.T) {
	ms, err := ParseGoBench(strings.NewReader(goBenchOutput))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("got %d benchmarks, want 3: %+v", len(ms), ms)
	}
	r0 := ms[0]
	if r0.Pkg != "github.com/sstar-project/sstar/audit" || r0.Name != "BenchmarkRaise/0hooks" || r0.Runs != 3 {
		t.Errorf("first = %+v", r0)
	}
	if ns, _ := r0.Metric("ns/op"); ns != 2.960 {
		t.Errorf("median ns/op = %v, want 2.960", ns)
	}
	h := ms[2]
	if h.Pkg != "github.com/sstar-project/sstar/audit/jsonl" || h.Name != "BenchmarkHook" {
		t.Errorf("third = %+v", h)
	}
	if got := strings.Join(h.Units(), " "); got != "ns/op B/op allocs/op MB/s" {
		t.Errorf("units = %q", got)
	}
	if FindMicro(ms, reRaise0) != r0 || FindMicro(ms, reRaise1Go) != ms[1] {
		t.Error("FindMicro did not find the Raise benchmarks")
	}
}

const straceOutput = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 41.23    0.004120           8       503           openat
 20.00    0.002000           2      1006           read
 10.00    0.001000           2       500        12 fgetxattr
  1.00    0.000100           1        10           futex
------ ----------- ----------- --------- --------- ----------------
100.00    0.010000           4      2019        12 total
`

func TestStrace(t *testing.T) {
	a, err := ParseStraceSummary(strings.NewReader(straceOutput))
	if err != nil {
		t.Fatal(err)
	}
	if a["openat"] != 503 || a["fgetxattr"] != 500 || a["total"] != 0 || a.Total() != 2019 {
		t.Errorf("parsed %v", a)
	}
	b := Syscalls{"openat": 503, "read": 1006, "futex": 30}
	d := DiffSyscalls(a, b, 500, 0.5)
	if len(d) != 1 || d[0].Name != "fgetxattr" || d[0].PerUnit != 1 {
		t.Errorf("DiffSyscalls = %+v", d)
	}
}

func TestReport(t *testing.T) {
	pass := MaxRatioCI(Budgets[Startup], Estimate{1.1, 1.05, 1.15, 0.93})
	fail := MaxRatioCI(Budgets[Compute], Estimate{1.1, 1.05, 1.15, 0.93})
	r := &Report{
		Command:     "make bench",
		Params:      Params{Modules: 500, Events: 1000, Files: 10, FileSize: 100, ComputeRounds: 7},
		Rounds:      map[string]int{"startup": 3, "features": 5},
		FeatureRuns: []string{"`BenchmarkJSONL` (audit/jsonl, `-benchtime 1s`)", "`BenchmarkDelivery` (audit/relp, `-benchtime 1s`)"},
		Rows: []Row{
			{Workload: "start-up", Sstar: "2.00 ms", Base: "1.80 ms", Versus: "plain starlark", Ratio: "1.100×", Budget: &pass},
			{Workload: "compute | pipes", Sstar: "1.10 s", Budget: &fail},
		},
		Budgets: []*Budget{&pass, &fail},
		Micro:   []*Micro{{Pkg: modulePath + "/audit", Name: "BenchmarkRaise/0hooks", Metrics: map[string]float64{"ns/op": 2, "B/op": 0, "allocs/op": 0}}},
	}
	if !r.Missed() {
		t.Error("a failed budget is not Missed")
	}
	table := r.Table()
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 4 {
		t.Fatalf("table has %d lines:\n%s", len(lines), table)
	}
	for _, l := range lines {
		if len([]rune(l)) != len([]rune(lines[0])) {
			t.Errorf("columns do not line up:\n%s", table)
			break
		}
	}
	if !strings.Contains(table, `compute \| pipes`) || !strings.Contains(table, "FAIL: ") {
		t.Errorf("table:\n%s", table)
	}
	r.Syscalls = []SyscallSection{{Title: "loading", A: "sstar", B: "plain starlark", TotalA: 1500, TotalB: 1000, Units: 500, Unit: "module",
		Diffs: []SyscallDiff{{Name: "fgetxattr", A: 500, B: 0, PerUnit: 1}}, SyscallNS: 800, SyscallWhich: "getxattr(2) of a module"}}
	r.Notes = []string{"a note"}
	md := r.Markdown()
	for _, want := range []string{
		"# Benchmarks", "## Machine", "## Method", "BenchmarkRaise/0hooks", "| audit ",
		"- python3: not found",
		"## Budgets\n\n- PASS start-up: ",
		"- start-up: ≤ 1.25× plain; a one-line script",
		"## Notes on this run\n\n- a note\n",
		"## System calls: loading\n\nCounted with `strace -f -c` (one run each): sstar made 1500 system calls, plain starlark 1000; +1.0 per module. One getxattr(2) of a module costs 800 ns here",
		"| fgetxattr   | 500   | 0              | +1.00                 |",
		"then startup 3 rounds, interleaved",
		"one script that loads 500 small modules",
		"- sinks and catalogs: Go benchmarks of those packages, run as they are, 5 rounds, each benchmark once a round: `BenchmarkJSONL` (audit/jsonl, `-benchtime 1s`), `BenchmarkDelivery` (audit/relp, `-benchtime 1s`). ",
		"- JSON Lines sink: ≥ 500,000 events/s; events appended",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	if strings.Contains(md, "<no value>") || strings.Contains(md, "Quick mode") {
		t.Errorf("Markdown:\n%s", md)
	}
	r.Quick = true
	if md := r.Markdown(); !strings.Contains(md, "**Quick mode: ") {
		t.Error("quick mode is not said")
	}
}

func TestBudgetTable(t *testing.T) {
	for id, l := range Budgets {
		if l.Name == "" || l.Bound <= 0 || l.Why == "" {
			t.Errorf("Budgets[%d] is incomplete: %+v", id, l)
		}
	}
	for l, want := range map[Limit]string{
		Budgets[Startup]:        "≤ 1.25× plain",
		Budgets[Loading]:        "≤ 1.30× plain, unverified",
		Budgets[RaiseNoHooks]:   "< 5 ns, 0 allocs",
		Budgets[GoHook]:         "≥ 10× cheaper than CPython",
		Budgets[JSONLRate]:      "≥ 500,000 events/s",
		Budgets[RELPRate]:       "≥ 20,000 events/s",
		Budgets[JournaldRate]:   "≥ 50,000 events/s",
		Budgets[CatalogLoading]: "≤ 1.30× plain, unverified",
		Budgets[PermStartup]:    "≤ 1.10× without policy.allow",
		Budgets[PermFiles]:      "≤ 1.10× without policy.allow",
	} {
		if l.String() != want {
			t.Errorf("%s reads %q, want %q", l.Name, l, want)
		}
	}
}

func TestCopyProgram(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "prog.linked"), filepath.Join(dir, "prog")
	if err := os.WriteFile(from, []byte("\x7fELF..."), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CopyProgram(from, to); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(to)
	st, _ := os.Stat(to)
	if err != nil || string(b) != "\x7fELF..." || st.Mode().Perm()&0o100 == 0 { // executable (the umask decides the rest)
		t.Errorf("copy is %q, mode %v, err %v", b, st.Mode(), err)
	}
	if err := CopyProgram(from, to); err == nil {
		t.Error("CopyProgram overwrote an existing file")
	}
	if err := installCopy(from, filepath.Join(dir, "prog2")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(from); !os.IsNotExist(err) {
		t.Errorf("installCopy left the linker's file: %v", err)
	}
}
