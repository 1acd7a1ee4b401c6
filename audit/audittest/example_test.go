package audittest_test

import (
	"errors"
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/audittest"
	"github.com/sstar-project/sstar/builtins"
)

// readOnly is the hook under test: an embedder's policy that lets
// scripts read files but never write them.
func readOnly(ev audit.Event) error {
	if ev.Name == "open" && audittest.StringArg(ev, 1) != "r" {
		return errors.New("this host is read-only")
	}
	return nil
}

// Testing a policy hook: the recorder added first sees every event (the
// later hooks being added, the write the policy aborts, and the
// sstar.abort that reports it); the recorder added after the policy sees
// only what the policy let through.
func Example() {
	before, after := new(audittest.Recorder), new(audittest.Recorder)
	d := new(audit.Dispatcher)
	d.AddHook(before.Hook)
	d.AddHook(readOnly)
	d.AddHook(after.Hook)
	th := &starlark.Thread{Name: "example"}
	audit.Attach(th, d)

	_, err := starlark.ExecFile(th, "config.star", `
fs.read("/dev/null")
fs.write("/etc/motd", "hello")
`, builtins.Modules())
	fmt.Println(err)

	fmt.Println("before:", strings.Join(before.Names(), " "))
	fmt.Println("after: ", strings.Join(after.Names(), " "))
	abort, _ := before.Find("sstar.abort")
	fmt.Println(audittest.String(abort))
	// Output:
	// fs.write: audit event "open" aborted: this host is read-only
	// before: sys.addaudithook sys.addaudithook open open sstar.abort
	// after:  open sstar.abort
	// sstar.abort("open", "this host is read-only")
}
