package interp_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/opencode"
)

const loadModules = 500

// writeLoadTree writes main.star, which loads loadModules modules from
// mods/, as the loading workload of `make bench` does, and returns the
// paths of every file.
func writeLoadTree(b *testing.B, dir string) []string {
	var main strings.Builder
	var files []string
	if err := os.Mkdir(filepath.Join(dir, "mods"), 0o755); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < loadModules; i++ {
		rel := fmt.Sprintf("mods/m%03d.star", i)
		src := fmt.Sprintf("def scale(x):\n    return x * %[1]d + 1\n\nsettings = {\"name\": \"m%[1]d\", \"weight\": scale(2)}\n\nvalue = settings[\"weight\"] + len(settings[\"name\"])\n", i)
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(src), 0o644); err != nil {
			b.Fatal(err)
		}
		files = append(files, rel)
		fmt.Fprintf(&main, "load(%q, v%03d = \"value\")\n", rel, i)
	}
	main.WriteString("total = 0\n")
	if err := os.WriteFile(filepath.Join(dir, "main.star"), []byte(main.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return append(files, "main.star")
}

// plainRun runs main.star as an unverified Starlark host does: each
// module read by starlark.ExecFileOptions (os.ReadFile), compiled and
// executed once, from a cache.
func plainRun(dir string) error {
	cache := map[string]starlark.StringDict{}
	var load func(t *starlark.Thread, module string) (starlark.StringDict, error)
	load = func(_ *starlark.Thread, module string) (starlark.StringDict, error) {
		p := filepath.Join(dir, module)
		if g, ok := cache[p]; ok {
			return g, nil
		}
		g, err := starlark.ExecFileOptions(interp.FileOptions, &starlark.Thread{Load: load}, p, nil, nil)
		cache[p] = g
		return g, err
	}
	_, err := starlark.ExecFileOptions(interp.FileOptions, &starlark.Thread{Load: load}, filepath.Join(dir, "main.star"), nil, nil)
	return err
}

// BenchmarkLoadCatalog loads 500 modules vouched for by one catalog
// (signature checked once per run; each file then costs a hash and a
// lookup), against the plain host loading them unverified, and against
// stamps. The three run in turn in every iteration, each going first in
// turn, so that a shared machine's drift falls on all; the metrics are
// medians of per-iteration times and ratios. `make bench` should report
// catalog/plain (budget 1.3×) and stamp/plain.
func BenchmarkLoadCatalog(b *testing.B) {
	dir := b.TempDir()
	files := writeLoadTree(b, dir)
	skey, vkey, err := opencode.GenerateKey(rand.Reader, "bench")
	if err != nil {
		b.Fatal(err)
	}
	text := opencode.CatalogText{Version: 1}
	stamper := new(opencode.Opener)
	stamps := true
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			b.Fatal(err)
		}
		text.Files = append(text.Files, opencode.CatalogEntry{Path: rel, SHA256: sha256.Sum256(data)})
		if _, _, err := stamper.Stamp(new(audit.Dispatcher), filepath.Join(dir, rel)); err != nil {
			stamps = false // no user xattrs here: no stamp mode
		}
	}
	formatted, err := text.Format()
	if err != nil {
		b.Fatal(err)
	}
	msg, err := opencode.SignCatalog(formatted, skey, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, opencode.CatalogName), msg, 0o644); err != nil {
		b.Fatal(err)
	}
	host := func(o *opencode.Opener) func() error {
		return func() error {
			h := interp.New(interp.Options{Opener: o, Predeclared: builtins.Modules(), Stdout: io.Discard})
			_, err := h.RunFile(context.Background(), filepath.Join(dir, "main.star"), nil)
			return err
		}
	}
	type mode struct {
		name string
		run  func() (func() error, error)
		ns   []float64
	}
	modes := []*mode{
		{name: "plain", run: func() (func() error, error) { return func() error { return plainRun(dir) }, nil }},
		{name: "catalog", run: func() (func() error, error) {
			return host(&opencode.Opener{Require: opencode.RequireCatalog, Keys: []string{vkey}}), nil
		}},
	}
	if stamps {
		modes = append(modes, &mode{name: "stamp", run: func() (func() error, error) { return host(new(opencode.Opener)), nil }})
	}
	for _, m := range modes { // warm up, and check that each mode works
		f, _ := m.run()
		if err := f(); err != nil {
			b.Fatalf("%s: %v", m.name, err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range modes {
			m := modes[(i+k)%len(modes)]
			f, _ := m.run() // a new Opener per run: the catalog is checked in every run
			start := time.Now()
			if err := f(); err != nil {
				b.Fatalf("%s: %v", m.name, err)
			}
			m.ns = append(m.ns, float64(time.Since(start).Nanoseconds()))
		}
	}
	b.StopTimer()
	plain := modes[0].ns
	b.ReportMetric(median(plain)/1e6, "plain-ms")
	for _, m := range modes[1:] {
		b.ReportMetric(median(m.ns)/1e6, m.name+"-ms")
		ratios := make([]float64, len(plain))
		for i := range plain {
			ratios[i] = m.ns[i] / plain[i]
		}
		b.ReportMetric(median(ratios), m.name+"/plain")
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
