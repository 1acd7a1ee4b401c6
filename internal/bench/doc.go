// Package bench measures what sstar's hardening costs, side by side with
// the plain go.starlark.net starlark command built from the same module
// version (the same interpreter without the hardening) and, where python3
// is present, with CPython and its PEP 578 audit hooks.
//
// Security that costs too much gets switched off, so the costs are
// checked against budgets: an event raised with no hooks costs nanoseconds
// and allocates nothing; CPU-bound scripts, start-up and loading of
// verified modules stay within a few percent, 25% and 30% of the plain
// host; an event with one Go hook is at least ten times cheaper than
// CPython's sys.audit with one Python hook.
//
// Run is the harness behind `make bench` (command internal/bench/cmd/sstarbench):
// it builds both interpreters, writes the workloads to a temporary
// directory, times whole processes over interleaved repeated runs, runs
// the Go micro-benchmarks of every package, and returns a Report whose
// Markdown is BENCHMARKS.md. Unit tests of this package check the
// statistics, parsing and rendering only; nothing in `go test` is timed.
package bench
