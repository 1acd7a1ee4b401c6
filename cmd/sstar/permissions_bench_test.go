package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sstar-project/sstar/opencode/opencodetest"
)

// BenchmarkPermissions measures what declared permissions (policy.allow)
// cost a whole run of the sstar binary, built as a site builds it: the
// start-up of an empty script with a 20-rule ruleset against the same
// system policy without policy.allow, and a script of 10,000 fs.read
// calls with read= declared against the same without. Each iteration is
// one process, because a Landlock restriction cannot be lifted. Budget
// (docs/performance.md): each "with" at most 1.10 times its "without".
//
//	go test -run '^$' -bench BenchmarkPermissions -count 10 ./cmd/sstar/
func BenchmarkPermissions(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: the system policy must be owned by root")
	}
	dir, err := os.MkdirTemp("", "sstar-permissions-bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "sstar")
	sysPolicy := filepath.Join(dir, "etc/sstar/policy.star")
	build := exec.Command("go", "build", "-o", bin, "-ldflags", "-X github.com/sstar-project/sstar/policy.SystemPath="+sysPolicy, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
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
	for _, d := range []string{code, filepath.Dir(sysPolicy)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	empty := filepath.Join(code, "empty.star")
	opencodetest.WriteFile(b, empty, "x = 1\n")
	reads := filepath.Join(code, "reads.star")
	opencodetest.WriteFile(b, reads, fmt.Sprintf("n = 0\nfor i in range(10000):\n    n += len(fs.read(%q))\nprint(n)\n", filepath.Join(data, "r0/f.txt")))
	opencodetest.Stamp(b, empty, reads)

	for _, c := range []struct {
		name, script, allow string
	}{
		{"startup/without", empty, ""},
		{"startup/with-20-rules", empty, allow},
		{"read10k/without", reads, ""},
		{"read10k/with-read", reads, fmt.Sprintf("policy.allow(read = [%q])\n", data)},
	} {
		opencodetest.WriteFile(b, sysPolicy, "# the same system policy, with or without permissions\n"+c.allow)
		os.Chmod(sysPolicy, 0o644)
		opencodetest.Stamp(b, sysPolicy)
		if out, err := exec.Command(bin, c.script).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", c.name, err, out)
		}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := exec.Command(bin, c.script).Run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
