package opencode

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/audittest"
)

// testKey is a signer key and its verifier key.
type testKey struct{ skey, vkey string }

func newKey(t testing.TB, name string) testKey {
	t.Helper()
	s, v, err := GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{s, v}
}

// writeTree writes files (relative path: content) under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// signTree writes dir/sstar.catalog listing files with their content's
// hashes, signed by keys (each adding its signature).
func signTree(t testing.TB, dir string, text CatalogText, files map[string]string, keys ...testKey) []byte {
	t.Helper()
	for p, content := range files {
		text.Files = append(text.Files, CatalogEntry{Path: p, SHA256: sha256.Sum256([]byte(content))})
	}
	formatted, err := text.Format()
	if err != nil {
		t.Fatal(err)
	}
	var msg []byte
	for _, k := range keys {
		if msg, err = SignCatalog(formatted, k.skey, msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, CatalogName), msg, 0o644); err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestCatalogVouches(t *testing.T) {
	dir := t.TempDir()
	ci := newKey(t, "ci")
	files := map[string]string{"main.star": "print(1)\n", "lib/a.star": "a = 1\n", "lib/deep/b.star": "b = 2\n"}
	writeTree(t, dir, files)
	signTree(t, dir, CatalogText{Version: 4}, files, ci)

	o := &Opener{Require: RequireCatalog, Keys: []string{ci.vkey}}
	d, rec := newDispatcher(t)
	for _, p := range []string{"main.star", "lib/a.star", "lib/deep/b.star"} {
		code, err := o.Verify(d, filepath.Join(dir, p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if code.Catalog == nil || code.Catalog.Version != 4 || code.Catalog.Path != filepath.Join(dir, CatalogName) || code.Unenforced != nil {
			t.Errorf("%s: Code.Catalog = %+v, Unenforced = %v", p, code.Catalog, code.Unenforced)
		}
		if string(code.Data) != files[p] {
			t.Errorf("%s: data %q", p, code.Data)
		}
	}
	// Checked once per Opener: one sstar.catalog event for three files,
	// raised after the first file's exec check, before it is returned.
	cats := rec.Named("sstar.catalog")
	if len(cats) != 1 {
		t.Fatalf("%d sstar.catalog events, want 1: %v", len(cats), rec.Names())
	}
	names := strings.Join(rec.Names(), " ")
	if !strings.HasPrefix(names, "sstar.open_code sstar.exec_check sstar.catalog sstar.open_code") {
		t.Errorf("events %s: want the catalog recorded with the first file", names)
	}
	ev := cats[0]
	if got := audittest.StringArg(ev, 0); got != filepath.Join(dir, CatalogName) {
		t.Errorf("sstar.catalog path %q", got)
	}
	if got := ev.Args()[2].String(); got != "4" {
		t.Errorf("sstar.catalog version %s", got)
	}
	if got := ev.Args()[3].String(); !strings.HasPrefix(got, `("ci+`) {
		t.Errorf("sstar.catalog signers %s", got)
	}
	if got := audittest.StringArg(ev, 5); got != "no state_dir: rollback is not detected" {
		t.Errorf("sstar.catalog state %q", got)
	}
}

// Each catalog refusal is typed, names the catalog, and is recorded.
func TestCatalogRefusals(t *testing.T) {
	ci, other, third := newKey(t, "ci"), newKey(t, "other"), newKey(t, "third")
	files := map[string]string{"main.star": "print(1)\n"}
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string)
		thr   int // threshold
		want  error
		msg   string
	}{
		{"no catalog", func(t *testing.T, dir string) {}, 0, ErrNoCatalog, "there is no sstar.catalog in"},
		{"not listed", func(t *testing.T, dir string) {
			signTree(t, dir, CatalogText{Version: 1}, map[string]string{"other.star": "x"}, ci)
		}, 0, ErrNotListed, "it does not list main.star"},
		{"hash differs", func(t *testing.T, dir string) {
			signTree(t, dir, CatalogText{Version: 1}, map[string]string{"main.star": "print(2)\n"}, ci)
		}, 0, ErrCatalogMismatch, "it lists main.star with sha256 "},
		{"unknown key", func(t *testing.T, dir string) {
			signTree(t, dir, CatalogText{Version: 1}, files, third)
		}, 0, ErrUnknownKey, "signed only by third+"},
		{"edited after signing", func(t *testing.T, dir string) {
			msg := signTree(t, dir, CatalogText{Version: 1}, files, ci)
			edited := strings.Replace(string(msg), "version 1", "version 7", 1)
			os.WriteFile(filepath.Join(dir, CatalogName), []byte(edited), 0o644)
		}, 0, ErrNoTrustedSignature, "does not verify: the catalog was changed after it was signed"},
		{"not enough", func(t *testing.T, dir string) {
			signTree(t, dir, CatalogText{Version: 1}, files, ci)
		}, 2, ErrNotEnoughSignatures, "signed by 1 trusted key (ci+"},
		{"expired", func(t *testing.T, dir string) {
			signTree(t, dir, CatalogText{Version: 1, Expires: time.Now().Add(-time.Hour).UTC().Truncate(time.Second)}, files, ci, other)
		}, 0, ErrExpired, "version 1 expired at"},
		{"malformed", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, CatalogName), []byte("sstar catalog v1\nversion 1\n"), 0o644)
		}, 0, ErrMalformedCatalog, "not a signed note"},
		{"directory", func(t *testing.T, dir string) {
			os.Mkdir(filepath.Join(dir, CatalogName), 0o755)
		}, 0, ErrNotRegular, "it is a directory"},
		{"dangling link", func(t *testing.T, dir string) {
			os.Symlink("nowhere", filepath.Join(dir, CatalogName))
		}, 0, ErrUnreadable, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, files)
			c.setup(t, dir)
			o := &Opener{Require: RequireCatalog, Keys: []string{ci.vkey, other.vkey}, Threshold: c.thr}
			d, rec := newDispatcher(t)
			p := filepath.Join(dir, "main.star")
			_, err := o.Verify(d, p)
			re := refusal(t, rec, err, p, c.want)
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("refusal %q does not say %q", err, c.msg)
			}
			var ce *CatalogError
			if !errors.As(re.Reason, &ce) {
				t.Errorf("reason %v is not a *CatalogError", re.Reason)
			}
			if _, ok := rec.Find("compile"); ok {
				t.Error("compiled")
			}
		})
	}
}

// A catalog in a parent vouches for files below it; the nearest one is
// the one that counts, even when it refuses.
func TestNearestCatalogCounts(t *testing.T) {
	dir := t.TempDir()
	ci, other := newKey(t, "ci"), newKey(t, "other")
	files := map[string]string{"app/main.star": "m = 1\n", "app/sub/s.star": "s = 1\n"}
	writeTree(t, dir, files)
	signTree(t, dir, CatalogText{Version: 1}, files, ci)
	o := &Opener{Require: RequireCatalog, Keys: []string{ci.vkey}}
	if _, err := o.Verify(new(audit.Dispatcher), filepath.Join(dir, "app/sub/s.star")); err != nil {
		t.Fatal(err)
	}
	// A nearer catalog by an untrusted key shadows the good one.
	signTree(t, filepath.Join(dir, "app/sub"), CatalogText{Version: 1}, map[string]string{"s.star": "s = 1\n"}, other)
	o = &Opener{Require: RequireCatalog, Keys: []string{ci.vkey}}
	_, err := o.Verify(new(audit.Dispatcher), filepath.Join(dir, "app/sub/s.star"))
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), filepath.Join(dir, "app/sub", CatalogName)) {
		t.Errorf("err = %v, want the nearer catalog's refusal", err)
	}
	if _, err := o.Verify(new(audit.Dispatcher), filepath.Join(dir, "app/main.star")); err != nil {
		t.Errorf("the parent's catalog still vouches for app/main.star: %v", err)
	}
}

func TestRequireEither(t *testing.T) {
	dir := t.TempDir()
	needXattrs(t, dir)
	ci := newKey(t, "ci")
	stamped := writeStamped(t, dir, "stamped.star", "s = 1\n")
	files := map[string]string{"listed.star": "l = 1\n", "neither.star": "n = 1\n"}
	writeTree(t, dir, files)
	signTree(t, dir, CatalogText{Version: 1}, map[string]string{"listed.star": "l = 1\n"}, ci)
	o := &Opener{Require: RequireEither, Keys: []string{ci.vkey}}
	code, err := o.Verify(new(audit.Dispatcher), stamped)
	if err != nil || code.Catalog != nil {
		t.Errorf("stamped: %v, catalog %v", err, code.Catalog)
	}
	code, err = o.Verify(new(audit.Dispatcher), filepath.Join(dir, "listed.star"))
	if err != nil || code.Catalog == nil {
		t.Errorf("listed: %v, catalog %v", err, code.Catalog)
	}
	_, err = o.Verify(new(audit.Dispatcher), filepath.Join(dir, "neither.star"))
	if !errors.Is(err, ErrNotListed) || !strings.Contains(err.Error(), "nor does a stamp vouch for it (no stamp") {
		t.Errorf("neither: %v", err)
	}
}

func TestAuditOnly(t *testing.T) {
	dir := t.TempDir()
	ci := newKey(t, "ci")
	writeTree(t, dir, map[string]string{"main.star": "print(1)\n"})
	o := &Opener{Require: RequireCatalog, Keys: []string{ci.vkey}, AuditOnly: true}
	d, rec := newDispatcher(t)
	p := filepath.Join(dir, "main.star")
	code, err := o.Verify(d, p)
	if err != nil || string(code.Data) != "print(1)\n" {
		t.Fatalf("Verify = %q, %v; want the content, not enforced", code.Data, err)
	}
	if code.Unenforced == nil || !errors.Is(code.Unenforced, ErrNoCatalog) {
		t.Errorf("Unenforced = %v", code.Unenforced)
	}
	ev, ok := rec.Find("sstar.code_integrity_failure")
	if !ok || ev.Args()[2].String() != "False" {
		t.Errorf("sstar.code_integrity_failure = %v", ev)
	}
	// What is not about vouching is still enforced.
	if err := os.Mkdir(filepath.Join(dir, "d.star"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Verify(d, filepath.Join(dir, "d.star")); !errors.Is(err, ErrNotRegular) {
		t.Errorf("directory in audit mode: %v", err)
	}
}

func TestBadKeysAreConfigErrors(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"main.star": "x = 1\n"})
	ci := newKey(t, "ci")
	for _, o := range []*Opener{
		{Require: RequireCatalog},
		{Require: RequireCatalog, Keys: []string{"not a key"}},
		{Require: RequireCatalog, Keys: []string{ci.vkey, ci.vkey}},
		{Require: RequireCatalog, Keys: []string{ci.vkey}, Threshold: 2},
		{Require: RequireCatalog, Keys: []string{ci.skey}},
		{Require: Require(9), Keys: []string{ci.vkey}},
		{Require: RequireCatalog, Keys: []string{ci.vkey}, AuditOnly: true, Threshold: -1},
	} {
		if _, err := o.Verify(new(audit.Dispatcher), filepath.Join(dir, "main.star")); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err = %v, want ErrConfig (never run, not even in audit mode)", o.Keys, err)
		}
	}
}

func TestRollback(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("needs root: state files must be root's")
	}
	ci := newKey(t, "ci")
	files := map[string]string{"main.star": "x = 1\n"}
	writeTree(t, dir, files)
	p := filepath.Join(dir, "main.star")
	open := func() (*Catalog, error) {
		o := &Opener{Require: RequireCatalog, Keys: []string{ci.vkey}, StateDir: state}
		code, err := o.Verify(new(audit.Dispatcher), p)
		return code.Catalog, err
	}
	signTree(t, dir, CatalogText{Version: 5}, files, ci)
	if cat, err := open(); err != nil || cat.State != "recorded version 5 (was none)" {
		t.Fatalf("v5: %v, %+v", err, cat)
	}
	if cat, err := open(); err != nil || cat.State != "version 5 is the highest accepted" {
		t.Fatalf("v5 again: %v, %+v", err, cat)
	}
	signTree(t, dir, CatalogText{Version: 4}, files, ci)
	if _, err := open(); !errors.Is(err, ErrRolledBack) {
		t.Fatalf("v4 after v5: %v", err)
	}
	// The same version with other text is refused too.
	signTree(t, dir, CatalogText{Version: 5, Expires: time.Now().Add(time.Hour).UTC().Truncate(time.Second)}, files, ci)
	if _, err := open(); !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "with other content") {
		t.Fatalf("other v5: %v", err)
	}
	signTree(t, dir, CatalogText{Version: 6}, files, ci)
	if cat, err := open(); err != nil || cat.State != "recorded version 6 (was 5)" {
		t.Fatalf("v6: %v, %+v", err, cat)
	}
	// A state file others could write refuses, rather than being trusted.
	entries, _ := os.ReadDir(state)
	for _, e := range entries {
		if e.Name() != "lock" {
			os.Chmod(filepath.Join(state, e.Name()), 0o666)
		}
	}
	if _, err := open(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "writable only by root") {
		t.Fatalf("unsafe state: %v", err)
	}
}

func TestCatalogTextRoundTrip(t *testing.T) {
	c := CatalogText{Version: 12, Expires: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), Files: []CatalogEntry{
		{Path: "b.star", SHA256: sha256.Sum256([]byte("b"))},
		{Path: "a dir/é.star", SHA256: sha256.Sum256([]byte("a"))},
	}}
	text, err := c.Format()
	if err != nil {
		t.Fatal(err)
	}
	want := "sstar catalog v1\nversion 12\nexpires 2030-01-02T03:04:05Z\n" +
		hexSum(sha256.Sum256([]byte("a"))) + "  a dir/é.star\n" +
		hexSum(sha256.Sum256([]byte("b"))) + "  b.star\n"
	if text != want {
		t.Fatalf("Format =\n%s\nwant\n%s", text, want)
	}
	back, err := ParseCatalogText(text)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Format()
	if again != text {
		t.Errorf("round trip:\n%s", again)
	}
	for _, bad := range []string{
		"", "sstar catalog v2\nversion 1\n", "sstar catalog v1\n", "sstar catalog v1\nversion 01\n",
		"sstar catalog v1\nversion 1\nexpires 2030-01-02T03:04:05+01:00\n",
		"sstar catalog v1\nversion 1\nexpires 2030-01-02T03:04:05.5Z\n",
		"sstar catalog v1\nversion 1\n" + hexSum(sha256.Sum256(nil)) + " x.star\n",
		"sstar catalog v1\nversion 1\n" + strings.ToUpper(hexSum(sha256.Sum256(nil))) + "  x.star\n",
		"sstar catalog v1\nversion 1\n" + hexSum(sha256.Sum256(nil)) + "  ../x.star\n",
		"sstar catalog v1\nversion 1\n" + hexSum(sha256.Sum256(nil)) + "  /x.star\n",
		"sstar catalog v1\nversion 1\n" + hexSum(sha256.Sum256(nil)) + "  a//x.star\n",
		"sstar catalog v1\nversion 1\n" + hexSum(sha256.Sum256(nil)) + "  b.star\n" + hexSum(sha256.Sum256(nil)) + "  a.star\n",
		"sstar catalog v1\nversion 1\n" + hexSum(sha256.Sum256(nil)) + "  a.star\n" + hexSum(sha256.Sum256(nil)) + "  a.star\n",
		"sstar catalog v1\nversion 1\n\n",
		"sstar catalog v1\nversion 1",
	} {
		if _, err := ParseCatalogText(bad); !errors.Is(err, ErrMalformedCatalog) {
			t.Errorf("ParseCatalogText(%q) = %v, want ErrMalformedCatalog", bad, err)
		}
	}
}

// Threshold signing: a second key adds its signature; the first stays.
func TestSignCatalogAddsSignatures(t *testing.T) {
	a, b := newKey(t, "a"), newKey(t, "b")
	text, _ := (&CatalogText{Version: 1}).Format()
	one, err := SignCatalog(text, a.skey, nil)
	if err != nil {
		t.Fatal(err)
	}
	two, err := SignCatalog(text, b.skey, one)
	if err != nil {
		t.Fatal(err)
	}
	_, signers, err := CatalogSignatures(two)
	if err != nil || len(signers) != 2 || !strings.HasPrefix(signers[0], "a+") || !strings.HasPrefix(signers[1], "b+") {
		t.Fatalf("signers %v, %v", signers, err)
	}
	k, err := NewKeyring([]string{a.vkey, b.vkey}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, got, _, err := k.verify(two); err != nil || len(got) != 2 {
		t.Errorf("verify: %v, %v", got, err)
	}
	other, _ := (&CatalogText{Version: 2}).Format()
	if _, err := SignCatalog(other, b.skey, one); err == nil {
		t.Error("added a signature over other text")
	}
}
