// Package builtins provides the library modules sstar scripts can use:
// fs, proc, os, json, time and math (the host, package interp, gives them
// sys). Every function that touches the world raises its audit event (see
// package audit) after validating its arguments and before acting, on the
// dispatcher attached to the calling thread. Modules are frozen: scripts
// cannot replace their members.
package builtins

import (
	"context"

	"go.starlark.net/lib/math"
	libtime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/sstar-project/sstar/audit"
)

// Modules returns the modules scripts can use besides sys: fs, proc, os,
// json, time and math, each frozen and with every builtin guarded. Pass
// it as interp.Options.Predeclared. Each call returns fresh modules.
func Modules() starlark.StringDict { return ModulesWith(Options{}) }

// Options adjust the modules to their host.
type Options struct {
	// BeforeStart, if set, is called before proc.run starts a process,
	// after its event and every check; an error means nothing is
	// started, and proc.run fails with it. cmd/sstar passes
	// harden.Isolate, so that no process a script starts can reach
	// outside sstar's Landlock domain.
	BeforeStart func() error
}

// ModulesWith is Modules, adjusted by o.
func ModulesWith(o Options) starlark.StringDict {
	return starlark.StringDict{
		"fs":   FS(),
		"proc": procModule(o),
		"os":   OS(),
		"json": jsonModule(),
		"time": library(libtime.Module, map[string]starlark.Value{
			"now": fn("time.now", timeNow),
		}),
		"math": library(math.Module, nil),
	}
}

// fn makes a guarded builtin.
func fn(name string, impl func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)) *starlark.Builtin {
	return audit.Guard(starlark.NewBuiltin(name, impl))
}

// module makes a frozen module.
func module(name string, members starlark.StringDict) *starlarkstruct.Module {
	m := &starlarkstruct.Module{Name: name, Members: members}
	m.Freeze()
	return m
}

// library copies a go.starlark.net/lib module into a new frozen module,
// guarding its builtins and replacing the members in override. The
// library's own module (a package variable) is left alone.
func library(lib *starlarkstruct.Module, override map[string]starlark.Value) *starlarkstruct.Module {
	members := make(starlark.StringDict, len(lib.Members))
	for name, v := range lib.Members {
		if b, ok := v.(*starlark.Builtin); ok {
			v = fn(lib.Name+"."+name, func(t *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
				return b.CallInternal(t, args, kwargs)
			})
		}
		members[name] = v
	}
	for name, v := range override {
		members[name] = v
	}
	return module(lib.Name, members)
}

// libNow is the library's time.now, which honours a clock set on the
// thread with go.starlark.net/lib/time.SetNow.
var libNow = libtime.Module.Members["now"].(*starlark.Builtin)

// time.now() raises time.now, then reads the clock. It is the only
// member of the time module that reads the clock.
func timeNow(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	if err := audit.Raise(t, audit.TimeNow); err != nil {
		return nil, fmtAbort(b.Name(), err)
	}
	return libNow.CallInternal(t, nil, nil)
}

const contextKey = "sstar.context"

// SetContext makes ctx the context of the builtins called on t: when it
// is done, a process started by proc.run is killed with its process
// group. The host sets it on every thread of a run; a thread without one
// uses context.Background.
func SetContext(t *starlark.Thread, ctx context.Context) {
	t.SetLocal(contextKey, ctx)
}

func contextOf(t *starlark.Thread) context.Context {
	if ctx, ok := t.Local(contextKey).(context.Context); ok && ctx != nil {
		return ctx
	}
	return context.Background()
}
