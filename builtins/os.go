package builtins

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/internal/ospath"
)

// OS returns the os module. sstar itself never reads its environment; a
// script may, with os.getenv, and every read is an event.
func OS() *starlarkstruct.Module {
	return module("os", starlark.StringDict{
		"getenv":   fn("os.getenv", osGetenv),
		"getcwd":   fn("os.getcwd", osGetcwd),
		"platform": starlark.String(runtime.GOOS),
	})
}

// os.getenv(name, default=None) returns the value of the environment
// variable name, or default if it is not set.
func osGetenv(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	var def starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "name", &name, "default?", &def); err != nil {
		return nil, err
	}
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return nil, fmt.Errorf("%s: invalid variable name %q", b.Name(), name)
	}
	if err := audit.Raise(t, audit.Getenv, starlark.String(name)); err != nil {
		return nil, fmtAbort(b.Name(), err)
	}
	if v, ok := os.LookupEnv(name); ok {
		return starlark.String(v), nil
	}
	return def, nil
}

// os.getcwd() returns the absolute path of the working directory.
func osGetcwd(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 0); err != nil {
		return nil, err
	}
	if err := audit.Raise(t, audit.Getcwd); err != nil {
		return nil, fmtAbort(b.Name(), err)
	}
	wd, err := ospath.WorkingDir()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	return starlark.String(wd), nil
}
