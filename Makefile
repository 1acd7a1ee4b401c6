# sstar — build, test, demo, bench. See README.md.
GO ?= go

.PHONY: all build test test-short fuzz demo bench docs fmt vet deps clean

all: build

# CGO_ENABLED=0: no C library, so no resolver reading RES_OPTIONS & co.
build:
	CGO_ENABLED=0 $(GO) build -o bin/sstar ./cmd/sstar
	CGO_ENABLED=0 $(GO) build -o bin/sstar-sinks ./cmd/sstar-sinks

# Everything the tests need (root-only parts skip with a message elsewhere).
deps:
	@.ci/deps

# The race detector's shadow memory counts against the memory limits
# some tests set, so those skip under -race; NORACE runs them without
# it. A test that skips under -race must match it (skipUnderRace says so).
NORACE = -run 'Memory|FreezeDeep' ./cmd/sstar ./harden
NORACE_STORIES = -run '^TestScript$$/^limits_memory' ./cmd/sstar

test: deps
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	$(GO) test -count=1 $(NORACE)
	$(GO) test -count=1 $(NORACE_STORIES)

# Every fuzz target for FUZZTIME each (CI: a short time; locally, longer).
FUZZTIME ?= 20s
# The targets are found, not listed: package:FuzzName for every func
# Fuzz... in a _test.go file, so a new one cannot be left out.
FUZZ_TARGETS = $(shell grep -rn --include='*_test.go' '^func Fuzz' . | \
	sed -E 's|^(.*)/[^/]*_test\.go:[0-9]+:func (Fuzz[A-Za-z0-9_]*).*|\1:\2|' | sort)
# scripts/fuzz.sh says how it tells Go 1.26's end-of-run race from a
# real failure.
fuzz:
	@GO=$(GO) scripts/fuzz.sh $(FUZZTIME) $(FUZZ_TARGETS)

test-short:
	$(GO) test -short ./...

# Timings against the plain starlark command and CPython, with budgets:
# prints the table, writes BENCHMARKS.md, fails when a budget is missed.
# BENCHFLAGS=-quick for a rough check while developing.
bench:
	$(GO) run ./internal/bench/cmd/sstarbench -go $(GO) $(BENCHFLAGS)

demo:
	scripts/demo.sh

# Generated files: the event table's page, and the seccomp program
# sstar installs (generated from harden's table; TestGeneratedFilter
# fails when it is stale).
docs:
	$(GO) run ./cmd/sstar events --markdown > docs/events.md
	$(GO) generate ./harden

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
