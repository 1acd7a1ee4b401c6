// Package interp is sstar's hardened Starlark host.
//
// A Host runs Starlark files so that every security-relevant step is
// visible to audit hooks before it happens, and only code that its Opener
// vouched for is compiled. One run of a file raises, in order:
//
//	sstar.run_file(path)
//	sstar.open_code(abs)          (raised by the Opener)
//	compile(abs, sha256)
//	exec(abs)
//	load(module, from)            for each load statement, then for a
//	                              module not yet loaded in this run:
//	  sstar.open_code, compile, exec
//
// and builtins raise their own events (open, subprocess.Popen, ...).
//
// Scripts see the Starlark universe, each of its builtins guarded
// (audit.Guard), the host's own module, sys (see Sys), and what
// Options.Predeclared adds: usually the library modules of package
// builtins.
//
// Every thread of a run (the main one, and one for each loaded module)
// shares the run's audit dispatcher, step budget, cancellation and print
// destination. A loaded module resolves relative to the directory of the
// file that loads it, never the working directory, and runs once per run.
// A Go panic in a builtin or in the interpreter becomes a Starlark error
// and an sstar.panic event; it never crashes the process.
package interp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/internal/ospath"
	"github.com/sstar-project/sstar/opencode"
)

// An Opener turns a path into the exact bytes that may be compiled, or a
// refusal. It must raise sstar.open_code on t before opening the file, and
// must not reopen the file by name after checking it.
// *opencode.Opener is the one sstar uses; its zero value verifies as
// sstar does without a system policy.
type Opener interface {
	OpenCode(t *starlark.Thread, path string) (opencode.Code, error)
}

// Options configure a Host. Every field may be left zero, Opener too if
// every run names its own (Exec.Opener): no Go hooks, no step limit,
// print to standard output.
type Options struct {
	// Audit receives every event of every run. If nil, New makes one.
	// Go hooks may be added to it before or after New.
	Audit *audit.Dispatcher

	// Opener checks the code files of every run that does not name its
	// own. There is no default: a run with neither fails before it
	// starts, so that what vouches for code is always the caller's
	// choice (sstar's comes from the system policy).
	Opener Opener

	// Predeclared are the modules and values scripts see besides the
	// Starlark universe and the sys module (see Sys): usually
	// builtins.Modules().
	Predeclared starlark.StringDict

	// MaxSteps, if non-zero, bounds the Starlark computation steps of a
	// whole run, summed over all its threads (hooks included).
	MaxSteps uint64

	// Stdout receives the output of print. If nil, os.Stdout.
	Stdout io.Writer
}

// MaxLoadDepth is how many modules a run may have executing at once: the
// main file, the module it loads, the module that one loads, and so on.
// Each level of a chain of loads recurses through go.starlark.net and
// this package (load, execFile, the interpreter), and an error at the
// end of a chain is wrapped once per level, so a chain of distinct
// files, or of one file loaded through a directory that links to
// itself, would otherwise grow the stack and the time to report its
// error without bound (30,000 levels took 84 s). Real code loads a few
// levels deep.
const MaxLoadDepth = 256

// FileOptions is the Starlark dialect sstar accepts. Recursion stays off:
// it bounds the Go stack a script can use, whose overflow Go cannot
// recover from.
var FileOptions = &syntax.FileOptions{
	Set:             true,
	While:           true,
	TopLevelControl: true,
	GlobalReassign:  true,
}

// A Host runs Starlark files. It is safe for concurrent use; hooks added
// by a script (sys.addaudithook) stay on the Host's dispatcher, like PEP
// 578 hooks stay in the process, so use one Host per trust domain.
type Host struct {
	opts     Options
	audit    *audit.Dispatcher
	universe starlark.StringDict // guarded copies of the universe builtins
	printMu  sync.Mutex
}

// New returns a Host configured by opts.
func New(opts Options) *Host {
	h := &Host{opts: opts, audit: opts.Audit}
	if h.audit == nil {
		h.audit = new(audit.Dispatcher)
	}
	if h.opts.Stdout == nil {
		h.opts.Stdout = os.Stdout
	}
	h.universe = guardUniverse()
	return h
}

// Audit returns the Host's dispatcher.
func (h *Host) Audit() *audit.Dispatcher { return h.audit }

// ErrRefused marks a run stopped because the Opener refused a file (the
// main script or any module it loads). errors.Is(err, ErrRefused) holds
// for such a run's error even when the refusal happened deep in a load.
var ErrRefused = errors.New("code refused")

// ErrLimit marks a run stopped by a limit: its step budget, or its
// context's deadline.
var ErrLimit = errors.New("limit reached")

// ErrOutput marks a run stopped because print could not write to the
// Host's Stdout (a full disk, a closed pipe): output the script meant to
// give was lost, so the run failed, as a Unix tool fails.
var ErrOutput = errors.New("output lost")

// A RunError is the error of a run that failed.
type RunError struct {
	Path    string // the main file, as given
	Err     error  // the Starlark or host error
	Refused error  // non-nil if the Opener refused a file during the run
	Output  error  // non-nil if print could not write: why
	Limit   bool   // the run was stopped by its step budget or deadline
}

func (e *RunError) Error() string {
	if e.Output != nil {
		return fmt.Sprintf("print: cannot write to standard output: %v; the script's output is incomplete", e.Output)
	}
	return e.Err.Error()
}

// Unwrap returns the error and, if any, the refusal, so that errors.Is
// finds ErrRefused, ErrLimit, ErrOutput, opencode's refusals and
// audit.ErrNotRecorded.
func (e *RunError) Unwrap() []error {
	errs := []error{e.Err}
	if e.Refused != nil {
		errs = append(errs, ErrRefused, e.Refused)
	}
	if e.Output != nil {
		errs = append(errs, ErrOutput, e.Output)
	}
	if e.Limit {
		errs = append(errs, ErrLimit)
	}
	return errs
}

// Backtrace returns the Starlark backtrace of the error, or its message.
func (e *RunError) Backtrace() string {
	var ee *starlark.EvalError
	if errors.As(e.Err, &ee) {
		return ee.Backtrace()
	}
	return e.Err.Error()
}

// RunFile runs the file at path, verified by Options.Opener, with
// sys.argv = [path] + args, raising sstar.run_file(path) first. It returns the file's globals. A failed run
// returns a *RunError.
func (h *Host) RunFile(ctx context.Context, path string, args []string) (starlark.StringDict, error) {
	return h.Exec(ctx, Exec{Path: path, Args: args, Event: audit.RunFile})
}

// Exec describes one run of a file, for callers that need more control
// than RunFile (policy files, say).
type Exec struct {
	Path string   // the file, as given
	Args []string // sys.argv[1:]
	// Event, unless zero (audit.Script), is raised with Path (made
	// absolute and lexically clean) before anything else: audit.RunFile
	// for a main script.
	Event audit.Kind
	// Predeclared, if non-nil, adds to (and overrides) the Host's.
	Predeclared starlark.StringDict
	// Opener, if non-nil, replaces the Host's (Options.Opener) for this
	// run: a system policy file is opened with stricter checks than
	// scripts. One of the two must be set.
	Opener Opener
	// MaxSteps, if non-zero, replaces the Host's step budget for this run.
	MaxSteps uint64
}

// Exec runs a file as described by e. Without an Opener (e.Opener or
// Options.Opener) nothing is raised or read, and the run fails.
func (h *Host) Exec(ctx context.Context, e Exec) (globals starlark.StringDict, err error) {
	if ctx == nil {
		ctx = context.Background()
	}
	opener := h.opts.Opener
	if e.Opener != nil {
		opener = e.Opener
	}
	if opener == nil {
		return nil, &RunError{Path: e.Path, Err: fmt.Errorf("interp: no Opener to verify %s with; set interp.Options.Opener or interp.Exec.Opener (an *opencode.Opener, say)", e.Path)}
	}
	r := &run{host: h, ctx: ctx, modules: make(map[string]*module), opener: opener, maxSteps: h.opts.MaxSteps}
	if e.MaxSteps != 0 {
		r.maxSteps = e.MaxSteps
	}
	r.predeclared = h.predeclared(e)
	main := r.newThread(e.Path, nil)
	defer r.close()
	// Modules recover panics where they execute (execFile); this catches
	// the rest, such as a Go audit hook's panic on e.Event, which the
	// dispatcher does not recover, and makes it the run's error.
	var panicked error
	defer func() {
		if panicked != nil {
			globals, err = nil, &RunError{Path: e.Path, Err: panicked, Refused: r.refusal()}
		}
	}()
	defer audit.Recover(h.audit, main, e.Path, &panicked)
	stop := context.AfterFunc(ctx, r.cancelAll)
	defer stop()

	fail := func(err error) (starlark.StringDict, error) {
		return nil, &RunError{Path: e.Path, Err: err, Refused: r.refusal(), Output: r.outputErr(), Limit: r.limited(err)}
	}
	abs, err := ospath.Abs(e.Path)
	if err != nil {
		return fail(fmt.Errorf("%s: %v", e.Path, err))
	}
	if e.Event != audit.Script {
		// Absolute and lexically clean, as every path in an event.
		if err := h.audit.Raise(main, e.Event, starlark.String(abs)); err != nil {
			return fail(err)
		}
	}
	m := &module{}
	r.modules[filepath.Clean(abs)] = m
	globals, err = r.execFile(main, abs)
	m.globals, m.err, m.done = globals, err, true
	if err != nil {
		return fail(err)
	}
	if err := h.audit.Failed(); err != nil {
		return fail(err)
	}
	if err := r.outputErr(); err != nil {
		return fail(err)
	}
	return globals, nil
}

func (h *Host) predeclared(e Exec) starlark.StringDict {
	d := make(starlark.StringDict, len(h.universe)+len(h.opts.Predeclared)+len(e.Predeclared)+1)
	for k, v := range h.universe {
		d[k] = v
	}
	for k, v := range h.opts.Predeclared {
		d[k] = v
	}
	d["sys"] = Sys(append([]string{e.Path}, e.Args...))
	for k, v := range e.Predeclared {
		d[k] = v
	}
	return d
}

// hashHex is the hex SHA-256 used in compile events.
func hashHex(sum [sha256.Size]byte) string { return hex.EncodeToString(sum[:]) }
