package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Required is set at build time
// (-ldflags "-X github.com/sstar-project/sstar/policy.Required=true") on
// hosts that must never run without their system policy: a missing one is
// then a refusal, not the built-in defaults. Removing the file is
// otherwise indistinguishable from never having installed one.
var Required = "false"

// ErrUnsafeDir is wrapped by CheckDirs' refusal of a directory above the
// system policy that others could change.
var ErrUnsafeDir = errors.New("a directory above the system policy is not safe")

// CheckDirs checks every existing directory from / down to the one
// holding path: each must be a directory owned by root and not writable
// by group or others (unless sticky, as /tmp is: there others cannot
// remove or rename root's entries). Otherwise whoever can write one could
// remove, rename or replace the system policy, as sshd and sudo also
// refuse. It stops at the first directory that does not exist.
func CheckDirs(path string) error {
	dir := filepath.Dir(filepath.Clean(path))
	var chain []string
	for d := dir; ; d = filepath.Dir(d) {
		chain = append(chain, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		d := chain[i]
		fi, err := os.Lstat(d)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrUnsafeDir, d, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		switch {
		case !fi.IsDir():
			return fmt.Errorf("%w: %s is not a directory (a symbolic link?); the system policy's path must be real directories", ErrUnsafeDir, d)
		case !ok || st.Uid != 0:
			return fmt.Errorf("%w: %s is not owned by root; chown root %s", ErrUnsafeDir, d, d)
		case fi.Mode()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0:
			return fmt.Errorf("%w: %s is writable by group or others (mode %04o), so they could remove or replace the policy; chmod go-w %s", ErrUnsafeDir, d, fi.Mode().Perm(), d)
		}
	}
	return nil
}
