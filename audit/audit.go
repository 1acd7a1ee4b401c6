// Package audit raises audit events and delivers them to hooks, in the
// manner of CPython's PEP 578 runtime audit hooks.
//
// An event is a name and a tuple of arguments, raised just before a
// security-relevant action (opening a file, compiling code, starting a
// process) and after its arguments have been validated. A hook receives
// every event and may return an error to abort it: the action then does
// not happen, and the error reaches whoever asked for it, naming the event.
//
// The rules follow PEP 578:
//
//   - Hooks are called in the order they were added, Go hooks (added by
//     the host program) before script hooks (added with sys.addaudithook).
//   - Hooks cannot be removed or replaced. Adding one first raises
//     sys.addaudithook, and any hook already installed may veto it.
//   - A hook's error stops dispatch: later hooks are not called for that
//     event. The aborted event is then reported to every Go hook as an
//     sstar.abort event, so that sinks record the abort too.
//   - Events raised on any thread of a host reach the same hooks.
//   - A Go hook that panics is not recovered: the panic goes to the code
//     that raised the event, so the action does not happen (as a CPython
//     hook's exception propagates to the caller, and as log/slog treats a
//     Handler). Hooks that must fail closed, such as sstar's record
//     fan-out (audit/record), which every sink hangs off,
//     recover their own panics and return ErrNotRecorded. Recovering here
//     would cost every event a deferred call, a fifth of an event with one
//     hook.
//
// A Dispatcher is safe for concurrent use. With no hooks installed,
// raising an event is an atomic load and a comparison, and does not
// allocate (see BenchmarkRaise).
//
// Delivery is fail-closed. A Go hook that cannot record an event (a sink
// whose socket or disk is gone) returns an error wrapping ErrNotRecorded;
// the dispatcher then refuses that event and every later one, and
// Failed reports why, so that the program can stop with the distinct exit
// status the design reserves for it.
//
// # Script hooks and nesting
//
// A script hook is a Starlark callable, called as fn(event, args) on the
// thread that raised the event. Events raised while a script hook runs
// (the hook itself reads a file, say) are delivered to the Go hooks and to
// the script hooks installed before the running one, never to itself or to
// later ones. A hook is therefore always overseen by the hooks that were
// there before it (an operator's policy hook sees what a script's hook
// does), and no hook can recurse into itself.
//
// Arguments of events raised by Go code are frozen before a script hook
// sees them, so a hook cannot change what an action is about to do.
package audit

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"go.starlark.net/starlark"
)

// An Event is what a hook receives: the event's name and its arguments.
//
// An Event is a value, like a slog.Record: every hook gets its own copy,
// and may keep it. It carries up to four arguments in itself (every event
// in the table has at most four), so that raising an event to Go hooks
// allocates nothing; a hook that keeps only what it renders pays nothing
// either. An event with more arguments (from sys.audit) holds them in one
// tuple that every copy shares; no hook may modify the arguments. Make one
// with NewEvent.
//
// Args, NumArgs and Arg have pointer receivers, so that reading the
// arguments copies nothing; call them on a variable (a hook's parameter),
// not on a call's result.
type Event struct {
	// Kind is the event's entry in the table; Script for an event a
	// script raised with sys.audit.
	Kind Kind
	// Name is the event's name: Kind.Name(), or the script's for Script.
	Name  string
	front [maxInline]starlark.Value
	back  starlark.Tuple // the arguments, when there are more than maxInline
	n     int
}

// maxInline is how many arguments an Event holds without a tuple.
const maxInline = 4

// NewEvent returns the event name with a copy of args. Its Kind is the
// table's entry of that name, or Script for a name not in the table.
func NewEvent(name string, args ...starlark.Value) Event {
	k, _ := KindOf(name)
	ev := Event{Kind: k, Name: name}
	ev.set(args)
	return ev
}

// newEvent returns an event of kind k with a copy of args.
func newEvent(k Kind, args ...starlark.Value) Event {
	ev := Event{Kind: k, Name: k.Name()}
	ev.set(args)
	return ev
}

// Severity returns how serious the event is (its kind's severity).
func (ev *Event) Severity() Severity { return ev.Kind.Severity() }

func (ev *Event) set(args []starlark.Value) {
	if len(args) <= maxInline {
		// A loop, not copy: ev is usually on the caller's stack, where
		// plain stores need no write barrier (copy calls typedslicecopy).
		for i, a := range args {
			ev.front[i] = a
		}
		ev.n = len(args)
		return
	}
	ev.back = append(starlark.Tuple(nil), args...)
	ev.n = len(args)
}

// Args returns the event's arguments. The tuple may be ev's own storage:
// it is valid while ev is, and must not be modified. A hook that keeps the
// tuple past its call keeps ev (or a copy of the tuple) with it.
func (ev *Event) Args() starlark.Tuple {
	if ev.back != nil {
		return ev.back[:ev.n:ev.n]
	}
	return ev.front[:ev.n:ev.n]
}

// NumArgs returns the number of arguments.
func (ev *Event) NumArgs() int { return ev.n }

// Arg returns argument i; it panics if i is out of range, as indexing does.
func (ev *Event) Arg(i int) starlark.Value { return ev.Args()[i] }

// A Hook is a Go audit hook. It is called synchronously, before the action
// the event describes. A non-nil error aborts the event. A hook that could
// not record the event (a sink) must return an error wrapping
// ErrNotRecorded, and should turn its own panics into such an error: the
// Dispatcher does not recover them.
type Hook func(Event) error

// ErrNotRecorded marks a failure to record an event. Once a hook reports
// it, the Dispatcher refuses every later event (fail-closed).
var ErrNotRecorded = errors.New("audit event could not be recorded")

// ErrNoDispatcher is returned by Raise for a thread that has no Dispatcher
// attached: an event nobody can see must not let its action happen.
var ErrNoDispatcher = errors.New("audit: no dispatcher attached to thread")

// An AbortError is the error of an event that a hook aborted.
type AbortError struct {
	Event string // the name of the aborted event
	Err   error  // what the hook returned
}

func (e *AbortError) Error() string {
	var d *DeniedError
	if errors.As(e.Err, &d) {
		// The permission, not the mechanism: "/etc/x: not in write= of
		// /etc/sstar/policy.star" says what to change.
		return d.Error()
	}
	return fmt.Sprintf("audit event %q aborted: %v", e.Event, e.Err)
}

// A DeniedError is a hook's refusal of an action that the declared
// permissions (policy.allow) do not grant: Target is not in the
// Permission= grant of the policy file Policy.
type DeniedError struct {
	Permission string // read, write, exec, env
	Target     string // an absolute path, or a variable name
	Policy     string // the policy file whose grant lacks Target
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("%s: not in %s= of %s", e.Target, e.Permission, e.Policy)
}

func (e *AbortError) Unwrap() error { return e.Err }

// A Dispatcher holds the hooks of one host and delivers events to them.
// The zero value is ready to use and has no hooks.
type Dispatcher struct {
	mu    sync.Mutex // serialises changes to hooks
	hooks atomic.Pointer[hookSet]
	// active is 1 once hooks is non-nil: a plain word the inlined fast
	// path of Raise can test.
	active atomic.Uint32
}

// hookSet is immutable once published; changes publish a new one.
type hookSet struct {
	goHooks     []Hook
	scriptHooks []starlark.Callable
	failed      error // sticky: set once an event could not be recorded
}

// Enabled reports whether raising an event could do anything: whether
// there are hooks, or the dispatcher has failed. Callers whose arguments
// are costly to build may skip building them when it is false.
func (d *Dispatcher) Enabled() bool {
	return d != nil && d.active.Load() != 0
}

// Failed returns the error that made the dispatcher fail closed, or nil.
func (d *Dispatcher) Failed() error {
	if d == nil {
		return nil
	}
	if hs := d.hooks.Load(); hs != nil {
		return hs.failed
	}
	return nil
}

// Raise raises an event of kind k with args on thread t (which may be nil for
// events raised outside any script). It returns nil if every hook accepted
// the event, and otherwise an *AbortError naming it. The caller must not
// perform the action unless Raise returns nil.
//
// Raise does not retain args; with no hooks, or with Go hooks only, it
// does not allocate.
func (d *Dispatcher) Raise(t *starlark.Thread, k Kind, args ...starlark.Value) error {
	// Small enough to inline: with no hooks the call costs a load and a
	// compare at the call site.
	if d != nil && d.active.Load() == 0 {
		return nil
	}
	return d.raise(t, k, args)
}

func (d *Dispatcher) raise(t *starlark.Thread, k Kind, args []starlark.Value) error {
	if d == nil {
		return ErrNoDispatcher
	}
	hs := d.hooks.Load()
	if hs == nil {
		return nil
	}
	name := k.Name()
	if hs.failed != nil {
		return &AbortError{Event: name, Err: hs.failed}
	}
	if len(hs.goHooks) > 0 {
		// The event carries its arguments by value: args does not escape
		// from here, and nothing is allocated for the Go hooks.
		var ev Event
		ev.Kind, ev.Name = k, name
		ev.set(args)
		for _, h := range hs.goHooks {
			if err := h(ev); err != nil {
				return d.aborted(hs, name, err)
			}
		}
	}
	if len(hs.scriptHooks) == 0 {
		return nil
	}
	// A script hook may keep its arguments: give it its own frozen copy.
	tuple := make(starlark.Tuple, len(args))
	copy(tuple, args)
	tuple.Freeze()
	return d.dispatchScript(hs, t, name, tuple)
}

// RaiseGo raises an event to the Go hooks (sinks) only, for the host's
// own notices where no script code may run, such as a watchdog stopping
// a run that no longer responds. Hook errors other than a failure to
// record are ignored: the notice is not a request.
func (d *Dispatcher) RaiseGo(k Kind, args ...starlark.Value) (err error) {
	if d == nil {
		return ErrNoDispatcher
	}
	hs := d.hooks.Load()
	if hs == nil {
		return nil
	}
	ev := newEvent(k, args...)
	defer func() {
		// RaiseGo's callers run where no one else would recover a hook's
		// panic (a watchdog's goroutine); it is not a hot path.
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: audit hook panicked on %s: %v", ErrNotRecorded, k.Name(), p)
			d.fail(err)
		}
	}()
	for _, h := range hs.goHooks {
		if err := h(ev); err != nil && errors.Is(err, ErrNotRecorded) {
			d.fail(err)
			return err
		}
	}
	return nil
}

// RaisePanic raises sstar.panic for a Go panic recovered in where (a
// builtin, a module), with p and the stack. The panic may have come from
// a Go hook, which the dispatcher does not recover, and the hook may panic
// again on this event: that second panic is recovered here, the
// dispatcher fails closed (a hook that cannot record even sstar.panic
// records nothing), and the error wraps ErrNotRecorded, so that reporting
// a panic from a deferred function cannot take the process down.
func (d *Dispatcher) RaisePanic(t *starlark.Thread, where string, p any) (err error) {
	defer func() {
		if p2 := recover(); p2 != nil {
			err = fmt.Errorf("%w: an audit hook panicked on %s too: %v", ErrNotRecorded, Panic.Name(), p2)
			d.fail(err)
		}
	}()
	return d.Raise(t, Panic, starlark.String(where), starlark.String(fmt.Sprintf("%v\n%s", p, debug.Stack())))
}

// RaiseTuple raises an event whose name and arguments come from a script
// (sys.audit). The arguments are passed to hooks as they are, not frozen.
// A name that CheckName refuses is an error, and nothing is raised.
func (d *Dispatcher) RaiseTuple(t *starlark.Thread, name string, args starlark.Tuple) error {
	if d == nil {
		return ErrNoDispatcher
	}
	if err := CheckName(name); err != nil {
		return err
	}
	hs := d.hooks.Load()
	if hs == nil {
		return nil
	}
	if hs.failed != nil {
		return &AbortError{Event: name, Err: hs.failed}
	}
	ev := Event{Kind: Script, Name: name}
	ev.set(args)
	for _, h := range hs.goHooks {
		if err := h(ev); err != nil {
			return d.aborted(hs, name, err)
		}
	}
	if len(hs.scriptHooks) == 0 {
		return nil
	}
	return d.dispatchScript(hs, t, name, args)
}

func (d *Dispatcher) dispatchScript(hs *hookSet, t *starlark.Thread, name string, args starlark.Tuple) error {
	if t == nil {
		t = d.thread()
	}
	b := bindingOf(t)
	limit := len(hs.scriptHooks)
	if b != nil && b.running >= 0 && b.running < limit {
		limit = b.running
	}
	for i := 0; i < limit; i++ {
		if err := d.callScript(t, b, i, hs.scriptHooks[i], name, args); err != nil {
			return d.aborted(hs, name, err)
		}
	}
	return nil
}

func (d *Dispatcher) callScript(t *starlark.Thread, b *binding, i int, fn starlark.Callable, name string, args starlark.Tuple) (err error) {
	if b != nil {
		saved := b.running
		b.running = i
		defer func() { b.running = saved }()
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("audit hook %s panicked: %v", fn.Name(), r)
		}
	}()
	_, err = starlark.Call(t, fn, starlark.Tuple{starlark.String(name), args}, nil)
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		// fail("reason") in a hook is the normal way to abort: its reason
		// is the message, without the "fail: " that Starlark prefixes.
		return &hookError{msg: strings.TrimPrefix(ee.Msg, "fail: "), err: err}
	}
	return err
}

// hookError is a script hook's error with a message fit for the event's.
type hookError struct {
	msg string
	err error
}

func (e *hookError) Error() string { return e.msg }
func (e *hookError) Unwrap() error { return e.err }

// aborted turns a hook's error into the event's error. An event that
// could not be recorded makes the dispatcher fail closed; any other abort
// is reported to the Go hooks as sstar.abort, so sinks record it.
func (d *Dispatcher) aborted(hs *hookSet, name string, err error) error {
	if errors.Is(err, ErrNotRecorded) {
		d.fail(err)
		return &AbortError{Event: name, Err: err}
	}
	notice := newEvent(Abort, starlark.String(name), starlark.String(err.Error()))
	for _, h := range hs.goHooks {
		// A hook's veto of the notice is ignored: the event is aborted
		// already. Only a failure to record it matters.
		if herr := h(notice); herr != nil && errors.Is(herr, ErrNotRecorded) {
			d.fail(herr)
			return &AbortError{Event: name, Err: herr}
		}
	}
	return &AbortError{Event: name, Err: err}
}

func (d *Dispatcher) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.hooks.Load()
	if old != nil && old.failed != nil {
		return
	}
	next := &hookSet{failed: err}
	if old != nil {
		next.goHooks, next.scriptHooks = old.goHooks, old.scriptHooks
	}
	d.store(next)
}

// AddHook adds a Go hook after the Go hooks already installed (and so
// before every script hook). It first raises sys.addaudithook; if any
// hook vetoes, the hook is not added and the error is returned.
func (d *Dispatcher) AddHook(h Hook) error {
	if h == nil {
		return errors.New("audit: AddHook: nil hook")
	}
	if err := d.Raise(nil, AddAuditHook); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	next := d.copyLocked()
	next.goHooks = append(next.goHooks, h)
	d.store(next)
	return nil
}

// AddScriptHook adds a Starlark hook after every hook already installed.
// It first raises sys.addaudithook on t; if any hook vetoes, fn is not
// added and the error is returned.
func (d *Dispatcher) AddScriptHook(t *starlark.Thread, fn starlark.Callable) error {
	if fn == nil {
		return errors.New("audit: AddScriptHook: nil hook")
	}
	if err := d.Raise(t, AddAuditHook); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	next := d.copyLocked()
	next.scriptHooks = append(next.scriptHooks, fn)
	d.store(next)
	return nil
}

// store publishes hs; the caller holds d.mu.
func (d *Dispatcher) store(hs *hookSet) {
	d.hooks.Store(hs)
	d.active.Store(1)
}

// copyLocked returns a fresh hookSet with the current contents; the caller
// holds d.mu.
func (d *Dispatcher) copyLocked() *hookSet {
	next := new(hookSet)
	if old := d.hooks.Load(); old != nil {
		next.goHooks = append([]Hook(nil), old.goHooks...)
		next.scriptHooks = append([]starlark.Callable(nil), old.scriptHooks...)
		next.failed = old.failed
	}
	return next
}

// thread returns a bare thread for script hooks of an event raised
// without one (by Go code outside any script).
func (d *Dispatcher) thread() *starlark.Thread {
	t := &starlark.Thread{Name: "audit"}
	Attach(t, d)
	return t
}

const localKey = "sstar.audit"

// binding is the per-thread audit state: which dispatcher the thread
// raises events on, and which script hook (if any) it is running.
type binding struct {
	d       *Dispatcher
	running int // index of the script hook running on this thread, or -1
}

// Attach makes t raise its events on d. Call it before t runs any code.
func Attach(t *starlark.Thread, d *Dispatcher) {
	t.SetLocal(localKey, &binding{d: d, running: -1})
}

// From returns the Dispatcher attached to t, or nil.
func From(t *starlark.Thread) *Dispatcher {
	if b := bindingOf(t); b != nil {
		return b.d
	}
	return nil
}

func bindingOf(t *starlark.Thread) *binding {
	if t == nil {
		return nil
	}
	b, _ := t.Local(localKey).(*binding)
	return b
}

// Raise raises an event of kind k with args on the Dispatcher attached to t. With no
// dispatcher attached it fails with ErrNoDispatcher: code that runs on a
// thread nobody audits must not act.
func Raise(t *starlark.Thread, k Kind, args ...starlark.Value) error {
	d := From(t)
	if d == nil {
		return ErrNoDispatcher
	}
	return d.Raise(t, k, args...)
}
