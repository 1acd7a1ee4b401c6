package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sstar-project/sstar/opencode/opencodetest"
)

// BenchmarkPermissions measures what declared permissions (policy.allow)
// cost a whole run of the sstar binary, built as a site builds it: the
// start-up of an empty script with a 20-rule ruleset against the same
// system policy without policy.allow, and a script of 10,000 fs.read
// calls with read= declared against the same without. Two binaries are
// built, the same code with two system policy paths, so that every
// iteration can run both, in a random order (a busy machine then slows
// both alike): one process each, because a Landlock restriction cannot
// be lifted. Each sub-benchmark reports the medians of the runs
// (without-ms, with-ms) and of the per-iteration ratios (with/without),
// an iteration's ratio being that of its runs' medians.
// Budget (docs/performance.md, make bench): with/without at most 1.10.
//
//	go test -run '^$' -bench BenchmarkPermissions -benchtime 50x ./cmd/sstar/
func BenchmarkPermissions(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: the system policy must be owned by root")
	}
	dir, err := os.MkdirTemp("", "sstar-permissions-bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	// bins[way] runs with the system policy policies[way].
	var bins, policies [2]string
	for i, way := range []string{"without", "with"} {
		bins[i] = filepath.Join(dir, "sstar-"+way)
		policies[i] = filepath.Join(dir, way, "etc/sstar/policy.star")
		build := exec.Command("go", "build", "-o", bins[i], "-ldflags", "-X github.com/sstar-project/sstar/policy.SystemPath="+policies[i], ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
		if err := os.MkdirAll(filepath.Dir(policies[i]), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	var rules []string
	for i := range 10 {
		p := filepath.Join(data, fmt.Sprintf("r%d", i))
		if err := os.MkdirAll(p, 0o755); err != nil {
			b.Fatal(err)
		}
		opencodetest.WriteFile(b, filepath.Join(p, "f.txt"), "x\n")
		rules = append(rules, fmt.Sprintf("%q", p))
	}
	var writes, execs []string
	for i := range 5 {
		p := filepath.Join(dir, fmt.Sprintf("w%d", i))
		if err := os.MkdirAll(p, 0o755); err != nil {
			b.Fatal(err)
		}
		writes = append(writes, fmt.Sprintf("%q", p))
	}
	for _, p := range []string{"/usr/bin/true", "/usr/bin/sh", "/usr/bin/env", "/usr/bin/cat", "/usr/bin/ls"} {
		execs = append(execs, fmt.Sprintf("%q", p))
	}
	allow := fmt.Sprintf("policy.allow(read = [%s], write = [%s], exec = [%s])\n",
		strings.Join(rules, ", "), strings.Join(writes, ", "), strings.Join(execs, ", "))
	code := filepath.Join(dir, "code")
	if err := os.MkdirAll(code, 0o755); err != nil {
		b.Fatal(err)
	}
	empty := filepath.Join(code, "empty.star")
	opencodetest.WriteFile(b, empty, "x = 1\n")
	reads := filepath.Join(code, "reads.star")
	opencodetest.WriteFile(b, reads, fmt.Sprintf("n = 0\nfor i in range(10000):\n    n += len(fs.read(%q))\nprint(n)\n", filepath.Join(data, "r0/f.txt")))
	opencodetest.Stamp(b, empty, reads)

	for _, c := range []struct {
		name, script, allow string
		pairs               int // runs of each way an iteration
	}{
		// A start-up scatters by a tenth: five pairs an iteration.
		{"startup", empty, allow, 5},
		{"read10k", reads, fmt.Sprintf("policy.allow(read = [%q])\n", data), 1},
	} {
		for i, text := range []string{"", c.allow} {
			opencodetest.WriteFile(b, policies[i], "# the same system policy, with or without permissions\n"+text)
			os.Chmod(policies[i], 0o644)
			opencodetest.Stamp(b, policies[i])
			if out, err := exec.Command(bins[i], c.script).CombinedOutput(); err != nil {
				b.Fatalf("%s: %v\n%s", c.name, err, out)
			}
		}
		b.Run(c.name, func(b *testing.B) {
			var ms [2][]float64
			var ratios []float64
			for b.Loop() {
				var this [2][]float64
				for range c.pairs {
					for _, i := range rand.Perm(2) {
						start := time.Now()
						if err := exec.Command(bins[i], c.script).Run(); err != nil {
							b.Fatal(err)
						}
						d := float64(time.Since(start).Nanoseconds()) / 1e6
						this[i] = append(this[i], d)
						ms[i] = append(ms[i], d)
					}
				}
				ratios = append(ratios, medianOf(this[1])/medianOf(this[0]))
			}
			b.ReportMetric(medianOf(ms[0]), "without-ms")
			b.ReportMetric(medianOf(ms[1]), "with-ms")
			b.ReportMetric(medianOf(ratios), "with/without")
		})
	}
}

func medianOf(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
