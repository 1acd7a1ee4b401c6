package bench

import (
	"math"
	"strings"
	"testing"
)

// featureOutput is what two rounds of the features' benchmarks print
// with -test.v: results, a skip of a whole benchmark (its
// sub-benchmarks with it), and a benchmark's failed check.
const featureOutput = `goos: linux
goarch: amd64
pkg: github.com/sstar-project/sstar/audit/jsonl
cpu: AMD EPYC
BenchmarkJSONL
BenchmarkJSONL-2   	   10000	     11382 ns/op	     87854 events/s	       0 B/op	       0 allocs/op
PASS
pkg: github.com/sstar-project/sstar/audit/relp
BenchmarkDelivery
BenchmarkDelivery/relp
BenchmarkDelivery/relp-2         	    3700	     35337 ns/op	     28000 events/s	      16 B/op	       3 allocs/op
BenchmarkDelivery/syslog-tcp
BenchmarkDelivery/syslog-tcp-2   	   10000	     61166 ns/op	     14000 events/s	    1190 B/op	      12 allocs/op
PASS
pkg: github.com/sstar-project/sstar/audit/journald
BenchmarkJournald
    journaldtest.go:70: needs root: journald runs in a mount namespace of its own
--- SKIP: BenchmarkJournald
PASS
pkg: github.com/sstar-project/sstar/audit/kaudit
BenchmarkKernelAudit
    kaudit_test.go:290: 100 records sent, 99 read back
        (a continuation)
--- FAIL: BenchmarkKernelAudit-2
FAIL
pkg: github.com/sstar-project/sstar/audit/jsonl
BenchmarkJSONL
BenchmarkJSONL-2   	   10000	     10000 ns/op	     99000 events/s	       0 B/op	       0 allocs/op
PASS
pkg: github.com/sstar-project/sstar/audit/relp
BenchmarkDelivery
    relptest.go:99: needs rsyslog's RELP input imrelp (Debian package rsyslog-relp; .ci/deps installs it)
--- SKIP: BenchmarkDelivery
PASS
`

func TestParseNoResults(t *testing.T) {
	nrs, err := ParseNoResults(strings.NewReader(featureOutput))
	if err != nil {
		t.Fatal(err)
	}
	want := []NoResult{
		{Name: "BenchmarkJournald", Why: "needs root: journald runs in a mount namespace of its own"},
		{Name: "BenchmarkKernelAudit", Failed: true, Why: "100 records sent, 99 read back"},
		{Name: "BenchmarkDelivery", Why: "needs rsyslog's RELP input imrelp (Debian package rsyslog-relp; .ci/deps installs it)"},
	}
	if len(nrs) != len(want) {
		t.Fatalf("ParseNoResults = %+v, want %+v", nrs, want)
	}
	for i := range want {
		if nrs[i] != want[i] {
			t.Errorf("NoResult %d = %+v, want %+v", i, nrs[i], want[i])
		}
	}
	if nr := FindNoResult(nrs, "BenchmarkDelivery/relp"); nr == nil || nr.Name != "BenchmarkDelivery" {
		t.Errorf("a sub-benchmark is not found through its skipped parent: %+v", nr)
	}
	if nr := FindNoResult(nrs, "BenchmarkJournaldX"); nr != nil {
		t.Errorf("FindNoResult matched another name's prefix: %+v", nr)
	}
	// The verbose output's bare names are not results.
	ms, err := ParseGoBench(strings.NewReader(featureOutput))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("ParseGoBench found %d benchmarks: %+v", len(ms), ms)
	}
	if s := ms[0].Samples["events/s"]; len(s) != 2 || s[0] != 87854 || s[1] != 99000 {
		t.Errorf("samples of BenchmarkJSONL = %v, want the two runs in order", s)
	}
}

func TestMinRate(t *testing.T) {
	l := Limit{Name: "rate", Kind: MinRate, Bound: 20_000}
	if got := l.String(); got != "≥ 20,000 events/s" {
		t.Errorf("MinRate limit reads %q", got)
	}
	for _, c := range []struct {
		e    Estimate
		want Status
	}{
		{Estimate{25_000, 21_000, 30_000, 0.94}, Pass},
		{Estimate{25_000, 20_000, 30_000, 0.94}, Pass}, // at the bound is within it
		{Estimate{15_000, 12_000, 19_999, 0.94}, Fail},
		{Estimate{21_000, 18_000, 24_000, 0.94}, Unresolved},
		{Estimate{19_000, 18_000, 24_000, 0.94}, Unresolved},
		{Estimate{25_000, math.Inf(-1), math.Inf(1), 0}, Unresolved}, // too few runs
		{Estimate{math.NaN(), math.NaN(), math.NaN(), 0}, Fail},
	} {
		if b := MinRateCI(l, c.e); b.Status != c.want {
			t.Errorf("%v against ≥ 20,000/s: %v (%s), want %v", c.e, b.Status, b.Why, c.want)
		}
	}
	b := MinRateCI(l, Estimate{15_000, 12_000, 19_000, 0.9375})
	if b.Measured != "15,000 events/s (12,000–19,000), 94% interval" || b.Why != "25.0% under the limit, and the whole interval is under it" {
		t.Errorf("MinRateCI = %+v", b)
	}
	if u := Unmeasured(l, "needs root"); u.Status != Unresolved || u.Why != "needs root" {
		t.Errorf("Unmeasured = %+v", u)
	}
}

func TestFormatRate(t *testing.T) {
	for x, want := range map[float64]string{87854: "87,900", 4.622: "4.62", 1_234_567: "1,230,000", 999.6: "1000", 500_000: "500,000"} {
		if got := formatRate(x); got != want {
			t.Errorf("formatRate(%v) = %q, want %q", x, got, want)
		}
	}
	if got := rateCell(Estimate{Median: 2e4, Lo: math.Inf(-1), Hi: math.Inf(1)}); got != "20,000 events/s (too few runs for an interval)" {
		t.Errorf("rateCell = %q", got)
	}
}
