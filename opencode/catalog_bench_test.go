package opencode

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sstar-project/sstar/audit"
)

// BenchmarkOpenCatalog is the one-time cost of a catalog in a run:
// opening it through the code files' open, checking its signature,
// parsing and indexing its entries (paths like those of a real tree), on
// a fresh Opener each time. `make bench` should report the 500 and
// 10000 rows.
func BenchmarkOpenCatalog(b *testing.B) {
	for _, n := range []int{500, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			dir := b.TempDir()
			k := newKey(b, "ci")
			text := CatalogText{Version: 1}
			for i := 0; i < n; i++ {
				p := fmt.Sprintf("pkg%02d/sub/module_%05d.star", i%50, i)
				text.Files = append(text.Files, CatalogEntry{Path: p, SHA256: sha256.Sum256([]byte(p))})
			}
			formatted, err := text.Format()
			if err != nil {
				b.Fatal(err)
			}
			msg, err := SignCatalog(formatted, k.skey, nil)
			if err != nil {
				b.Fatal(err)
			}
			path := filepath.Join(dir, CatalogName)
			if err := os.WriteFile(path, msg, 0o644); err != nil {
				b.Fatal(err)
			}
			d := new(audit.Dispatcher)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				o := &Opener{Require: RequireCatalog, Keys: []string{k.vkey}}
				if _, err := o.OpenCatalog(d, path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
