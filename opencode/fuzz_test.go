package opencode

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit"
)

// FuzzParseStamp: a stamp is accepted exactly when it is the 64-digit
// lowercase hex spelling of a hash, and then it round-trips.
func FuzzParseStamp(f *testing.F) {
	f.Add([]byte(hashOf("x")))
	f.Add([]byte(""))
	f.Add([]byte("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"))
	f.Add([]byte(hashOf("x") + "\n"))
	f.Fuzz(func(t *testing.T, v []byte) {
		sum, err := ParseStamp(v)
		canonical := len(v) == 64 && bytes.Equal(v, bytes.ToLower(v))
		if canonical {
			_, herr := hex.DecodeString(string(v))
			canonical = herr == nil
		}
		if (err == nil) != canonical {
			t.Fatalf("ParseStamp(%q): err = %v, canonical = %v", v, err, canonical)
		}
		if err == nil && !bytes.Equal(FormatStamp(sum), v) {
			t.Fatalf("ParseStamp(%q) round-trips to %q", v, FormatStamp(sum))
		}
	})
}

// FuzzOpen opens files of arbitrary content with arbitrary stamps: the
// content is returned byte for byte exactly when the stamp is its hash,
// and every other outcome is a typed refusal.
func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	needXattrs(f, dir)
	p := filepath.Join(dir, "fuzz.star")
	f.Add([]byte("print('hi')\n"), true, []byte(nil))
	f.Add([]byte{}, true, []byte(nil))
	f.Add([]byte("\x00\xff\n"), false, []byte(hashOf("")))
	f.Add([]byte("x"), false, []byte{})
	o := &Opener{MaxSize: 1 << 16}
	f.Fuzz(func(t *testing.T, content []byte, stampIt bool, stamp []byte) {
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		unix.Removexattr(p, DefaultXattrName)
		sum := sha256.Sum256(content)
		if stampIt {
			stamp = FormatStamp(sum)
		}
		if stamp != nil {
			if err := unix.Setxattr(p, DefaultXattrName, stamp, 0); err != nil {
				t.Skip(err) // e.g. a value too large for the file system
			}
		}
		code, err := o.Verify(new(audit.Dispatcher), p)
		matches := stamp != nil && bytes.Equal(stamp, FormatStamp(sum)) && int64(len(content)) <= o.MaxSize
		if err == nil {
			if !matches {
				t.Fatalf("accepted %q with stamp %q", content, stamp)
			}
			if !bytes.Equal(code.Data, content) || code.SHA256 != sum {
				t.Fatalf("returned %q (hash %x), want %q (hash %x)", code.Data, code.SHA256, content, sum)
			}
			return
		}
		if matches {
			t.Fatalf("refused a correctly stamped file: %v", err)
		}
		var re *RefusedError
		if !errors.As(err, &re) {
			t.Fatalf("error %v is not a *RefusedError", err)
		}
		for _, known := range []error{ErrNoStamp, ErrMalformedStamp, ErrMismatch, ErrTooLarge} {
			if errors.Is(err, known) {
				return
			}
		}
		t.Fatalf("refusal %v has no expected reason", err)
	})
}
