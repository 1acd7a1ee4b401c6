// Package ospath gives paths as the kernel names them, and the reason the
// kernel gave when an operation on one failed, for messages that name the
// path once.
//
// sstar does not let its environment choose what a path means: Abs reads
// the working directory from the kernel, never from $PWD.
package ospath

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Abs returns an absolute, lexically clean form of path, a relative path
// joined to the working directory as the kernel names it. It does not use
// filepath.Abs, whose os.Getwd prefers $PWD when that names the same
// directory through other links: the environment must not choose which
// file "../lib.star" is, nor which path an event reports.
func Abs(path string) (string, error) {
	if filepath.IsAbs(path) {
		return filepath.Clean(path), nil
	}
	wd, err := WorkingDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(wd, path), nil
}

// WorkingDir returns the working directory as the kernel names it (not
// os.Getwd, which prefers $PWD).
func WorkingDir() (string, error) {
	wd, err := syscall.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	return wd, nil
}

// Reason returns the operating system's reason inside err's
// *os.PathError, *os.LinkError or *os.SyscallError (whose messages repeat
// the operation and the path), or err if it has none. The reason is
// usually a syscall.Errno, so errors.Is(Reason(err), fs.ErrNotExist) holds
// where errors.Is(err, fs.ErrNotExist) did.
func Reason(err error) error {
	var pe *os.PathError
	var le *os.LinkError
	var se *os.SyscallError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	case errors.As(err, &se):
		return se.Err
	}
	return err
}
