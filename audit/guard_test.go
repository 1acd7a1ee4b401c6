package audit_test

import (
	"errors"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
)

// panicsOn returns a Go hook that keeps every event's name and its first
// argument, and panics on the event named panicOn.
func panicsOn(panicOn string, seen *[]string) audit.Hook {
	return func(ev audit.Event) error {
		s := ev.Name
		if ev.NumArgs() > 0 {
			s += " " + ev.Arg(0).String()
		}
		*seen = append(*seen, s)
		if ev.Name == panicOn {
			panic("hook bug on " + ev.Name)
		}
		return nil
	}
}

func TestGuard(t *testing.T) {
	d := new(audit.Dispatcher)
	var seen []string
	if err := d.AddHook(panicsOn("", &seen)); err != nil {
		t.Fatal(err)
	}
	th := &starlark.Thread{Name: t.Name()}
	audit.Attach(th, d)

	ok := audit.Guard(starlark.NewBuiltin("ok", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		return args[0], nil
	}))
	if v, err := starlark.Call(th, ok, starlark.Tuple{starlark.MakeInt(7)}, nil); err != nil || v != starlark.MakeInt(7) || ok.Name() != "ok" {
		t.Errorf("a builtin that does not panic: %v, %v", v, err)
	}

	boom := audit.Guard(starlark.NewBuiltin("boom", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		var m map[string]int
		m["x"] = 1
		return starlark.None, nil
	}))
	v, err := starlark.Call(th, boom, nil, nil)
	if v != nil || err == nil || !strings.Contains(err.Error(), "internal error (Go panic) in boom: assignment to entry in nil map") {
		t.Fatalf("a builtin that panics: %v, %v", v, err)
	}
	if want := `sstar.panic "boom"`; len(seen) != 1 || seen[0] != want {
		t.Errorf("events %q, want %q", seen, want)
	}
}

// A guarded builtin called on a thread without a dispatcher still
// returns an error, saying that the panic could not be reported.
func TestGuardWithoutDispatcher(t *testing.T) {
	boom := audit.Guard(starlark.NewBuiltin("boom", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		panic("bug")
	}))
	_, err := starlark.Call(&starlark.Thread{}, boom, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "in boom: bug") || !errors.Is(err, audit.ErrNoDispatcher) {
		t.Errorf("err = %v", err)
	}
}

// Recover makes a Go hook's panic on an event raised outside any run the
// error of whoever raised it; a hook that panics on sstar.panic too makes
// the dispatcher fail closed, and the error says both.
func TestRecover(t *testing.T) {
	raise := func(d *audit.Dispatcher) (err error) {
		defer audit.Recover(d, nil, audit.Policy.Name(), &err)
		return d.Raise(nil, audit.Policy, starlark.String("p.star"))
	}

	d := new(audit.Dispatcher)
	var seen []string
	d.AddHook(panicsOn(audit.Policy.Name(), &seen))
	err := raise(d)
	if err == nil || !strings.Contains(err.Error(), "internal error (Go panic) in sstar.policy: hook bug on sstar.policy") || d.Failed() != nil {
		t.Errorf("err = %v, failed = %v", err, d.Failed())
	}
	if want := []string{`sstar.policy "p.star"`, `sstar.panic "sstar.policy"`}; strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("events %q, want %q", seen, want)
	}

	d = new(audit.Dispatcher)
	d.AddHook(func(ev audit.Event) error { panic("hook bug on " + ev.Name) })
	err = raise(d)
	if !errors.Is(err, audit.ErrNotRecorded) || !strings.Contains(err.Error(), "hook bug on sstar.policy") || !strings.Contains(err.Error(), "hook bug on sstar.panic") || d.Failed() == nil {
		t.Errorf("a hook that panics on sstar.panic too: err = %v, failed = %v", err, d.Failed())
	}

	if err := raise(new(audit.Dispatcher)); err != nil {
		t.Errorf("no panic: %v", err)
	}
}
