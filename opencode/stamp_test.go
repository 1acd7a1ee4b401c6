package opencode

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit"
)

func TestStamp(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	p := filepath.Join(dir, "x.star")
	os.WriteFile(p, []byte("x = 1\n"), 0o644)
	o := new(Opener)

	stamp := func(want Stamping) {
		t.Helper()
		d, rec := newDispatcher(t)
		did, sum, err := o.Stamp(d, p)
		if err != nil {
			t.Fatal(err)
		}
		if did != want {
			t.Errorf("Stamp did %v, want %v", did, want)
		}
		content, _ := os.ReadFile(p)
		if got := string(FormatStamp(sum)); got != hashOf(string(content)) {
			t.Errorf("Stamp returned hash %s, want %s", got, hashOf(string(content)))
		}
		ev, raised := rec.Find("sstar.trust")
		if raised != (want != Unchanged) {
			t.Errorf("sstar.trust raised: %v, want %v (events %v)", raised, want != Unchanged, rec.Names())
		}
		if raised && ev.Args().String() != fmt.Sprintf("(%q, %q)", p, hashOf(string(content))) {
			t.Errorf("sstar.trust%s", ev.Args())
		}
		v := make([]byte, 128)
		n, err := unix.Getxattr(p, DefaultXattrName, v)
		if err != nil || string(v[:n]) != hashOf(string(content)) {
			t.Errorf("stamp on disk %q, %v; want %s", v[:max(n, 0)], err, hashOf(string(content)))
		}
		if _, err := o.Verify(new(audit.Dispatcher), p); err != nil {
			t.Errorf("after Stamp: %v", err)
		}
	}
	stamp(Added)
	stamp(Unchanged)
	os.WriteFile(p, []byte("x = 2\n"), 0o644)
	stamp(Updated)
	setStamp(t, p, "not a hash")
	stamp(Updated)
	stamp(Unchanged)
}

func TestStampVetoedByHook(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	p := filepath.Join(dir, "x.star")
	os.WriteFile(p, []byte("x = 1\n"), 0o644)
	d := new(audit.Dispatcher)
	d.AddHook(func(ev audit.Event) error {
		if ev.Name == "sstar.trust" {
			return errors.New("no stamping here")
		}
		return nil
	})
	if _, _, err := new(Opener).Stamp(d, p); !strings.Contains(err.Error(), "no stamping here") {
		t.Errorf("Stamp with sstar.trust vetoed: %v", err)
	}
	if _, err := unix.Getxattr(p, DefaultXattrName, nil); !errors.Is(err, unix.ENODATA) {
		t.Errorf("a stamp was written although sstar.trust was vetoed (%v)", err)
	}
}

func TestStampRefusesWhatCannotBeCode(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.star")
	unix.Mkfifo(fifo, 0o644)
	big := filepath.Join(dir, "big.star")
	os.WriteFile(big, make([]byte, 11), 0o644)
	for _, tc := range []struct {
		path string
		o    *Opener
		want error
	}{
		{dir, new(Opener), ErrNotRegular},
		{fifo, new(Opener), ErrNotRegular},
		{"/dev/zero", new(Opener), ErrNotRegular},
		{big, &Opener{MaxSize: 10}, ErrTooLarge},
		{filepath.Join(dir, "missing.star"), new(Opener), ErrUnreadable},
	} {
		_, _, err := tc.o.Stamp(new(audit.Dispatcher), tc.path)
		var se *StampError
		if !errors.As(err, &se) || !errors.Is(err, tc.want) || !strings.HasPrefix(err.Error(), "cannot stamp "+tc.path+": ") {
			t.Errorf("Stamp(%s) = %v, want a StampError for %v", tc.path, err, tc.want)
		}
	}
}

func TestWalkCode(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.star", "notes.txt", "sub/b.star", "sub/deeper/c.star", "outside/d.star"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	tree := filepath.Join(dir, "tree")
	os.Mkdir(tree, 0o755)
	for _, f := range []string{"a.star", "notes.txt", "sub"} {
		os.Rename(filepath.Join(dir, f), filepath.Join(tree, f))
	}
	// A link inside the tree to a file outside it must not be followed.
	os.Symlink(filepath.Join(dir, "outside/d.star"), filepath.Join(tree, "link.star"))

	var got []string
	WalkCode(tree, func(p string) error {
		rel, _ := filepath.Rel(tree, p)
		got = append(got, rel)
		return nil
	})
	if want := "a.star sub/b.star sub/deeper/c.star"; strings.Join(got, " ") != want {
		t.Errorf("WalkCode(tree) = %q, want %q", got, want)
	}

	// A path named on its own is itself, whatever it is.
	got = nil
	WalkCode(filepath.Join(tree, "notes.txt"), func(p string) error { got = append(got, p); return nil })
	WalkCode(filepath.Join(tree, "link.star"), func(p string) error { got = append(got, p); return nil })
	if len(got) != 2 {
		t.Errorf("WalkCode of single paths gave %q", got)
	}
}

func TestParseStamp(t *testing.T) {
	good := hashOf("x")
	sum, err := ParseStamp([]byte(good))
	if err != nil || string(FormatStamp(sum)) != good {
		t.Errorf("ParseStamp(%s) = %x, %v", good, sum, err)
	}
	for _, bad := range []string{"", good[:63], good + "0", strings.ToUpper(good), " " + good[1:], good[:63] + "\n", good[:62] + "0x", good[:63] + "\x00"} {
		if _, err := ParseStamp([]byte(bad)); err == nil {
			t.Errorf("ParseStamp(%q) accepted", bad)
		}
	}
}
