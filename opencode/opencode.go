// Package opencode is sstar's "open for execution" path: it turns a path
// into the exact bytes that may be compiled, or a refusal.
//
// Every file that becomes code (the main script, every loaded module,
// every policy file) is opened here, once, and the bytes returned are the
// bytes that were checked: nothing reopens the file by name afterwards.
package opencode

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
)

// DefaultMaxSize is the largest code file accepted unless configured
// otherwise.
const DefaultMaxSize = 4 << 20

// Code is a file's verified content.
type Code struct {
	Path   string            // absolute path the code was opened by
	Data   []byte            // the exact bytes that were checked
	SHA256 [sha256.Size]byte // SHA-256 of Data
}

// Refusals. Every error Open returns wraps exactly one of these.
var (
	ErrNotRegular = errors.New("not a regular file")
	ErrTooLarge   = errors.New("file too large")
	ErrUnreadable = errors.New("unreadable")
)

// A RefusedError is a refusal to treat a file as code.
type RefusedError struct {
	Path   string // absolute path
	Reason error  // one of the Err* values, possibly wrapped with detail
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused to run %s: %v", e.Path, e.Reason)
}

func (e *RefusedError) Unwrap() error { return e.Reason }

// Opener opens code files. The zero value uses DefaultMaxSize.
type Opener struct {
	MaxSize int64 // largest accepted file in bytes; 0 means DefaultMaxSize
}

// OpenCode opens path as code for thread t, raising sstar.open_code
// first and sstar.code_integrity_failure for any refusal.
func (o *Opener) OpenCode(t *starlark.Thread, path string) (Code, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Code{}, &RefusedError{Path: path, Reason: fmt.Errorf("%w: %v", ErrUnreadable, err)}
	}
	if err := audit.Raise(t, audit.OpenCode, starlark.String(abs)); err != nil {
		return Code{}, err
	}
	code, rerr := o.open(abs)
	if rerr != nil {
		if err := audit.Raise(t, audit.CodeIntegrityFailure, starlark.String(abs), starlark.String(rerr.Reason.Error())); err != nil {
			return Code{}, err
		}
		return Code{}, rerr
	}
	return code, nil
}

func (o *Opener) open(abs string) (Code, *RefusedError) {
	refuse := func(reason error) (Code, *RefusedError) {
		return Code{}, &RefusedError{Path: abs, Reason: reason}
	}
	f, err := os.OpenFile(abs, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	if err != nil {
		return refuse(fmt.Errorf("%w: %v", ErrUnreadable, unwrapPath(err)))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return refuse(fmt.Errorf("%w: %v", ErrUnreadable, unwrapPath(err)))
	}
	if !fi.Mode().IsRegular() {
		return refuse(fmt.Errorf("%w: it is %s", ErrNotRegular, describe(fi.Mode())))
	}
	max := o.MaxSize
	if max <= 0 {
		max = DefaultMaxSize
	}
	if fi.Size() > max {
		return refuse(fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, fi.Size(), max))
	}
	// Read at most max+1 bytes: a file that grows after fstat is caught.
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return refuse(fmt.Errorf("%w: %v", ErrUnreadable, unwrapPath(err)))
	}
	if int64(len(data)) > max {
		return refuse(fmt.Errorf("%w: grew past the limit of %d bytes while read", ErrTooLarge, max))
	}
	return Code{Path: abs, Data: data, SHA256: sha256.Sum256(data)}, nil
}

// unwrapPath drops the *PathError wrapper, whose path the refusal already
// names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// describe names a file type for a refusal message.
func describe(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file (" + m.Type().String() + ")"
}
