package interp

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/opencode"
)

// run is the state of one Exec: its threads, module cache and budget.
// Threads of a run execute one at a time (a load runs the module to
// completion before the loading thread continues), so only the thread
// set, touched by cancellation from another goroutine, needs a lock.
type run struct {
	host        *Host
	ctx         context.Context
	opener      Opener
	maxSteps    uint64
	predeclared starlark.StringDict
	modules     map[string]*module // by absolute path
	stack       []string           // absolute paths being executed, outermost first
	root        string             // directory of the main file, for short names
	// limits holds each live thread's step limit when the run has a
	// budget (nil otherwise). Only one thread runs at a time, so the
	// active thread's limit minus its steps is what the run has left.
	limits map[*starlark.Thread]uint64

	mu       sync.Mutex
	threads  map[*starlark.Thread]bool
	canceled string
	refused  error
	output   error // the first write error of print
}

type module struct {
	globals starlark.StringDict
	err     error
	done    bool
}

func (r *run) newThread(name string, parent *starlark.Thread) *starlark.Thread {
	t := &starlark.Thread{
		Name:  name,
		Print: r.print,
		Load:  r.load,
	}
	audit.Attach(t, r.host.audit)
	builtins.SetContext(t, r.ctx) // proc.run kills its child when the run ends
	if parent == nil && r.maxSteps > 0 {
		r.limits = map[*starlark.Thread]uint64{}
		r.setLimit(t, r.maxSteps)
	}
	r.mu.Lock()
	if r.threads == nil {
		r.threads = make(map[*starlark.Thread]bool)
	}
	r.threads[t] = true
	canceled := r.canceled
	r.mu.Unlock()
	if canceled != "" {
		t.Cancel(canceled)
	}
	return t
}

func (r *run) dropThread(t *starlark.Thread) {
	r.mu.Lock()
	delete(r.threads, t)
	r.mu.Unlock()
}

func (r *run) close() {
	r.mu.Lock()
	r.threads = nil
	r.mu.Unlock()
}

// cancelAll cancels every thread of the run when its context ends.
func (r *run) cancelAll() {
	reason := "cancelled"
	if errors.Is(r.ctx.Err(), context.DeadlineExceeded) {
		reason = "timeout exceeded"
	}
	r.cancel(reason)
}

// cancel cancels every thread of the run, now and to come, for reason.
func (r *run) cancel(reason string) {
	r.mu.Lock()
	r.canceled = reason
	for t := range r.threads {
		t.Cancel(reason)
	}
	r.mu.Unlock()
}

// print writes msg to the Host's Stdout. Output that cannot be written
// fails the run: the first error is kept and every thread is cancelled,
// so that a script whose output goes nowhere stops instead of going on
// as if it had been read.
func (r *run) print(_ *starlark.Thread, msg string) {
	h := r.host
	h.printMu.Lock()
	_, err := fmt.Fprintln(h.opts.Stdout, msg)
	h.printMu.Unlock()
	if err == nil {
		return
	}
	r.mu.Lock()
	first := r.output == nil
	if first {
		r.output = err
	}
	r.mu.Unlock()
	if first {
		r.cancel("standard output could not be written")
	}
}

func (r *run) outputErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.output
}

// limited reports whether err is the run's step budget or deadline
// stopping it.
func (r *run) limited(err error) bool {
	if errors.Is(r.ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	var ee *starlark.EvalError
	return errors.As(err, &ee) && strings.Contains(ee.Msg, "too many steps")
}

// recordRefusal keeps the first refusal of the run, so the run's error
// says "refused" however the Starlark error that carried it was wrapped.
func (r *run) recordRefusal(err error) {
	var re *opencode.RefusedError
	if !errors.As(err, &re) {
		return
	}
	r.mu.Lock()
	if r.refused == nil {
		r.refused = re
	}
	r.mu.Unlock()
}

func (r *run) refusal() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused
}

// execFile opens, compiles and executes the file at abs on thread t,
// raising the events in order. Its globals are frozen on return.
func (r *run) execFile(t *starlark.Thread, abs string) (globals starlark.StringDict, err error) {
	if r.root == "" {
		r.root = filepath.Dir(abs)
	}
	r.stack = append(r.stack, abs)
	defer func() { r.stack = r.stack[:len(r.stack)-1] }()
	defer audit.Recover(r.host.audit, t, abs, &err)

	a := r.host.audit
	code, err := r.opener.OpenCode(t, abs)
	if err != nil {
		r.recordRefusal(err)
		return nil, err
	}
	if err := a.Raise(t, audit.Compile, starlark.String(code.Path), starlark.String(hashHex(code.SHA256))); err != nil {
		return nil, err
	}
	_, prog, err := starlark.SourceProgramOptions(FileOptions, code.Path, code.Data, r.predeclared.Has)
	if err != nil {
		return nil, err
	}
	if err := a.Raise(t, audit.Exec, starlark.String(code.Path)); err != nil {
		return nil, err
	}
	globals, err = prog.Init(t, r.predeclared)
	globals.Freeze()
	return globals, err
}

// load implements the load statement for every thread of the run.
func (r *run) load(t *starlark.Thread, name string) (starlark.StringDict, error) {
	from := r.stack[len(r.stack)-1]
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return nil, fmt.Errorf("invalid module name %q", name)
	}
	abs := name
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(filepath.Dir(from), name)
	}
	abs = filepath.Clean(abs)
	// The path the module is opened by, so that a hook checks what is
	// opened, not "lib/../other/m.star".
	if err := r.host.audit.Raise(t, audit.Load, starlark.String(name), starlark.String(from), starlark.String(abs)); err != nil {
		return nil, err
	}

	if m, ok := r.modules[abs]; ok {
		if !m.done {
			return nil, fmt.Errorf("cycle in load graph: %s", r.cycle(abs))
		}
		return m.globals, m.err
	}
	if len(r.stack) >= MaxLoadDepth {
		return nil, fmt.Errorf("load of %s from %s: modules nested deeper than %d levels (interp.MaxLoadDepth, sstar's limit on chains of loads); load the module from a file nearer the main one", r.short(abs), r.short(from), MaxLoadDepth)
	}
	m := &module{}
	r.modules[abs] = m

	mt := r.newThread(abs, t)
	if r.limits != nil {
		// The module may spend what the run has left; what it spends is
		// then taken from the loading thread's own limit.
		left := r.limits[t] - min(t.ExecutionSteps(), r.limits[t])
		r.setLimit(mt, left)
		defer func() {
			spent := min(mt.ExecutionSteps(), left)
			r.setLimit(t, r.limits[t]-spent)
			delete(r.limits, mt)
		}()
	}
	m.globals, m.err = r.execFile(mt, abs)
	r.dropThread(mt)
	m.done = true
	return m.globals, m.err
}

func (r *run) setLimit(t *starlark.Thread, limit uint64) {
	r.limits[t] = limit
	t.SetMaxExecutionSteps(limit)
}

// cycle renders the load chain that closes a cycle at abs.
func (r *run) cycle(abs string) string {
	var chain []string
	for i, p := range r.stack {
		if p == abs {
			for _, q := range r.stack[i:] {
				chain = append(chain, r.short(q))
			}
			break
		}
	}
	chain = append(chain, r.short(abs))
	return strings.Join(chain, " -> ")
}

func (r *run) short(p string) string {
	if rel, err := filepath.Rel(r.root, p); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}
