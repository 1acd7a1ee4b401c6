package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/harden"
)

// Permissions are what policy.allow declared: for each category, the
// grants, or nil when the category was never declared (today's
// behaviour: sstar does not restrict it). A declared category is
// deny-by-default: only what it lists is allowed, in sstar (Hook) and,
// for files and TCP, by the kernel (see harden.Confine and docs/policy.md,
// "Permissions").
//
// How grants combine:
//   - within one policy file, the calls of policy.allow add up;
//   - the system policy sets the outer bound; a --policy file that
//     declares a category replaces the grants it inherits with its own,
//     each of which must lie within them (asking for more is an error
//     naming the grant), so files can only narrow;
//   - a --policy file may declare a category the system policy left
//     undeclared (that narrows "anything" to its list).
type Permissions struct {
	Read, Write, Exec *Grant // absolute paths; a directory grants its tree
	Env               *Grant // variable names a child may receive, os.getenv may read
	Connect           *Grant // TCP ports ("443") or "host:port"

	// Report is mode="report" (system policy only): nothing is refused,
	// in sstar or by the kernel; each action outside the grants is
	// recorded as sstar.permission with enforced=False.
	Report bool
	// Require is kernel="require": refuse to run (exit 126) unless the
	// kernel enforces every declared grant.
	Require bool
}

// A Grant is one declared category: its entries, sorted and without
// duplicates, and the policy file that declared them (named in refusals).
type Grant struct {
	Entries []string
	Policy  string
}

// Declared reports whether any category was declared.
func (p *Permissions) Declared() bool {
	return p.Read != nil || p.Write != nil || p.Exec != nil || p.Env != nil || p.Connect != nil
}

// Categories returns the declared categories, in a fixed order, with
// their grants.
func (p *Permissions) Categories() []Category {
	var cs []Category
	for _, c := range []Category{{"read", p.Read}, {"write", p.Write}, {"exec", p.Exec}, {"env", p.Env}, {"connect", p.Connect}} {
		if c.Grant != nil {
			cs = append(cs, c)
		}
	}
	return cs
}

// A Category is a declared category's name and grant.
type Category struct {
	Name string
	*Grant
}

// covers reports whether the absolute, clean path p is one of the
// grant's paths or lies under one of them.
func (g *Grant) covers(p string) bool {
	for _, e := range g.Entries {
		if underPath(p, e) {
			return true
		}
	}
	return false
}

// underPath reports whether p is dir or inside it (both clean, absolute).
func underPath(p, dir string) bool {
	if dir == "/" || p == dir {
		return true
	}
	return strings.HasPrefix(p, dir) && len(p) > len(dir) && p[len(dir)] == '/'
}

func (g *Grant) has(name string) bool {
	_, ok := slices.BinarySearch(g.Entries, name)
	return ok
}

// connectCovers reports whether the connect= entry e is granted by g: the
// same entry, or the same port granted for every host.
func (g *Grant) connectCovers(e string) bool {
	if g.has(e) {
		return true
	}
	_, port := splitConnect(e)
	return g.has(port)
}

// splitConnect returns the host ("" for any) and port of a connect= entry.
func splitConnect(e string) (host, port string) {
	if i := strings.LastIndexByte(e, ':'); i >= 0 {
		return e[:i], e[i+1:]
	}
	return "", e
}

// allowArgs are policy.allow's arguments, parsed.
type allowArgs struct {
	read, write, exec, env, connect *starlark.List
	mode, kernel                    string
}

func (st *state) allow(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := st.check(b, false); err != nil {
		return nil, err
	}
	var a allowArgs
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "read?", &a.read, "write?", &a.write, "exec?", &a.exec,
		"env?", &a.env, "connect?", &a.connect, "mode?", &a.mode, "kernel?", &a.kernel); err != nil {
		return nil, err
	}
	p := &st.next.Permissions
	switch a.mode {
	case "":
	case "enforce", "report":
		if !st.system {
			return nil, fmt.Errorf("%s: only the system policy (%s) may set mode=; %s is an additive policy", b.Name(), SystemPath, st.path)
		}
		p.Report = a.mode == "report"
	default:
		return nil, fmt.Errorf("%s: mode must be \"enforce\" or \"report\", got %q", b.Name(), a.mode)
	}
	switch a.kernel {
	case "":
	case "require":
		p.Require = true
	case "best-effort":
		if p.Require && !st.system {
			return nil, fmt.Errorf("%s: kernel=\"best-effort\" would weaken kernel=\"require\" of %s; an additive policy may only narrow", b.Name(), SystemPath)
		}
		p.Require = false
	default:
		return nil, fmt.Errorf("%s: kernel must be \"require\" or \"best-effort\", got %q", b.Name(), a.kernel)
	}
	for _, c := range []struct {
		name string
		list *starlark.List
		dst  **Grant
		in   *Grant
	}{
		{"read", a.read, &p.Read, st.bound.Read},
		{"write", a.write, &p.Write, st.bound.Write},
		{"exec", a.exec, &p.Exec, st.bound.Exec},
		{"env", a.env, &p.Env, st.bound.Env},
		{"connect", a.connect, &p.Connect, st.bound.Connect},
	} {
		if c.list == nil {
			continue
		}
		entries, err := parseEntries(c.name, c.list)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", b.Name(), err)
		}
		if c.in != nil {
			for _, e := range entries {
				if !grantCovers(c.name, c.in, e) {
					return nil, fmt.Errorf("%s: %s= %s is not within %s= of %s; a --policy file may only narrow the grants it inherits", b.Name(), c.name, e, c.name, c.in.Policy)
				}
			}
		}
		// The first call of this file replaces what it inherited; later
		// calls of the same file add to it.
		g := &Grant{Policy: st.path}
		if *c.dst != nil && (*c.dst).Policy == st.path {
			g.Entries = append(g.Entries, (*c.dst).Entries...)
		}
		g.Entries = append(g.Entries, entries...)
		slices.Sort(g.Entries)
		g.Entries = slices.Compact(g.Entries)
		*c.dst = g
	}
	return starlark.None, nil
}

func grantCovers(category string, g *Grant, e string) bool {
	switch category {
	case "read", "write", "exec":
		return g.covers(e)
	case "connect":
		return g.connectCovers(e)
	}
	return g.has(e)
}

// parseEntries checks one category's list.
//
// Paths must be absolute and contain no "." or ".." elements: a grant
// is read as written, never resolved against something else. Symbolic
// links in a grant are followed by the kernel when sstar builds its
// ruleset (the grant is the tree the link points to); sstar's own check
// compares the absolute path an event names, lexically, so a path must
// be inside a grant both as named and as the kernel finds it.
func parseEntries(category string, l *starlark.List) ([]string, error) {
	var out []string
	for i := 0; i < l.Len(); i++ {
		v := l.Index(i)
		if category == "connect" {
			if n, ok := v.(starlark.Int); ok {
				port, ok := n.Int64()
				if !ok || port < 1 || port > 65535 {
					return nil, fmt.Errorf("connect= ports are 1 to 65535, got %s", n)
				}
				out = append(out, strconv.FormatInt(port, 10))
				continue
			}
		}
		s, ok := starlark.AsString(v)
		if !ok {
			return nil, fmt.Errorf("%s= must be a list of strings, got %s", category, v.Type())
		}
		switch category {
		case "read", "write", "exec":
			if err := checkGrantPath(s); err != nil {
				return nil, fmt.Errorf("%s= %q: %v", category, s, err)
			}
			s = filepath.Clean(s)
		case "env":
			if s == "" || strings.ContainsAny(s, "=\x00") {
				return nil, fmt.Errorf("env= %q: a variable name is not empty and has no '=' or NUL", s)
			}
		case "connect":
			host, port := splitConnect(s)
			n, err := strconv.Atoi(port)
			if err != nil || n < 1 || n > 65535 || strings.ContainsAny(host, "/\x00 ") {
				return nil, fmt.Errorf("connect= %q: want a TCP port (443) or \"host:port\"", s)
			}
			if host == "" || host == "*" {
				s = strconv.Itoa(n)
			} else {
				s = host + ":" + strconv.Itoa(n)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func checkGrantPath(s string) error {
	if !filepath.IsAbs(s) {
		return errors.New("must be an absolute path")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("has a NUL byte")
	}
	for _, el := range strings.Split(s, "/") {
		if el == "." || el == ".." {
			return errors.New("has a \".\" or \"..\" element; write the path it means")
		}
	}
	return nil
}

// Hook returns the Go audit hook that enforces p in sstar: added right
// after the record fan-out, so that an event outside the grants is
// recorded first, then sstar.permission, then (unless in report mode) its
// refusal as sstar.abort. It returns nil if p declares nothing.
//
// Event to permission: open(path, "r"), os.listdir, glob.glob (the
// pattern's fixed leading directory) need read=; open(path, "w"/"a"),
// os.mkdir, os.remove, os.rename (both paths) need write=;
// subprocess.Popen needs exec= for its executable and env= for every
// name in the child's environment; os.getenv needs env=. fs.stat and
// fs.exists are not restricted, as the kernel does not restrict looking
// a path up.
func (p *Permissions) Hook(d *audit.Dispatcher) audit.Hook {
	if !p.Declared() {
		return nil
	}
	deny := func(perm, target string, g *Grant) error {
		if err := d.RaiseGo(audit.Permission, starlark.String(perm), starlark.String(target), starlark.String(g.Policy), starlark.Bool(!p.Report)); err != nil {
			return err
		}
		if p.Report {
			return nil
		}
		return &audit.DeniedError{Permission: perm, Target: target, Policy: g.Policy}
	}
	path := func(perm string, g *Grant, v starlark.Value) error {
		s, _ := starlark.AsString(v)
		if g == nil || g.covers(s) {
			return nil
		}
		return deny(perm, s, g)
	}
	return func(ev audit.Event) error {
		switch ev.Kind {
		case audit.Open:
			if mode, _ := starlark.AsString(ev.Arg(1)); mode == "r" {
				return path("read", p.Read, ev.Arg(0))
			}
			return path("write", p.Write, ev.Arg(0))
		case audit.Listdir:
			return path("read", p.Read, ev.Arg(0))
		case audit.Glob:
			s, _ := starlark.AsString(ev.Arg(0))
			return path("read", p.Read, starlark.String(globDir(s)))
		case audit.Mkdir, audit.Remove:
			return path("write", p.Write, ev.Arg(0))
		case audit.Rename:
			if err := path("write", p.Write, ev.Arg(0)); err != nil {
				return err
			}
			return path("write", p.Write, ev.Arg(1))
		case audit.Popen:
			if err := path("exec", p.Exec, ev.Arg(0)); err != nil {
				return err
			}
			if p.Env == nil {
				return nil
			}
			env, _ := ev.Arg(3).(*starlark.Dict)
			if env == nil {
				return nil
			}
			for _, k := range env.Keys() {
				name, _ := starlark.AsString(k)
				if !p.Env.has(name) {
					if err := deny("env", name, p.Env); err != nil {
						return err
					}
				}
			}
		case audit.Getenv:
			name, _ := starlark.AsString(ev.Arg(0))
			if p.Env != nil && !p.Env.has(name) {
				return deny("env", name, p.Env)
			}
		}
		return nil
	}
}

// globDir is the directory a glob pattern starts reading at: the
// pattern's leading elements without metacharacters.
func globDir(pattern string) string {
	i := strings.IndexAny(pattern, "*?[\\")
	if i < 0 {
		return filepath.Dir(pattern)
	}
	return filepath.Dir(pattern[:i+1])
}

// LoaderPaths are what a dynamically linked child needs to start: the
// ELF interpreter, the shared libraries and the loader's cache. Whenever
// read= or exec= is declared, the kernel ruleset grants them read and
// exec (marked "implied: loader" in sstar.confine), so that exec= can
// list programs rather than every library they link; sstar's own checks
// do not imply them.
var LoaderPaths = []string{"/lib", "/lib64", "/usr/lib", "/usr/lib64", "/etc/ld.so.cache"}

// Confinement returns the kernel ruleset of p for a run of the script at
// the absolute path script, and what the kernel cannot enforce of p
// whatever its ABI. Besides the declared grants it implies: the script's
// directory, read and exec, because sstar reads its code (the script,
// the modules it loads, catalogs) after it restricted itself and asks
// the kernel whether it would execute each (AT_EXECVE_CHECK); those of
// the LoaderPaths that exist (IfExists: Confine looks each up once);
// /dev/null, read and write, which a child without standard input gets;
// and the catalog state directory, read and write, if there is one.
// Modules loaded from outside the script's directory need a read= grant.
// policies are the absolute paths of --policy files still to run under
// the ruleset: their directories are implied as the script's is.
func (s *Settings) Confinement(script string, policies ...string) (harden.Confinement, []string) {
	p := &s.Permissions
	var c harden.Confinement
	var gaps []string
	for _, g := range []struct {
		grant  *Grant
		access harden.Access
	}{{p.Read, harden.Read}, {p.Write, harden.Write}, {p.Exec, harden.Exec}} {
		if g.grant == nil {
			continue
		}
		c.Handled |= g.access
		for _, e := range g.grant.Entries {
			c.Paths = append(c.Paths, harden.PathRule{Path: e, Access: g.access})
		}
	}
	if c.Handled != 0 {
		c.Paths = append(c.Paths, harden.PathRule{Path: filepath.Dir(script), Access: harden.Read | harden.Exec, Why: "code"})
		for _, p := range policies {
			c.Paths = append(c.Paths, harden.PathRule{Path: filepath.Dir(p), Access: harden.Read | harden.Exec, Why: "policy code"})
		}
		for _, l := range LoaderPaths {
			c.Paths = append(c.Paths, harden.PathRule{Path: l, Access: harden.Read | harden.Exec, Why: "loader", IfExists: true})
		}
		c.Paths = append(c.Paths, harden.PathRule{Path: os.DevNull, Access: harden.Read | harden.Write, Why: "/dev/null"})
		if s.StateDir != "" {
			c.Paths = append(c.Paths, harden.PathRule{Path: s.StateDir, Access: harden.Read | harden.Write, Why: "catalog state"})
		}
	}
	if p.Connect != nil {
		c.Connect = true
		for _, e := range p.Connect.Entries {
			host, port := splitConnect(e)
			n, _ := strconv.Atoi(port)
			c.Ports = append(c.Ports, uint16(n))
			if host != "" {
				gaps = append(gaps, fmt.Sprintf("connect= %s: the kernel restricts TCP ports, not hosts: enforced as port %s to any host", e, port))
			}
		}
	}
	return c, gaps
}
