package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/sstar-project/sstar/internal/netsinks"
	"github.com/sstar-project/sstar/policy"
)

func TestMain(m *testing.M) {
	testscript.Main(m, withAttackerPrograms(map[string]func(){
		"sstar": func() {
			cleanRuntimeEnvironment(os.Stderr) // as main does
			// The system policy path is fixed at build time; the test
			// binary points it into the story's work directory, so no
			// story depends on the machine's /etc.
			policy.SystemPath = os.Getenv("TEST_SYSTEM_POLICY")
			policy.Required = os.Getenv("TEST_POLICY_REQUIRED") // as -ldflags -X would
			// The sink process is this test binary too, by another name.
			if p, err := exec.LookPath("sstar-sinks"); err == nil {
				sinksPath = p
			}
			var stdout io.Writer = os.Stdout
			if stdoutClosed() { // as main does
				stdout = closedWriter{}
			}
			os.Exit(sstar(os.Args[1:], stdout, os.Stderr))
		},
		"sstar-sinks":      netsinks.Main,
		"undo-env-child":   undoEnvChild,
		"sstar-alloc":      allocChild,
		"sstar-securebits": sstarSecurebits,
		"sstar-badself": func() {
			selfExe = "/nonexistent/sstar" // as if /proc were not mounted
			cleanRuntimeEnvironment(os.Stderr)
			os.Exit(0)
		},
	}))
}

// TestScript runs the stories in testdata/script: each file is one thing a
// user does with sstar and what they see. The commands and conditions
// stories have beyond testscript's own are in commands_test.go.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds:                storyCommands,
		Condition: func(cond string) (bool, error) {
			if c, ok := storyConditions[cond]; ok {
				return c(), nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Setup: func(env *testscript.Env) error {
			// Scripts see an environment of their own; sstar must not care.
			env.Setenv("SSTAR_SHOULD_BE_IGNORED", "1")
			env.Setenv("TEST_SYSTEM_POLICY", filepath.Join(env.WorkDir, "etc/sstar/policy.star"))
			// Files stories share, such as ticks.star.
			testdata, err := filepath.Abs("testdata")
			if err != nil {
				return err
			}
			env.Setenv("TESTDATA", testdata)
			env.Values[storyKey{}] = &story{env: append([]string(nil), env.Vars...)}
			// The example policies, so stories test the files users read.
			return copyDir("../../examples/policies", filepath.Join(env.WorkDir, "examples/policies"))
		},
	})
}

func copyDir(from, to string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
