package policy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/policy"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"256MiB": 256 << 20, "2GiB": 2 << 30, "268435456": 256 << 20, "163840KiB": 160 << 20, "1TiB": 1 << 40} {
		if got, err := policy.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"": "want a size", "256MB": "want a size", "-1": "want a size", "1MiB": "below the minimum of 160MiB", "99999999999TiB": "want a size"} {
		if _, err := policy.ParseSize(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSize(%q): %v, want %q", in, err, want)
		}
	}
	if got := policy.FormatSize(3 << 29); got != "1536MiB" {
		t.Errorf("FormatSize = %s", got)
	}
}

// policy.limits(memory=, max_memory=) follows the rules of steps: the
// system policy sets a default and a maximum, an additive policy only
// lowers, and a run may ask for less or up to the maximum.
func TestMemoryLimits(t *testing.T) {
	s := policy.Defaults()
	if err := run(t, `policy.limits(memory = "512MiB", max_memory = "1GiB")`, true, &s); err != nil {
		t.Fatal(err)
	}
	if s.Memory != 512<<20 || s.MaxMemory != 1<<30 {
		t.Fatalf("%+v", s)
	}
	for asked, want := range map[int64]int64{0: 512 << 20, 256 << 20: 256 << 20, 1 << 30: 1 << 30} {
		if got, err := s.MemoryLimit(asked); err != nil || got != want {
			t.Errorf("MemoryLimit(%d) = %d, %v", asked, got, err)
		}
	}
	if _, err := s.MemoryLimit(2 << 30); err == nil || !strings.Contains(err.Error(), "--max-memory 2GiB is above the maximum of 1GiB") {
		t.Errorf("above the maximum: %v", err)
	}
	if err := run(t, `policy.limits(memory = 300 * 1024 * 1024)`, false, &s); err != nil || s.Memory != 300<<20 || s.MaxMemory != 300<<20 {
		t.Fatalf("lowering: %v, %+v", err, s)
	}
	for src, want := range map[string]string{
		`policy.limits(memory = "400MiB")`:   `memory=400MiB would raise the memory limit above 300MiB`,
		`policy.limits(max_memory = "1GiB")`: `only the system policy`,
		`policy.limits(memory = "1MiB")`:     `below the minimum`,
		`policy.limits(memory = 1.5)`:        `memory must be a size such as "256MiB" or a number of bytes, got float`,
	} {
		if err := run(t, src, false, &s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
	s = policy.Defaults()
	if err := run(t, `policy.limits(max_memory = "1GiB")`, true, &s); err == nil || !strings.Contains(err.Error(), "memory (0) must be set and at most max_memory") {
		t.Errorf("max without default: %v", err)
	}
}

// A policy file runs under the run's limits: ApplyLimited bounds its
// steps, and ctx its time.
func TestApplyLimited(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "loop.star", "x = 0\nwhile True:\n    x += 1\n")
	s := policy.Defaults()
	h := interp.New(interp.Options{Predeclared: builtins.Modules()})
	if err := s.ApplyLimited(context.Background(), h, p, 1000); !errors.Is(err, interp.ErrLimit) {
		t.Fatalf("steps: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.ApplyLimited(ctx, h, p, 0); !errors.Is(err, interp.ErrLimit) {
		t.Fatalf("timeout: %v", err)
	}
}
