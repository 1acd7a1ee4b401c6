package opencode

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/pkg/xattr"
	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/internal/ospath"
)

// What Stamp did to a file.
type Stamping int

const (
	Unchanged Stamping = iota // the file already had the right stamp
	Added                     // the file had no stamp (or an unreadable one)
	Updated                   // the file's stamp named other content
)

func (s Stamping) String() string {
	switch s {
	case Added:
		return "added"
	case Updated:
		return "updated"
	}
	return "unchanged"
}

// Reasons Stamp cannot stamp a file, besides ErrNotRegular, ErrTooLarge
// and ErrUnreadable.
var (
	ErrNoXattrSupport = errors.New("the file system does not support extended attributes")
	ErrNotPermitted   = errors.New("not permitted to write the stamp")
)

// A StampError is a refusal to stamp a file.
type StampError struct {
	Path   string // absolute path
	Reason error
}

func (e *StampError) Error() string {
	return fmt.Sprintf("cannot stamp %s: %v", e.Path, e.Reason)
}

func (e *StampError) Unwrap() error { return e.Reason }

// Stamp vouches for the file at path: it writes the SHA-256 of the
// file's content into the Opener's stamp attribute, raising
// sstar.trust(path, sha256) on d first. It reads, hashes and stamps
// through one descriptor, so the stamp is of the content that was read.
// A file already stamped with its hash is left alone (Unchanged), and no
// event is raised for it.
//
// Stamp refuses what Open would refuse whatever its stamp (not a regular
// file, larger than MaxSize), and what cannot hold a stamp.
func (o *Opener) Stamp(d *audit.Dispatcher, path string) (Stamping, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	abs, err := ospath.Abs(path)
	if err != nil {
		return Unchanged, sum, &StampError{Path: path, Reason: fmt.Errorf("%w: %v", ErrUnreadable, err)}
	}
	refuse := func(reason error) (Stamping, [sha256.Size]byte, error) {
		return Unchanged, sum, &StampError{Path: abs, Reason: reason}
	}
	name, err := o.xattrName()
	if err != nil {
		return refuse(err)
	}
	f, err := os.OpenFile(abs, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	if err != nil {
		return refuse(openFailure(abs, err))
	}
	defer f.Close()
	fd := int(f.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return refuse(fmt.Errorf("%w: fstat: %v", ErrUnreadable, err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return refuse(fmt.Errorf("%w: it is %s; only regular files can be code", ErrNotRegular, describeMode(st.Mode)))
	}
	max := o.maxSize()
	if st.Size > max {
		return refuse(fmt.Errorf("%w: %d bytes, the limit is %d, so sstar would refuse it anyway", ErrTooLarge, st.Size, max))
	}
	data, err := readAll(fd, st.Size, max)
	if err != nil {
		return refuse(err)
	}
	sum = sha256.Sum256(data)

	did := Added
	if old, err := readStamp(fd, name); err == nil {
		if old == sum {
			return Unchanged, sum, nil
		}
		did = Updated
	} else if errors.Is(err, ErrMalformedStamp) {
		did = Updated
	}

	if err := d.Raise(nil, audit.Trust, starlark.String(abs), starlark.String(FormatStamp(sum))); err != nil {
		return Unchanged, sum, err
	}
	if err := xattr.FSet(f, name, FormatStamp(sum)); err != nil {
		return refuse(setFailure(name, err))
	}
	return did, sum, nil
}

// setFailure explains why a stamp could not be written.
func setFailure(name string, err error) error {
	switch errnoOr(err) {
	case unix.ENOTSUP:
		return fmt.Errorf("%w (%s); keep code on a file system that does (ext4, xfs, btrfs, tmpfs)", ErrNoXattrSupport, name)
	case unix.EPERM, unix.EACCES:
		if XattrNamespace(name) == trustedNamespace {
			return fmt.Errorf("%w: %s needs CAP_SYS_ADMIN; run sstar trust as root", ErrNotPermitted, name)
		}
		return fmt.Errorf("%w: %s: %v; the file's owner (or root) must stamp it, outside any sstar run", ErrNotPermitted, name, errnoOr(err))
	case unix.EROFS:
		return fmt.Errorf("%w: the file system is read-only", ErrNotPermitted)
	}
	return fmt.Errorf("writing %s: %v", name, errnoOr(err))
}

// WalkCode calls fn for each code file that path names, as `sstar trust`
// and `sstar verify` see them: a directory stands for every *.star file
// under it, in lexical order; anything else stands for itself (and is
// then checked, not skipped, whatever its name or type). Symbolic links
// inside a directory are not followed, so that stamping a tree never
// stamps a file outside it; a symbolic link named on its own is.
//
// filepath.WalkDir recurses once per directory level of the tree, which
// whoever writes the tree controls; the kernel bounds it: a directory is
// read by its full path, which cannot pass PATH_MAX (4096 bytes, so at
// most 2048 levels), and the directory past that is reported to fn with
// its error (ENAMETOOLONG) instead of being entered.
func WalkCode(path string, fn func(path string) error) error {
	fi, err := os.Stat(path)
	if err != nil || !fi.IsDir() {
		return fn(path)
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fn(p) // reported as the file's own refusal
		}
		if d.IsDir() || d.Type()&fs.ModeSymlink != 0 || !strings.HasSuffix(d.Name(), ".star") {
			return nil
		}
		return fn(p)
	})
}
