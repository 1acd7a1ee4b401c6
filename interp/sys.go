package interp

import (
	"errors"
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/sstar-project/sstar/audit"
)

// Sys returns the host's API for scripts, the sys module, for a run whose
// sys.argv is argv (the script path as given, then its arguments):
// sys.audit(event, *args) raises an event of the script's own, and
// sys.addaudithook(fn) adds a script hook, both on the dispatcher attached
// to the calling thread. A Host gives every run its own; embedders who
// run Starlark threads of their own (attached with audit.Attach) may
// predeclare it too.
func Sys(argv []string) *starlarkstruct.Module {
	list := make([]starlark.Value, len(argv))
	for i, a := range argv {
		list[i] = starlark.String(a)
	}
	m := &starlarkstruct.Module{Name: "sys", Members: starlark.StringDict{
		"argv":         starlark.NewList(list),
		"audit":        audit.Guard(starlark.NewBuiltin("sys.audit", sysAudit)),
		"addaudithook": audit.Guard(starlark.NewBuiltin("sys.addaudithook", sysAddAuditHook)),
	}}
	m.Freeze()
	return m
}

// sys.audit(event, *args) raises event with args on the run's hooks.
func sysAudit(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(kwargs) > 0 {
		return nil, errors.New("sys.audit: unexpected keyword arguments")
	}
	if len(args) == 0 {
		return nil, errors.New("sys.audit: missing event name (sys.audit(event, *args))")
	}
	name, ok := args[0].(starlark.String)
	if !ok {
		return nil, errors.New("sys.audit: event name must be a string, not " + args[0].Type())
	}
	// A script cannot pass for the host (names in sstar's event table,
	// and the sstar. prefix, are raised only by sstar itself, so a log or
	// a policy hook can trust that "exec" or "sstar.policy" happened), nor
	// mislead a reader with a name that needs escaping.
	if err := audit.CheckName(string(name)); err != nil {
		return nil, fmt.Errorf("sys.audit: %v", err)
	}
	d := audit.From(t)
	if d == nil {
		return nil, audit.ErrNoDispatcher
	}
	if err := d.RaiseTuple(t, string(name), args[1:]); err != nil {
		return nil, err
	}
	return starlark.None, nil
}

// sys.addaudithook(fn) adds fn as a hook: fn(event, args) is called for
// every later event; a failure inside it (fail()) aborts the event.
func sysAddAuditHook(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var hook starlark.Callable
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &hook); err != nil {
		return nil, err
	}
	d := audit.From(t)
	if d == nil {
		return nil, audit.ErrNoDispatcher
	}
	if err := d.AddScriptHook(t, hook); err != nil {
		return nil, err
	}
	return starlark.None, nil
}
