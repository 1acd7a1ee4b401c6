// Package opencode is sstar's "open for execution" path: it turns a path
// into the exact bytes that may be compiled, or a refusal.
//
// Every file that becomes code (the main script, every loaded module,
// every policy file) is opened here, once, and the bytes returned are the
// bytes that were checked: nothing reopens the file by name afterwards.
//
// A file is vouched for by its stamp: an extended attribute (by default
// user.sstar.sha256) holding the lowercase hex SHA-256 of its content,
// written by `sstar trust` (see Opener.Stamp); or, when the Opener
// requires it (Opener.Require), by a catalog signed with trusted keys in
// its directory or a parent (see CatalogName). Opening a file as code
// does, in order and on one descriptor:
//
//  1. make the path absolute and raise sstar.open_code(path);
//  2. open it read-only, close-on-exec and non-blocking, so that a FIFO
//     or a device cannot hang the open;
//  3. fstat: a regular file, no larger than the limit (so /dev/zero
//     cannot stream forever and a FIFO is never read), and for the
//     system policy owned by root and writable only by root;
//  4. fstatfs: on a file system whose xattrs the kernel keeps itself
//     (ext4, xfs, btrfs, tmpfs, overlayfs, squashfs, erofs, f2fs and the
//     like), not one whose server answers for them (FUSE, 9p, NFS, SMB,
//     Ceph, or a type sstar does not know), unless the system policy
//     allows that type; and not on a noexec mount;
//  5. ask the kernel execveat(fd, "", AT_EMPTY_PATH|AT_EXECVE_CHECK)
//     whether it would execute the file, raise sstar.exec_check with its
//     answer, and refuse on a "no" when the process has
//     SECBIT_EXEC_RESTRICT_FILE set (or the Opener is told to enforce);
//  6. read the whole content and hash it (SHA-256);
//  7. read the stamp with fgetxattr and compare, or look the file up in
//     its catalog (opened and checked once per Opener, raising
//     sstar.catalog) and compare, as Opener.Require says;
//  8. return the bytes that were hashed.
//
// Any refusal is a *RefusedError wrapping one of the Err* values below,
// so callers tell reasons apart with errors.Is; sstar.code_integrity_failure
// is raised before it is returned, so a refusal is recorded even when the
// run stops there. In audit mode (Opener.AuditOnly) a refusal at step 7
// is raised with enforced=False and the code is returned all the same.
//
// The stamp guards against mistakes and against code planted by whoever
// cannot write the stamp: anyone who can write a file can restamp it
// under user.*, and only CAP_SYS_ADMIN can under trusted.*. sstar itself
// never can while scripts run (see package harden).
package opencode

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/internal/ospath"
)

// DefaultMaxSize is the largest code file accepted unless configured
// otherwise: big enough for any hand-written module, small enough that a
// mistaken path (a log, an image) is refused before it is read.
const DefaultMaxSize = 4 << 20

// DefaultXattrName is the extended attribute that holds a file's stamp
// unless the system policy names another.
const DefaultXattrName = "user.sstar.sha256"

// The namespaces a stamp may be kept in: anyone who can write a file can
// write its user.* attributes, only CAP_SYS_ADMIN its trusted.* ones.
const (
	userNamespace    = "user."
	trustedNamespace = "trusted."
)

// XattrNamespace returns the namespace of name, "user." or "trusted.", if
// name can hold a stamp, and "" if it cannot: another namespace, nothing
// after the namespace, a NUL byte, or longer than the 255 bytes the kernel
// allows.
func XattrNamespace(name string) string {
	if len(name) > 255 || strings.IndexByte(name, 0) >= 0 {
		return ""
	}
	for _, ns := range []string{userNamespace, trustedNamespace} {
		if len(name) > len(ns) && strings.HasPrefix(name, ns) {
			return ns
		}
	}
	return ""
}

// Code is a file's verified content.
type Code struct {
	Path   string            // absolute path the code was opened by
	Data   []byte            // the exact bytes that were checked
	SHA256 [sha256.Size]byte // SHA-256 of Data

	// Catalog is the catalog that vouched for the file; nil if its stamp
	// did (or, in audit mode, nothing did).
	Catalog *Catalog
	// Unenforced is, in audit mode, the refusal that was recorded but not
	// enforced: nothing vouched for the file, and it is returned anyway.
	Unenforced *RefusedError
}

// Refusals. Every refusal wraps exactly one of these.
var (
	ErrNoStamp        = errors.New("no stamp")
	ErrMalformedStamp = errors.New("malformed stamp")
	ErrMismatch       = errors.New("stamp does not match the content")
	ErrNotRegular     = errors.New("not a regular file")
	ErrTooLarge       = errors.New("file too large")
	ErrNoexec         = errors.New("on a noexec mount")
	ErrFileSystem     = errors.New("not on a file system whose xattrs the kernel keeps")
	ErrExecCheck      = errors.New("the kernel refused to execute it (AT_EXECVE_CHECK)")
	ErrUnreadable     = errors.New("unreadable")
	ErrConfig         = errors.New("opencode misconfigured")
	ErrUnsafeOwner    = errors.New("not owned by root, or writable by group or others")
	ErrStampHidden    = errors.New("the stamp cannot be read without CAP_SYS_ADMIN")
)

// A RefusedError is a refusal to treat a file as code.
type RefusedError struct {
	Path   string // absolute path
	Reason error  // one of the Err* values, wrapped with detail
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused to run %s: %v", e.Path, e.Reason)
}

func (e *RefusedError) Unwrap() error { return e.Reason }

// A MismatchError is the reason of a refusal whose stamp names other
// content than the file has. It matches ErrMismatch.
type MismatchError struct {
	Stamp   string // the hash the stamp holds (lowercase hex)
	Content string // the hash of the content read (lowercase hex)
	Hint    string // what to do, for the message
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%v: stamp is sha256 %s, content is sha256 %s; %s", ErrMismatch, e.Stamp, e.Content, e.Hint)
}

// Is makes errors.Is(err, ErrMismatch) hold.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// Opener opens code files. The zero value is the default configuration:
// stamps in DefaultXattrName, DefaultMaxSize, the kernel's exec check
// enforced only when SECBIT_EXEC_RESTRICT_FILE is set.
//
// The fields can weaken or strengthen what is accepted, so sstar sets
// them only from the system policy, never from flags or environment.
// An Opener is safe for concurrent use. The state it keeps between
// calls is the process's securebits, read at its first exec check and
// used for every file after: sstar never changes them and a script has
// no way to, so one read per Opener (sstar makes one for the script and
// its modules, and one for each policy file) saves a system call per
// loaded module. A program that changes its securebits must make a new
// Opener afterwards. For catalogs it also keeps its parsed Keys and every
// catalog it has opened, checked (or refused) once, so that each is read
// and its signatures verified once per Opener: a run sees one version of
// each catalog, and a program that wants a catalog's changes seen makes
// a new Opener. Set the fields before the first call and do not change
// them after. Use an Opener through a pointer; do not copy one.
type Opener struct {
	// XattrName is the extended attribute holding the stamp, namespace
	// included: "user.…" or "trusted.…" (only CAP_SYS_ADMIN can write
	// trusted.*). Empty means DefaultXattrName. A name that cannot hold a
	// stamp (see XattrNamespace) makes every open fail with ErrConfig.
	XattrName string

	// MaxSize is the largest accepted file in bytes; 0 means
	// DefaultMaxSize.
	MaxSize int64

	// EnforceExecCheck refuses a file the kernel would not execute even
	// when the process lacks SECBIT_EXEC_RESTRICT_FILE. On a kernel
	// without AT_EXECVE_CHECK (before 6.14) it refuses every file.
	EnforceExecCheck bool

	// RequireRootOwned refuses a file not owned by root or writable by
	// group or others, checked on the open descriptor (the system policy).
	RequireRootOwned bool

	// Require is what vouches for a file: its stamp (the zero value), a
	// catalog signed by Keys, or either.
	Require Require
	// Keys are the verifier keys ("name+hash+key", the note format) whose
	// signatures count on a catalog; Threshold of them must have signed
	// (0 means 1). Invalid keys make every catalog refuse with ErrConfig.
	Keys      []string
	Threshold int
	// StateDir, if set, is the directory where the highest catalog
	// version accepted for each directory is kept, so that a lower one is
	// refused (see ErrRolledBack). It must be root's; sstar's system
	// policy checks it. Empty: rollback is not detected.
	StateDir string
	// AuditOnly records a file that nothing vouches for (raising
	// sstar.code_integrity_failure with enforced=False) and returns it
	// anyway, so that operators see what requiring stamps or catalogs
	// would refuse before they enforce it. The other checks (a regular
	// file within the size limit on an allowed file system, the kernel's
	// check) still refuse.
	AuditOnly bool
	// FileSystems are the file system types, by name (as in
	// /proc/filesystems: "fuse", "nfs", "9p", "cifs", "ceph", ...), code
	// is accepted from besides those whose xattrs the kernel keeps
	// itself. On those a server, whoever runs it, answers getxattr, so it
	// chooses every stamp; only the system policy may name them.
	FileSystems []string

	securebits struct {
		once sync.Once
		bits uint
		err  error
	}
	keys struct {
		once sync.Once
		ring *Keyring
		err  error
	}
	catalogs catalogCache
}

// readSecurebits reads the securebits for Opener.securebits. Tests
// replace it to count the reads.
var readSecurebits = Securebits

// bits returns the process's securebits, read at the first call.
func (o *Opener) bits() (uint, error) {
	sb := &o.securebits
	sb.once.Do(func() { sb.bits, sb.err = readSecurebits() })
	return sb.bits, sb.err
}

// OpenCode opens path as code for thread t, raising sstar.open_code and
// sstar.exec_check on t's dispatcher, and sstar.code_integrity_failure
// before any refusal. A refusal is a *RefusedError; an event a hook
// aborted is the hook's *audit.AbortError.
func (o *Opener) OpenCode(t *starlark.Thread, path string) (Code, error) {
	return o.openCode(func(k audit.Kind, args ...starlark.Value) error {
		return audit.Raise(t, k, args...)
	}, path)
}

// Verify opens path exactly as OpenCode does, raising the events on d
// outside any thread. It is `sstar verify`: a file Verify accepts is a
// file a run would accept. A nil d refuses, as an unaudited thread does.
func (o *Opener) Verify(d *audit.Dispatcher, path string) (Code, error) {
	return o.openCode(func(k audit.Kind, args ...starlark.Value) error {
		return d.Raise(nil, k, args...)
	}, path)
}

type raiseFunc func(k audit.Kind, args ...starlark.Value) error

func (o *Opener) openCode(raise raiseFunc, path string) (Code, error) {
	abs, err := ospath.Abs(path)
	if err != nil {
		return Code{}, &RefusedError{Path: path, Reason: fmt.Errorf("%w: cannot make the path absolute: %v", ErrUnreadable, err)}
	}
	if err := raise(audit.OpenCode, starlark.String(abs)); err != nil {
		return Code{}, err
	}
	code, reason := o.open(raise, abs)
	if reason != nil {
		if ab := (*abortError)(nil); errors.As(reason, &ab) {
			return Code{}, ab.err
		}
		uv, soft := reason.(*unvouched)
		if soft {
			reason = uv.err
		}
		enforced := !(soft && o.AuditOnly)
		if err := raise(audit.CodeIntegrityFailure, starlark.String(abs), starlark.String(reason.Error()), starlark.Bool(enforced)); err != nil {
			return Code{}, err
		}
		if !enforced {
			code.Unenforced = &RefusedError{Path: abs, Reason: reason}
			return code, nil
		}
		return Code{}, &RefusedError{Path: abs, Reason: reason}
	}
	return code, nil
}

// unvouched is the reason of a file that nothing vouched for (step 7):
// the one refusal that audit mode records without enforcing.
type unvouched struct{ err error }

func (e *unvouched) Error() string { return e.err.Error() }
func (e *unvouched) Unwrap() error { return e.err }

// abortError carries an aborted event out of open, which is not a refusal.
type abortError struct{ err error }

func (e *abortError) Error() string { return e.err.Error() }

// open does the checks on abs, in the order of the package comment, and
// returns the code read or the reason for refusing it. A reason of type
// *unvouched comes with the code that was read.
func (o *Opener) open(raise raiseFunc, abs string) (Code, error) {
	if _, err := o.xattrName(); err != nil {
		return Code{}, err
	}
	if o.Require != RequireStamp {
		if _, err := o.keyring(); err != nil {
			return Code{}, err
		}
	}
	max := o.maxSize()
	fd, size, err := o.openFD(abs, max)
	if err != nil {
		return Code{}, err
	}
	defer unix.Close(fd)

	if err := o.execCheck(raise, abs, fd); err != nil {
		return Code{}, err
	}

	data, err := readAll(fd, size, max)
	if err != nil {
		return Code{}, err
	}
	code := Code{Path: abs, Data: data, SHA256: sha256.Sum256(data)}
	if err := o.vouch(raise, fd, &code); err != nil {
		if ab := (*abortError)(nil); errors.As(err, &ab) || errors.Is(err, ErrConfig) {
			return Code{}, err
		}
		return code, &unvouched{err}
	}
	return code, nil
}

// openFD does steps 2 to 4 on abs: the one open, then fstat and fstatfs
// on its descriptor. Code files and catalogs are opened here, so both are
// held to the same rules. It returns the descriptor and the file's size.
func (o *Opener) openFD(abs string, max int64) (int, int64, error) {
	// One descriptor for every check and the read. O_NONBLOCK: opening a
	// FIFO must not wait for a writer. Not an *os.File: that would try
	// to add the descriptor to the runtime's poller, a system call more.
	fd, err := openRetry(abs)
	if err != nil {
		return -1, 0, openFailure(abs, err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()

	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return -1, 0, fmt.Errorf("%w: fstat: %v", ErrUnreadable, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return -1, 0, fmt.Errorf("%w: it is %s; only regular files can be code", ErrNotRegular, describeMode(st.Mode))
	}
	if o.RequireRootOwned && (st.Uid != 0 || st.Mode&0o022 != 0) {
		return -1, 0, fmt.Errorf("%w: owner uid %d, mode %04o; make it root-owned and writable only by root (chown root FILE; chmod go-w FILE)", ErrUnsafeOwner, st.Uid, st.Mode&0o7777)
	}
	if st.Size > max {
		return -1, 0, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, st.Size, max)
	}

	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return -1, 0, fmt.Errorf("%w: fstatfs: %v", ErrUnreadable, err)
	}
	if !allowedFileSystem(uint32(sfs.Type), o.FileSystems) {
		return -1, 0, fmt.Errorf("%w: it is on %s; code is accepted only from file systems whose xattrs the kernel keeps itself (ext4, xfs, btrfs, tmpfs, overlay, ...), not from one whose server answers for them (a system policy may allow such a type: policy.code_file_systems)", ErrFileSystem, fileSystemName(uint32(sfs.Type)))
	}
	if sfs.Flags&unix.ST_NOEXEC != 0 {
		return -1, 0, fmt.Errorf("%w: its file system is mounted noexec, where nothing may be executed; move it to an exec mount", ErrNoexec)
	}
	ok = true
	return fd, st.Size, nil
}

// checkStamp compares the stamp of the file open on fd with the hash of
// the content read.
func (o *Opener) checkStamp(fd int, code *Code) error {
	name, err := o.xattrName()
	if err != nil {
		return err
	}
	stamp, err := readStamp(fd, name)
	if err != nil {
		return withHint(err, code.Path)
	}
	if stamp != code.SHA256 {
		return &MismatchError{
			Stamp:   hex.EncodeToString(stamp[:]),
			Content: hex.EncodeToString(code.SHA256[:]),
			Hint:    "the file changed after it was stamped; review it, then restamp it with: sstar trust " + code.Path,
		}
	}
	return nil
}

// Read opens path as code is opened (steps 2 to 4 and 6, on one
// descriptor) and returns its content and hash, vouched for by nothing
// and raising nothing: what `sstar catalog sign` lists is what a run
// reads.
func (o *Opener) Read(path string) (Code, error) {
	abs, err := ospath.Abs(path)
	if err != nil {
		return Code{}, &RefusedError{Path: path, Reason: fmt.Errorf("%w: cannot make the path absolute: %v", ErrUnreadable, err)}
	}
	max := o.maxSize()
	fd, size, err := o.openFD(abs, max)
	if err != nil {
		return Code{}, &RefusedError{Path: abs, Reason: err}
	}
	defer unix.Close(fd)
	data, err := readAll(fd, size, max)
	if err != nil {
		return Code{}, &RefusedError{Path: abs, Reason: err}
	}
	return Code{Path: abs, Data: data, SHA256: sha256.Sum256(data)}, nil
}

// execCheck asks the kernel whether it would execute the file open on
// fd, reports the answer as sstar.exec_check, and refuses when the answer
// is no and the check is enforced.
func (o *Opener) execCheck(raise raiseFunc, abs string, fd int) error {
	checkErr := KernelExecCheck(fd)
	bits, bitsErr := o.bits()
	// Unknown securebits are treated as restrictive: fail closed.
	enforced := o.EnforceExecCheck || bitsErr != nil || bits&SECBIT_EXEC_RESTRICT_FILE != 0
	detail := "allowed"
	if checkErr != nil {
		detail = describeExecCheck(checkErr)
	}
	if err := raise(audit.ExecCheck, starlark.String(abs), starlark.Bool(checkErr == nil), starlark.Bool(enforced), starlark.String(detail)); err != nil {
		return &abortError{err}
	}
	if checkErr != nil && enforced {
		why := "SECBIT_EXEC_RESTRICT_FILE is set"
		switch {
		case bitsErr != nil:
			why = "the securebits could not be read (" + bitsErr.Error() + ")"
		case bits&SECBIT_EXEC_RESTRICT_FILE == 0:
			why = "the system policy enforces the kernel's check"
		}
		return fmt.Errorf("%w: %s, and %s; code files need exec permission (chmod +x) on an exec mount", ErrExecCheck, detail, why)
	}
	return nil
}

func (o *Opener) maxSize() int64 {
	if o.MaxSize > 0 {
		return o.MaxSize
	}
	return DefaultMaxSize
}

func (o *Opener) xattrName() (string, error) {
	name := o.XattrName
	if name == "" {
		return DefaultXattrName, nil
	}
	if XattrNamespace(name) == "" {
		return "", fmt.Errorf("%w: the stamp's xattr name %q is not user.NAME or trusted.NAME (at most 255 bytes, no NUL); fix the system policy", ErrConfig, name)
	}
	return name, nil
}

// openFlags open a code file: read-only, not inherited by processes
// sstar starts, and not blocking on a FIFO without a writer.
const openFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY

func openRetry(abs string) (int, error) {
	for {
		fd, err := unix.Open(abs, openFlags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// readAll reads the content of the regular file open on fd, whose fstat
// size was size, refusing a file that has grown past max meanwhile.
//
// The buffer has room for one byte more than size, so a file that grew
// is noticed. A read that returns exactly size bytes (fewer than asked)
// is the end of the file, as it is for a regular file on Linux; were it
// not, the bytes hashed would still be the bytes returned, and only
// refusal (a mismatch) could follow, never different code running. A
// shorter read (FUSE, NFS) reads on to EOF. This saves the read that
// returns 0, a tenth of the system calls of opening a module.
func readAll(fd int, size, max int64) ([]byte, error) {
	buf := make([]byte, 0, min(size, max)+1)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > max {
				return nil, fmt.Errorf("%w: it grew past the limit of %d bytes while being read", ErrTooLarge, max)
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: read: %v", ErrUnreadable, err)
		}
		buf = buf[:len(buf)+n]
		if n == 0 || (int64(len(buf)) == size && len(buf) < cap(buf)) {
			if int64(len(buf)) > max {
				return nil, fmt.Errorf("%w: it grew past the limit of %d bytes while being read", ErrTooLarge, max)
			}
			return buf, nil
		}
	}
}

// stampLen is the length of a well-formed stamp: 64 hex digits.
const stampLen = 2 * sha256.Size

// readStamp reads and parses the stamp of the file open on fd, from the
// descriptor. The buffer holds one byte more than a stamp, so a longer
// value (ERANGE, or a full buffer) is refused as malformed.
func readStamp(fd int, name string) ([sha256.Size]byte, error) {
	var none [sha256.Size]byte
	var buf [stampLen + 1]byte
	n, err := unix.Fgetxattr(fd, name, buf[:])
	for err == unix.EINTR {
		n, err = unix.Fgetxattr(fd, name, buf[:])
	}
	switch err {
	case nil:
	case unix.ENODATA:
		if XattrNamespace(name) == trustedNamespace && !hasCapSysAdmin() {
			// The kernel answers ENODATA for every trusted.* attribute
			// to a process without CAP_SYS_ADMIN: the stamp may well be
			// there, and sstar trust would fail too.
			return none, fmt.Errorf("%w: %s is in the trusted.* namespace, which the kernel shows only to processes with CAP_SYS_ADMIN, so this process cannot tell whether the file is stamped (\"no stamp\" is all it can see); run sstar as root, or ask the administrator to vouch for the code with a signed catalog instead (policy.trust(require=\"either\"); see docs/trust.md)", ErrStampHidden, name)
		}
		return none, fmt.Errorf("%w: the file has no %s attribute", ErrNoStamp, name)
	case unix.ENOTSUP:
		return none, fmt.Errorf("%w: its file system does not support extended attributes, so it cannot hold %s", ErrNoStamp, name)
	case unix.ERANGE:
		return none, fmt.Errorf("%w: %s: the stamp is longer than %d lowercase hex digits", ErrMalformedStamp, name, stampLen)
	default:
		return none, fmt.Errorf("%w: reading %s: %v", ErrUnreadable, name, err)
	}
	sum, err := ParseStamp(buf[:n])
	if err != nil {
		return none, fmt.Errorf("%w: %s: %v", ErrMalformedStamp, name, err)
	}
	return sum, nil
}

// withHint adds what to do to a stamp refusal.
func withHint(err error, abs string) error {
	switch {
	case errors.Is(err, ErrNoStamp), errors.Is(err, ErrMalformedStamp):
		return fmt.Errorf("%w; if you vouch for this file, stamp it with: sstar trust %s", err, abs)
	}
	return err
}

// ParseStamp parses a stamp's value: exactly 64 lowercase hex digits,
// nothing before or after. Anything else is refused, so that one file
// has one spelling of its stamp.
func ParseStamp(v []byte) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	if len(v) == 0 {
		return sum, errors.New("the stamp is empty")
	}
	if len(v) != stampLen {
		return sum, fmt.Errorf("the stamp is %d bytes long, want %d lowercase hex digits", len(v), stampLen)
	}
	for i, c := range v {
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			return sum, errors.New("the stamp has uppercase hex digits; stamps are lowercase")
		default:
			return sum, fmt.Errorf("the stamp has a non-hex byte %q at offset %d", c, i)
		}
	}
	if _, err := hex.Decode(sum[:], v); err != nil {
		return sum, err
	}
	return sum, nil
}

// FormatStamp is the stamp value for content whose SHA-256 is sum.
func FormatStamp(sum [sha256.Size]byte) []byte {
	b := make([]byte, hex.EncodedLen(len(sum)))
	hex.Encode(b, sum[:])
	return b
}

// openFailure explains a failed open. A socket cannot be opened at all
// (ENXIO), so its type is looked up by name, only to word the refusal.
func openFailure(abs string, err error) error {
	err = ospath.Reason(err) // the refusal names the path already
	if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EOPNOTSUPP) {
		var st unix.Stat_t
		if unix.Stat(abs, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fmt.Errorf("%w: it is %s; only regular files can be code", ErrNotRegular, describeMode(st.Mode))
		}
	}
	return fmt.Errorf("%w: %v", ErrUnreadable, err)
}

// errnoOr returns the errno inside err, or err.
func errnoOr(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// describeMode names a file type for a refusal message.
func describeMode(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return fmt.Sprintf("of unknown type %#o", mode&unix.S_IFMT)
}
