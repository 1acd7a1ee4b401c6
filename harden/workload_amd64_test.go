package harden

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/opencode"
	"github.com/sstar-project/sstar/opencode/opencodetest"
)

// The syscall-heavy work of a run, as sstar's benchmark harness has it:
// 500 modules loaded (each an open, fstat, fstatfs, exec check, read and
// fgetxattr) and 10,000 small files read with fs.read.
const (
	workloadModules = 500
	workloadFiles   = 10_000
)

func init() { workload = workloadChild }

// onlyXattrs cuts the table down to what it was before the namespace,
// mount and ptrace denials: xattr writes and io_uring.
func onlyXattrs() {
	for a := range denied {
		denied[a] = slices.DeleteFunc(slices.Clone(denied[a]), func(d denial) bool {
			return !strings.Contains(d.name, "xattr") && !strings.HasPrefix(d.name, "io_uring")
		})
	}
}

// writeWorkload writes the two scripts and their files into dir, stamped.
func writeWorkload(tb testing.TB, dir string) {
	if err := os.MkdirAll(filepath.Join(dir, "mods"), 0o755); err != nil {
		tb.Fatal(err)
	}
	var load strings.Builder
	for i := range workloadModules {
		name := fmt.Sprintf("mods/m%03d.star", i)
		opencodetest.WriteFile(tb, filepath.Join(dir, name), fmt.Sprintf("def f%d():\n    return %d\nv%d = f%d()\n", i, i, i, i))
		fmt.Fprintf(&load, "load(%q, \"v%d\")\n", name, i)
	}
	opencodetest.WriteFile(tb, filepath.Join(dir, "load.star"), load.String())
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		tb.Fatal(err)
	}
	data := []byte(strings.Repeat("0123456789", 10))
	for i := range workloadFiles {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("files/f%d.txt", i)), data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	opencodetest.WriteFile(tb, filepath.Join(dir, "fsread.star"), fmt.Sprintf(`
def main(n):
    t = 0
    for i in range(n):
        t += len(fs.read(%q + "/files/f%%d.txt" %% i))
    return t

main(%d)
`, dir, workloadFiles))
}

// workloadChild runs the workload spec names (see workloadChildEnv) and
// prints the nanoseconds each run took, one line.
func workloadChild(spec string) {
	f := strings.Split(spec, "|")
	var n int
	fmt.Sscan(f[3], &n)
	install := DenyXattrWrites
	if f[2] == "xattr" {
		onlyXattrs()
		install = buildAndInstall
	}
	if f[2] != "none" {
		if err := install(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if err := os.Chdir(f[0]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var times []string
	for range n {
		h := interp.New(interp.Options{Predeclared: builtins.Modules(), Opener: &opencode.Opener{}})
		start := time.Now()
		if _, err := h.RunFile(context.Background(), filepath.Join(f[0], f[1]), nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		times = append(times, fmt.Sprint(time.Since(start).Nanoseconds()))
	}
	fmt.Println(strings.Join(times, " "))
	os.Exit(0)
}

// BenchmarkWorkload measures the syscall-heavy work with no filter, with
// the filter sstar had before (xattr writes and io_uring only: "xattr")
// and with today's ("filter"). Since Linux 5.11 the kernel skips the
// filter's program for every call it found always allowed when the
// filter was installed, so what remains is the filter's entry work on
// every system call, and the program on each clone. Each iteration runs
// one child process per mode, in a random order (the filter cannot be
// removed, and a busy machine then slows every mode alike); each child
// makes one run to warm the caches and times a few more. It reports the
// median run of each mode (ms/run) and the median ratio of the filter's
// run to no filter's in the same iteration.
//
//	go test -run '^$' -bench Workload -benchtime 20x ./harden/
func BenchmarkWorkload(b *testing.B) {
	dir := b.TempDir()
	writeWorkload(b, dir)
	modes := []string{"none", "xattr", "filter"}
	for _, w := range []struct {
		script string
		runs   int // timed runs per child
	}{{"load.star", 6}, {"fsread.star", 3}} {
		script := w.script
		b.Run(strings.TrimSuffix(script, ".star"), func(b *testing.B) {
			ms := map[string][]float64{}
			var ratios, oldRatios []float64
			for b.Loop() {
				rand.Shuffle(len(modes), func(i, j int) { modes[i], modes[j] = modes[j], modes[i] })
				this := map[string]float64{}
				for _, mode := range modes {
					cmd := exec.Command(os.Args[0], "-test.run=^$")
					cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%s|%s|%d", workloadChildEnv, dir, script, mode, w.runs+1))
					cmd.Stderr = os.Stderr
					out, err := cmd.Output()
					if err != nil {
						b.Fatalf("child: %v", err)
					}
					var runs []float64
					for i, s := range strings.Fields(string(out)) {
						var ns float64
						fmt.Sscan(s, &ns)
						if i > 0 { // the first warmed the caches
							runs = append(runs, ns/1e6)
						}
					}
					ms[mode] = append(ms[mode], runs...)
					this[mode] = median(runs)
				}
				ratios = append(ratios, this["filter"]/this["none"])
				oldRatios = append(oldRatios, this["filter"]/this["xattr"])
			}
			for _, mode := range []string{"none", "xattr", "filter"} {
				b.ReportMetric(median(ms[mode]), mode+"-ms/run")
			}
			b.ReportMetric(median(ratios), "filter/none")
			b.ReportMetric(median(oldRatios), "filter/xattr")
		})
	}
}
