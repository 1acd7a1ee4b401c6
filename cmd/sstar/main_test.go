package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"sstar": func() { os.Exit(sstar(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScript runs the stories in testdata/script: each file is one thing a
// user does with sstar and what they see.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// Scripts see an environment of their own; sstar must not care.
			env.Setenv("SSTAR_SHOULD_BE_IGNORED", "1")
			return nil
		},
	})
}
