package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The workloads are written to a fresh directory by WriteWorkloads. Every
// Starlark file is valid both in sstar's dialect and in the plain
// starlark command's default one: no while, no recursion, no statements
// at top level other than definitions, assignments, loads and calls.
// Loads are written relative to the workload directory, which is both
// the directory of the loading file (sstar's rule) and the working
// directory of the run (the plain command's rule).

// Workload file names, relative to the workload directory.
const (
	StartupScript = "startup.star"
	ComputeScript = "compute.star"
	LoadScript    = "load.star"
	ModulesDir    = "mods"
	// LoadExecScript loads the same modules from ExecModulesDir, where
	// they have mode 0755.
	LoadExecScript = "load_exec.star"
	ExecModulesDir = "modsx"
	LoopScript     = "events_loop.star"
	EventsScript   = "events_none.star"
	HookScript     = "events_hook.star"
	FSReadScript   = "fsread.star"
	FilesDir       = "files"

	PyLoop      = "events_loop.py"
	PyEvents    = "events_none.py"
	PyHook      = "events_hook.py"
	PySink      = "events_sink.py"
	PyRead      = "read_none.py"
	PyReadHook  = "read_hook.py"
	PyReadSink  = "read_sink.py"
	PyInProcess = "events_inprocess.py"
)

// Params size the workloads.
type Params struct {
	ComputeRounds int // rounds of the compute script
	Modules       int // modules loaded by the load script
	Events        int // events raised by the event scripts
	Files         int // small files read by the file scripts
	FileSize      int // bytes in each small file
}

// Outputs: each script prints a line starting with its name, checked by
// the runs (Command.Want).
const (
	WantStartup = "startup ok"
	WantCompute = "compute "
	WantLoad    = "load "
	WantEvents  = "events "
	WantRead    = "read "
)

// WriteWorkloads writes every workload into dir.
func WriteWorkloads(dir string, p Params) error {
	files := map[string]string{
		StartupScript:  "print(\"" + WantStartup + "\")\n",
		LoadScript:     loadScript(ModulesDir, p.Modules),
		LoadExecScript: loadScript(ExecModulesDir, p.Modules),
		LoopScript:     eventsScript(p.Events, false, false),
		EventsScript:   eventsScript(p.Events, true, false),
		HookScript:     eventsScript(p.Events, true, true),
		FSReadScript:   fsReadScript(dir, p.Files),
		PyLoop:         pyEvents(p.Events, false, ""),
		PyEvents:       pyEvents(p.Events, true, ""),
		PyHook:         pyEvents(p.Events, true, pyNopHook),
		PySink:         pyEvents(p.Events, true, pySinkHook),
		PyRead:         pyRead(dir, p.Files, ""),
		PyReadHook:     pyRead(dir, p.Files, pyNopHook),
		PyReadSink:     pyRead(dir, p.Files, pySinkHook),
		PyInProcess:    pyInProcess,
	}
	if err := os.MkdirAll(filepath.Join(dir, ModulesDir), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, FilesDir), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, ExecModulesDir), 0o755); err != nil {
		return err
	}
	for i := 0; i < p.Modules; i++ {
		files[ModulePath(i)] = moduleSource(i)
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			return err
		}
	}
	for i := 0; i < p.Modules; i++ {
		if err := os.WriteFile(filepath.Join(dir, ExecModulePath(i)), []byte(moduleSource(i)), 0o755); err != nil {
			return err
		}
	}
	if err := WriteCompute(dir, p.ComputeRounds); err != nil {
		return err
	}
	data := []byte(strings.Repeat("0123456789abcdef", p.FileSize/16+1)[:p.FileSize])
	for i := 0; i < p.Files; i++ {
		if err := os.WriteFile(filepath.Join(dir, DataPath(i)), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ModulePath is the path of the i-th module, relative to the workload
// directory.
func ModulePath(i int) string { return moduleFile(ModulesDir, i) }

// ExecModulePath is the path of the i-th module's executable copy.
func ExecModulePath(i int) string { return moduleFile(ExecModulesDir, i) }

func moduleFile(dir string, i int) string { return fmt.Sprintf("%s/m%03d.star", dir, i) }

// DataPath is the path of the i-th small file.
func DataPath(i int) string { return fmt.Sprintf("%s/f%d.txt", FilesDir, i) }

// CodeFiles lists the Starlark files of a workload directory written
// with p (the files to stamp), relative to it.
func CodeFiles(p Params) []string {
	names := []string{StartupScript, ComputeScript, LoadScript, LoadExecScript, LoopScript, EventsScript, HookScript, FSReadScript}
	for i := 0; i < p.Modules; i++ {
		names = append(names, ModulePath(i), ExecModulePath(i))
	}
	return names
}

// WriteCompute (re)writes the compute script with the given number of
// rounds; the harness calibrates rounds to the target duration.
func WriteCompute(dir string, rounds int) error {
	return os.WriteFile(filepath.Join(dir, ComputeScript), []byte(computeScript(rounds)), 0o644)
}

// computeScript is CPU-bound work of the kinds scripts do: loops, calls of
// small functions, dicts, strings, list comprehensions, sorting, and the
// universe's builtins (which sstar wraps).
func computeScript(rounds int) string {
	return computeDefs + fmt.Sprintf("\nprint(\"compute\", main(%d))\n", rounds)
}

// computeDefs are the compute script's functions; step(r) is one round.
const computeDefs = `# CPU-bound work: loops, function calls, dicts, strings.
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, (a + b) % 1000003
    return a

def words(n):
    return ["w%d" % (i % 97) for i in range(n)]

def count(ws):
    d = {}
    for w in ws:
        d[w] = d.get(w, 0) + 1
    return d

def total(d):
    t = 0
    for k, v in d.items():
        t += v * len(k)
    return t

def text(n):
    parts = []
    for i in range(n):
        s = str(i) * 3
        parts.append(s.upper().replace("1", "x")[:5])
    return ",".join(parts)

def shuffle(n):
    return sorted([(i * 7919) % 1009 for i in range(n)])

def step(r):
    t = fib(500 + r % 7)
    t += total(count(words(400)))
    t += len(text(150).split(","))
    t += shuffle(300)[150]
    return t

def main(rounds):
    t = 0
    for r in range(rounds):
        t = (t + step(r)) % 1000000007
    return t
`

func loadScript(dir string, n int) string {
	var b strings.Builder
	b.WriteString("# Loads every module once.\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "load(%q, v%03d = \"value\")\n", moduleFile(dir, i), i)
	}
	b.WriteString("\ndef main():\n    t = 0\n    for v in [")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "v%03d", i)
	}
	b.WriteString("]:\n        t += v\n    return t\n\nprint(\"load\", main())\n")
	return b.String()
}

func moduleSource(i int) string {
	return fmt.Sprintf(`# Module %[1]d of the loading benchmark.
def scale(x):
    return x * %[1]d + 1

def label(s):
    return "%%s-%%d" %% (s, %[1]d)

settings = {"name": label("m"), "weight": scale(2)}

value = settings["weight"] + len(settings["name"])
`, i)
}

// eventsScript raises n events with sys.audit (or, without audit, runs
// the same loop empty, to subtract the loop's own cost).
func eventsScript(n int, audit, hook bool) string {
	var b strings.Builder
	if hook {
		b.WriteString("def hook(event, args):\n    pass\n\nsys.addaudithook(hook)\n\n")
	}
	b.WriteString("def main(n):\n    for i in range(n):\n")
	if audit {
		b.WriteString("        sys.audit(\"bench.event\", i)\n")
	} else {
		b.WriteString("        pass\n")
	}
	fmt.Fprintf(&b, "\nmain(%d)\nprint(\"events\", %d)\n", n, n)
	return b.String()
}

func fsReadScript(dir string, n int) string {
	return fmt.Sprintf(`# Reads %[2]d small files with fs.read.
def main(n):
    t = 0
    for i in range(n):
        t += len(fs.read("%[1]s/%[3]s/f%%d.txt" %% i))
    return t

print("read", main(%[2]d))
`, dir, n, FilesDir)
}

// The CPython scripts. A hook is added with sys.addaudithook; the sink
// hook writes one JSON line per event with one write(2), as sstar's JSON
// Lines sink does, to the file named by the first argument.
const pyNopHook = `def hook(event, args):
    pass

sys.addaudithook(hook)
`

const pySinkHook = `import json, os

_fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

def hook(event, args):
    os.write(_fd, (json.dumps({"event": event, "args": [repr(a) if not isinstance(a, (int, str)) else a for a in args]}) + "\n").encode())

sys.addaudithook(hook)
`

func pyEvents(n int, audit bool, hook string) string {
	var b strings.Builder
	b.WriteString("import sys\n\n")
	b.WriteString(hook)
	b.WriteString("\ndef main(n):\n    for i in range(n):\n")
	if audit {
		b.WriteString("        sys.audit(\"bench.event\", i)\n")
	} else {
		b.WriteString("        pass\n")
	}
	fmt.Fprintf(&b, "\nmain(%d)\nprint(\"events\", %d)\n", n, n)
	return b.String()
}

func pyRead(dir string, n int, hook string) string {
	var b strings.Builder
	b.WriteString("import sys\n\n")
	b.WriteString(hook)
	fmt.Fprintf(&b, `
def main(n):
    t = 0
    for i in range(n):
        with open("%[1]s/%[3]s/f%%d.txt" %% i) as f:
            t += len(f.read())
    return t

print("read", main(%[2]d))
`, dir, n, FilesDir)
	return b.String()
}

// pyInProcess times, inside one CPython process, an empty loop, sys.audit
// with no hook, and sys.audit with one no-op Python hook (hooks cannot be
// removed, so in that order), and prints the per-iteration medians in ns
// as "loop none hook".
const pyInProcess = `import sys, time

N = int(sys.argv[1])
TRIALS = int(sys.argv[2])

def loop(n):
    for i in range(n):
        pass

def events(n):
    for i in range(n):
        sys.audit("bench.event", i)

def per_iter(f):
    ts = []
    for _ in range(TRIALS):
        t0 = time.perf_counter_ns()
        f(N)
        ts.append((time.perf_counter_ns() - t0) / N)
    ts.sort()
    return ts[len(ts) // 2]

loop_ns = per_iter(loop)
none_ns = per_iter(events)

def hook(event, args):
    pass

sys.addaudithook(hook)
hook_ns = per_iter(events)
print("%.3f %.3f %.3f" % (loop_ns, none_ns, hook_ns))
`
