package audit

import (
	"fmt"

	"go.starlark.net/starlark"
)

// Guard returns a builtin that calls b and turns a Go panic inside it into
// the builtin's error, at the call, and an sstar.panic event on the
// calling thread's dispatcher: a bug in a builtin fails the script with
// its backtrace instead of taking the process down. Every builtin sstar
// gives scripts is guarded, the Starlark universe's included; guard
// builtins of your own with it.
func Guard(b *starlark.Builtin) *starlark.Builtin {
	impl := func(t *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (v starlark.Value, err error) {
		// A closure rather than a deferred Recover, whose arguments
		// (the dispatcher, the name) would be evaluated on every call:
		// this is on the path of every builtin call.
		defer func() {
			if p := recover(); p != nil {
				v, err = nil, panicked(From(t), t, b.Name(), p)
			}
		}()
		return b.CallInternal(t, args, kwargs)
	}
	return starlark.NewBuiltin(b.Name(), impl)
}

// Recover, deferred, turns a Go panic in the function that defers it into
// *err and an sstar.panic(where, value) event on d:
//
//	func (...) (err error) {
//		defer audit.Recover(d, t, path, &err)
//
// where names what panicked (a module's path, an event's name); t may be
// nil outside any script. Use it where Go code runs that Guard does not
// cover: a module's execution, an event raised outside any run (the
// dispatcher does not recover a Go hook's panic).
func Recover(d *Dispatcher, t *starlark.Thread, where string, err *error) {
	if p := recover(); p != nil {
		*err = panicked(d, t, where, p)
	}
}

// panicked is the error for a Go panic p recovered in where, after raising
// sstar.panic. If the event could not be raised either (a hook panicked
// on it too, or could not record it), the error says so as well, and
// wraps that error (ErrNotRecorded, say).
func panicked(d *Dispatcher, t *starlark.Thread, where string, p any) error {
	err := fmt.Errorf("internal error (Go panic) in %s: %v; this is a bug in sstar, a builtin or a Go audit hook", where, p)
	if aerr := d.RaisePanic(t, where, p); aerr != nil {
		return fmt.Errorf("%w; and %w", err, aerr)
	}
	return err
}
