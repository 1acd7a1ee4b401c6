package harden

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() { benchChild = installAndTime }

// installs are the ways BenchmarkInstall compares.
var installs = map[string]func() error{
	// What sstar does: the generated program, then prctl and seccomp
	// from one assembly routine.
	"asm": DenyXattrWrites,
	// What it did before: the two system calls from Go, kept on one
	// thread by runtime.LockOSThread.
	"LockOSThread": func() error {
		prog, err := Filter()
		if err != nil {
			return err
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return err
		}
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
		runtime.KeepAlive(prog)
		if e != 0 {
			return e
		}
		return nil
	},
	// The filter assembled before the clock starts: the difference to
	// asm is what building it costs in a process that has not run the
	// assembler's code yet, as sstar has not.
	"asm-prebuilt": func() error { return installFilter(prebuilt) },
	// The floor: the same routine with a one-instruction filter (allow
	// everything), so the difference is what the filter's length costs.
	"asm-1insn": func() error {
		return installFilter([]unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}})
	},
	// What sstar installed before the namespace, mount and ptrace
	// denials: the xattr and io_uring rows of today's table, built at
	// install, as sstar built its filter then.
	"asm-xattr-only": func() error {
		onlyXattrs()
		return buildAndInstall()
	},
	// Today's filter built at install from the table, as before it was
	// generated: the difference to asm is what building costs in a
	// fresh process.
	"asm-built": buildAndInstall,
	// No filter: what the child costs without any.
	"none": func() error { return nil },
}

// prebuilt is Filter's program, for asm-prebuilt.
var prebuilt []unix.SockFilter

func buildAndInstall() error {
	prog, err := Filter()
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return err
	}
	return installFilter(prog)
}

func installFilter(prog []unix.SockFilter) error {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if nnp, _, e := setNoNewPrivsAndFilter(&fprog); nnp != 0 || e != 0 {
		return fmt.Errorf("prctl %v, seccomp %v", unix.Errno(nnp), unix.Errno(e))
	}
	return nil
}

// installAndTime installs the named way, and prints how long it took and
// how many threads the process then has.
func installAndTime(name string) {
	install := installs[name]
	if name == "asm-prebuilt" {
		var err error
		if prebuilt, err = Filter(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	start := time.Now()
	err := install()
	d := time.Since(start)
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
	tasks, _ := os.ReadDir("/proc/self/task")
	fmt.Println(d.Nanoseconds(), len(tasks))
	os.Exit(0)
}

// BenchmarkInstall measures building and installing the filter, each
// time in a new process (see benchChildEnv). A round starts one child
// for each way in installs, in a random order, so that a busy machine
// slows every way alike; each way reports medians: the time inside the
// child (µs/install), the whole child from start to exit (µs/process),
// and its threads after installing.
//
//	go test -run '^$' -bench Install -benchtime 400x ./harden/
func BenchmarkInstall(b *testing.B) {
	names := slices.Sorted(maps.Keys(installs))
	inside := map[string][]float64{}
	process := map[string][]float64{}
	threads := map[string][]float64{}
	for b.Loop() {
		rand.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		for _, name := range names {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), benchChildEnv+"="+name)
			cmd.Stderr = os.Stderr
			start := time.Now()
			out, err := cmd.Output()
			d := time.Since(start)
			if err != nil {
				b.Fatalf("child: %v", err)
			}
			var ns int64
			var n int
			if _, err := fmt.Sscan(string(out), &ns, &n); err != nil {
				b.Fatalf("child said %q: %v", out, err)
			}
			inside[name] = append(inside[name], float64(ns)/1e3)
			process[name] = append(process[name], float64(d.Nanoseconds())/1e3)
			threads[name] = append(threads[name], float64(n))
		}
	}
	for _, name := range names {
		b.ReportMetric(median(inside[name]), name+"-µs/install")
		b.ReportMetric(median(process[name]), name+"-µs/process")
		b.ReportMetric(median(threads[name]), name+"-threads")
	}
}

func median(v []float64) float64 {
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
