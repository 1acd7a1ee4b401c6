package bench

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine describes where and when the benchmarks ran.
type Machine struct {
	Date      time.Time
	NProc     int    // online CPUs, as nproc(1) reports
	CPU       string // model name from /proc/cpuinfo
	Kernel    string
	Go        string // toolchain that built both binaries
	Starlark  string // go.starlark.net module version
	Commit    string // sstar commit, "+dirty" when the tree has changes
	Python    string // CPython version, or "" when absent
	LoadStart string // /proc/loadavg before and after the run
	LoadEnd   string
	// Speculation: the kernel's speculative store bypass and Spectre v2
	// mitigations. Where one says "seccomp", installing sstar's filter
	// also turns a mitigation on for sstar's process alone, which can cost
	// CPU-bound code a few per cent in every process: a cost BenchmarkCompute
	// (one process) cannot see, and the whole-process compute row can.
	Speculation string
}

// speculation returns the kernel's speculative store bypass and Spectre v2
// mitigation lines, or "unknown".
func speculation() string {
	var parts []string
	for _, name := range []string{"spec_store_bypass", "spectre_v2"} {
		b, err := os.ReadFile("/sys/devices/system/cpu/vulnerabilities/" + name)
		if err != nil {
			continue
		}
		parts = append(parts, name+": "+strings.TrimSpace(string(b)))
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, "; ")
}

// cpuModel returns the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return strings.TrimSpace(string(b))
	}
	return strings.Join(f[:3], " ")
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return runtime.GOOS
	}
	return "Linux " + strings.TrimSpace(string(b))
}

// nproc asks nproc(1), as the issue says, and falls back on the Go
// runtime's count.
func nproc() int {
	if b, err := exec.Command("nproc").Output(); err == nil {
		var n int
		for _, c := range strings.TrimSpace(string(b)) {
			if c < '0' || c > '9' {
				n = 0
				break
			}
			n = n*10 + int(c-'0')
		}
		if n > 0 {
			return n
		}
	}
	return runtime.NumCPU()
}
