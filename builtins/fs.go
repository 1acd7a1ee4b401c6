package builtins

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	libtime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/internal/ospath"
)

// The open(2) flags of fs.read, fs.write and fs.append, as the open
// event reports them. O_CLOEXEC keeps the descriptor out of processes
// that proc.run starts; 64-bit Linux adds O_LARGEFILE by itself.
const (
	ReadFlags   = os.O_RDONLY | syscall.O_CLOEXEC
	WriteFlags  = os.O_WRONLY | os.O_CREATE | os.O_TRUNC | syscall.O_CLOEXEC
	AppendFlags = os.O_WRONLY | os.O_CREATE | os.O_APPEND | syscall.O_CLOEXEC
)

// Permissions of what fs creates, before the process umask: the usual
// 0644 and 0755, so that rendered configuration is readable by the
// services that use it. Run sstar under umask 077 to keep it private.
const (
	FilePerm = 0o644
	DirPerm  = 0o755
)

// MaxReadSize is the largest file fs.read and fs.read_bytes return, so
// that reading a device such as /dev/zero cannot exhaust memory.
const MaxReadSize = 64 << 20

// ErrTooLarge is the reason of a read that exceeded MaxReadSize. Made
// without fmt: package initialisation runs in every sstar process, and
// formatting is its most expensive part here.
var ErrTooLarge = errors.New("larger than the " + strconv.Itoa(MaxReadSize>>20) + " MiB limit of fs.read")

// noFD is the dir_fd of CPython's os events when no dir_fd= was given.
var noFD = starlark.MakeInt(-1)

// FS returns the fs module.
func FS() *starlarkstruct.Module {
	return module("fs", starlark.StringDict{
		"read":       fn("fs.read", fsRead),
		"read_bytes": fn("fs.read_bytes", fsReadBytes),
		"write":      fn("fs.write", fsWrite),
		"append":     fn("fs.append", fsAppend),
		"exists":     fn("fs.exists", fsExists),
		"listdir":    fn("fs.listdir", fsListdir),
		"stat":       fn("fs.stat", fsStat),
		"mkdir":      fn("fs.mkdir", fsMkdir),
		"remove":     fn("fs.remove", fsRemove),
		"rename":     fn("fs.rename", fsRename),
		"glob":       fn("fs.glob", fsGlob),
	})
}

// absArg validates the path argument of fname and makes it absolute
// against the working directory. The result is also lexically clean, so
// the path an event reports is exactly the path acted on.
func absArg(fname, p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%s: empty path", fname)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("%s: path %q contains a NUL byte", fname, p)
	}
	abs, err := ospath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", fname, p, err)
	}
	return abs, nil
}

// pathArg unpacks the single path argument of fname.
func pathArg(b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (string, error) {
	var p string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &p); err != nil {
		return "", err
	}
	return absArg(b.Name(), p)
}

// osError names fname and path and keeps only the OS reason of err (an
// *os.PathError's message would repeat the path). The result wraps the
// reason, so errors.Is(err, fs.ErrNotExist) still holds.
func osError(fname, path string, err error) error {
	return fmt.Errorf("%s: %s: %w", fname, path, ospath.Reason(err))
}

// fmtAbort names the builtin in the error of an aborted event.
func fmtAbort(fname string, err error) error {
	return fmt.Errorf("%s: %w", fname, err)
}

// readFile raises open(abs, "r", ReadFlags) and reads the file.
func readFile(t *starlark.Thread, fname, abs string) ([]byte, error) {
	if err := audit.Raise(t, audit.Open, starlark.String(abs), starlark.String("r"), starlark.MakeInt(ReadFlags)); err != nil {
		return nil, fmtAbort(fname, err)
	}
	f, err := os.OpenFile(abs, ReadFlags, 0)
	if err != nil {
		return nil, osError(fname, abs, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, osError(fname, abs, err)
	} else if fi.IsDir() {
		return nil, osError(fname, abs, syscall.EISDIR)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxReadSize+1))
	if err != nil {
		return nil, osError(fname, abs, err)
	}
	if len(data) > MaxReadSize {
		return nil, osError(fname, abs, ErrTooLarge)
	}
	return data, nil
}

// fs.read(path) returns the content of a UTF-8 text file as a string.
func fsRead(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	abs, err := pathArg(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	data, err := readFile(t, b.Name(), abs)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, n := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			off += n
		}
		return nil, fmt.Errorf("%s: %s: not UTF-8 text (invalid byte at offset %d); use fs.read_bytes for binary content", b.Name(), abs, off)
	}
	return starlark.String(data), nil
}

// fs.read_bytes(path) returns the content of a file as bytes.
func fsReadBytes(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	abs, err := pathArg(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	data, err := readFile(t, b.Name(), abs)
	if err != nil {
		return nil, err
	}
	return starlark.Bytes(data), nil
}

func fsWrite(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	return writeFile(t, b, args, kwargs, "w", WriteFlags)
}

func fsAppend(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	return writeFile(t, b, args, kwargs, "a", AppendFlags)
}

// writeFile implements fs.write(path, data) and fs.append(path, data):
// data is a string or bytes, written as they are.
func writeFile(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, mode string, flags int) (starlark.Value, error) {
	var p string
	var v starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &p, "data", &v); err != nil {
		return nil, err
	}
	var data string
	switch v := v.(type) {
	case starlark.String:
		data = string(v)
	case starlark.Bytes:
		data = string(v)
	default:
		return nil, fmt.Errorf("%s: for parameter data: got %s, want string or bytes", b.Name(), v.Type())
	}
	abs, err := absArg(b.Name(), p)
	if err != nil {
		return nil, err
	}
	if err := audit.Raise(t, audit.Open, starlark.String(abs), starlark.String(mode), starlark.MakeInt(flags)); err != nil {
		return nil, fmtAbort(b.Name(), err)
	}
	f, err := os.OpenFile(abs, flags, FilePerm)
	if err != nil {
		return nil, osError(b.Name(), abs, err)
	}
	_, err = io.WriteString(f, data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, osError(b.Name(), abs, err)
	}
	return starlark.None, nil
}

// fs.exists(path) reports whether path names an existing file,
// following symbolic links. It fails, rather than guess, when the answer
// cannot be known (permission denied on a parent directory, say).
func fsExists(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	abs, err := pathArg(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	if err := audit.Raise(t, audit.Exists, starlark.String(abs)); err != nil {
		return nil, fmtAbort(b.Name(), err)
	}
	_, err = os.Stat(abs)
	switch {
	case err == nil:
		return starlark.True, nil
	case errors.Is(err, iofs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return starlark.False, nil
	}
	return nil, osError(b.Name(), abs, err)
}

// fs.listdir(path) returns the names in a directory, sorted.
func fsListdir(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	abs, err := pathArg(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	if err := audit.Raise(t, audit.Listdir, starlark.String(abs)); err != nil {
		return nil, fmtAbort(b.Name(), err)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, osError(b.Name(), abs, err)
	}
	names := make([]starlark.Value, len(entries))
	for i, e := range entries {
		names[i] = starlark.String(e.Name()) // os.ReadDir sorts by name
	}
	return starlark.NewList(names), nil
}

// fs.stat(path) returns struct(size, mode, mtime, is_dir, is_file),
// following symbolic links. mode is st_mode (type and permission bits,
// as Python's os.stat), mtime a time.time.
func fsStat(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	abs, err := pathArg(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	if err := audit.Raise(t, audit.Stat, starlark.String(abs)); err != nil {
		return nil, fmtAbort(b.Name(), err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, osError(b.Name(), abs, err)
	}
	var mode int64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		mode = int64(st.Mode)
	}
	return starlarkstruct.FromStringDict(starlarkstruct.Default, starlark.StringDict{
		"size":    starlark.MakeInt64(fi.Size()),
		"mode":    starlark.MakeInt64(mode),
		"mtime":   libtime.Time(fi.ModTime()),
		"is_dir":  starlark.Bool(fi.IsDir()),
		"is_file": starlark.Bool(fi.Mode().IsRegular()),
	}), nil
}

// fs.mkdir(path, parents=False) creates a directory (DirPerm before the
// umask). With parents=True it also creates missing parents, and an
// existing directory is not an error (mkdir -p).
//
// os.mkdir(path, mode) is raised for path before anything is looked up;
// with parents=True it is then raised again for each missing parent, top
// down, just before that parent is created.
func fsMkdir(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var p string
	var parents bool
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &p, "parents?", &parents); err != nil {
		return nil, err
	}
	abs, err := absArg(b.Name(), p)
	if err != nil {
		return nil, err
	}
	mode := starlark.MakeInt(DirPerm)
	if err := audit.Raise(t, audit.Mkdir, starlark.String(abs), mode, noFD); err != nil {
		return nil, fmtAbort(b.Name(), err)
	}
	if !parents {
		if err := os.Mkdir(abs, DirPerm); err != nil {
			return nil, osError(b.Name(), abs, err)
		}
		return starlark.None, nil
	}

	// Find the missing directories, deepest first.
	var missing []string
	for dir := abs; ; {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return nil, osError(b.Name(), dir, syscall.ENOTDIR)
			}
			break
		}
		if !errors.Is(err, iofs.ErrNotExist) {
			return nil, osError(b.Name(), dir, err)
		}
		missing = append(missing, dir)
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	for i := len(missing) - 1; i >= 0; i-- {
		dir := missing[i]
		if dir != abs {
			if err := audit.Raise(t, audit.Mkdir, starlark.String(dir), mode, noFD); err != nil {
				return nil, fmtAbort(b.Name(), err)
			}
		}
		if err := os.Mkdir(dir, DirPerm); err != nil {
			// Someone else made it meanwhile: fine, if it is a directory.
			if fi, serr := os.Stat(dir); errors.Is(err, iofs.ErrExist) && serr == nil && fi.IsDir() {
				continue
			}
			return nil, osError(b.Name(), dir, err)
		}
	}
	return starlark.None, nil
}

// fs.remove(path) removes a file (never a directory: unlink(2), not
// rmdir(2)).
func fsRemove(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	abs, err := pathArg(b, args, kwargs)
	if err != nil {
		return nil, err
	}
	if err := audit.Raise(t, audit.Remove, starlark.String(abs), noFD); err != nil {
		return nil, fmtAbort(b.Name(), err)
	}
	if err := syscall.Unlink(abs); err != nil {
		return nil, osError(b.Name(), abs, err)
	}
	return starlark.None, nil
}

// fs.rename(src, dst) renames src to dst, replacing a file at dst.
func fsRename(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var src, dst string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "src", &src, "dst", &dst); err != nil {
		return nil, err
	}
	absSrc, err := absArg(b.Name(), src)
	if err != nil {
		return nil, err
	}
	absDst, err := absArg(b.Name(), dst)
	if err != nil {
		return nil, err
	}
	if err := audit.Raise(t, audit.Rename, starlark.String(absSrc), starlark.String(absDst), noFD, noFD); err != nil {
		return nil, fmtAbort(b.Name(), err)
	}
	if err := os.Rename(absSrc, absDst); err != nil {
		return nil, osError(b.Name(), absSrc+" -> "+absDst, err)
	}
	return starlark.None, nil
}

// fs.glob(pattern) returns the sorted paths matching pattern (the syntax
// of Go's path/filepath.Match: *, ?, [...], \ escapes; ** is *). A
// relative pattern matches against the working directory and gives
// relative paths. glob.glob(pattern, False) carries the absolute,
// lexically clean pattern actually expanded.
func fsGlob(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var pattern string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "pattern", &pattern); err != nil {
		return nil, err
	}
	if pattern == "" {
		return nil, fmt.Errorf("%s: empty pattern", b.Name())
	}
	if strings.IndexByte(pattern, 0) >= 0 {
		return nil, fmt.Errorf("%s: pattern %q contains a NUL byte", b.Name(), pattern)
	}
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("%s: %q: %w", b.Name(), pattern, err)
	}
	abs, cwd := pattern, ""
	if !filepath.IsAbs(pattern) {
		var err error
		if cwd, err = ospath.WorkingDir(); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", b.Name(), pattern, err)
		}
		abs = strings.TrimSuffix(escapeGlob(cwd), "/") + "/" + pattern
	}
	// Lexically clean, and the clean pattern is what is expanded, so a
	// hook sees what is listed: "work/../../etc/*" is "/etc/*". (A ".."
	// in a pattern is literal; escaped or bracketed, "\.\." or "[.][.]",
	// it matches nothing, since directory listings have no "..".)
	abs = filepath.Clean(abs)
	if err := audit.Raise(t, audit.Glob, starlark.String(abs), starlark.False); err != nil {
		return nil, fmtAbort(b.Name(), err)
	}
	if err := audit.Raise(t, audit.Glob2, starlark.String(abs), starlark.False, starlark.None, starlark.None); err != nil {
		return nil, fmtAbort(b.Name(), err)
	}
	matches, err := filepath.Glob(abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %q: %w", b.Name(), abs, err)
	}
	out := make([]starlark.Value, 0, len(matches))
	if cwd != "" {
		for i, m := range matches {
			if rel, err := filepath.Rel(cwd, m); err == nil {
				matches[i] = rel
			}
		}
	}
	sort.Strings(matches)
	for _, m := range matches {
		out = append(out, starlark.String(m))
	}
	return starlark.NewList(out), nil
}

// escapeGlob quotes the characters that filepath.Match treats specially,
// so a working directory such as /srv/a[1] matches only itself.
func escapeGlob(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
