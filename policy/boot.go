package policy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/sstar-project/sstar/internal/ospath"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/opencode"
)

// A System is this build's system policy as found at start-up: present
// (it then runs before anything else) or absent (the built-in defaults
// apply). Every program that runs code or checks it on sstar's behalf (a
// run, `sstar trust`, `sstar verify`, an embedder) boots the same way:
//
//	sys, err := policy.FindSystem()  // refused: exit 126
//	settings, err := sys.Run(ctx, h) // the settings every later step uses
//	err = settings.Apply(ctx, h, p)  // each additive policy file
//
// Sinks the system policy makes mandatory are in settings.Sinks; the
// caller opens them. Events raised before they exist are kept for them by
// the run's record.Fanout (record.Fanout.Keep), not here.
type System struct {
	exists bool
}

// FindSystem checks that the process is in the machine's initial user
// namespace (ErrUserNamespace: in another, whoever made it could have
// put a system policy of their own at SystemPath), checks the
// directories above SystemPath and looks for the file. Another user
// namespace, a directory others could change, a missing file in a build that
// requires one (Required), or a file that cannot be looked up is a
// refusal: the error wraps interp.ErrRefused.
func FindSystem() (*System, error) {
	if err := checkUserNamespace(); err != nil {
		return nil, refusal{fmt.Errorf("system policy %s: %w", SystemPath, err)}
	}
	if err := CheckDirs(SystemPath); err != nil {
		return nil, refusal{fmt.Errorf("system policy %s: %w", SystemPath, err)}
	}
	_, err := os.Lstat(SystemPath)
	switch {
	case errors.Is(err, fs.ErrNotExist) && Required == "true":
		return nil, refusal{fmt.Errorf("system policy %s is missing, and this sstar was built to require one; restore it", SystemPath)}
	case errors.Is(err, fs.ErrNotExist):
		return &System{}, nil
	case err != nil:
		return nil, refusal{fmt.Errorf("system policy %s: %v; fix or remove it", SystemPath, err)}
	}
	return &System{exists: true}, nil
}

// Exists reports whether there is a system policy file to run.
func (s *System) Exists() bool { return s.exists }

// Run runs the system policy on h, if there is one, and returns the
// settings it decided (the built-in defaults if there is none). The file
// is checked with the built-in settings and must be owned by root and not
// writable by group or others. An error is a *Error.
func (s *System) Run(ctx context.Context, h *interp.Host) (*Settings, error) {
	settings := Defaults()
	if !s.exists {
		return &settings, nil
	}
	if err := run(ctx, h, systemOpener(), SystemPath, true, 0, &settings); err != nil {
		return nil, err
	}
	return &settings, nil
}

// Apply runs the additive policy file at path on h, with the code opener
// of s, and applies what it decides to s: it may add hooks and lower
// limits, never change what only the system policy may. An error is a
// *Error; s is then unchanged.
func (s *Settings) Apply(ctx context.Context, h *interp.Host, path string) error {
	return run(ctx, h, s.Opener(), path, false, 0, s)
}

// ApplyLimited is Apply with the policy file's Starlark steps (its
// hooks' included while it runs) bounded by maxSteps (0: none): a policy
// file runs under the run's limits, as the script does. A timeout is
// ctx's.
func (s *Settings) ApplyLimited(ctx context.Context, h *interp.Host, path string, maxSteps uint64) error {
	return run(ctx, h, s.Opener(), path, false, maxSteps, s)
}

// Opener returns the code opener these settings describe, made once.
func (s *Settings) Opener() *opencode.Opener {
	if s.opener == nil {
		s.opener = &opencode.Opener{
			XattrName: s.Xattr, MaxSize: s.MaxCodeSize, EnforceExecCheck: s.EnforceExecCheck,
			Require: s.Require, Keys: s.Keys, Threshold: s.Threshold, StateDir: s.StateDir, AuditOnly: s.AuditOnly,
			FileSystems: s.FileSystems,
		}
	}
	return s.opener
}

// OpenerFor returns the opener that checks path: the system policy file
// is always checked as a boot checks it (the built-in settings, owned by
// root), everything else with s.Opener. `sstar trust` and `sstar verify`
// use it so that they check what a run would.
func (s *Settings) OpenerFor(path string) *opencode.Opener {
	if IsSystemPath(path) {
		return systemOpener()
	}
	return s.Opener()
}

// IsSystemPath reports whether path names the system policy file.
func IsSystemPath(path string) bool {
	abs, err := ospath.Abs(path)
	return err == nil && abs == SystemPath
}

// systemOpener is the opener of the system policy file itself: the
// built-in settings, which the file cannot change for itself, and the
// rule that root owns it.
func systemOpener() *opencode.Opener {
	d := Defaults()
	o := d.Opener()
	o.RequireRootOwned = true
	return o
}

// refusal is a system policy that cannot be used: sstar refuses to run
// (exit 126), as for code refused by verification.
type refusal struct{ err error }

func (r refusal) Error() string   { return r.err.Error() }
func (r refusal) Unwrap() []error { return []error{r.err, interp.ErrRefused} }
