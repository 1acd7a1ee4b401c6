package audittest_test

import (
	"slices"
	"sync"
	"testing"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/audittest"
)

func TestRecorder(t *testing.T) {
	rec := new(audittest.Recorder)
	for _, ev := range []audit.Event{
		audit.NewEvent("open", starlark.String("/etc/motd"), starlark.String("r"), starlark.MakeInt(0)),
		audit.NewEvent("sstar.run_start"),
		audit.NewEvent("open", starlark.String("/etc/hosts"), starlark.String("w"), starlark.MakeInt(1)),
		audit.NewEvent("app.many", starlark.MakeInt(1), starlark.MakeInt(2), starlark.MakeInt(3), starlark.MakeInt(4), starlark.None),
	} {
		if err := rec.Hook(ev); err != nil {
			t.Fatalf("Hook(%s) = %v, want nil", ev.Name, err)
		}
	}
	if got, want := rec.Names(), []string{"open", "sstar.run_start", "open", "app.many"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if got, want := rec.Strings(), []string{
		`open("/etc/motd", "r", 0)`,
		`sstar.run_start()`,
		`open("/etc/hosts", "w", 1)`,
		`app.many(1, 2, 3, 4, None)`,
	}; !slices.Equal(got, want) {
		t.Errorf("Strings() = %q, want %q", got, want)
	}
	opens := rec.Named("open")
	if len(opens) != 2 || audittest.StringArg(opens[0], 0) != "/etc/motd" || audittest.StringArg(opens[1], 0) != "/etc/hosts" {
		t.Errorf("Named(open) = %v", opens)
	}
	if ev, ok := rec.Find("open"); !ok || audittest.StringArg(ev, 0) != "/etc/motd" {
		t.Errorf("Find(open) = %v, %v; want the first open", ev.Args(), ok)
	}
	if _, ok := rec.Find("exec"); ok {
		t.Error("Find(exec) found an event nobody raised")
	}
	many, _ := rec.Find("app.many")
	for i, want := range []string{"", "", "", "", ""} {
		if got := audittest.StringArg(many, i); got != want {
			t.Errorf("StringArg(app.many, %d) = %q, want %q (not a string)", i, got, want)
		}
	}
	if got := audittest.StringArg(opens[0], 3); got != "" {
		t.Errorf("StringArg past the last argument = %q, want \"\"", got)
	}
	if got := len(rec.Events()); got != 4 {
		t.Errorf("Events() has %d events, want 4", got)
	}
	if got := len(rec.Take()); got != 4 {
		t.Errorf("Take() returned %d events, want 4", got)
	}
	if got := rec.Events(); len(got) != 0 {
		t.Errorf("after Take, Events() = %v, want none", got)
	}
}

// Hooks see events from every thread of a host, so the recorder takes
// them from many goroutines at once (go test -race checks it).
func TestRecorderConcurrent(t *testing.T) {
	rec := new(audittest.Recorder)
	const goroutines, each = 8, 200
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				rec.Hook(audit.NewEvent("tick", starlark.MakeInt(i)))
				rec.Names()
			}
		}()
	}
	wg.Wait()
	if got := len(rec.Named("tick")); got != goroutines*each {
		t.Errorf("%d events recorded, want %d", got, goroutines*each)
	}
}
