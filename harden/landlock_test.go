package harden

import (
	"strings"
	"testing"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// With require, a grant the kernel cannot enforce (here a path that does
// not exist, which no kernel can make a rule of) is an error, and Confine
// returns before restricting anything: this test process stays
// unconfined. A missing path marked IfExists is no gap. The restriction
// itself is tested on real children by the stories policy_allow*.txt
// (cmd/sstar), each in a process of its own.
func TestConfineRequireRefusesGaps(t *testing.T) {
	if ABI() == 0 {
		t.Skip("needs a kernel with Landlock")
	}
	c := Confinement{Handled: Read | Write, Paths: []PathRule{
		{Path: t.TempDir(), Access: Read},
		{Path: "/nonexistent/sstar-grant", Access: Write},
		{Path: "/nonexistent/sstar-loader", Access: Read, IfExists: true},
	}}
	out, err := Confine(c, true)
	if err == nil || !strings.Contains(err.Error(), `kernel="require"`) || !strings.Contains(err.Error(), "/nonexistent/sstar-grant: the kernel grants only existing paths") {
		t.Fatalf("err = %v", err)
	}
	if out.ABI != ABI() || len(out.NotEnforced) != 1 || len(out.Rules) == 0 || !strings.HasPrefix(out.Rules[0], "read ") {
		t.Fatalf("outcome = %+v", out)
	}
}

// Nothing handled: nothing to restrict, nothing recorded as missing.
func TestConfineNothing(t *testing.T) {
	out, err := Confine(Confinement{}, true)
	if err != nil || len(out.Rules) != 0 || len(out.NotEnforced) != 0 {
		t.Fatalf("Confine(nothing) = %+v, %v", out, err)
	}
}

func TestAccessRights(t *testing.T) {
	if Exec.rights()&fileRights != Exec.rights() {
		t.Errorf("exec rights %v are not all file rights", Exec.rights())
	}
	// exec= alone leaves reading alone; with read= it is restricted.
	if Exec.handled()&ll.AccessFSReadFile != 0 || (Read|Exec).handled()&ll.AccessFSReadFile == 0 {
		t.Errorf("handled: exec %v, read+exec %v", Exec.handled(), (Read | Exec).handled())
	}
	if (Read | Write | Exec).String() != "read+write+exec" {
		t.Errorf("String = %q", (Read | Write | Exec).String())
	}
}
