package bench_test

import (
	"testing"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/interp"
)

// The per-event cost of sys.audit as a script sees it: each op is one
// iteration of a Starlark loop calling sys.audit("bench.event", i), so
// ns/op minus that of the empty loop (loop) is what one call costs. The
// harness subtracts it; CPython's sys.audit is timed the same way.
const eventsSrc = `
def loop(n):
    for i in range(n):
        pass

def events(n):
    for i in range(n):
        sys.audit("bench.event", i)

def hook(event, args):
    pass
`

func BenchmarkScriptEvent(b *testing.B) {
	for _, c := range []struct {
		name  string
		fn    string
		hooks func(*testing.B, *audit.Dispatcher, *starlark.Thread, starlark.StringDict)
	}{
		{"loop", "loop", nil},
		{"0hooks", "events", nil},
		{"1go", "events", func(b *testing.B, d *audit.Dispatcher, _ *starlark.Thread, _ starlark.StringDict) {
			n := 0
			if err := d.AddHook(func(audit.Event) error { n++; return nil }); err != nil {
				b.Fatal(err)
			}
		}},
		{"1starlark", "events", func(b *testing.B, d *audit.Dispatcher, t *starlark.Thread, g starlark.StringDict) {
			if err := d.AddScriptHook(t, g["hook"].(starlark.Callable)); err != nil {
				b.Fatal(err)
			}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			d := new(audit.Dispatcher)
			t := &starlark.Thread{Name: "bench"}
			audit.Attach(t, d)
			predeclared := starlark.StringDict{"sys": interp.Sys([]string{"bench.star"})}
			g, err := starlark.ExecFileOptions(interp.FileOptions, t, "bench.star", eventsSrc, predeclared)
			if err != nil {
				b.Fatal(err)
			}
			if c.hooks != nil {
				c.hooks(b, d, t, g)
			}
			b.ReportAllocs()
			b.ResetTimer()
			if _, err := starlark.Call(t, g[c.fn], starlark.Tuple{starlark.MakeInt(b.N)}, nil); err != nil {
				b.Fatal(err)
			}
		})
	}
}
