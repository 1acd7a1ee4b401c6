package opencode

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// WalkCode's recursion (filepath.WalkDir's, once per directory level) is
// bounded by PATH_MAX: a tree nested deeper than a path can name is
// walked down to that depth, the directory past it is reported to fn
// with ENAMETOOLONG, and the walk returns.
func TestWalkCodeDeepTree(t *testing.T) {
	root := t.TempDir()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	const levels = 3000 // "/d" each: 6000 bytes, past PATH_MAX
	for range levels {
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	unix.Close(fd)
	t.Cleanup(func() { removeDeep(t, root) })

	var reported []string
	err = WalkCode(root, func(p string) error {
		reported = append(reported, p)
		if _, err := unix.Open(p, unix.O_RDONLY, 0); !errors.Is(err, syscall.ENAMETOOLONG) {
			t.Errorf("fn called for %d bytes of path, open: %v", len(p), err)
		}
		return nil
	})
	if err != nil || len(reported) != 1 {
		t.Fatalf("WalkCode = %v, reported %d paths", err, len(reported))
	}
	if depth := strings.Count(strings.TrimPrefix(reported[0], root), "/d"); depth >= levels || len(reported[0]) < unix.PathMax {
		t.Errorf("reported at depth %d, %d bytes", depth, len(reported[0]))
	}
}

// removeDeep removes a tree nested past PATH_MAX, which os.RemoveAll
// cannot name: from the bottom up, through descriptors.
func removeDeep(t *testing.T, root string) {
	var fds []int
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	for err == nil {
		fds = append(fds, fd)
		fd, err = unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	for i := len(fds) - 1; i >= 0; i-- {
		if i < len(fds)-1 {
			if err := unix.Unlinkat(fds[i], "d", unix.AT_REMOVEDIR); err != nil {
				t.Error(err)
			}
		}
		unix.Close(fds[i])
	}
}
