package audit_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/sstar-project/sstar/audit"
)

// record returns a Go hook that appends "tag:event" to *log.
func record(mu *sync.Mutex, log *[]string, tag string) audit.Hook {
	return func(ev audit.Event) error {
		mu.Lock()
		defer mu.Unlock()
		*log = append(*log, tag+":"+ev.Name)
		return nil
	}
}

// scriptHook compiles src (which must define hook) on a thread attached
// to d and returns hook.
func scriptHook(t *testing.T, d *audit.Dispatcher, src string, predeclared starlark.StringDict) (*starlark.Thread, starlark.Callable) {
	t.Helper()
	th := &starlark.Thread{Name: "test"}
	audit.Attach(th, d)
	g, err := starlark.ExecFileOptions(&syntax.FileOptions{}, th, "hook.star", src, predeclared)
	if err != nil {
		t.Fatal(err)
	}
	return th, g["hook"].(starlark.Callable)
}

func TestOrderGoBeforeScript(t *testing.T) {
	var mu sync.Mutex
	var log []string
	d := new(audit.Dispatcher)
	if err := d.AddHook(record(&mu, &log, "go1")); err != nil {
		t.Fatal(err)
	}
	rec := starlark.NewBuiltin("rec", func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, string(args[0].(starlark.String)))
		return starlark.None, nil
	})
	th, hook := scriptHook(t, d, "def hook(ev, args):\n    rec('star:' + ev)\n", starlark.StringDict{"rec": rec})
	if err := d.AddScriptHook(th, hook); err != nil {
		t.Fatal(err)
	}
	// A Go hook added after a script hook still runs before it.
	if err := d.AddHook(record(&mu, &log, "go2")); err != nil {
		t.Fatal(err)
	}
	log = nil
	if err := d.Raise(th, audit.Exec, starlark.String("/x.star")); err != nil {
		t.Fatal(err)
	}
	want := "go1:exec go2:exec star:exec"
	if got := strings.Join(log, " "); got != want {
		t.Errorf("order = %q, want %q", got, want)
	}
}

func TestAddHookRaisesAndCanBeVetoed(t *testing.T) {
	d := new(audit.Dispatcher)
	var seen []string
	veto := errors.New("no more hooks")
	if err := d.AddHook(func(ev audit.Event) error {
		seen = append(seen, ev.Name)
		if ev.Name == audit.AddAuditHook.Name() {
			return veto
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	err := d.AddHook(func(audit.Event) error { t.Error("vetoed hook was called"); return nil })
	if !errors.Is(err, veto) {
		t.Fatalf("AddHook error = %v, want the veto", err)
	}
	var ae *audit.AbortError
	if !errors.As(err, &ae) || ae.Event != "sys.addaudithook" {
		t.Fatalf("error %v does not name the event", err)
	}
	th, hook := scriptHook(t, d, "def hook(ev, args):\n    pass\n", nil)
	if err := d.AddScriptHook(th, hook); !errors.Is(err, veto) {
		t.Fatalf("AddScriptHook error = %v, want the veto", err)
	}
	seen = nil
	if err := d.Raise(nil, audit.Exec, starlark.String("x")); err != nil {
		t.Fatal(err)
	}
	// Only the first hook saw exec: neither vetoed hook was installed.
	if strings.Join(seen, " ") != "exec" {
		t.Errorf("seen = %v", seen)
	}
}

func TestErrorStopsDispatchAndIsRecorded(t *testing.T) {
	d := new(audit.Dispatcher)
	var sink []string
	d.AddHook(func(ev audit.Event) error {
		sink = append(sink, fmt.Sprintf("%s%v", ev.Name, ev.Args()))
		return nil
	})
	d.AddHook(func(ev audit.Event) error {
		if ev.Name == "open" {
			return errors.New("policy forbids writes")
		}
		return nil
	})
	d.AddHook(func(ev audit.Event) error {
		if ev.Name == "open" {
			t.Error("hook after the aborting one was called")
		}
		return nil
	})
	err := d.Raise(nil, audit.Open, starlark.String("/etc/passwd"), starlark.String("w"), starlark.MakeInt(577))
	var ae *audit.AbortError
	if !errors.As(err, &ae) || ae.Event != "open" {
		t.Fatalf("err = %v, want AbortError for open", err)
	}
	if !strings.Contains(err.Error(), `"open"`) || !strings.Contains(err.Error(), "policy forbids writes") {
		t.Errorf("message %q should name the event and the reason", err)
	}
	want := []string{
		`sys.addaudithook()`, `sys.addaudithook()`, // the 2nd and 3rd AddHook, seen by the 1st
		`open("/etc/passwd", "w", 577)`,
		`sstar.abort("open", "policy forbids writes")`,
	}
	if strings.Join(sink, "|") != strings.Join(want, "|") {
		t.Errorf("sink saw\n%q\nwant\n%q", sink, want)
	}
	if d.Failed() != nil {
		t.Errorf("an abort must not fail the dispatcher: %v", d.Failed())
	}
}

func TestNotRecordedFailsClosed(t *testing.T) {
	d := new(audit.Dispatcher)
	calls := 0
	d.AddHook(func(ev audit.Event) error {
		calls++
		if ev.Name == "exec" {
			return fmt.Errorf("%w: disk full", audit.ErrNotRecorded)
		}
		return nil
	})
	if err := d.Raise(nil, audit.Exec, starlark.String("a")); !errors.Is(err, audit.ErrNotRecorded) {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(d.Failed(), audit.ErrNotRecorded) {
		t.Fatalf("Failed() = %v", d.Failed())
	}
	before := calls
	// Every later event is refused without reaching any hook.
	err := d.Raise(nil, audit.Compile, starlark.String("b"), starlark.String("00"))
	if !errors.Is(err, audit.ErrNotRecorded) || calls != before {
		t.Fatalf("after failure: err = %v, hook calls %d -> %d", err, before, calls)
	}
	if err := d.AddHook(func(audit.Event) error { return nil }); err == nil {
		t.Fatal("a failed dispatcher accepted a new hook")
	}
}

// A Go hook's panic is not recovered: it reaches the code that raised the
// event, which therefore never acts, and no later hook sees the event.
func TestPanickingGoHookPropagates(t *testing.T) {
	d := new(audit.Dispatcher)
	d.AddHook(func(ev audit.Event) error {
		if ev.Name == audit.Exec.Name() {
			panic("sink bug")
		}
		return nil
	})
	later := 0
	d.AddHook(func(audit.Event) error { later++; return nil })
	acted := false
	func() {
		defer func() {
			if r := recover(); r != "sink bug" {
				t.Errorf("recovered %v, want the hook's panic", r)
			}
		}()
		if d.Raise(nil, audit.Exec, starlark.String("a")) == nil {
			acted = true
		}
	}()
	if acted || later != 0 {
		t.Fatalf("acted %v, later hook called %d times", acted, later)
	}
}

// RaiseGo's callers (a watchdog's goroutine) have nobody above them to
// recover a hook's panic: RaiseGo does, and fails closed.
func TestRaiseGoRecoversAndFailsClosed(t *testing.T) {
	d := new(audit.Dispatcher)
	d.AddHook(func(ev audit.Event) error {
		if ev.Name == audit.Watchdog.Name() {
			panic("sink bug")
		}
		return nil
	})
	err := d.RaiseGo(audit.Watchdog, starlark.String("stuck"))
	if !errors.Is(err, audit.ErrNotRecorded) || !strings.Contains(err.Error(), "sink bug") || d.Failed() == nil {
		t.Fatalf("err = %v, Failed() = %v", err, d.Failed())
	}
}

func TestScriptHookFailAborts(t *testing.T) {
	d := new(audit.Dispatcher)
	th, hook := scriptHook(t, d, `
def hook(ev, args):
    if ev == "open" and args[1] != "r":
        fail("read-only policy: %s" % args[0])
`, nil)
	if err := d.AddScriptHook(th, hook); err != nil {
		t.Fatal(err)
	}
	if err := d.Raise(th, audit.Open, starlark.String("/a"), starlark.String("r"), starlark.MakeInt(0)); err != nil {
		t.Fatalf("read aborted: %v", err)
	}
	err := d.Raise(th, audit.Open, starlark.String("/a"), starlark.String("w"), starlark.MakeInt(1))
	if err == nil || !strings.Contains(err.Error(), "read-only policy: /a") {
		t.Fatalf("write not aborted: %v", err)
	}
}

func TestScriptHookArgsFrozen(t *testing.T) {
	d := new(audit.Dispatcher)
	th, hook := scriptHook(t, d, "def hook(ev, args):\n    args[1].append('evil')\n", nil)
	d.AddScriptHook(th, hook)
	argv := starlark.NewList([]starlark.Value{starlark.String("ls")})
	err := d.Raise(th, audit.Popen, starlark.String("ls"), argv, starlark.None, starlark.None)
	if err == nil || !strings.Contains(err.Error(), "frozen") {
		t.Fatalf("hook could mutate an event argument: err = %v, argv = %v", err, argv)
	}
}

// A hook's own actions are overseen by the hooks installed before it, and
// never re-enter it or later hooks.
func TestNestedEventsReachOnlyEarlierHooks(t *testing.T) {
	d := new(audit.Dispatcher)
	var goSeen []string
	d.AddHook(func(ev audit.Event) error { goSeen = append(goSeen, ev.Name); return nil })
	var starSeen []string
	note := starlark.NewBuiltin("note", func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		starSeen = append(starSeen, string(args[0].(starlark.String)))
		return starlark.None, nil
	})
	emit := starlark.NewBuiltin("emit", func(th *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
		return starlark.None, audit.Raise(th, audit.Exec, args[0])
	})
	pre := starlark.StringDict{"note": note, "emit": emit}
	th, first := scriptHook(t, d, "def hook(ev, args):\n    note('first:' + ev + str(args))\n", pre)
	_, second := scriptHook(t, d, `
def hook(ev, args):
    note('second:' + ev + str(args))
    if ev == "exec" and args[0] == "outer":
        emit("inner")
`, pre)
	d.AddScriptHook(th, first)
	d.AddScriptHook(th, second)
	goSeen, starSeen = nil, nil
	if err := d.Raise(th, audit.Exec, starlark.String("outer")); err != nil {
		t.Fatal(err)
	}
	want := `first:exec("outer",)|second:exec("outer",)|first:exec("inner",)`
	if got := strings.Join(starSeen, "|"); got != want {
		t.Errorf("script hooks saw\n%s\nwant\n%s", got, want)
	}
	if got := strings.Join(goSeen, " "); got != "exec exec" {
		t.Errorf("Go hook saw %q, want both events", got)
	}
}

func TestRaiseWithoutDispatcherRefuses(t *testing.T) {
	th := &starlark.Thread{}
	if err := audit.Raise(th, audit.Exec, starlark.String("x")); !errors.Is(err, audit.ErrNoDispatcher) {
		t.Fatalf("err = %v", err)
	}
	var d *audit.Dispatcher
	if err := d.Raise(nil, audit.Exec); !errors.Is(err, audit.ErrNoDispatcher) {
		t.Fatalf("nil dispatcher: err = %v", err)
	}
}

// Events raised concurrently, while hooks are being added, reach every
// hook installed before them; run with -race.
func TestConcurrentRaiseAndAdd(t *testing.T) {
	d := new(audit.Dispatcher)
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	const workers, events = 8, 500
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			th := &starlark.Thread{}
			audit.Attach(th, d)
			for i := 0; i < events; i++ {
				if err := audit.Raise(th, audit.Exec, starlark.MakeInt(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for h := 0; h < 4; h++ {
		h := h
		if err := d.AddHook(func(audit.Event) error {
			mu.Lock()
			counts[h]++
			mu.Unlock()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	// A hook added earlier sees at least as many events as a later one.
	for h := 1; h < 4; h++ {
		if counts[h] > counts[h-1] {
			t.Errorf("hook %d saw %d events, more than earlier hook %d (%d)", h, counts[h], h-1, counts[h-1])
		}
	}
}

// Every kind has a complete, unique entry, found again by its name; the
// compiler checks the table's length, this checks that none is empty.
func TestTableIsComplete(t *testing.T) {
	seen := map[string]bool{}
	kinds := audit.Kinds()
	if len(kinds) < 20 {
		t.Fatalf("only %d kinds", len(kinds))
	}
	for i, k := range kinds {
		s := k.Spec()
		if s.Name == "" || s.When == "" || s.Args == nil {
			t.Errorf("kind %d (%d in the table) lacks Name, When or Args: %+v", k, i, *s)
		}
		if seen[s.Name] {
			t.Errorf("event %q listed twice", s.Name)
		}
		seen[s.Name] = true
		if got, ok := audit.KindOf(s.Name); !ok || got != k {
			t.Errorf("KindOf(%q) = %v, %v; want %v", s.Name, got, ok, k)
		}
		if k.Name() != s.Name || k.String() != s.Name {
			t.Errorf("kind %d: Name %q, String %q, Spec().Name %q", k, k.Name(), k.String(), s.Name)
		}
	}
	if k, ok := audit.KindOf("no.such.event"); ok || k != audit.Script {
		t.Errorf("KindOf found an unknown event: %v", k)
	}
	if audit.Script.Name() != "" || audit.Script.Severity() != audit.Info {
		t.Error("Script has a name or a severity other than Info")
	}
	if ev := audit.NewEvent("open"); ev.Kind != audit.Open {
		t.Errorf("NewEvent(open).Kind = %v", ev.Kind)
	}
	if ev := audit.NewEvent("app.x"); ev.Kind != audit.Script {
		t.Errorf("NewEvent(app.x).Kind = %v", ev.Kind)
	}
}

// docs/events.md is generated from the table; regenerate it with
// `make docs` (or go generate ./audit) when this fails.
func TestEventsDocUpToDate(t *testing.T) {
	got, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != audit.Markdown() {
		t.Fatal("docs/events.md is stale: run `make docs` and commit it")
	}
}

// Allocation counts are deterministic, unlike timings: raising an event
// with no hooks, or with Go hooks only, allocates nothing of its own.
func TestRaiseDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts need a full run")
	}
	d := new(audit.Dispatcher)
	th := &starlark.Thread{}
	audit.Attach(th, d)
	path := starlark.String("/srv/app.star")
	if n := testing.AllocsPerRun(100, func() { d.Raise(th, audit.Exec, path) }); n != 0 {
		t.Errorf("no hooks: %v allocations per event", n)
	}
	seen := 0
	d.AddHook(func(ev audit.Event) error { seen += len(ev.Args()); return nil })
	if n := testing.AllocsPerRun(100, func() { d.Raise(th, audit.Exec, path) }); n != 0 {
		t.Errorf("one Go hook: %v allocations per event", n)
	}
	if seen == 0 {
		t.Fatal("the hook saw no arguments")
	}
}

// An Event is a value: a hook that keeps one keeps its arguments, whatever
// is raised after it.
func TestKeptEventKeepsItsArguments(t *testing.T) {
	d := new(audit.Dispatcher)
	var kept []audit.Event
	d.AddHook(func(ev audit.Event) error { kept = append(kept, ev); return nil })
	d.Raise(nil, audit.Exec, starlark.String("first"))
	d.Raise(nil, audit.Exec, starlark.String("second"))
	th := &starlark.Thread{}
	audit.Attach(th, d)
	many := starlark.Tuple{starlark.MakeInt(1), starlark.MakeInt(2), starlark.MakeInt(3), starlark.MakeInt(4), starlark.MakeInt(5)}
	if err := d.RaiseTuple(th, "app.many", many); err != nil {
		t.Fatal(err)
	}
	many[0] = starlark.String("changed")
	if kept[0].Arg(0) != starlark.String("first") || kept[1].Arg(0) != starlark.String("second") {
		t.Fatalf("kept %v and %v", kept[0].Args(), kept[1].Args())
	}
	if got := kept[2].Args().String(); got != "(1, 2, 3, 4, 5)" {
		t.Fatalf("kept the five-argument event as %s", got)
	}
}

func TestNewEvent(t *testing.T) {
	for n := 0; n <= 6; n++ {
		args := make([]starlark.Value, n)
		for i := range args {
			args[i] = starlark.MakeInt(i)
		}
		ev := audit.NewEvent("e", args...)
		if len(args) > 0 {
			args[0] = starlark.String("changed") // the event has its own copy
		}
		if ev.Name != "e" || ev.NumArgs() != n || len(ev.Args()) != n || cap(ev.Args()) != n {
			t.Fatalf("NewEvent with %d args: %q, %d args, %s", n, ev.Name, ev.NumArgs(), ev.Args())
		}
		for i := range n {
			if ev.Arg(i) != starlark.MakeInt(i) {
				t.Fatalf("NewEvent with %d args: argument %d is %s", n, i, ev.Arg(i))
			}
		}
	}
}

// Script event names are printable ASCII from a small set, bounded, and
// never sstar's own; RaiseTuple refuses the rest before any hook sees it.
func TestCheckName(t *testing.T) {
	for _, ok := range []string{"app.x", "A-b_c:d/e.1", strings.Repeat("a", audit.MaxNameLen)} {
		if err := audit.CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "app x", "app.\n", "app.\x00", "app.\xff", "app.é", "app.\x7f", strings.Repeat("a", audit.MaxNameLen+1), "exec", "sstar.policy", "sstar.new"} {
		if err := audit.CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) accepted it", bad)
		}
	}
	d := new(audit.Dispatcher)
	called := false
	d.AddHook(func(audit.Event) error { called = true; return nil })
	called = false
	if err := d.RaiseTuple(nil, "app.\xff", nil); err == nil || called {
		t.Errorf("RaiseTuple of a bad name = %v, hook called %v", err, called)
	}
}
