package bench

import (
	"context"
	"crypto/sha256"
	"io"
	"testing"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/opencode"
)

// BenchmarkCompute runs rounds of the harness's compute workload (one
// call of its step function) in one process, three ways, interleaved
// round by round:
//
//   - plain: compiled as the plain starlark command compiles a file
//     (its default dialect flags, the bare universe);
//   - guarded: the same, with the universe's builtins wrapped by
//     audit.Guard, as sstar's host wraps them;
//   - host: compiled and initialised by interp.Host with sstar's
//     dialect and predeclared modules, as `sstar compute.star` is, and
//     called on a thread attached to the host's dispatcher.
//
// One op is one round of each. All three run the same interpreter code at
// the same addresses, so what separates them is what sstar's host does
// per step, and nothing else: not another binary's code layout, not
// process start-up, not a burst of load between two processes. The
// metrics guarded/plain and host/plain are medians of the per-op ratios
// (the rounds of one op are adjacent in time), host/plain-lo and -hi the
// distribution-free interval around the latter (RatioEstimate, at least 90%),
// on which the harness judges the compute budget; the whole-process
// comparison is the harness's compute row.
func BenchmarkCompute(b *testing.B) {
	guarded := starlark.StringDict{}
	for name, v := range starlark.Universe {
		if bi, ok := v.(*starlark.Builtin); ok {
			v = audit.Guard(bi)
		}
		guarded[name] = v
	}
	// step compiles the script as the plain command does (its dialect
	// flags at their defaults: only -set is on), with the given
	// universe, and returns its step function on a thread of its own.
	step := func(universe starlark.StringDict) *computeMode {
		t := &starlark.Thread{Name: "plain"}
		g, err := starlark.ExecFileOptions(&syntax.FileOptions{Set: true}, t, ComputeScript, computeDefs, universe)
		if err != nil {
			b.Fatal(err)
		}
		return &computeMode{t: t, step: g["step"]}
	}
	h := interp.New(interp.Options{
		Opener:      memOpener(computeDefs),
		Predeclared: builtins.Modules(),
		Stdout:      io.Discard,
	})
	g, err := h.RunFile(context.Background(), "/bench/"+ComputeScript, nil)
	if err != nil {
		b.Fatal(err)
	}
	host := &computeMode{t: &starlark.Thread{Name: "host"}, step: g["step"]}
	audit.Attach(host.t, h.Audit())
	builtins.SetContext(host.t, context.Background())

	modes := []*computeMode{step(nil), step(guarded), host}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		arg := starlark.Tuple{starlark.MakeInt(i)}
		for k := range modes {
			m := modes[(i+k)%len(modes)] // each mode goes first in turn
			start := time.Now()
			if _, err := starlark.Call(m.t, m.step, arg, nil); err != nil {
				b.Fatal(err)
			}
			m.ns = append(m.ns, float64(time.Since(start)))
		}
	}
	b.StopTimer()
	plain := modes[0].ns
	b.ReportMetric(MedianFloat(plain), "plain-ns/round")
	b.ReportMetric(MedianFloat(host.ns), "host-ns/round")
	b.ReportMetric(RatioEstimate(modes[1].ns, plain).Median, "guarded/plain")
	e := RatioEstimate(host.ns, plain)
	b.ReportMetric(e.Median, "host/plain")
	b.ReportMetric(e.Lo, "host/plain-lo")
	b.ReportMetric(e.Hi, "host/plain-hi")
	b.ReportMetric(e.Coverage, "host/plain-coverage")
}

// computeMode is one way of running the compute script's step function,
// and how long each call took (ns).
type computeMode struct {
	t    *starlark.Thread
	step starlark.Value
	ns   []float64
}

// memOpener vouches for one script held in memory.
type memOpener string

func (m memOpener) OpenCode(_ *starlark.Thread, path string) (opencode.Code, error) {
	return opencode.Code{Path: path, Data: []byte(m), SHA256: sha256.Sum256([]byte(m))}, nil
}
