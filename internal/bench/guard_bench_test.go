package bench_test

import (
	"testing"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/interp"
)

// BenchmarkBuiltinCall is what sstar adds to every call of a universe
// builtin from a script: the host wraps each one (audit.Guard) so that
// a Go panic inside it becomes an error. Each op is one iteration of a
// Starlark loop calling len(s); "plain" calls the unwrapped builtin, as
// the plain starlark command does, "guarded" the wrapped one, as sstar
// does.
func BenchmarkBuiltinCall(b *testing.B) {
	const src = `
def calls(n):
    s = "abc"
    for i in range(n):
        len(s)
`
	guarded := starlark.StringDict{}
	for name, v := range starlark.Universe {
		if bi, ok := v.(*starlark.Builtin); ok {
			v = audit.Guard(bi)
		}
		guarded[name] = v
	}
	for _, c := range []struct {
		name        string
		predeclared starlark.StringDict
	}{{"plain", nil}, {"guarded", guarded}} {
		b.Run(c.name, func(b *testing.B) {
			t := &starlark.Thread{}
			g, err := starlark.ExecFileOptions(interp.FileOptions, t, "calls.star", src, c.predeclared)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			if _, err := starlark.Call(t, g["calls"], starlark.Tuple{starlark.MakeInt(b.N)}, nil); err != nil {
				b.Fatal(err)
			}
		})
	}
}
