// Package audittest records audit events for tests, as testing/slogtest
// and go.starlark.net's starlarktest serve their packages: tests of
// sstar, and of programs that embed it, add a Recorder as a Go hook and
// then ask what was raised, in what order, with which arguments.
//
// A Recorder keeps every event it is given. An audit.Event is a value
// that a hook may keep (its arguments are frozen or never modified), so
// what a test reads back is exactly what the hooks saw:
//
//	rec := new(audittest.Recorder)
//	d := new(audit.Dispatcher)
//	d.AddHook(rec.Hook)
//	... run a script with d ...
//	if ev, ok := rec.Find("open"); !ok || audittest.StringArg(ev, 0) != "/etc/motd" { ... }
//
// Hooks run in the order they were added, and a hook's error stops the
// event there: add the Recorder first to see every event, or after the
// hook under test to see only what that hook let through.
package audittest

import (
	"strings"
	"sync"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
)

// A Recorder is an audit Go hook (its method Hook) that keeps every event
// it is given. It never aborts an event. The zero value is ready to use,
// and a Recorder is safe for concurrent use: hooks see the events of
// every thread of a host.
type Recorder struct {
	mu     sync.Mutex
	events []audit.Event
}

// Hook records ev and returns nil. Add it with (*audit.Dispatcher).AddHook.
func (r *Recorder) Hook(ev audit.Event) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	return nil
}

// Events returns the events recorded so far, in the order they came.
func (r *Recorder) Events() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Event(nil), r.events...)
}

// Take returns the events recorded so far and forgets them, so that the
// next call returns only the events raised in between.
func (r *Recorder) Take() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.events
	r.events = nil
	return evs
}

// Names returns the names of the events recorded so far, in order.
func (r *Recorder) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, len(r.events))
	for i, ev := range r.events {
		names[i] = ev.Name
	}
	return names
}

// Named returns the recorded events called name, in order.
func (r *Recorder) Named(name string) []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Event
	for _, ev := range r.events {
		if ev.Name == name {
			out = append(out, ev)
		}
	}
	return out
}

// Find returns the first recorded event called name, and whether there
// was one.
func (r *Recorder) Find(name string) (audit.Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.events {
		if ev.Name == name {
			return ev, true
		}
	}
	return audit.Event{}, false
}

// Strings returns the recorded events as String writes them, in order.
func (r *Recorder) Strings() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.events))
	for i, ev := range r.events {
		out[i] = String(ev)
	}
	return out
}

// String writes an event as a call in Starlark syntax:
// open("/etc/motd", "w", 524865), sstar.run_start().
func String(ev audit.Event) string {
	var b strings.Builder
	b.WriteString(ev.Name)
	b.WriteByte('(')
	for i := range ev.NumArgs() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(ev.Arg(i).String())
	}
	b.WriteByte(')')
	return b.String()
}

// StringArg returns argument i of ev if it is a string (paths, modes,
// hashes and reasons are), and "" if it is not or ev has fewer arguments.
func StringArg(ev audit.Event, i int) string {
	if i < 0 || i >= ev.NumArgs() {
		return ""
	}
	s, _ := starlark.AsString(ev.Arg(i))
	return s
}
