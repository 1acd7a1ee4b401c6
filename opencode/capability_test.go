package opencode

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit"
)

// Under a trusted.* stamp, a process without CAP_SYS_ADMIN sees no
// attribute at all (the kernel answers ENODATA). It is told that, not
// "no stamp, run sstar trust", which would fail for the same reason.
// Capabilities are per thread, so the test drops CAP_SYS_ADMIN from the
// effective set of one locked thread, which then ends with its goroutine.
func TestTrustedStampHiddenWithoutCapSysAdmin(t *testing.T) {
	if !hasCapSysAdmin() {
		t.Skip("needs CAP_SYS_ADMIN (root) to write a trusted.* stamp")
	}
	dir := t.TempDir()
	o := &Opener{XattrName: "trusted.sstar.sha256"}
	p := writeStampedWith(t, o, dir, "x.star", "x = 1\n")
	if _, err := o.Verify(new(audit.Dispatcher), p); err != nil {
		t.Fatalf("with CAP_SYS_ADMIN: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		data[capSysAdmin/32].Effective &^= 1 << (capSysAdmin % 32)
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		if hasCapSysAdmin() {
			errc <- errors.New("CAP_SYS_ADMIN still effective")
			return
		}
		_, err := o.Verify(new(audit.Dispatcher), p)
		errc <- err
	}()
	err := <-errc
	if !errors.Is(err, ErrStampHidden) {
		t.Fatalf("without CAP_SYS_ADMIN: %v, want ErrStampHidden", err)
	}
	for _, want := range []string{"only to processes with CAP_SYS_ADMIN", "run sstar as root", "catalog"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "sstar trust") {
		t.Errorf("%q advises sstar trust, which needs CAP_SYS_ADMIN too", err)
	}
}

func writeStampedWith(t *testing.T, o *Opener, dir, name, content string) string {
	t.Helper()
	p := dir + "/" + name
	writeTree(t, dir, map[string]string{name: content})
	if _, _, err := o.Stamp(new(audit.Dispatcher), p); err != nil {
		t.Skipf("cannot write %s here: %v", o.XattrName, err)
	}
	return p
}
