// Package bench measures what sstar's hardening costs, side by side with
// the plain go.starlark.net starlark command built from the same module
// version (the same interpreter without the hardening) and, where python3
// is present, with CPython and its PEP 578 audit hooks.
//
// Security that costs too much gets switched off, so the costs are
// checked against budgets: what an event costs with no hooks and with
// one Go hook (against CPython's sys.audit), and how much slower than
// the plain host start-up, CPU-bound scripts and loading of verified
// modules (stamped, or vouched for by a catalog) may be, and how many
// events per second the audit sinks must deliver. Each budget is stated
// once, in the table Budgets; the report lists them from it.
//
// Run is the harness behind `make bench` (command
// internal/bench/cmd/sstarbench). Its files follow its steps:
//
//   - plan.go: how many rounds of what (Config, the plan);
//   - build.go: both interpreters built with the same toolchain, and the
//     test binaries of the in-process benchmarks;
//   - workload.go, prepare.go: the workloads, written to a temporary
//     directory, calibrated, and stamped with `sstar trust`;
//   - run.go, compare.go: whole processes timed over interleaved rounds;
//   - perevent.go: what one event costs, side by side with CPython, and
//     the Go micro-benchmarks of every package;
//   - features.go: the own Go benchmarks of the sinks (events per second
//     to real receivers), catalogs (loading under one), the seccomp
//     filter, declared permissions and the isolation API (each its ways
//     in turn in one benchmark), run in rounds, and their rows;
//   - syscalls.go: system calls counted with strace, and what one costs;
//   - stats.go, gotest.go: the statistics and `go test -bench` output,
//     through golang.org/x/perf (benchmath, benchfmt);
//   - budget.go: the budgets and how a measurement is judged;
//   - report.go, report.md.tmpl: the Report, whose Markdown is
//     BENCHMARKS.md.
//
// Command internal/bench/cmd/sidebyside times the start-up of several
// builds against each other in one run, with the same rounds and
// intervals: how a change to what sstar does at start-up is measured.
//
// Unit tests of this package check the statistics, parsing, judging
// and rendering only; nothing in `go test` is timed.
package bench
