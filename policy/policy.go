// Package policy runs operator policy files: Starlark files, verified like
// any code, that decide what sstar records and forbids before a script
// runs.
//
// The system policy, at the fixed path SystemPath, runs first. It must be
// owned by root and not writable by group or others (checked on the open
// descriptor), and pass the same verification as code. It may change the
// settings that weaken or strengthen verification and recording (the
// stamp's extended attribute, the code size cap, kernel-check enforcement,
// what vouches for code and the keys that sign catalogs, audit-only mode,
// default and maximum limits, mandatory sinks) and install audit hooks.
// Additive policy files (--policy FILE) run after it and may only add
// hooks and lower limits.
//
// Policy files see a `policy` module that scripts never see:
//
//	policy.trust(xattr=, max_code_size=, exec_check=,
//	             keys=, threshold=, require=, state_dir=, mode=)  system policy only
//	policy.sink(audit_log=, syslog=, relp=, syslog_ca=, syslog_cert=,
//	            syslog_key=, journald=, kernel_audit=)   system policy only
//	policy.audit(max_record=)                           system policy only
//	policy.code_file_systems(NAME, ...)                  system policy only
//	policy.limits(steps=, timeout=, memory=, max_steps=, max_timeout=, max_memory=)
//	policy.allow(read=, write=, exec=, env=, connect=,
//	             kernel=, mode=)                        mode= system policy only
//	policy.path, policy.system
//
// and install hooks with sys.addaudithook. Hooks a policy installs run
// before any hook a script adds, see every event (the script's own
// sys.addaudithook attempts included), and cannot be removed.
package policy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/record"
	"github.com/sstar-project/sstar/internal/ospath"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/opencode"
)

// SystemPath is where the system policy lives. It is fixed at build time
// (go build -ldflags "-X github.com/sstar-project/sstar/policy.SystemPath=/path")
// and never taken from flags or the environment.
var SystemPath = "/etc/sstar/policy.star"

// MaxCodeSizeLimit bounds policy.trust(max_code_size=).
const MaxCodeSizeLimit = 1 << 30

// Settings are what policy files decide. Defaults returns the built-in
// ones, which apply when there is no system policy.
type Settings struct {
	// Verification (system policy only).
	Xattr            string // the stamp's extended attribute, namespace included
	MaxCodeSize      int64  // largest code file in bytes
	EnforceExecCheck bool   // refuse what AT_EXECVE_CHECK refuses, even without the securebit
	// FileSystems are the file system types code may come from beyond
	// those whose xattrs the kernel keeps (opencode.Opener.FileSystems).
	FileSystems []string

	// What vouches for code (system policy only): stamps, catalogs signed
	// by Threshold of Keys, or either; see docs/trust.md.
	Require   opencode.Require
	Keys      []string // verifier keys, "name+hash+key"
	Threshold int      // 0: 1
	StateDir  string   // where catalog versions are kept against rollback; "" none
	AuditOnly bool     // policy.trust(mode="audit"): record refusals, run anyway

	// Limits. Steps and Timeout apply when a run asks for none; a run may
	// ask for less, or for more up to MaxSteps and MaxTimeout. Zero means
	// none. Additive policies lower all four.
	Steps, MaxSteps     uint64
	Timeout, MaxTimeout time.Duration
	// Memory and MaxMemory are in bytes, with the same rules: the
	// kernel's RLIMIT_DATA for sstar and each process it starts, and the
	// Go runtime's soft limit (see harden.LimitMemory).
	Memory, MaxMemory int64

	// Sinks every run must record to (system policy only).
	Sinks []Sink
	// MaxRecord bounds each audit record's name and arguments, in bytes
	// (0: record.DefaultMaxRecord; system policy only).
	MaxRecord int

	// Permissions are what policy.allow declared (see allow.go).
	Permissions Permissions

	opener *opencode.Opener // made by Opener from the settings above
}

// A Sink is an audit destination: one the system policy makes mandatory
// (policy.sink), or one a flag adds.
type Sink struct {
	AuditLog    string // a JSON Lines file, or
	Syslog      string // a syslog address (unix://, udp://, tcp://, tls://), or
	Relp        string // a RELP server (tcp://, tls://), or
	Journald    bool   // journald's native socket, or
	KernelAudit bool   // the kernel's audit log
	SyslogCA    string // CA file for a tls:// syslog or RELP server
	// SyslogCert and SyslogKey are a PEM client certificate and its key
	// for a tls:// syslog or RELP server that asks for one (imrelp over
	// TLS does).
	SyslogCert, SyslogKey string
}

func (s Sink) String() string {
	switch {
	case s.AuditLog != "":
		return "audit log " + s.AuditLog
	case s.Relp != "":
		return "RELP " + s.Relp
	case s.Journald:
		return "journald"
	case s.KernelAudit:
		return "kernel audit"
	}
	return "syslog " + s.Syslog
}

// Kinds returns how many destinations s names: a sink names exactly one.
func (s Sink) Kinds() int {
	n := 0
	for _, set := range []bool{s.AuditLog != "", s.Syslog != "", s.Relp != "", s.Journald, s.KernelAudit} {
		if set {
			n++
		}
	}
	return n
}

// Defaults returns the built-in settings: stamps in user.sstar.sha256,
// opencode's size cap, the kernel asked but not enforced (unless the
// process has SECBIT_EXEC_RESTRICT_FILE), no limits, no mandatory sinks.
func Defaults() Settings {
	return Settings{
		Xattr:       opencode.DefaultXattrName,
		MaxCodeSize: opencode.DefaultMaxSize,
	}
}

// Limits resolves the limits of a run that asked for steps and timeout
// (zero: nothing asked). Asking above a maximum is an error naming it.
func (s *Settings) Limits(steps uint64, timeout time.Duration) (uint64, time.Duration, error) {
	if steps == 0 {
		steps = s.Steps
	} else if s.MaxSteps != 0 && steps > s.MaxSteps {
		return 0, 0, fmt.Errorf("--max-steps %d is above the maximum of %d set by the system policy", steps, s.MaxSteps)
	}
	if timeout == 0 {
		timeout = s.Timeout
	} else if s.MaxTimeout != 0 && timeout > s.MaxTimeout {
		return 0, 0, fmt.Errorf("--timeout %s is above the maximum of %s set by the system policy", timeout, s.MaxTimeout)
	}
	return steps, timeout, nil
}

// An Error is a policy file that failed: it could not be verified, had a
// syntax or runtime error, or tried a setting it may not change. No script
// code runs after one.
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("policy %s: %v", e.Path, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// run runs the policy file at path on h, with opener checking it (and the
// modules it loads), and applies what it decides to s. system says whether
// it is the system policy; maxSteps bounds its steps (0: none). On success it raises sstar.policy(path).
func run(ctx context.Context, h *interp.Host, opener interp.Opener, path string, system bool, maxSteps uint64, s *Settings) error {
	st := &state{path: path, system: system, next: *s, bound: s.Permissions}
	st.next.Sinks = append([]Sink(nil), s.Sinks...)
	st.next.FileSystems = append([]string(nil), s.FileSystems...)
	if system {
		st.next.opener = nil // the policy may change what the opener checks
	}
	_, err := h.Exec(ctx, interp.Exec{
		Path:        path,
		Opener:      opener,
		Predeclared: starlark.StringDict{"policy": st.module()},
		MaxSteps:    maxSteps,
	})
	st.done = true
	if err != nil {
		return &Error{Path: path, Err: err}
	}
	if err := raisePolicy(h.Audit(), path); err != nil {
		return &Error{Path: path, Err: err}
	}
	*s = st.next
	return nil
}

// raisePolicy raises sstar.policy(path). The dispatcher does not recover
// a Go hook's panic, and this event is raised outside any run: the panic
// becomes the policy's error (and an sstar.panic event), so the policy
// does not take effect and nothing after it runs.
func raisePolicy(d *audit.Dispatcher, path string) (err error) {
	defer audit.Recover(d, nil, audit.Policy.Name(), &err)
	// Absolute and lexically clean, as every path in an event (the file
	// was opened by this path a moment ago, so it can be made so).
	abs, err := ospath.Abs(path)
	if err != nil {
		return err
	}
	return d.Raise(nil, audit.Policy, starlark.String(abs))
}

// state is one policy file's run: what it may change and has changed.
type state struct {
	path   string
	system bool
	next   Settings
	done   bool        // settings are fixed once the file has run
	bound  Permissions // the grants this file inherits: it may only narrow them
}

func (st *state) module() *starlarkstruct.Module {
	m := &starlarkstruct.Module{Name: "policy", Members: starlark.StringDict{
		"path":   starlark.String(st.path),
		"system": starlark.Bool(st.system),
		"trust":  audit.Guard(starlark.NewBuiltin("policy.trust", st.trust)),
		"sink":   audit.Guard(starlark.NewBuiltin("policy.sink", st.sink)),
		"audit":  audit.Guard(starlark.NewBuiltin("policy.audit", st.audit)),
		"limits": audit.Guard(starlark.NewBuiltin("policy.limits", st.limits)),

		"code_file_systems": audit.Guard(starlark.NewBuiltin("policy.code_file_systems", st.codeFileSystems)),
		"allow":             audit.Guard(starlark.NewBuiltin("policy.allow", st.allow)),
	}}
	m.Freeze()
	return m
}

// check refuses a settings change that is not allowed here.
func (st *state) check(b *starlark.Builtin, systemOnly bool) error {
	if st.done {
		return fmt.Errorf("%s: settings can only be changed while the policy file runs, not from a hook", b.Name())
	}
	if systemOnly && !st.system {
		return fmt.Errorf("%s: only the system policy (%s) may change this setting; %s is an additive policy", b.Name(), SystemPath, st.path)
	}
	return nil
}

func (st *state) trust(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := st.check(b, true); err != nil {
		return nil, err
	}
	var xattrName, execCheck string
	var maxSize starlark.Value = starlark.None
	var t trustArgs
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "xattr?", &xattrName, "max_code_size?", &maxSize, "exec_check?", &execCheck,
		"keys?", &t.keys, "threshold?", &t.threshold, "require?", &t.require, "state_dir?", &t.stateDir, "mode?", &t.mode); err != nil {
		return nil, err
	}
	if err := t.apply(b, &st.next); err != nil {
		return nil, err
	}
	if xattrName != "" {
		if opencode.XattrNamespace(xattrName) == "" {
			return nil, fmt.Errorf("%s: xattr %q must be user.NAME or trusted.NAME", b.Name(), xattrName)
		}
		st.next.Xattr = xattrName
	}
	if maxSize != starlark.None {
		n, err := starlark.AsInt32(maxSize)
		if err != nil || n <= 0 || n > MaxCodeSizeLimit {
			return nil, fmt.Errorf("%s: max_code_size must be a number of bytes from 1 to %d, got %s", b.Name(), MaxCodeSizeLimit, maxSize)
		}
		st.next.MaxCodeSize = int64(n)
	}
	switch execCheck {
	case "":
	case "ask":
		st.next.EnforceExecCheck = false
	case "enforce":
		st.next.EnforceExecCheck = true
	default:
		return nil, fmt.Errorf("%s: exec_check must be \"ask\" or \"enforce\", got %q", b.Name(), execCheck)
	}
	return starlark.None, nil
}

func (st *state) sink(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := st.check(b, true); err != nil {
		return nil, err
	}
	var s Sink
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "audit_log?", &s.AuditLog, "syslog?", &s.Syslog, "syslog_ca?", &s.SyslogCA,
		"syslog_cert?", &s.SyslogCert, "syslog_key?", &s.SyslogKey,
		"relp?", &s.Relp, "journald?", &s.Journald, "kernel_audit?", &s.KernelAudit); err != nil {
		return nil, err
	}
	tls := strings.HasPrefix(s.Syslog, "tls://") || strings.HasPrefix(s.Relp, "tls://")
	switch {
	case s.Kinds() != 1:
		return nil, fmt.Errorf("%s: give exactly one of audit_log=, syslog=, relp=, journald=True or kernel_audit=True", b.Name())
	case s.SyslogCA != "" && !tls:
		return nil, fmt.Errorf("%s: syslog_ca= goes with a tls:// syslog or relp address", b.Name())
	case (s.SyslogCert != "" || s.SyslogKey != "") && !tls:
		return nil, fmt.Errorf("%s: syslog_cert= and syslog_key= go with a tls:// syslog or relp address", b.Name())
	case (s.SyslogCert == "") != (s.SyslogKey == ""):
		return nil, fmt.Errorf("%s: give syslog_cert= and syslog_key= together (a client certificate and its key)", b.Name())
	case strings.ContainsRune(s.AuditLog+s.Syslog+s.Relp+s.SyslogCA+s.SyslogCert+s.SyslogKey, 0):
		return nil, fmt.Errorf("%s: NUL byte in an address or path", b.Name())
	}
	st.next.Sinks = append(st.next.Sinks, s)
	return starlark.None, nil
}

func (st *state) audit(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := st.check(b, true); err != nil {
		return nil, err
	}
	var maxRecord starlark.Value = starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "max_record?", &maxRecord); err != nil {
		return nil, err
	}
	if maxRecord != starlark.None {
		n, err := starlark.AsInt32(maxRecord)
		if err != nil || n < record.MinMaxRecord || n > record.MaxMaxRecord {
			return nil, fmt.Errorf("%s: max_record must be a number of bytes from %d to %d, got %s", b.Name(), record.MinMaxRecord, record.MaxMaxRecord, maxRecord)
		}
		st.next.MaxRecord = n
	}
	return starlark.None, nil
}

func (st *state) limits(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := st.check(b, false); err != nil {
		return nil, err
	}
	var steps, maxSteps, timeout, maxTimeout, memory, maxMemory starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None, starlark.None, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "steps?", &steps, "timeout?", &timeout, "max_steps?", &maxSteps, "max_timeout?", &maxTimeout, "memory?", &memory, "max_memory?", &maxMemory); err != nil {
		return nil, err
	}
	s := &st.next
	if !st.system {
		if maxSteps != starlark.None || maxTimeout != starlark.None || maxMemory != starlark.None {
			return nil, fmt.Errorf("%s: only the system policy (%s) may set max_steps, max_timeout or max_memory; an additive policy lowers limits with steps=, timeout= and memory=", b.Name(), SystemPath)
		}
		if steps != starlark.None {
			n, err := asSteps(b, "steps", steps)
			if err != nil {
				return nil, err
			}
			if cur := effective(s.Steps, s.MaxSteps); cur != 0 && n > cur {
				return nil, fmt.Errorf("%s: steps=%d would raise the step limit above %d; an additive policy may only lower limits", b.Name(), n, cur)
			}
			s.Steps, s.MaxSteps = n, n
		}
		if timeout != starlark.None {
			d, err := asDuration(b, "timeout", timeout)
			if err != nil {
				return nil, err
			}
			if cur := time.Duration(effective(uint64(s.Timeout), uint64(s.MaxTimeout))); cur != 0 && d > cur {
				return nil, fmt.Errorf("%s: timeout=%s would raise the time limit above %s; an additive policy may only lower limits", b.Name(), d, cur)
			}
			s.Timeout, s.MaxTimeout = d, d
		}
		if memory != starlark.None {
			n, err := asSize(b, "memory", memory)
			if err != nil {
				return nil, err
			}
			if cur := int64(effective(uint64(s.Memory), uint64(s.MaxMemory))); cur != 0 && n > cur {
				return nil, fmt.Errorf("%s: memory=%s would raise the memory limit above %s; an additive policy may only lower limits", b.Name(), FormatSize(n), FormatSize(cur))
			}
			s.Memory, s.MaxMemory = n, n
		}
		return starlark.None, nil
	}
	var err error
	if steps != starlark.None {
		if s.Steps, err = asSteps(b, "steps", steps); err != nil {
			return nil, err
		}
	}
	if maxSteps != starlark.None {
		if s.MaxSteps, err = asSteps(b, "max_steps", maxSteps); err != nil {
			return nil, err
		}
	}
	if timeout != starlark.None {
		if s.Timeout, err = asDuration(b, "timeout", timeout); err != nil {
			return nil, err
		}
	}
	if maxTimeout != starlark.None {
		if s.MaxTimeout, err = asDuration(b, "max_timeout", maxTimeout); err != nil {
			return nil, err
		}
	}
	if memory != starlark.None {
		if s.Memory, err = asSize(b, "memory", memory); err != nil {
			return nil, err
		}
	}
	if maxMemory != starlark.None {
		if s.MaxMemory, err = asSize(b, "max_memory", maxMemory); err != nil {
			return nil, err
		}
	}
	if s.MaxSteps != 0 && (s.Steps == 0 || s.Steps > s.MaxSteps) {
		return nil, fmt.Errorf("%s: steps (%d) must be set and at most max_steps (%d)", b.Name(), s.Steps, s.MaxSteps)
	}
	if s.MaxTimeout != 0 && (s.Timeout == 0 || s.Timeout > s.MaxTimeout) {
		return nil, fmt.Errorf("%s: timeout (%s) must be set and at most max_timeout (%s)", b.Name(), s.Timeout, s.MaxTimeout)
	}
	if s.MaxMemory != 0 && (s.Memory == 0 || s.Memory > s.MaxMemory) {
		return nil, fmt.Errorf("%s: memory (%d) must be set and at most max_memory (%d)", b.Name(), s.Memory, s.MaxMemory)
	}
	return starlark.None, nil
}

// effective is the lower non-zero of a default and a maximum (0: none).
func effective(def, max uint64) uint64 {
	switch {
	case def == 0:
		return max
	case max == 0:
		return def
	}
	return min(def, max)
}

func asSteps(b *starlark.Builtin, name string, v starlark.Value) (uint64, error) {
	var n uint64
	if i, ok := v.(starlark.Int); ok {
		if u, ok := i.Uint64(); ok && u > 0 {
			n = u
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: %s must be a positive number of steps, got %s", b.Name(), name, got(v))
	}
	return n, nil
}

// got describes a policy's value for an error: a short string or int as
// written, anything else by its type. A list's or dict's repr would recurse
// once per level of nesting inside go.starlark.net and be as long as the
// value, which the policy controls.
func got(v starlark.Value) string {
	switch v := v.(type) {
	case starlark.String:
		if len(v) <= 64 {
			return v.String()
		}
		return fmt.Sprintf("a string of %d bytes", len(v))
	case starlark.Int:
		if v.BigInt().BitLen() <= 64 {
			return v.String()
		}
		return fmt.Sprintf("an int of %d bits", v.BigInt().BitLen())
	}
	return v.Type()
}

// asDuration accepts a duration string ("30s", "5m") or whole seconds.
func asDuration(b *starlark.Builtin, name string, v starlark.Value) (time.Duration, error) {
	var d time.Duration
	switch v := v.(type) {
	case starlark.String:
		d, _ = time.ParseDuration(string(v))
	case starlark.Int:
		if n, ok := v.Int64(); ok && n > 0 && n < int64(1<<62/time.Second) {
			d = time.Duration(n) * time.Second
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s: %s must be a positive duration such as \"30s\" or a number of seconds, got %s", b.Name(), name, got(v))
	}
	return d, nil
}

// asSize accepts a size string ("256MiB", "2GiB", see ParseSize) or a
// whole number of bytes.
func asSize(b *starlark.Builtin, name string, v starlark.Value) (int64, error) {
	var arg string
	switch v := v.(type) {
	case starlark.String:
		arg = string(v)
	case starlark.Int:
		arg = v.String()
	default:
		return 0, fmt.Errorf("%s: %s must be a size such as \"256MiB\" or a number of bytes, got %s", b.Name(), name, v.Type())
	}
	n, err := ParseSize(arg)
	if err != nil {
		return 0, fmt.Errorf("%s: %s: %v", b.Name(), name, err)
	}
	return n, nil
}
