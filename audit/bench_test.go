package audit_test

import (
	"testing"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
)

// BenchmarkRaise measures one event with 0 hooks (the cost every action
// pays when nobody listens: budget < 5 ns, 0 allocs), 1 Go hook and 1
// Starlark hook.
func BenchmarkRaise(b *testing.B) {
	path := starlark.String("/srv/app/config.star")
	b.Run("0hooks", func(b *testing.B) {
		d := new(audit.Dispatcher)
		th := &starlark.Thread{}
		audit.Attach(th, d)
		b.ReportAllocs()
		for b.Loop() {
			if err := d.Raise(th, audit.Exec, path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("1go", func(b *testing.B) {
		d := new(audit.Dispatcher)
		n := 0
		d.AddHook(func(audit.Event) error { n++; return nil })
		th := &starlark.Thread{}
		audit.Attach(th, d)
		b.ReportAllocs()
		for b.Loop() {
			if err := d.Raise(th, audit.Exec, path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("1starlark", func(b *testing.B) {
		d := new(audit.Dispatcher)
		th := &starlark.Thread{}
		audit.Attach(th, d)
		g, err := starlark.ExecFile(th, "hook.star", "def hook(ev, args):\n    pass\n", nil)
		if err != nil {
			b.Fatal(err)
		}
		d.AddScriptHook(th, g["hook"].(starlark.Callable))
		b.ReportAllocs()
		for b.Loop() {
			if err := d.Raise(th, audit.Exec, path); err != nil {
				b.Fatal(err)
			}
		}
	})
}
