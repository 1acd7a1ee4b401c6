// Package sandbox runs an untrusted Starlark script in a separate sstar
// process, so that nothing the script does can kill the Go program that
// asked for it: not a stack overflow inside go.starlark.net, not memory
// exhaustion, not an endless loop in a builtin. go.starlark.net's own
// maintainers say that the only reliable memory limit is a second
// process under an operating-system limit; this is that process, with
// sstar's verification, audit records and crash monitor.
//
// A Go program that reads its configuration from a Starlark file:
//
//	res, err := sandbox.Run(ctx, sandbox.Config{
//		Sstar:     "/usr/local/bin/sstar",
//		Script:    "/etc/myapp/config.star",
//		Timeout:   5 * time.Second,
//		MaxMemory: 256 << 20,
//		AuditLog:  "/var/log/myapp/config.jsonl",
//	})
//	var port int
//	err = json.Unmarshal(res.Globals["port"], &port)
//
// The script's exported globals (names without a leading _) come back as
// JSON, as the script's json.encode would write them. When the run does
// not end well, the error is an *Error, and errors.Is tells why:
// ErrLimit (steps, timeout or memory: Error.Limit says which), ErrCrash,
// ErrKilled, ErrRefused (the script or a module failed verification),
// ErrUnrecorded (an audit event could not be recorded), or ErrScript
// (the script failed: an error, fail(), an aborted event).
//
// The script must be vouched for as any sstar code is (sstar trust, a
// signed catalog); the system policy of the sstar binary applies, and
// the limits here may only lower its limits. Each call starts two
// processes (sstar and its run; see docs/architecture.md), which costs a
// few milliseconds (docs/performance.md): this is for configuration and
// other scripts that run now and then, not for a hot loop.
package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Config says what to run and under which limits. Sstar and Script are
// required; the zero value of every other field means none.
type Config struct {
	// Sstar is the absolute path of the sstar binary. It is not looked up
	// in PATH: the program decides which interpreter it trusts.
	Sstar string
	// Script is the Starlark file to run; Args are its sys.argv[1:].
	Script string
	Args   []string
	// Dir is the working directory of the run (default: the caller's).
	Dir string
	// Limits: Timeout is sstar's --timeout (a hard limit, policy files
	// included); the context's deadline also stops the run. MaxSteps and
	// MaxMemory (bytes; at least 160 MiB) are --max-steps and --max-memory.
	Timeout   time.Duration
	MaxSteps  uint64
	MaxMemory int64
	// Sinks and policy: AuditLog (--audit-log), Syslog (--syslog), and
	// Policies (each a --policy file).
	AuditLog string
	Syslog   string
	Policies []string
	// Stdout and Stderr receive the script's print output and sstar's
	// messages; sstar's last message is also kept for the error.
	Stdout, Stderr io.Writer
}

// A Result is a run that ended by itself, with the script's exported
// globals as JSON.
type Result struct {
	Globals map[string]json.RawMessage
}

// The reasons a run fails, for errors.Is on an *Error.
var (
	ErrLimit      = errors.New("sandbox: a limit stopped the script")
	ErrCrash      = errors.New("sandbox: sstar crashed while running the script")
	ErrKilled     = errors.New("sandbox: the run was killed")
	ErrRefused    = errors.New("sandbox: code refused")
	ErrUnrecorded = errors.New("sandbox: an audit event could not be recorded")
	ErrScript     = errors.New("sandbox: the script failed")
	ErrUsage      = errors.New("sandbox: sstar refused the arguments")
)

// An Error is a run that did not end well.
type Error struct {
	Status int    // sstar's exit status (see sstar --help)
	Reason string // sstar.run_end's reason, when sstar wrote one here
	Limit  string // for ErrLimit: "steps", "timeout" or "memory"
	Msg    string // the script's error, or the end of sstar's stderr
	kind   error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%v (sstar exit status %d", e.kind, e.Status)
	if e.Limit != "" {
		msg += ", limit " + e.Limit
	}
	msg += ")"
	if e.Msg != "" {
		msg += ": " + e.Msg
	}
	return msg
}

func (e *Error) Unwrap() error { return e.kind }

// The exit statuses of sstar's one table (cmd/sstar/exit.go) that tell
// the reasons apart.
const (
	statusOK         = 0
	statusFailed     = 1
	statusUsage      = 2
	statusCrash      = 70
	statusMemory     = 71
	statusRefused    = 126
	statusUnrecorded = 255
)

// Run runs the script in a new sstar process and waits for it.
func Run(ctx context.Context, c Config) (*Result, error) {
	if !filepath.IsAbs(c.Sstar) {
		return nil, fmt.Errorf("sandbox: Config.Sstar must be the absolute path of the sstar binary, got %q", c.Sstar)
	}
	if c.Script == "" {
		return nil, errors.New("sandbox: Config.Script is empty")
	}
	res, err := os.CreateTemp("", "sstar-result-*.json")
	if err != nil {
		return nil, fmt.Errorf("sandbox: %v", err)
	}
	defer os.Remove(res.Name())
	res.Close()

	args := []string{"--result", res.Name()}
	if c.Timeout > 0 {
		args = append(args, "--timeout", c.Timeout.String())
	}
	if c.MaxSteps > 0 {
		args = append(args, "--max-steps", strconv.FormatUint(c.MaxSteps, 10))
	}
	if c.MaxMemory > 0 {
		args = append(args, "--max-memory", strconv.FormatInt(c.MaxMemory, 10))
	}
	if c.AuditLog != "" {
		args = append(args, "--audit-log", c.AuditLog)
	}
	if c.Syslog != "" {
		args = append(args, "--syslog", c.Syslog)
	}
	for _, p := range c.Policies {
		args = append(args, "--policy", p)
	}
	// "--" is not needed: everything after the script is its own.
	args = append(append(args, c.Script), c.Args...)

	cmd := exec.CommandContext(ctx, c.Sstar, args...)
	cmd.Dir = c.Dir
	cmd.Env = []string{} // sstar reads no environment; give it none
	cmd.Stdout = c.Stdout
	var tail tailBuffer
	cmd.Stderr = &tail
	if c.Stderr != nil {
		cmd.Stderr = io.MultiWriter(c.Stderr, &tail)
	}
	// On cancellation, ask sstar to stop (it records the signal), then
	// kill it if it does not.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	if cmd.ProcessState == nil {
		return nil, fmt.Errorf("sandbox: starting %s: %v", c.Sstar, runErr)
	}
	status := cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		status = 128 + int(ws.Signal())
	}

	var out struct {
		Status  int                        `json:"status"`
		Reason  string                     `json:"reason"`
		Limit   string                     `json:"limit"`
		Error   string                     `json:"error"`
		Globals map[string]json.RawMessage `json:"globals"`
	}
	data, _ := os.ReadFile(res.Name())
	wrote := len(data) > 0 && json.Unmarshal(data, &out) == nil
	if wrote && status == statusOK && out.Status == statusOK {
		return &Result{Globals: out.Globals}, nil
	}
	e := &Error{Status: status, Msg: tail.String()}
	if wrote {
		e.Reason, e.Limit = out.Reason, out.Limit
		if out.Error != "" {
			e.Msg = out.Error
		}
	}
	switch {
	case status == statusOK:
		e.kind, e.Msg = ErrUnrecorded, "sstar exited 0 without writing its result"
	case status == statusMemory:
		e.kind, e.Limit = ErrLimit, "memory"
	case status == statusFailed && e.Reason == "limit":
		e.kind = ErrLimit
	case status == statusFailed && e.Reason == "watchdog":
		// The timeout passed while the script was blocked in a builtin.
		e.kind, e.Limit = ErrLimit, "timeout"
	case status == statusFailed:
		e.kind = ErrScript
	case status == statusUsage:
		e.kind = ErrUsage
	case status == statusCrash:
		e.kind = ErrCrash
	case status == statusRefused:
		e.kind = ErrRefused
	case status == statusUnrecorded:
		e.kind = ErrUnrecorded
	case ctx.Err() != nil:
		e.kind, e.Limit = ErrLimit, "timeout"
		e.Msg = ctx.Err().Error()
	default:
		e.kind = ErrKilled
	}
	return nil, e
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

// String is sstar's last own message (a line starting "sstar: "), or the
// last line.
func (t *tailBuffer) String() string {
	lines := bytes.Split(bytes.TrimSpace(t.b), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if bytes.HasPrefix(lines[i], []byte("sstar: ")) {
			return string(lines[i])
		}
	}
	return string(lines[len(lines)-1])
}
