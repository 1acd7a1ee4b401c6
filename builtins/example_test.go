package builtins_test

import (
	"errors"
	"fmt"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/builtins"
)

// A Go program gives scripts the modules and decides, in a hook, what
// they may do: here, read but never write. The refused write does not
// happen, and the script gets an error naming the event.
func Example() {
	d := new(audit.Dispatcher)
	d.AddHook(func(ev audit.Event) error {
		fmt.Println("event:", ev.Name, ev.Args())
		if ev.Name == "open" && ev.Args()[1] != starlark.String("r") {
			return errors.New("this host is read-only")
		}
		return nil
	})
	th := &starlark.Thread{Name: "example", Print: func(_ *starlark.Thread, msg string) { fmt.Println(msg) }}
	audit.Attach(th, d)

	_, err := starlark.ExecFile(th, "config.star", `
print(json.decode(fs.read("/dev/null") or "{}"))
fs.write("/etc/motd", "hello")
print("not reached")
`, builtins.Modules())
	fmt.Println(err)
	// Output:
	// event: open ("/dev/null", "r", 524288)
	// {}
	// event: open ("/etc/motd", "w", 524865)
	// event: sstar.abort ("open", "this host is read-only")
	// fs.write: audit event "open" aborted: this host is read-only
}
