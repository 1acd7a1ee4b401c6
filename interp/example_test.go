package interp_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/opencode"
)

// script writes a Starlark file into a fresh directory and stamps it
// with the code `sstar trust` runs, so the host's verifying opener
// accepts it. (Stamping raises sstar.trust, to a dispatcher nobody hooks.)
func script(name, src string) string {
	dir, err := os.MkdirTemp("", "sstar-example")
	if err != nil {
		panic(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		panic(err)
	}
	if _, _, err := new(opencode.Opener).Stamp(new(audit.Dispatcher), p); err != nil {
		panic(err)
	}
	return p
}

// Embedding the hardened host: run a verified file and read its globals.
func Example() {
	path := script("config.star", `
replicas = 3
name = "web-%d" % replicas
`)
	defer os.RemoveAll(filepath.Dir(path))

	host := interp.New(interp.Options{
		Opener:   &opencode.Opener{}, // verifies every file before it is compiled
		MaxSteps: 1_000_000,
	})
	globals, err := host.RunFile(context.Background(), path, nil)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(globals["name"], globals["replicas"])
	// Output:
	// "web-3" 3
}

// A Go hook that logs every event before it happens.
func Example_logHook() {
	path := script("hello.star", `sys.audit("app.greet", "world")`)
	defer os.RemoveAll(filepath.Dir(path))

	d := new(audit.Dispatcher)
	d.AddHook(func(ev audit.Event) error {
		a := ev.Args()
		if ev.Name == "sstar.exec_check" {
			a = a[:1] // the kernel's answer depends on the kernel and the file's mode
		}
		args := strings.ReplaceAll(a.String(), filepath.Dir(path), "$DIR")
		fmt.Println(ev.Name, args)
		return nil
	})
	host := interp.New(interp.Options{Audit: d, Opener: &opencode.Opener{}})
	if _, err := host.RunFile(context.Background(), path, nil); err != nil {
		fmt.Println("error:", err)
	}
	// Output:
	// sstar.run_file ("$DIR/hello.star",)
	// sstar.open_code ("$DIR/hello.star",)
	// sstar.exec_check ("$DIR/hello.star",)
	// compile ("$DIR/hello.star", "f85892d68eff21c677fabe4f64646a2c1e03d93858ca4a03d29d96ef62470565")
	// exec ("$DIR/hello.star",)
	// app.greet ("world",)
}

// A Go hook that aborts an event: the action does not happen, and the
// script's error names the event and the reason.
func Example_abortHook() {
	main := script("main.star", `load("/opt/untrusted/lib.star", "x")`)
	defer os.RemoveAll(filepath.Dir(main))

	d := new(audit.Dispatcher)
	d.AddHook(func(ev audit.Event) error {
		if module, _ := starlark.AsString(ev.Args()[0]); ev.Name == "load" && filepath.IsAbs(module) {
			return errors.New("absolute loads are not allowed")
		}
		return nil
	})
	host := interp.New(interp.Options{Audit: d, Opener: &opencode.Opener{}})
	_, err := host.RunFile(context.Background(), main, nil)
	var abort *audit.AbortError
	fmt.Println(errors.As(err, &abort), abort.Event)
	fmt.Println(err)
	// Output:
	// true load
	// cannot load /opt/untrusted/lib.star: audit event "load" aborted: absolute loads are not allowed
}
