package policy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/opencode/opencodetest"
	"github.com/sstar-project/sstar/policy"
)

// systemAt points this build's system policy path at dir/etc/sstar for
// the test, as -ldflags -X does for a real build.
func systemAt(t *testing.T, dir string, required bool) string {
	t.Helper()
	old, oldReq := policy.SystemPath, policy.Required
	t.Cleanup(func() { policy.SystemPath, policy.Required = old, oldReq })
	policy.SystemPath = filepath.Join(dir, "etc/sstar/policy.star")
	policy.Required = "false"
	if required {
		policy.Required = "true"
	}
	return policy.SystemPath
}

// Without a system policy the built-in defaults apply; a build that
// requires one refuses, and so does a directory above it that others
// could change. Refusals wrap interp.ErrRefused (exit 126).
func TestFindSystem(t *testing.T) {
	dir := t.TempDir()
	systemAt(t, dir, false)
	sys, err := policy.FindSystem()
	if err != nil || sys.Exists() {
		t.Fatalf("no system policy: FindSystem = %v, %v", sys, err)
	}
	s, err := sys.Run(context.Background(), interp.New(interp.Options{}))
	if err != nil || s.Xattr != policy.Defaults().Xattr {
		t.Fatalf("no system policy: Run = %+v, %v; want the defaults", s, err)
	}

	systemAt(t, dir, true)
	if _, err := policy.FindSystem(); !errors.Is(err, interp.ErrRefused) {
		t.Fatalf("required and missing: FindSystem = %v, want a refusal", err)
	}

	systemAt(t, dir, false)
	if err := os.MkdirAll(filepath.Join(dir, "etc/sstar"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "etc"), 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.FindSystem(); !errors.Is(err, interp.ErrRefused) || !errors.Is(err, policy.ErrUnsafeDir) {
		t.Fatalf("group- and world-writable directory: FindSystem = %v, want a refusal naming it", err)
	}
}

// The system policy's settings hold for what comes after it: the code
// opener, and the additive policies, which may lower limits only.
func TestSystemThenAdditive(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the system policy must be owned by root")
	}
	dir := t.TempDir()
	path := systemAt(t, dir, false)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	opencodetest.WriteFile(t, path, "policy.trust(max_code_size = 4096)\npolicy.limits(steps = 100, max_steps = 1000)\n")
	sys, err := policy.FindSystem()
	if err != nil || !sys.Exists() {
		t.Fatalf("FindSystem = %v, %v", sys, err)
	}
	h := interp.New(interp.Options{})
	s, err := sys.Run(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	if s.Opener().MaxSize != 4096 || s.Opener() != s.Opener() {
		t.Errorf("the opener is not the policy's, made once: max size %d", s.Opener().MaxSize)
	}
	if o := s.OpenerFor(path); !o.RequireRootOwned || o.MaxSize == 4096 {
		t.Errorf("the system policy file is not checked with the built-in settings and the root-owner rule: %+v", o)
	}

	lower := filepath.Join(dir, "lower.star")
	opencodetest.WriteFile(t, lower, "policy.limits(steps = 50)\n")
	if err := s.Apply(context.Background(), h, lower); err != nil {
		t.Fatal(err)
	}
	raise := filepath.Join(dir, "raise.star")
	opencodetest.WriteFile(t, raise, "policy.limits(steps = 500)\n")
	var pe *policy.Error
	if err := s.Apply(context.Background(), h, raise); !errors.As(err, &pe) || pe.Path != raise {
		t.Fatalf("an additive policy raising a limit: Apply = %v, want a *policy.Error naming it", err)
	}
	if steps, _, _ := s.Limits(0, 0); steps != 50 {
		t.Errorf("steps %d after the additive policies, want 50", steps)
	}
}

// findSystemChildEnv, in a child of TestFindSystemInUserNamespace, asks
// it to report what FindSystem says there.
const findSystemChildEnv = "SSTAR_POLICY_TEST_FINDSYSTEM"

func TestMain(m *testing.M) {
	if path := os.Getenv(findSystemChildEnv); path != "" {
		policy.SystemPath = path
		_, err := policy.FindSystem()
		fmt.Printf("refused=%v userns=%v: %v\n", errors.Is(err, interp.ErrRefused), errors.Is(err, policy.ErrUserNamespace), err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// In a user namespace of its own a process could own a system policy of
// its own: FindSystem refuses there, whether or not a file is at the
// path, and finds the same path fine outside.
func TestFindSystemInUserNamespace(t *testing.T) {
	dir := t.TempDir()
	path := systemAt(t, dir, false)
	if _, err := policy.FindSystem(); err != nil {
		t.Fatalf("in the initial user namespace: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), findSystemChildEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Skipf("needs user namespaces: %v %s", err, out)
	}
	if !strings.HasPrefix(string(out), "refused=true userns=true: ") || !strings.Contains(string(out), "run sstar outside it") {
		t.Errorf("FindSystem in a new user namespace: %s; want a refusal (ErrUserNamespace) saying what to do", out)
	}
}
