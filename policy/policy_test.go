package policy_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/audittest"
	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/opencode"
	"github.com/sstar-project/sstar/opencode/opencodetest"
	"github.com/sstar-project/sstar/policy"
)

func write(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	opencodetest.WriteFile(t, p, src)
	return p
}

func run(t *testing.T, src string, system bool, s *policy.Settings) error {
	t.Helper()
	dir := t.TempDir()
	p := write(t, dir, "policy.star", src)
	h := interp.New(interp.Options{Predeclared: builtins.Modules()})
	return policy.RunAs(context.Background(), h, p, system, s)
}

func TestSystemPolicySettings(t *testing.T) {
	s := policy.Defaults()
	err := run(t, `
policy.trust(xattr = "trusted.sstar.sha256", max_code_size = 65536, exec_check = "enforce")
policy.limits(steps = 1000, max_steps = 5000, timeout = "30s", max_timeout = 120)
policy.sink(audit_log = "/var/log/sstar.jsonl")
policy.sink(syslog = "tls://127.0.0.1:6514", syslog_ca = "/etc/ca.pem")
`, true, &s)
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Settings{
		Xattr: "trusted.sstar.sha256", MaxCodeSize: 65536, EnforceExecCheck: true,
		Steps: 1000, MaxSteps: 5000, Timeout: 30 * time.Second, MaxTimeout: 2 * time.Minute,
		Sinks: []policy.Sink{{AuditLog: "/var/log/sstar.jsonl"}, {Syslog: "tls://127.0.0.1:6514", SyslogCA: "/etc/ca.pem"}},
	}
	if got := s; got.Xattr != want.Xattr || got.MaxCodeSize != want.MaxCodeSize || !got.EnforceExecCheck ||
		got.Steps != want.Steps || got.MaxSteps != want.MaxSteps || got.Timeout != want.Timeout ||
		got.MaxTimeout != want.MaxTimeout || len(got.Sinks) != 2 || got.Sinks[1] != want.Sinks[1] {
		t.Errorf("settings = %+v\nwant %+v", got, want)
	}
	o := s.Opener()
	if o.XattrName != "trusted.sstar.sha256" || o.MaxSize != 65536 || !o.EnforceExecCheck {
		t.Errorf("opener = %+v", o)
	}
}

func TestSettingsRejectBadValues(t *testing.T) {
	for src, want := range map[string]string{
		`policy.trust(xattr = "security.evil")`:                                `xattr "security.evil" must be user.NAME or trusted.NAME`,
		`policy.trust(xattr = "user.")`:                                        `must be user.NAME or trusted.NAME`,
		`policy.trust(max_code_size = 0)`:                                      `max_code_size must be a number of bytes from 1 to`,
		`policy.trust(max_code_size = "big")`:                                  `max_code_size must be a number of bytes`,
		`policy.trust(exec_check = "maybe")`:                                   `exec_check must be "ask" or "enforce", got "maybe"`,
		`policy.limits(steps = -1)`:                                            `steps must be a positive number of steps, got -1`,
		`policy.limits(timeout = "soon")`:                                      `timeout must be a positive duration such as "30s" or a number of seconds, got "soon"`,
		`policy.limits(steps = 10, max_steps = 5)`:                             `steps (10) must be set and at most max_steps (5)`,
		`policy.limits(max_timeout = "1m")`:                                    `timeout (0s) must be set and at most max_timeout (1m0s)`,
		`policy.sink()`:                                                        `give exactly one of audit_log=, syslog=, relp=, journald=True or kernel_audit=True`,
		`policy.sink(audit_log = "a", syslog = "b")`:                           `give exactly one of`,
		`policy.sink(relp = "tcp://x:1", journald = True)`:                     `give exactly one of`,
		`policy.sink(journald = False)`:                                        `give exactly one of`,
		`policy.sink(kernel_audit = 1)`:                                        `for parameter "kernel_audit": got int, want bool`,
		`policy.sink(syslog = "tcp://x:1", syslog_ca = "ca")`:                  `syslog_ca= goes with a tls:// syslog or relp address`,
		`policy.sink(relp = "tcp://x:1", syslog_ca = "ca")`:                    `syslog_ca= goes with a tls:// syslog or relp address`,
		`policy.sink(relp = "tcp://x:1", syslog_cert = "c", syslog_key = "k")`: `syslog_cert= and syslog_key= go with a tls:// syslog or relp address`,
		`policy.sink(relp = "tls://x:1", syslog_cert = "c")`:                   `give syslog_cert= and syslog_key= together`,
		`policy.sink(syslog = "tls://x:1", syslog_key = "k")`:                  `give syslog_cert= and syslog_key= together`,
		`policy.sink(audit_log = "a\0b")`:                                      `NUL byte`,
		`policy.nosuch()`:                                                      `module has no .nosuch field or method`,
	} {
		s := policy.Defaults()
		err := run(t, src, true, &s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
		var pe *policy.Error
		if !errors.As(err, &pe) {
			t.Errorf("%s: not a *policy.Error: %T", src, err)
		}
		if s.Xattr != policy.Defaults().Xattr || s.Steps != 0 {
			t.Errorf("%s: a failed policy changed the settings: %+v", src, s)
		}
	}
}

func TestAdditivePolicyOnlyLowers(t *testing.T) {
	s := policy.Defaults()
	if err := run(t, `policy.limits(steps = 1000, max_steps = 5000, timeout = 60)`, true, &s); err != nil {
		t.Fatal(err)
	}
	if err := run(t, `policy.limits(steps = 500, timeout = "10s")`, false, &s); err != nil {
		t.Fatal(err)
	}
	if s.Steps != 500 || s.MaxSteps != 500 || s.Timeout != 10*time.Second || s.MaxTimeout != 10*time.Second {
		t.Errorf("after lowering: %+v", s)
	}
	for src, want := range map[string]string{
		`policy.limits(steps = 501)`:        `steps=501 would raise the step limit above 500`,
		`policy.limits(timeout = "11s")`:    `timeout=11s would raise the time limit above 10s`,
		`policy.limits(max_steps = 1)`:      `only the system policy`,
		`policy.trust(max_code_size = 1)`:   `policy.trust: only the system policy`,
		`policy.sink(audit_log = "/tmp/x")`: `policy.sink: only the system policy`,
	} {
		before := s
		err := run(t, src, false, &s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
		if s.Steps != before.Steps || s.MaxCodeSize != before.MaxCodeSize || len(s.Sinks) != 0 {
			t.Errorf("%s: changed settings", src)
		}
	}
	// With no system limit, an additive policy may set one.
	s = policy.Defaults()
	if err := run(t, `policy.limits(steps = 7)`, false, &s); err != nil || s.Steps != 7 {
		t.Fatalf("err = %v, steps = %d", err, s.Steps)
	}
}

// A hook defined by a policy cannot change settings after the policy ran.
func TestSettingsFixedAfterRun(t *testing.T) {
	s := policy.Defaults()
	d := new(audit.Dispatcher)
	h := interp.New(interp.Options{Audit: d, Predeclared: builtins.Modules()})
	dir := t.TempDir()
	p := write(t, dir, "policy.star", `
def sneaky(event, args):
    if event == "later":
        policy.trust(xattr = "user.attacker")
sys.addaudithook(sneaky)
`)
	if err := policy.RunAs(context.Background(), h, p, true, &s); err != nil {
		t.Fatal(err)
	}
	err := d.RaiseTuple(nil, "later", nil)
	if err == nil || !strings.Contains(err.Error(), "settings can only be changed while the policy file runs") {
		t.Fatalf("err = %v", err)
	}
	if s.Xattr != opencode.DefaultXattrName {
		t.Fatalf("xattr changed to %q", s.Xattr)
	}
}

func TestLimits(t *testing.T) {
	s := policy.Settings{Steps: 100, MaxSteps: 1000, Timeout: time.Minute, MaxTimeout: time.Hour}
	for _, c := range []struct {
		steps   uint64
		timeout time.Duration
		wantS   uint64
		wantT   time.Duration
		err     string
	}{
		{0, 0, 100, time.Minute, ""},
		{50, time.Second, 50, time.Second, ""},
		{1000, time.Hour, 1000, time.Hour, ""},
		{1001, 0, 0, 0, "--max-steps 1001 is above the maximum of 1000"},
		{0, 2 * time.Hour, 0, 0, "--timeout 2h0m0s is above the maximum of 1h0m0s"},
	} {
		gs, gt, err := s.Limits(c.steps, c.timeout)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Limits(%d, %s): err = %v, want %q", c.steps, c.timeout, err, c.err)
			}
			continue
		}
		if err != nil || gs != c.wantS || gt != c.wantT {
			t.Errorf("Limits(%d, %s) = %d, %s, %v", c.steps, c.timeout, gs, gt, err)
		}
	}
	// No maximum: anything goes.
	var none policy.Settings
	if gs, _, err := none.Limits(1<<40, 0); err != nil || gs != 1<<40 {
		t.Errorf("no maximum: %d, %v", gs, err)
	}
}

func TestPolicyEventRaised(t *testing.T) {
	rec := new(audittest.Recorder)
	d := new(audit.Dispatcher)
	d.AddHook(rec.Hook)
	h := interp.New(interp.Options{Audit: d})
	s := policy.Defaults()
	dir := t.TempDir()
	p := write(t, dir, "p.star", "x = 1\n")
	if err := s.Apply(context.Background(), h, p); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(rec.Names(), " ")
	if !strings.HasPrefix(got, "sstar.open_code") || !strings.HasSuffix(got, "exec sstar.policy") {
		t.Errorf("events: %s", got)
	}
	// A policy given by a relative path, with "..", is named absolute
	// and lexically clean, as every path in an event.
	t.Chdir(dir)
	rec.Take()
	if err := s.Apply(context.Background(), h, "../"+filepath.Base(dir)+"/./p.star"); err != nil {
		t.Fatal(err)
	}
	if ev, ok := rec.Find("sstar.policy"); !ok || audittest.StringArg(ev, 0) != p {
		t.Errorf("sstar.policy event %v (found %v), want its path %s", ev, ok, p)
	}
}

// A Go hook's panic on sstar.policy (raised outside the policy's run, and
// not recovered by the dispatcher) is the policy's error: the policy does
// not take effect, and the panic is reported as sstar.panic.
func TestPanicOnPolicyEventIsAnError(t *testing.T) {
	rec := new(audittest.Recorder)
	d := new(audit.Dispatcher)
	d.AddHook(rec.Hook)
	d.AddHook(func(ev audit.Event) error {
		if ev.Name == audit.Policy.Name() {
			panic("hook bug")
		}
		return nil
	})
	h := interp.New(interp.Options{Audit: d})
	s := policy.Defaults()
	p := write(t, t.TempDir(), "p.star", "policy.limits(max_steps = 1000, steps = 500)\n")
	err := policy.RunAs(context.Background(), h, p, true, &s)
	if err == nil || !strings.Contains(err.Error(), "hook bug") {
		t.Fatalf("err = %v", err)
	}
	if s.MaxSteps == 1000 {
		t.Error("the policy took effect")
	}
	if names := rec.Names(); names[len(names)-1] != audit.Panic.Name() {
		t.Errorf("events: %v", names)
	}
}

func TestDeliverySinks(t *testing.T) {
	s := policy.Defaults()
	err := run(t, `
policy.sink(relp = "tls://logs.example.net:2514", syslog_ca = "/etc/ca.pem", syslog_cert = "/etc/c.pem", syslog_key = "/etc/k.pem")
policy.sink(journald = True)
policy.sink(kernel_audit = True)
`, true, &s)
	if err != nil {
		t.Fatal(err)
	}
	want := []policy.Sink{{Relp: "tls://logs.example.net:2514", SyslogCA: "/etc/ca.pem", SyslogCert: "/etc/c.pem", SyslogKey: "/etc/k.pem"}, {Journald: true}, {KernelAudit: true}}
	if len(s.Sinks) != len(want) {
		t.Fatalf("sinks = %+v", s.Sinks)
	}
	for i := range want {
		if s.Sinks[i] != want[i] {
			t.Errorf("sink %d = %+v, want %+v", i, s.Sinks[i], want[i])
		}
	}
	if got := s.Sinks[0].String() + ", " + s.Sinks[1].String() + ", " + s.Sinks[2].String(); got != "RELP tls://logs.example.net:2514, journald, kernel audit" {
		t.Errorf("String = %s", got)
	}
}

// A policy's bad value is named by its type, not its repr: the repr of a
// list nested 100,000 deep recursed once per level inside go.starlark.net,
// took 11 s (its cycle check is quadratic in the depth) and made an error
// of 200,000 bytes.
func TestBadValueNotRendered(t *testing.T) {
	deep := "v = []\nfor i in range(100000):\n    v = [v]\n"
	for _, c := range []struct{ src, want string }{
		{deep + "policy.limits(steps = v)", "steps must be a positive number of steps, got list"},
		{deep + "policy.limits(timeout = v)", "timeout must be a positive duration such as \"30s\" or a number of seconds, got list"},
		{deep + "policy.trust(threshold = v)", "threshold must be a number of keys from 1, got list"},
		{"x = 1 << 500\npolicy.limits(steps = -x * x)", "got an int of 1001 bits"},
		{"policy.limits(timeout = 'x' * 100000)", "got a string of 100000 bytes"},
	} {
		s := policy.Defaults()
		err := run(t, c.src, true, &s)
		if err == nil || !strings.Contains(err.Error(), c.want) || len(err.Error()) > 1000 {
			t.Errorf("%.40q: err = %.300v (%d bytes), want it to contain %q", c.src, err, len(fmt.Sprint(err)), c.want)
		}
	}
}
