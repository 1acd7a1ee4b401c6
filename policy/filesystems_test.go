package policy_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/sstar-project/sstar/policy"
)

// Only the system policy widens the file systems code may come from, and
// only by types sstar knows; the opener it describes then accepts them.
func TestCodeFileSystems(t *testing.T) {
	s := policy.Defaults()
	if err := run(t, `policy.code_file_systems("nfs", "fuse", "nfs")`, true, &s); err != nil {
		t.Fatal(err)
	}
	if want := []string{"nfs", "fuse"}; !slices.Equal(s.FileSystems, want) || !slices.Equal(s.Opener().FileSystems, want) {
		t.Errorf("FileSystems %v, opener's %v; want %v", s.FileSystems, s.Opener().FileSystems, want)
	}
	for src, want := range map[string]string{
		`policy.code_file_systems("proc")`:     `"proc" is not a file system type sstar knows`,
		`policy.code_file_systems(1)`:          `1 is not a file system type sstar knows`,
		`policy.code_file_systems(fs = "9p")`:  `unexpected keyword argument "fs"`,
		`policy.code_file_systems("9p") # add`: `only the system policy`,
	} {
		s := policy.Defaults()
		system := !strings.Contains(src, "# add")
		err := run(t, src, system, &s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
		if len(s.FileSystems) != 0 {
			t.Errorf("%s: changed the settings: %v", src, s.FileSystems)
		}
	}
}
