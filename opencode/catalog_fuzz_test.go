package opencode

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParseCatalogText: any text either parses and is then in the one
// spelling Format writes, or is refused as ErrMalformedCatalog; never a
// panic.
func FuzzParseCatalogText(f *testing.F) {
	good, _ := (&CatalogText{Version: 3, Expires: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC), Files: []CatalogEntry{
		{Path: "a.star", SHA256: sha256.Sum256([]byte("a"))}, {Path: "lib/b.star", SHA256: sha256.Sum256([]byte("b"))},
	}}).Format()
	f.Add(good)
	f.Add("sstar catalog v1\nversion 0\n")
	f.Add("sstar catalog v1\nversion 18446744073709551615\n")
	f.Add("sstar catalog v1\nversion 18446744073709551616\n")
	f.Add(strings.Replace(good, "lib/b.star", "lib/../b.star", 1))
	f.Add(strings.Replace(good, "2031", "0031", 1))
	for _, path := range []string{"lib/", "lib//b.star", "./b.star", "lib/\x01.star", "lib/\xff.star", "/b.star", "a b/c.star"} {
		f.Add(strings.Replace(good, "lib/b.star", path, 1))
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseCatalogText(text)
		if err != nil {
			if !errors.Is(err, ErrMalformedCatalog) {
				t.Fatalf("ParseCatalogText(%q): %v is not ErrMalformedCatalog", text, err)
			}
			return
		}
		again, err := c.Format()
		if err != nil {
			t.Fatalf("ParseCatalogText(%q) accepted what Format refuses: %v", text, err)
		}
		if again != text {
			t.Fatalf("ParseCatalogText(%q) formats back as %q", text, again)
		}
	})
}

// fixedRand is a deterministic key source, so the fuzz corpus keeps
// meaning the same keys.
type fixedRand byte

func (r fixedRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r) + byte(i)
	}
	return len(p), nil
}

// FuzzVerifyCatalog feeds arbitrary bytes to the catalog check of a
// keyring that trusts two keys with a threshold of one. It never panics,
// every refusal is one of the catalog refusals, and nothing verifies
// unless its text is one that was really signed by a trusted key here:
// whatever the fuzzer changes, a malformed or altered note never
// verifies.
func FuzzVerifyCatalog(f *testing.F) {
	a, av, _ := GenerateKey(fixedRand(1), "a")
	b, bv, _ := GenerateKey(fixedRand(2), "b")
	u, _, _ := GenerateKey(fixedRand(3), "untrusted")
	k, err := NewKeyring([]string{av, bv}, 1)
	if err != nil {
		f.Fatal(err)
	}
	signed := map[string]bool{}
	for _, c := range []CatalogText{
		{Version: 1},
		{Version: 2, Files: []CatalogEntry{{Path: "main.star", SHA256: sha256.Sum256([]byte("m"))}}},
		{Version: 9, Expires: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC), Files: []CatalogEntry{{Path: "x/y.star"}}},
	} {
		text, _ := c.Format()
		signed[text] = true
		one, _ := SignCatalog(text, a, nil)
		two, _ := SignCatalog(text, b, one)
		bad, _ := SignCatalog(text, u, nil)
		f.Add(one)
		f.Add(two)
		f.Add(bad)
		f.Add(bytes.Replace(one, []byte("version"), []byte("versioN"), 1))
		f.Add(append(append([]byte{}, one...), one[bytes.LastIndex(one, []byte("\n\n"))+2:]...))
	}
	// Text that is not a catalog, validly signed: refused as malformed.
	notCatalog, _ := SignCatalog("hello\n", a, nil)
	f.Add(notCatalog)
	f.Add([]byte(""))
	f.Add([]byte("\n\n— a AAAAAAAA\n"))
	known := []error{ErrMalformedCatalog, ErrUnknownKey, ErrNoTrustedSignature, ErrNotEnoughSignatures}
	f.Fuzz(func(t *testing.T, msg []byte) {
		text, signers, _, err := k.verify(msg)
		if err != nil {
			for _, want := range known {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("verify(%q): %v is none of the catalog refusals", msg, err)
		}
		formatted, ferr := text.Format()
		if ferr != nil || !signed[formatted] {
			t.Fatalf("verify(%q) accepted text that no trusted key signed here: %q", msg, formatted)
		}
		if len(signers) < 1 {
			t.Fatalf("verify(%q) accepted with no signers", msg)
		}
	})
}
