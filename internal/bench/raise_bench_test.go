package bench_test

import (
	"strconv"
	"testing"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
)

// BenchmarkRaiseCallSite raises events the way sstar's code does, which
// BenchmarkRaise in package audit (one constant argument, on the
// Dispatcher) does not show: the builtins call audit.Raise(t, ...), which
// finds the dispatcher through the thread, with arguments made at the
// call site from run-time strings (fs.read's open(path, "r", flags)).
func BenchmarkRaiseCallSite(b *testing.B) {
	paths := make([]string, 64)
	for i := range paths {
		paths[i] = "/srv/app/data/file" + strconv.Itoa(i) + ".txt"
	}
	for _, hooks := range []string{"0hooks", "1go"} {
		d := new(audit.Dispatcher)
		if hooks == "1go" {
			n := 0
			if err := d.AddHook(func(audit.Event) error { n++; return nil }); err != nil {
				b.Fatal(err)
			}
		}
		t := &starlark.Thread{}
		audit.Attach(t, d)
		b.Run("method-const/"+hooks, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Raise(t, audit.Exec, starlark.String("/srv/app/config.star")); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("method-path/"+hooks, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if err := d.Raise(t, audit.Exec, starlark.String(paths[i%len(paths)])); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("thread-open/"+hooks, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if err := audit.Raise(t, audit.Open, starlark.String(paths[i%len(paths)]), starlark.String("r"), starlark.MakeInt(0)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
