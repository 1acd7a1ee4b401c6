package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/opencode"
)

// trustArgs are policy.trust's arguments about what vouches for code:
// signed catalogs (docs/trust.md) and audit-only mode.
type trustArgs struct {
	keys      *starlark.List
	threshold starlark.Value
	require   string
	stateDir  string
	mode      string
}

// apply checks the arguments given and sets them in s. The keys, the
// threshold and the requirement are checked together, against what s
// has after this call, so that the calls of a policy can set them in any
// order but no call leaves an unusable combination.
func (t *trustArgs) apply(b *starlark.Builtin, s *Settings) error {
	next := *s
	if t.keys != nil {
		next.Keys = nil
		for i := 0; i < t.keys.Len(); i++ {
			k, ok := starlark.AsString(t.keys.Index(i))
			if !ok {
				return fmt.Errorf("%s: keys must be a list of verifier keys (strings, as in the .pub file sstar key generate writes), got %s", b.Name(), t.keys.Index(i).Type())
			}
			next.Keys = append(next.Keys, k)
		}
	}
	if t.threshold != nil && t.threshold != starlark.None {
		n, err := starlark.AsInt32(t.threshold)
		if err != nil || n < 1 {
			return fmt.Errorf("%s: threshold must be a number of keys from 1, got %s", b.Name(), got(t.threshold))
		}
		next.Threshold = n
	}
	if t.require != "" {
		r, err := opencode.ParseRequire(t.require)
		if err != nil {
			return fmt.Errorf("%s: require: %v", b.Name(), err)
		}
		next.Require = r
	}
	switch t.mode {
	case "":
	case "enforce":
		next.AuditOnly = false
	case "audit":
		next.AuditOnly = true
	default:
		return fmt.Errorf("%s: mode must be \"enforce\" or \"audit\", got %q", b.Name(), t.mode)
	}
	if t.stateDir != "" {
		if err := checkStateDir(t.stateDir); err != nil {
			return fmt.Errorf("%s: state_dir %s: %v", b.Name(), t.stateDir, err)
		}
		next.StateDir = filepath.Clean(t.stateDir)
	}
	if len(next.Keys) > 0 || next.Threshold != 0 || next.Require != opencode.RequireStamp {
		if len(next.Keys) == 0 {
			return fmt.Errorf("%s: require=%q needs keys=[...], the verifier keys whose signatures count on a catalog", b.Name(), next.Require.String())
		}
		if _, err := opencode.NewKeyring(next.Keys, next.Threshold); err != nil {
			return fmt.Errorf("%s: %v", b.Name(), err)
		}
	}
	*s = next
	return nil
}

// checkStateDir checks a catalog state directory as the system policy's
// own directories are checked (CheckDirs: every directory from / down,
// root's and not writable by group or others unless sticky), and the
// directory itself strictly: it must exist, and not even a sticky bit
// lets others write in it, since whoever can add a file there could
// forge the versions seen so far.
func checkStateDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return errors.New("must be an absolute path")
	}
	dir = filepath.Clean(dir)
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%v; create it: install -d -m 0755 -o root %s", err, dir)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || st == nil || st.Uid != 0 || fi.Mode()&0o022 != 0 {
		return fmt.Errorf("must be a directory owned by root and writable only by root, not even with a sticky bit; install -d -m 0755 -o root %s", dir)
	}
	// The directories above it, as those above the system policy.
	return CheckDirs(dir)
}
