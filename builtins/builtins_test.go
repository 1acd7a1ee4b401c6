package builtins_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarktest"
	"go.starlark.net/syntax"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/audittest"
	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/interp"
)

// fileOptions is sstar's dialect (interp.FileOptions), repeated here so
// that these tests do not depend on the host (but for its sys module).
var fileOptions = &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true}

// TestStarlark runs testdata/*.star, each in a fresh working directory,
// with the modules predeclared, assert.star loadable, and two helpers:
// testdata (the absolute path of testdata) and events() (the events
// raised since the last call, as (name, args) tuples).
func TestStarlark(t *testing.T) {
	files, err := filepath.Glob("testdata/*.star")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.star: %v", err)
	}
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSTAR_TEST_VAR", "value")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Chdir(t.TempDir())
			rec := new(audittest.Recorder)
			th, _ := newThread(t, rec.Hook)
			th.Load = func(_ *starlark.Thread, module string) (starlark.StringDict, error) {
				if module == "assert.star" {
					return starlarktest.LoadAssertModule()
				}
				return nil, errors.New("no module " + module)
			}
			starlarktest.SetReporter(th, t)
			predeclared := builtins.Modules()
			predeclared["testdata"] = starlark.String(testdata)
			predeclared["events"] = starlark.NewBuiltin("events", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
				var l []starlark.Value
				for _, ev := range rec.Take() {
					l = append(l, starlark.Tuple{starlark.String(ev.Name), ev.Args()})
				}
				return starlark.NewList(l), nil
			})
			path := filepath.Join(testdata, filepath.Base(file))
			if _, err := starlark.ExecFileOptions(fileOptions, th, path, nil, predeclared); err != nil {
				var ee *starlark.EvalError
				if errors.As(err, &ee) {
					t.Fatal(ee.Backtrace())
				}
				t.Fatal(err)
			}
		})
	}
}

// newThread returns a thread with a fresh dispatcher holding hooks.
func newThread(t *testing.T, hooks ...audit.Hook) (*starlark.Thread, *audit.Dispatcher) {
	t.Helper()
	d := new(audit.Dispatcher)
	for _, h := range hooks {
		if err := d.AddHook(h); err != nil {
			t.Fatal(err)
		}
	}
	th := &starlark.Thread{Name: t.Name()}
	audit.Attach(th, d)
	return th, d
}

// newBareThread returns a thread with no dispatcher attached.
func newBareThread(t *testing.T) *starlark.Thread {
	return &starlark.Thread{Name: t.Name()}
}

// run executes src on th with the modules (and sys) predeclared.
func run(th *starlark.Thread, src string) (starlark.StringDict, error) {
	predeclared := builtins.Modules()
	predeclared["sys"] = interp.Sys([]string{"test.star"})
	return starlark.ExecFileOptions(fileOptions, th, "test.star", src, predeclared)
}

// must writes a file for a test's setup.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
