package main

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
)

// undoRuntimeEnvironment puts back the settings the Go runtime took from
// the environment before main ran, so that no variable changes what sstar
// does:
//
//   - GODEBUG: unsetting it makes the runtime and every package that asks
//     internal/godebug (crypto/tls, crypto/x509, net, ...) reread their
//     settings, which fall back to the defaults built into the program.
//     Without this, GODEBUG=tlsrsakex=1 or x509sha1=1 would weaken the
//     syslog sink's TLS connection.
//   - GOGC, GOMEMLIMIT, GOMAXPROCS: set back to the runtime's defaults.
//
// GOTRACEBACK cannot be undone (debug.SetTraceback cannot go below the
// variable's level); it changes only what a crash prints. Each variable is
// looked up, and its setting redone only if it is set, so a clean
// environment costs nothing here.
func undoRuntimeEnvironment() {
	if _, ok := os.LookupEnv("GODEBUG"); ok {
		os.Unsetenv("GODEBUG")
	}
	if _, ok := os.LookupEnv("GOGC"); ok {
		debug.SetGCPercent(100)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		debug.SetMemoryLimit(math.MaxInt64)
	}
	if _, ok := os.LookupEnv("GOMAXPROCS"); ok {
		runtime.SetDefaultGOMAXPROCS()
	}
}
