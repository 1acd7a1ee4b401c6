package main

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/harden"
	"github.com/sstar-project/sstar/internal/ospath"
	"github.com/sstar-project/sstar/policy"
)

// confine puts the permissions the policies declared (policy.allow) in
// force, after every sink is open, before the script is opened: sstar's
// own check, as the Go hook right after the record fan-out, and the
// kernel's, a Landlock ruleset sstar restricts itself with so that every
// process it starts inherits it. policies are --policy files still to
// run: the system policy's permissions bind them too, and confine is
// called again once they ran, with what they narrowed (a second
// Landlock layer, which can only narrow the first). The JSON
// Lines log stays writable because its descriptor was opened before the
// restriction (Landlock checks opens, not writes to open descriptors);
// the sink process was started before it too. sstar.confine records the
// outcome. With kernel="require", a permission the kernel cannot enforce
// refuses the run (exit 126) after that record.
func (s *session) confine(stderr io.Writer, script string, policies []string) int {
	p := &s.settings.Permissions
	if !p.Declared() {
		return exitOK
	}
	if err := s.perm.set(s.d, p.Hook(s.d)); err != nil {
		return policyFailed(stderr, s.d, err)
	}
	abs, err := ospath.Abs(script)
	if err != nil {
		abs = script
	}
	absPolicies := make([]string, len(policies))
	for i, p := range policies {
		if absPolicies[i], err = ospath.Abs(p); err != nil {
			absPolicies[i] = p
		}
	}
	c, gaps := s.settings.Confinement(abs, absPolicies...)
	mode := "enforce"
	var out harden.Outcome
	var confineErr error
	if p.Report {
		// Nothing refused, by the kernel either: the run shows what a
		// policy would refuse.
		mode = "report"
		out.ABI = harden.ABI()
	} else {
		if p.Require && len(gaps) > 0 {
			out.ABI = harden.ABI()
			confineErr = fmt.Errorf("the kernel cannot enforce every declared permission (kernel=\"require\"): %s", gaps[0])
		} else {
			// The local time zone is read once now: after the restriction
			// /etc/localtime may be out of reach.
			time.Now().Zone()
			out, confineErr = harden.Confine(c, p.Require)
		}
	}
	out.NotEnforced = append(gaps, out.NotEnforced...)
	if err := s.d.RaiseGo(audit.Confine, confineArgs(p, mode, out)...); err != nil {
		return fatal(stderr, s.d, err)
	}
	if confineErr != nil {
		fmt.Fprintf(stderr, "sstar: refused: %v; nothing ran\n", confineErr)
		return exitRefused
	}
	return exitOK
}

// isolate is proc.run's BeforeStart: harden.Isolate, its "no Landlock"
// answer being no error (the kernel has nothing to isolate with).
func isolate() error {
	_, err := harden.Isolate()
	return err
}

// recordThenCheck is the hook boot adds for the record fan-out: the
// fan-out, then the check of declared permissions. One hook, so that
// adding it raises sys.addaudithook once, before any sink can record it
// (run_start stays the sinks' first record), and before any policy runs,
// so that a policy that vetoes sys.addaudithook (the CI runner example
// does) cannot keep the check out.
func (s *session) recordThenCheck(ev audit.Event) error {
	if err := s.fan.Hook(ev); err != nil {
		return err
	}
	return s.perm.hook(ev)
}

// A permissionGate is the check of declared permissions, in place from
// boot (recordThenCheck); set arms it once the policies ran. A run without sinks or a system
// policy has no hooks at boot (raising stays a no-op): there set adds the
// hook, and a veto of that is the run's error.
type permissionGate struct {
	added bool
	check atomic.Pointer[audit.Hook]
}

func (g *permissionGate) hook(ev audit.Event) error {
	if h := g.check.Load(); h != nil {
		return (*h)(ev)
	}
	return nil
}

func (g *permissionGate) set(d *audit.Dispatcher, h audit.Hook) error {
	g.check.Store(&h)
	if g.added {
		return nil
	}
	g.added = true
	return d.AddHook(g.hook)
}

func confineArgs(p *policy.Permissions, mode string, out harden.Outcome) []starlark.Value {
	kernel := "best-effort"
	if p.Require {
		kernel = "require"
	}
	rules := make([]starlark.Value, len(out.Rules))
	for i, r := range out.Rules {
		rules[i] = starlark.String(r)
	}
	gaps := make([]starlark.Value, len(out.NotEnforced))
	for i, g := range out.NotEnforced {
		gaps[i] = starlark.String(g)
	}
	enforced := starlark.NewDict(5)
	for _, c := range p.Categories() {
		where := "sstar"
		switch {
		case mode == "report":
			where = "reported by sstar, not enforced"
		case c.Name == "env":
		case c.Name == "connect" && out.ABI >= 4:
			where = "kernel"
		case c.Name == "connect":
			where = "not enforced"
		case out.ABI > 0:
			where = "sstar and kernel"
		}
		enforced.SetKey(starlark.String(c.Name), starlark.String(where))
	}
	return []starlark.Value{starlark.MakeInt(out.ABI), starlark.String(mode), starlark.String(kernel),
		starlark.NewList(rules), enforced, starlark.NewList(gaps)}
}
