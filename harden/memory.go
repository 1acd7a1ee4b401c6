package harden

import (
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// LimitMemory bounds the memory of this process and of every process it
// starts afterwards to limit bytes each, with what the kernel gives a
// process for itself: RLIMIT_DATA, soft and hard (so no child can raise
// it again), which every child inherits across fork and exec. No cgroup
// is created or changed; an operator who wants one bound for the whole
// process tree adds it (systemd-run --scope -p MemoryMax=…, see
// docs/policy.md).
//
// RLIMIT_DATA counts private writable mappings: the Go heap and stacks,
// a child's malloc arenas. Read-only and PROT_NONE reservations do not
// count, so go.starlark.net's 4 GiB read-only reservation for small ints
// and the Go runtime's address-space reservations cost nothing (checked
// by TestLimitMemoryReservation). Past the limit, mmap and brk fail with
// ENOMEM: the Go runtime then dies with "fatal error: runtime: out of
// memory", which sstar's crash monitor records (reason "memory"), and a
// C program's malloc returns NULL.
//
// The kernel counts address space the Go runtime maps writable before it
// uses it (the heap arena index, the first chunks of the heap): a Go
// program has about 120 MiB of it as it starts, which is why
// policy.MinMemory is 160 MiB. It also sets the Go runtime's soft limit
// (debug.SetMemoryLimit) to what the runtime uses now plus seven eighths
// of the room left under limit, so that the collector works hard before
// the kernel refuses memory and a script that stays under the limit is
// not stopped by garbage it has already dropped.
func LimitMemory(limit int64) error {
	if limit <= 0 {
		return nil
	}
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_DATA, &cur); err != nil {
		return fmt.Errorf("harden: getrlimit(RLIMIT_DATA): %v", err)
	}
	n := uint64(limit)
	if cur.Max != unix.RLIM_INFINITY && cur.Max < n {
		n = cur.Max // already lower: keep it
	}
	if err := unix.Setrlimit(unix.RLIMIT_DATA, &unix.Rlimit{Cur: n, Max: n}); err != nil {
		return fmt.Errorf("harden: setrlimit(RLIMIT_DATA, %d): %v", n, err)
	}
	if room := int64(n) - vmData(); room > 0 {
		sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
		metrics.Read(sample)
		debug.SetMemoryLimit(int64(sample[0].Value.Uint64()) + room/8*7)
	}
	return nil
}

// vmData is what the kernel counts against RLIMIT_DATA now, in bytes
// (VmData in /proc/self/status), or 0 if it cannot tell.
func vmData() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(b), "\nVmData:")
	if !ok {
		return 0
	}
	kb, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
	n, _ := strconv.ParseInt(kb, 10, 64)
	return n << 10
}
