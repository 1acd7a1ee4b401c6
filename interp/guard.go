package interp

import (
	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
)

// guardUniverse returns copies of the Starlark universe's builtins that
// turn a Go panic into an error at the call site, so the script's error
// carries its backtrace (list(range(1 << 62)) panics inside list).
// Panics elsewhere are caught where a module executes (run.execFile).
func guardUniverse() starlark.StringDict {
	d := make(starlark.StringDict, len(starlark.Universe))
	for name, v := range starlark.Universe {
		if b, ok := v.(*starlark.Builtin); ok {
			v = audit.Guard(b)
		}
		d[name] = v
	}
	return d
}
