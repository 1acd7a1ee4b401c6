package policy_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/policy"
)

func TestAllowGrammar(t *testing.T) {
	s := policy.Defaults()
	err := run(t, `
policy.allow(read = ["/srv/in", "/etc/app.conf", "/srv/in/"], write = ["/srv/out"])
policy.allow(read = ["/usr/share"], exec = ["/usr/bin/git"], env = ["PATH", "HOME"], connect = [443, "example.org:80", "*:22"])
policy.allow(kernel = "require")
`, true, &s)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Permissions
	check := func(name string, g *policy.Grant, want ...string) {
		t.Helper()
		if g == nil || !reflect.DeepEqual(g.Entries, want) {
			t.Errorf("%s = %+v, want %q", name, g, want)
		}
	}
	check("read", p.Read, "/etc/app.conf", "/srv/in", "/usr/share")
	check("write", p.Write, "/srv/out")
	check("exec", p.Exec, "/usr/bin/git")
	check("env", p.Env, "HOME", "PATH")
	check("connect", p.Connect, "22", "443", "example.org:80")
	if !p.Require || p.Report {
		t.Errorf("require = %v, report = %v", p.Require, p.Report)
	}
}

func TestAllowRejectsBadValues(t *testing.T) {
	for src, want := range map[string]string{
		`policy.allow(read = ["etc"])`:          `read= "etc": must be an absolute path`,
		`policy.allow(write = ["/srv/../etc"])`: `has a "." or ".." element`,
		`policy.allow(exec = [1])`:              `exec= must be a list of strings, got int`,
		`policy.allow(env = ["A=B"])`:           `a variable name is not empty and has no '='`,
		`policy.allow(connect = [0])`:           `connect= ports are 1 to 65535, got 0`,
		`policy.allow(connect = ["host"])`:      `want a TCP port (443) or "host:port"`,
		`policy.allow(mode = "learn")`:          `mode must be "enforce" or "report", got "learn"`,
		`policy.allow(kernel = "maybe")`:        `kernel must be "require" or "best-effort"`,
		`policy.allow(read = "/etc")`:           `got string, want list`,
	} {
		s := policy.Defaults()
		err := run(t, src, true, &s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
	}
}

// A --policy file narrows: its grants must lie within the system
// policy's, it may declare what the system policy left open, and it may
// not set mode= or weaken kernel="require".
func TestAllowAdditiveNarrows(t *testing.T) {
	s := policy.Defaults()
	if err := run(t, `policy.allow(read = ["/srv"], env = ["PATH"], connect = [443], kernel = "require")`, true, &s); err != nil {
		t.Fatal(err)
	}
	sys := s.Permissions.Read.Policy
	for src, want := range map[string]string{
		`policy.allow(read = ["/etc"])`:        `policy.allow: read= /etc is not within read= of ` + sys + `; a --policy file may only narrow`,
		`policy.allow(read = ["/srv2"])`:       `read= /srv2 is not within read= of`,
		`policy.allow(env = ["HOME"])`:         `env= HOME is not within env= of`,
		`policy.allow(connect = ["evil:22"])`:  `connect= evil:22 is not within connect= of`,
		`policy.allow(mode = "report")`:        `only the system policy`,
		`policy.allow(kernel = "best-effort")`: `would weaken kernel="require"`,
	} {
		next := s
		err := run(t, src, false, &next)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
		if !reflect.DeepEqual(next.Permissions, s.Permissions) {
			t.Errorf("%s: a refused policy changed the permissions", src)
		}
	}
	next := s
	if err := run(t, `policy.allow(read = ["/srv/a", "/srv/b/c"], write = ["/srv/out"], connect = ["example.org:443"])`, false, &next); err != nil {
		t.Fatal(err)
	}
	p := next.Permissions
	if !reflect.DeepEqual(p.Read.Entries, []string{"/srv/a", "/srv/b/c"}) || p.Read.Policy == sys ||
		p.Write == nil || p.Env.Policy != sys || !p.Require {
		t.Errorf("narrowed permissions = %+v", p)
	}
}

// A hook a policy installs cannot change grants once the policy ran.
func TestAllowFixedAfterRun(t *testing.T) {
	s := policy.Defaults()
	d := new(audit.Dispatcher)
	h := interp.New(interp.Options{Audit: d, Predeclared: builtins.Modules()})
	p := write(t, t.TempDir(), "policy.star", `
policy.allow(write = ["/srv/out"])
def widen(event, args):
    if event == "later":
        policy.allow(write = ["/"])
sys.addaudithook(widen)
`)
	if err := policy.RunAs(context.Background(), h, p, true, &s); err != nil {
		t.Fatal(err)
	}
	err := d.RaiseTuple(nil, "later", nil)
	if err == nil || !strings.Contains(err.Error(), "settings can only be changed while the policy file runs") {
		t.Fatalf("err = %v", err)
	}
	if !reflect.DeepEqual(s.Permissions.Write.Entries, []string{"/srv/out"}) {
		t.Fatalf("write = %v", s.Permissions.Write.Entries)
	}
}

// The hook refuses what the grants lack, naming the grant and the file,
// after sstar.permission(enforced=True); in report mode it records
// sstar.permission(enforced=False) and lets the action happen.
func TestAllowHook(t *testing.T) {
	for _, report := range []bool{false, true} {
		s := policy.Defaults()
		src := `policy.allow(read = ["/srv/in"], write = ["/srv/out"], exec = ["/usr/bin"], env = ["PATH"])`
		if report {
			src = `policy.allow(read = ["/srv/in"], write = ["/srv/out"], exec = ["/usr/bin"], env = ["PATH"], mode = "report")`
		}
		if err := run(t, src, true, &s); err != nil {
			t.Fatal(err)
		}
		d := new(audit.Dispatcher)
		var seen []string
		d.AddHook(func(ev audit.Event) error {
			if ev.Kind == audit.Permission {
				seen = append(seen, ev.Args().String())
			}
			return nil
		})
		d.AddHook(s.Permissions.Hook(d))
		env := starlark.NewDict(2)
		env.SetKey(starlark.String("PATH"), starlark.String("/usr/bin"))
		env.SetKey(starlark.String("SECRET"), starlark.String("hunter2"))
		pol := s.Permissions.Read.Policy
		for _, c := range []struct {
			k    audit.Kind
			args []starlark.Value
			want string // "" allowed
		}{
			{audit.Open, []starlark.Value{starlark.String("/srv/in/a"), starlark.String("r"), starlark.MakeInt(0)}, ""},
			{audit.Open, []starlark.Value{starlark.String("/srv/inside"), starlark.String("r"), starlark.MakeInt(0)}, "/srv/inside: not in read= of " + pol},
			{audit.Open, []starlark.Value{starlark.String("/srv/in/a"), starlark.String("w"), starlark.MakeInt(0)}, "/srv/in/a: not in write= of " + pol},
			{audit.Open, []starlark.Value{starlark.String("/srv/out/x"), starlark.String("a"), starlark.MakeInt(0)}, ""},
			{audit.Listdir, []starlark.Value{starlark.String("/srv")}, "/srv: not in read= of " + pol},
			{audit.Glob, []starlark.Value{starlark.String("/srv/in/*.txt"), starlark.False}, ""},
			{audit.Glob, []starlark.Value{starlark.String("/srv/*/x"), starlark.False}, "/srv: not in read= of " + pol},
			{audit.Rename, []starlark.Value{starlark.String("/srv/out/a"), starlark.String("/etc/a"), starlark.MakeInt(-1), starlark.MakeInt(-1)}, "/etc/a: not in write= of " + pol},
			{audit.Mkdir, []starlark.Value{starlark.String("/srv/out/d"), starlark.MakeInt(0o755), starlark.MakeInt(-1)}, ""},
			{audit.Popen, []starlark.Value{starlark.String("/usr/sbin/x"), starlark.NewList(nil), starlark.String("/"), starlark.NewDict(0)}, "/usr/sbin/x: not in exec= of " + pol},
			{audit.Popen, []starlark.Value{starlark.String("/usr/bin/env"), starlark.NewList(nil), starlark.String("/"), env}, "SECRET: not in env= of " + pol},
			{audit.Getenv, []starlark.Value{starlark.String("PATH")}, ""},
			{audit.Getenv, []starlark.Value{starlark.String("HOME")}, "HOME: not in env= of " + pol},
			{audit.Stat, []starlark.Value{starlark.String("/etc/shadow")}, ""},
		} {
			seen = nil
			err := d.Raise(nil, c.k, c.args...)
			if report || c.want == "" {
				if err != nil {
					t.Errorf("report=%v %s%v: %v", report, c.k, c.args, err)
				}
			} else {
				var denied *audit.DeniedError
				if !errors.As(err, &denied) || err.Error() != c.want {
					t.Errorf("%s%v: err = %v, want %q", c.k, c.args, err, c.want)
				}
			}
			if c.want != "" && (len(seen) != 1 || !strings.HasSuffix(seen[0], map[bool]string{false: "True)", true: "False)"}[report])) {
				t.Errorf("report=%v %s%v: sstar.permission = %v", report, c.k, c.args, seen)
			}
			if strings.Contains(strings.Join(seen, ""), "hunter2") {
				t.Errorf("an environment value was recorded: %v", seen)
			}
		}
	}
}

// The kernel ruleset: the declared grants, then what it implies (the
// script's directory, the loader, /dev/null), and the host of a
// host:port grant as a gap.
func TestAllowConfinement(t *testing.T) {
	s := policy.Defaults()
	if err := run(t, `policy.allow(read = ["/srv/in"], exec = ["/usr/bin/sh"], connect = [443, "db.example:5432"])`, true, &s); err != nil {
		t.Fatal(err)
	}
	c, gaps := s.Confinement("/srv/code/job.star")
	var got []string
	for _, r := range c.Paths {
		got = append(got, r.Access.String()+" "+r.Path+" "+r.Why)
	}
	joined := strings.Join(got, "\n")
	for _, want := range []string{"read /srv/in ", "exec /usr/bin/sh ", "read+exec /srv/code code", "read+write /dev/null /dev/null"} {
		if !strings.Contains(joined, want) {
			t.Errorf("rules lack %q:\n%s", want, joined)
		}
	}
	if !strings.Contains(joined, "loader") {
		t.Errorf("no loader rule:\n%s", joined)
	}
	if !c.Connect || !reflect.DeepEqual(c.Ports, []uint16{443, 5432}) {
		t.Errorf("connect %v ports %v", c.Connect, c.Ports)
	}
	if len(gaps) != 1 || !strings.Contains(gaps[0], "db.example:5432: the kernel restricts TCP ports, not hosts") {
		t.Errorf("gaps = %q", gaps)
	}
}
