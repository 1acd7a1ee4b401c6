package main

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/opencode"
	"github.com/sstar-project/sstar/policy"
)

// securebitsByName are the bits the command sstar-securebits can set.
var securebitsByName = map[string]uintptr{
	"none":               0,
	"exec_restrict_file": opencode.SECBIT_EXEC_RESTRICT_FILE,
	"deny_interactive":   opencode.SECBIT_EXEC_DENY_INTERACTIVE,
}

// sstarSecurebits is the command sstar-securebits BITS [ARGS...] of the
// stories: sstar ARGS, run in this process on a thread whose securebits
// are BITS (none, exec_restrict_file, deny_interactive), as a launcher
// that sets them would leave them. sstar reads the securebits on the
// thread that opens code, which is this one.
func sstarSecurebits() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: sstar-securebits BITS [ARGS...]")
		os.Exit(2)
	}
	bits, ok := securebitsByName[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "sstar-securebits: unknown bits %q\n", os.Args[1])
		os.Exit(2)
	}
	runtime.LockOSThread() // for good: the thread has the bits
	if err := unix.Prctl(unix.PR_SET_SECUREBITS, bits, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "sstar-securebits: prctl(PR_SET_SECUREBITS): %v\n", err)
		os.Exit(99)
	}
	policy.SystemPath = os.Getenv("TEST_SYSTEM_POLICY") // as the command sstar does
	policy.Required = os.Getenv("TEST_POLICY_REQUIRED")
	os.Exit(sstar(os.Args[2:], os.Stdout, os.Stderr))
}

// haveExecSecurebits reports whether this kernel has the SECBIT_EXEC_*
// securebits (Linux 6.14), by setting them on a thread that then ends.
func haveExecSecurebits() bool {
	ok := make(chan bool)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with its bits
		ok <- unix.Prctl(unix.PR_SET_SECUREBITS, opencode.SECBIT_EXEC_RESTRICT_FILE|opencode.SECBIT_EXEC_DENY_INTERACTIVE, 0, 0, 0) == nil
	}()
	return <-ok
}
