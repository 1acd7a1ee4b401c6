package builtins

import (
	"fmt"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
)

// Guard wraps a builtin so that a Go panic inside it becomes a Starlark
// error naming the builtin, and raises sstar.panic. Every builtin of this
// package is guarded; the host guards the Starlark universe's too. Use it
// for builtins of your own.
func Guard(b *starlark.Builtin) *starlark.Builtin {
	impl := func(t *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (v starlark.Value, err error) {
		defer func() {
			if p := recover(); p != nil {
				v = nil
				err = fmt.Errorf("internal error (Go panic) in %s: %v", b.Name(), p)
				if aerr := audit.From(t).RaisePanic(t, b.Name(), p); aerr != nil {
					err = fmt.Errorf("%w; and %w", err, aerr)
				}
			}
		}()
		return b.CallInternal(t, args, kwargs)
	}
	return starlark.NewBuiltin(b.Name(), impl)
}
