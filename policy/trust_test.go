package policy_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sstar-project/sstar/opencode"
	"github.com/sstar-project/sstar/policy"
)

func verifierKey(t *testing.T, name string) string {
	t.Helper()
	_, v, err := opencode.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestTrustCatalogSettings(t *testing.T) {
	a, b := verifierKey(t, "a"), verifierKey(t, "b")
	state := t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the state directory must be root's")
	}
	if err := os.Chmod(state, 0o755); err != nil {
		t.Fatal(err)
	}
	s := policy.Defaults()
	err := run(t, `
policy.trust(keys = ["`+a+`", "`+b+`"], threshold = 2)
policy.trust(require = "either", state_dir = "`+state+`", mode = "audit")
`, true, &s)
	if err != nil {
		t.Fatal(err)
	}
	o := s.Opener()
	if o.Require != opencode.RequireEither || len(o.Keys) != 2 || o.Threshold != 2 || o.StateDir != state || !o.AuditOnly {
		t.Errorf("opener = %+v", o)
	}
}

func TestTrustCatalogSettingsRefused(t *testing.T) {
	a := verifierKey(t, "a")
	dir := t.TempDir()
	for _, c := range []struct{ src, want string }{
		{`policy.trust(require = "catalog")`, `require="catalog" needs keys=[...]`},
		{`policy.trust(require = "signatures")`, `require: want "stamp", "catalog" or "either"`},
		{`policy.trust(keys = ["not a key"])`, `is not a verifier key`},
		{`policy.trust(keys = ["PRIVATE+KEY+a+00000000+AAAA"])`, `key 1 is a signer key, which is secret`},
		{`policy.trust(keys = ["` + a + `", "` + a + `"])`, `is listed twice`},
		{`policy.trust(keys = ["` + a + `"], threshold = 2)`, `threshold 2: want 1 to 1`},
		{`policy.trust(keys = ["` + a + `"], threshold = 0)`, `threshold must be a number of keys from 1`},
		{`policy.trust(keys = [1])`, `keys must be a list of verifier keys`},
		{`policy.trust(mode = "permissive")`, `mode must be "enforce" or "audit"`},
		{`policy.trust(state_dir = "relative")`, `must be an absolute path`},
		{`policy.trust(state_dir = "` + filepath.Join(dir, "missing") + `")`, `create it: install -d`},
	} {
		s := policy.Defaults()
		err := run(t, c.src, true, &s)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.src, err, c.want)
		}
		if s.Require != opencode.RequireStamp || s.Keys != nil || s.AuditOnly {
			t.Errorf("%s: a refused call changed the settings: %+v", c.src, s)
		}
	}
	// A state directory others can write could forge versions, sticky or not.
	if os.Geteuid() == 0 {
		unsafe := filepath.Join(dir, "unsafe")
		os.Mkdir(unsafe, 0o755)
		os.Chmod(unsafe, 0o777|os.ModeSticky)
		s := policy.Defaults()
		if err := run(t, `policy.trust(state_dir = "`+unsafe+`")`, true, &s); err == nil || !strings.Contains(err.Error(), "writable only by root") {
			t.Errorf("sticky, world-writable state_dir: %v", err)
		}
	}
	// Additive policies may not touch any of it.
	s := policy.Defaults()
	if err := run(t, `policy.trust(mode = "audit")`, false, &s); err == nil || !strings.Contains(err.Error(), "only the system policy") {
		t.Errorf("additive policy set mode: %v", err)
	}
}
