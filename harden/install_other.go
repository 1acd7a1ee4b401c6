//go:build !amd64

package harden

import (
	"fmt"
	"runtime"
)

// install refuses: the filter's system call numbers are amd64's (and
// i386's, for 32-bit programs sstar starts), so on any other
// architecture it would deny the wrong calls. sstar then refuses to run
// scripts (fail closed).
func install() error {
	return fmt.Errorf("%w: the seccomp filter is written for amd64, not %s", ErrUnsupported, runtime.GOARCH)
}
