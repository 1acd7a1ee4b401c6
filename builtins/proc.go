package builtins

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	libtime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/internal/ospath"
)

// MaxOutput is how much of each of a child's stdout and stderr proc.run
// keeps. The rest is read and discarded, so the child never blocks on a
// full pipe, and the result says truncated = True.
const MaxOutput = 4 << 20

// DefaultPath is the whole environment of a child started without env:
// PATH=DefaultPath and nothing else. It is also where argv[0] is looked
// up when the child's environment has no PATH. It is a constant, not the
// PATH sstar was started with: sstar does not read its own environment.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// outputGrace is how long proc.run keeps reading a child's output after
// the child has exited (or been killed), for processes it left behind
// that still hold the pipes.
const outputGrace = time.Second

// Proc returns the proc module.
func Proc() *starlarkstruct.Module { return procModule(Options{}) }

func procModule(o Options) *starlarkstruct.Module {
	return module("proc", starlark.StringDict{
		"run": fn("proc.run", func(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			return procRun(t, b, args, kwargs, o.BeforeStart)
		}),
	})
}

// A command is a validated proc.run call: Go copies of everything the
// script passed, which are what the event shows and what is executed.
type command struct {
	argv    []string
	exe     string // absolute path, or argv[0] if it could not be resolved
	lookErr error  // why argv[0] could not be resolved
	cwd     string // absolute
	env     []string
	stdin   *string
	timeout time.Duration
}

// proc.run(argv, cwd=None, env=None, stdin=None, timeout=None,
// check=False, binary=False) runs a program and waits for it.
func procRun(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, before func() error) (starlark.Value, error) {
	var argvV starlark.Value
	cwdV, envV, stdinV, timeoutV := starlark.Value(starlark.None), starlark.Value(starlark.None), starlark.Value(starlark.None), starlark.Value(starlark.None)
	var check, binary bool
	if err := starlark.UnpackArgs(b.Name(), args, kwargs,
		"argv", &argvV, "cwd?", &cwdV, "env?", &envV, "stdin?", &stdinV,
		"timeout?", &timeoutV, "check?", &check, "binary?", &binary); err != nil {
		return nil, err
	}
	c, err := newCommand(b.Name(), argvV, cwdV, envV, stdinV, timeoutV)
	if err != nil {
		return nil, err
	}
	if err := audit.Raise(t, audit.Popen, c.eventArgs()...); err != nil {
		return nil, fmtAbort(b.Name(), err)
	}
	if c.lookErr != nil {
		return nil, fmt.Errorf("%s: %s: %w", b.Name(), c, c.lookErr)
	}
	res, err := c.run(contextOf(t), before)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", b.Name(), c, err)
	}
	if check && res.code != 0 {
		return nil, fmt.Errorf("%s: %s: %s%s", b.Name(), c, res.status, stderrTail(res.stderr))
	}
	out := func(s []byte) starlark.Value {
		if binary {
			return starlark.Bytes(s)
		}
		return starlark.String(strings.ToValidUTF8(string(s), "\uFFFD"))
	}
	return starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
		"code":      starlark.MakeInt(res.code),
		"stdout":    out(res.stdout),
		"stderr":    out(res.stderr),
		"truncated": starlark.Bool(res.truncated),
	}), nil
}

// newCommand validates proc.run's arguments into Go copies. Nothing the
// script can change afterwards (its argv list, its env dict) is read
// again.
func newCommand(fname string, argvV, cwdV, envV, stdinV, timeoutV starlark.Value) (*command, error) {
	c := new(command)
	switch v := argvV.(type) {
	case starlark.String, starlark.Bytes:
		return nil, fmt.Errorf("%s: argv must be a list of strings, not a %s: there is no shell; to run one, say so: [\"sh\", \"-c\", script]", fname, v.Type())
	case starlark.Indexable:
		n := v.Len()
		if n == 0 {
			return nil, fmt.Errorf("%s: argv is empty; want [program, args...]", fname)
		}
		for i := 0; i < n; i++ {
			s, ok := v.Index(i).(starlark.String)
			if !ok {
				return nil, fmt.Errorf("%s: argv[%d]: got %s, want string", fname, i, v.Index(i).Type())
			}
			if strings.IndexByte(string(s), 0) >= 0 {
				return nil, fmt.Errorf("%s: argv[%d] %q contains a NUL byte", fname, i, string(s))
			}
			c.argv = append(c.argv, string(s))
		}
	default:
		return nil, fmt.Errorf("%s: argv: got %s, want a list of strings", fname, argvV.Type())
	}
	if c.argv[0] == "" {
		return nil, fmt.Errorf("%s: argv[0] is empty; want the program to run", fname)
	}

	switch v := cwdV.(type) {
	case starlark.NoneType:
		wd, err := ospath.WorkingDir()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fname, err)
		}
		c.cwd = wd
	case starlark.String:
		abs, err := absArg(fname+": cwd", string(v))
		if err != nil {
			return nil, err
		}
		c.cwd = abs
	default:
		return nil, fmt.Errorf("%s: cwd: got %s, want string or None", fname, cwdV.Type())
	}

	path := DefaultPath
	switch v := envV.(type) {
	case starlark.NoneType:
		c.env = []string{"PATH=" + DefaultPath}
	case *starlark.Dict:
		c.env = []string{} // never nil: a nil env would make exec inherit ours
		for _, kv := range v.Items() {
			k, ok1 := kv[0].(starlark.String)
			val, ok2 := kv[1].(starlark.String)
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%s: env: got %s: %s, want string: string", fname, kv[0].Type(), kv[1].Type())
			}
			if k == "" || strings.ContainsAny(string(k), "=\x00") {
				return nil, fmt.Errorf("%s: env: invalid variable name %q", fname, string(k))
			}
			if strings.IndexByte(string(val), 0) >= 0 {
				return nil, fmt.Errorf("%s: env[%q] contains a NUL byte", fname, string(k))
			}
			if k == "PATH" {
				path = string(val)
			}
			c.env = append(c.env, string(k)+"="+string(val))
		}
		sort.Strings(c.env)
	default:
		return nil, fmt.Errorf("%s: env: got %s, want dict or None", fname, envV.Type())
	}

	switch v := stdinV.(type) {
	case starlark.NoneType:
	case starlark.String:
		s := string(v)
		c.stdin = &s
	case starlark.Bytes:
		s := string(v)
		c.stdin = &s
	default:
		return nil, fmt.Errorf("%s: stdin: got %s, want string, bytes or None", fname, stdinV.Type())
	}

	d, err := timeoutArg(fname, timeoutV)
	if err != nil {
		return nil, err
	}
	c.timeout = d

	c.exe, c.lookErr = lookPath(c.argv[0], c.cwd, path)
	return c, nil
}

// timeoutArg accepts None, a positive number of seconds or a positive
// time.duration.
func timeoutArg(fname string, v starlark.Value) (time.Duration, error) {
	var d time.Duration
	switch v := v.(type) {
	case starlark.NoneType:
		return 0, nil
	case starlark.Int:
		s, ok := v.Int64()
		if !ok || s > math.MaxInt64/int64(time.Second) {
			// By its size: an int of a million digits takes long to print.
			return 0, fmt.Errorf("%s: timeout of %d bits (over %d seconds) is too large", fname, v.BigInt().BitLen(), math.MaxInt64/int64(time.Second))
		}
		d = time.Duration(s) * time.Second
	case starlark.Float:
		if math.IsNaN(float64(v)) || float64(v) >= float64(math.MaxInt64)/float64(time.Second) {
			return 0, fmt.Errorf("%s: timeout %v is too large", fname, v)
		}
		d = time.Duration(float64(v) * float64(time.Second))
		if d == 0 && v > 0 {
			d = 1
		}
	case libtime.Duration:
		d = time.Duration(v)
	default:
		return 0, fmt.Errorf("%s: timeout: got %s, want seconds (int or float), time.duration or None", fname, v.Type())
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s: timeout must be positive, got %v", fname, v)
	}
	return d, nil
}

// lookPath resolves argv[0] as the kernel would after chdir(cwd): a name
// with a slash is a path (relative to cwd, lexically cleaned), any other
// name is searched in path. Relative entries of path (including the empty one, which means
// ".") are skipped: what they find would depend on the directory.
func lookPath(name, cwd, path string) (string, error) {
	if strings.Contains(name, "/") {
		// Lexically clean, and what is executed is this clean path, so
		// that the event names what runs: /allowed/../usr/bin/id is
		// /usr/bin/id, for a hook and for the kernel alike.
		p := filepath.Clean(name)
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		return p, executable(p)
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return name, fmt.Errorf("executable %q not found in PATH %s", name, path)
}

// executable returns nil if p is a regular file the process may execute.
func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return osReason(err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%s: %w", p, syscall.EISDIR)
	}
	if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s: %w", p, syscall.EACCES)
	}
	if err := syscall.Access(p, 1 /* X_OK */); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// osReason renders an *os.PathError as "path: reason", keeping the
// reason wrapped.
func osReason(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

// String renders argv as a Starlark list, for errors.
func (c *command) String() string {
	l := make([]starlark.Value, len(c.argv))
	for i, a := range c.argv {
		l[i] = starlark.String(a)
	}
	return starlark.NewList(l).String()
}

// eventArgs are the arguments of subprocess.Popen: fresh values built
// from the validated copies, so a hook sees exactly what will run.
func (c *command) eventArgs() []starlark.Value {
	argv := make([]starlark.Value, len(c.argv))
	for i, a := range c.argv {
		argv[i] = starlark.String(a)
	}
	args := starlark.NewList(argv) // a list, as CPython passes it
	env := starlark.NewDict(len(c.env))
	for _, kv := range c.env {
		k, v, _ := strings.Cut(kv, "=")
		env.SetKey(starlark.String(k), starlark.String(v))
	}
	return []starlark.Value{starlark.String(c.exe), args, starlark.String(c.cwd), env}
}

type result struct {
	code           int
	status         string // "exit status 1", "killed by signal 9 (killed)"
	stdout, stderr []byte
	truncated      bool
}

// run starts the command in a process group of its own and waits for
// it. When the timeout expires or ctx is done, the whole group is killed.
// before, if not nil, is called right before the start; its error
// means nothing is started.
func (c *command) run(ctx context.Context, before func() error) (*result, error) {
	if fi, err := os.Stat(c.cwd); err != nil {
		return nil, fmt.Errorf("cwd %w", osReason(err))
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("cwd %s: %w", c.cwd, syscall.ENOTDIR)
	} else if err := syscall.Access(c.cwd, 1 /* X_OK */); err != nil {
		// Checked here because the child's failed chdir would be
		// reported as the program's error.
		return nil, fmt.Errorf("cwd %s: %w", c.cwd, err)
	}
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if c.timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	defer cancel()

	stdout := &capture{max: MaxOutput}
	stderr := &capture{max: MaxOutput}
	cmd := &exec.Cmd{
		Path:   c.exe,
		Args:   c.argv,
		Dir:    c.cwd,
		Env:    c.env,
		Stdout: stdout,
		Stderr: stderr,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:   true,            // so a timeout can kill what the child started
			Pdeathsig: syscall.SIGKILL, // and the child does not outlive sstar
		},
		WaitDelay: outputGrace,
	}
	if c.stdin != nil {
		cmd.Stdin = strings.NewReader(*c.stdin)
	} // else the child's stdin is /dev/null, never sstar's
	if err := runCtx.Err(); err != nil {
		return nil, fmt.Errorf("not started: %s", stopReason(ctx, c.timeout))
	}
	if before != nil {
		if err := before(); err != nil {
			return nil, fmt.Errorf("not started: %w", err)
		}
	}
	// Pdeathsig fires when the thread that forked the child exits, not
	// the process: keep this goroutine on that thread until the child is
	// reaped, so no other goroutine can end the thread under it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return nil, osReason(err)
	}
	pid := cmd.Process.Pid
	stop := context.AfterFunc(runCtx, func() {
		syscall.Kill(-pid, syscall.SIGKILL)
	})
	err := cmd.Wait()
	killed := !stop()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) && !errors.Is(err, exec.ErrWaitDelay) {
		return nil, err
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if killed && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return nil, errors.New(stopReason(ctx, c.timeout))
	}
	res := &result{
		stdout:    stdout.buf,
		stderr:    stderr.buf,
		truncated: stdout.truncated || stderr.truncated,
	}
	switch {
	case ws.Signaled():
		res.code = -int(ws.Signal())
		res.status = fmt.Sprintf("killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	default:
		res.code = ws.ExitStatus()
		res.status = fmt.Sprintf("exit status %d", res.code)
	}
	return res, nil
}

// stopReason says why a run was stopped: its own timeout, or the host's
// context (the whole script's timeout or cancellation).
func stopReason(ctx context.Context, timeout time.Duration) string {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "stopped: the script's time limit was reached (process group killed)"
	case ctx.Err() != nil:
		return "stopped: the script was cancelled (process group killed)"
	}
	return fmt.Sprintf("timed out after %v (process group killed)", timeout)
}

// stderrTail returns the end of a failed command's stderr for its error.
func stderrTail(stderr []byte) string {
	const max = 512
	s := strings.TrimSpace(strings.ToValidUTF8(string(stderr), "\uFFFD"))
	if s == "" {
		return ""
	}
	if len(s) > max {
		s = "..." + strings.ToValidUTF8(s[len(s)-max:], "")
	}
	return "; stderr: " + s
}

// A capture keeps the first max bytes written to it and counts the rest
// as truncated. It never fails, so the child can always write.
type capture struct {
	buf       []byte
	max       int
	truncated bool
}

func (c *capture) Write(p []byte) (int, error) {
	room := c.max - len(c.buf)
	if len(p) > room {
		c.truncated = true
		if room > 0 {
			c.buf = append(c.buf, p[:room]...)
		}
		return len(p), nil
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}
