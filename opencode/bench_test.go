package opencode

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sstar-project/sstar/audit"
)

// The cost of verification, against what an unverified host does to load
// a module (os.ReadFile, as starlark.ExecFile does). Compare
// BenchmarkVerify/X with BenchmarkPlainRead/X, and for the large file
// with BenchmarkPlainReadSHA256/X too (`make bench` prints the ratios).
// The exec variants have the exec permission bit set: the kernel's
// AT_EXECVE_CHECK then does the work of preparing an exec (it says yes),
// which costs far more than the early EACCES for a 0644 file.
var benchSizes = []struct {
	name string
	size int
	mode os.FileMode
}{
	{"1KiB", 1 << 10, 0o644},
	{"1MiB", 1 << 20, 0o644},
	{"1KiB-exec", 1 << 10, 0o755},
	{"1MiB-exec", 1 << 20, 0o755},
}

func benchFile(b *testing.B, size int, mode os.FileMode) string {
	dir := b.TempDir()
	needXattrs(b, dir)
	p := filepath.Join(dir, "m.star")
	line := "x = 1  # padding to the size under test\n"
	content := strings.Repeat(line, size/len(line)+1)[:size]
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		b.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		b.Fatal(err)
	}
	if _, _, err := new(Opener).Stamp(new(audit.Dispatcher), p); err != nil {
		b.Fatal(err)
	}
	return p
}

func BenchmarkVerify(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			p := benchFile(b, s.size, s.mode)
			o, d := new(Opener), new(audit.Dispatcher)
			b.SetBytes(int64(s.size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := o.Verify(d, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPlainRead(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			p := benchFile(b, s.size, s.mode)
			b.SetBytes(int64(s.size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := os.ReadFile(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPlainReadSHA256(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			p := benchFile(b, s.size, s.mode)
			b.SetBytes(int64(s.size))
			b.ReportAllocs()
			for b.Loop() {
				data, err := os.ReadFile(p)
				if err != nil {
					b.Fatal(err)
				}
				sha256.Sum256(data)
			}
		})
	}
}
