package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
)

// runtimeVars are the environment variables the Go runtime acts on before
// main runs (GORACE only in race-detector builds).
var runtimeVars = []string{"GODEBUG", "GOGC", "GOMEMLIMIT", "GOMAXPROCS", "GOTRACEBACK", "GORACE"}

// selfExe is the program sstar runs again; a variable for tests.
var selfExe = "/proc/self/exe"

// cleanRuntimeEnvironment keeps the environment from having a say in what
// sstar does through the Go runtime. By the time main runs, the runtime
// has acted on runtimeVars, and only some of their settings can be put
// back from inside the process: unsetting GODEBUG makes the runtime reread
// only the settings it can change at run time (and crypto/tls and the
// others that ask internal/godebug), not gctrace, invalidptr,
// madvdontneed and the rest it reads once; GOTRACEBACK cannot be lowered.
// So if any of them is set, sstar runs itself again, with the same
// arguments and the environment without them, before it does anything
// else. With none set, it returns at once. If sstar cannot run itself
// again, it says why and exits with status 2. Variables set to the empty
// string, which the runtime ignores, are dropped without running again.
func cleanRuntimeEnvironment(stderr io.Writer) {
	env := os.Environ()
	var clean []string
	var found []string
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if slices.Contains(runtimeVars, name) {
			if value != "" { // the runtime takes an empty one as unset
				found = append(found, name)
			}
			continue
		}
		clean = append(clean, kv)
	}
	if len(found) == 0 {
		return
	}
	err := syscall.Exec(selfExe, os.Args, clean)
	fmt.Fprintf(stderr, "sstar: sstar takes no settings from the environment, but %s set; running itself again without them failed (%s: %v): unset them\n",
		strings.Join(found, ", "), selfExe, err)
	os.Exit(exitUsage)
}
