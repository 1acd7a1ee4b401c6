package opencode

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Rollback: a catalog is signed once and verifies forever (until it
// expires), so an old catalog, with the old code it vouches for, could be
// put back after a fix was shipped. With a state directory
// (Opener.StateDir) the Opener keeps, per catalog directory, the highest
// version accepted on this machine and refuses a lower one, or the same
// version with other text. Without one, rollback is not detected.
//
// The state of directory D is one file in the state directory, named by
// the SHA-256 of D (the catalog's absolute, lexically clean directory):
//
//	sstar catalog state v1
//	dir /srv/app
//	version 7
//	text-sha256 <hex of the signed text>
//
// It must be a regular file owned by root and not writable by group or
// others; anything else refuses every catalog of that directory. It is
// replaced atomically (a new file, fsync, rename) under an flock of the
// state directory's "lock" file, so that concurrent runs never lower it.
// Only a process that may write the directory (root, as the system policy
// requires it to be root's) records a new version; for others the
// highest recorded version still holds, and the event says that nothing
// was recorded.

const stateFormat = "sstar catalog state v1"

// maxStateSize bounds a state file's size.
const maxStateSize = 4096

type catalogState struct {
	version  uint64
	textHash [sha256.Size]byte
}

// statePath is the state file of catalogs in dir.
func (o *Opener) statePath(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return filepath.Join(o.StateDir, hex.EncodeToString(sum[:]))
}

// checkRollback compares cat with the state of its directory and, when
// record is set and cat is newer, records it. It returns what it did, for
// the sstar.catalog event.
func (o *Opener) checkRollback(cat *Catalog, record bool) (string, error) {
	if o.StateDir == "" {
		return "no state_dir: rollback is not detected", nil
	}
	path := o.statePath(cat.Dir)
	unlock := lockState(o.StateDir)
	defer unlock()
	prev, found, err := readState(path, cat.Dir)
	if err != nil {
		return "", fmt.Errorf("%w: the rollback state %s: %v; fix it or remove it (which forgets the versions accepted for %s)", ErrConfig, path, err, cat.Dir)
	}
	was := "none"
	if found {
		switch {
		case cat.Version < prev.version:
			return "", fmt.Errorf("%w: version %d is older than version %d, which was accepted for %s on this machine (state %s); an old catalog could bring back code that has since been fixed", ErrRolledBack, cat.Version, prev.version, cat.Dir, path)
		case cat.Version == prev.version && cat.textHash != prev.textHash:
			return "", fmt.Errorf("%w: version %d was accepted for %s on this machine with other content (state %s); a changed catalog needs a higher version", ErrRolledBack, cat.Version, cat.Dir, path)
		case cat.Version == prev.version:
			return fmt.Sprintf("version %d is the highest accepted", cat.Version), nil
		}
		was = strconv.FormatUint(prev.version, 10)
	}
	if !record {
		return fmt.Sprintf("version %d is above the highest accepted (%s); a check records nothing", cat.Version, was), nil
	}
	if err := writeState(o.StateDir, path, cat); err != nil {
		return fmt.Sprintf("version %d is above the highest accepted (%s) but was not recorded: %v", cat.Version, was, err), nil
	}
	return fmt.Sprintf("recorded version %d (was %s)", cat.Version, was), nil
}

// lockState takes an exclusive flock on the state directory's lock file,
// creating it if this process may; it returns the unlock.
func lockState(dir string) func() {
	p := filepath.Join(dir, "lock")
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		fd, err = unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return func() {} // nobody who may record holds it either
	}
	for unix.Flock(fd, unix.LOCK_EX) == unix.EINTR {
	}
	return func() { unix.Close(fd) }
}

// readState reads the state file at path, which must describe dir.
func readState(path, dir string) (catalogState, bool, error) {
	var s catalogState
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err == unix.ENOENT {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return s, false, err
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return s, false, fmt.Errorf("it is %s, not a regular file", describeMode(st.Mode))
	case st.Uid != 0 || st.Mode&0o022 != 0:
		return s, false, fmt.Errorf("owner uid %d, mode %04o: it must be owned by root and writable only by root", st.Uid, st.Mode&0o7777)
	}
	data, err := readAll(fd, st.Size, maxStateSize)
	if err != nil {
		return s, false, err
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) != 5 || lines[0] != stateFormat || lines[4] != "" {
		return s, false, errors.New("not a state file of this sstar")
	}
	if d, _ := strings.CutPrefix(lines[1], "dir "); d != dir {
		return s, false, fmt.Errorf("it describes %q, not %s", lines[1], dir)
	}
	v, ok := strings.CutPrefix(lines[2], "version ")
	if s.version, err = strconv.ParseUint(v, 10, 64); !ok || err != nil {
		return s, false, errors.New("malformed version line")
	}
	h, ok := strings.CutPrefix(lines[3], "text-sha256 ")
	if s.textHash, err = ParseStamp([]byte(h)); !ok || err != nil {
		return s, false, errors.New("malformed text-sha256 line")
	}
	return s, true, nil
}

// writeState replaces the state file at path with cat's version.
func writeState(dir, path string, cat *Catalog) error {
	content := fmt.Sprintf("%s\ndir %s\nversion %d\ntext-sha256 %s\n", stateFormat, cat.Dir, cat.Version, hexSum(cat.textHash))
	tmp := path + ".new"
	unix.Unlink(tmp) // left by a crash; root's directory, root's file
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return errnoOr(err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Unlink(tmp)
		}
	}()
	_, err = unix.Write(fd, []byte(content))
	if err == nil {
		err = unix.Fsync(fd)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := unix.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		unix.Fsync(dfd)
		unix.Close(dfd)
	}
	return nil
}
