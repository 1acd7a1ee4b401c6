package record_test

import (
	"fmt"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/record"
)

// printer is a sink that prints what every sink is given.
type printer struct{ name string }

func (p printer) Write(r *record.Record) error {
	fmt.Printf("%s: #%d %s %s (%s)\n", p.name, r.Seq, r.Name, r.Args, r.Severity())
	return nil
}

func (p printer) Close() error { return nil }

// One record per event, the same for every sink: a sink added later (a
// system policy's mandatory sink) first gets the records it missed.
func ExampleFanout() {
	d := new(audit.Dispatcher)
	fan := new(record.Fanout)
	fan.Add(printer{"log"})
	fan.Keep(true) // until every sink of the run exists
	d.AddHook(fan.Hook)

	d.Raise(nil, audit.Open, starlark.String("/etc/hosts"), starlark.String("r"), starlark.MakeInt(0))
	fan.Add(printer{"mandatory"})
	fan.Keep(false)
	d.Raise(nil, audit.CodeIntegrityFailure, starlark.String("/srv/x.star"), starlark.String("no stamp"))
	fan.Close()
	// Output:
	// log: #1 open ["/etc/hosts","r",0] (info)
	// mandatory: #1 open ["/etc/hosts","r",0] (info)
	// log: #2 sstar.code_integrity_failure ["/srv/x.star","no stamp"] (critical)
	// mandatory: #2 sstar.code_integrity_failure ["/srv/x.star","no stamp"] (critical)
}
