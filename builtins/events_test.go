package builtins_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/audittest"
	"github.com/sstar-project/sstar/builtins"
)

// eventCase is one builtin call: the events it must raise (DIR stands
// for the test's working directory) and, for calls that change the file
// system, what the change is.
type eventCase struct {
	name   string
	src    string
	events []string
	// changed checks the effect of a successful call; an aborted call
	// must leave the directory exactly as it was.
	changed func(t *testing.T, dir string)
}

var defaultEnv = fmt.Sprintf(`{"PATH": %q}`, builtins.DefaultPath)

var eventCases = []eventCase{
	{name: "fs.read", src: `fs.read("f")`,
		events: []string{fmt.Sprintf(`open("DIR/f", "r", %d)`, builtins.ReadFlags)}},
	{name: "fs.read_bytes", src: `fs.read_bytes("f")`,
		events: []string{fmt.Sprintf(`open("DIR/f", "r", %d)`, builtins.ReadFlags)}},
	{name: "fs.write", src: `fs.write("new", "x")`,
		events:  []string{fmt.Sprintf(`open("DIR/new", "w", %d)`, builtins.WriteFlags)},
		changed: content("new", "x")},
	{name: "fs.write/existing", src: `fs.write("f", b"x")`, // an abort must not even truncate
		events:  []string{fmt.Sprintf(`open("DIR/f", "w", %d)`, builtins.WriteFlags)},
		changed: content("f", "x")},
	{name: "fs.append", src: `fs.append("f", "x")`,
		events:  []string{fmt.Sprintf(`open("DIR/f", "a", %d)`, builtins.AppendFlags)},
		changed: content("f", "datax")},
	{name: "fs.exists", src: `fs.exists("f")`,
		events: []string{`fs.exists("DIR/f")`}},
	{name: "fs.listdir", src: `fs.listdir("d")`,
		events: []string{`os.listdir("DIR/d")`}},
	{name: "fs.stat", src: `fs.stat("f")`,
		events: []string{`fs.stat("DIR/f")`}},
	{name: "fs.mkdir", src: `fs.mkdir("m")`,
		events:  []string{`os.mkdir("DIR/m", 493, -1)`},
		changed: isDir("m")},
	{name: "fs.mkdir/parents", src: `fs.mkdir("p/q/r", parents=True)`,
		events:  []string{`os.mkdir("DIR/p/q/r", 493, -1)`, `os.mkdir("DIR/p", 493, -1)`, `os.mkdir("DIR/p/q", 493, -1)`},
		changed: isDir("p/q/r")},
	{name: "fs.mkdir/existing", src: `fs.mkdir("d", parents=True)`,
		events: []string{`os.mkdir("DIR/d", 493, -1)`}},
	{name: "fs.remove", src: `fs.remove("f")`,
		events:  []string{`os.remove("DIR/f", -1)`},
		changed: missing("f")},
	{name: "fs.rename", src: `fs.rename("f", "d/g")`,
		events:  []string{`os.rename("DIR/f", "DIR/d/g", -1, -1)`},
		changed: content("d/g", "data")},
	{name: "fs.glob", src: `fs.glob("*")`,
		events: []string{`glob.glob("DIR/*", False)`, `glob.glob/2("DIR/*", False, None, None)`}},
	{name: "fs.glob/absolute", src: `fs.glob("/dev/nul?")`,
		events: []string{`glob.glob("/dev/nul?", False)`, `glob.glob/2("/dev/nul?", False, None, None)`}},
	{name: "fs.glob/dotdot", src: `fs.glob("/dev/../dev/nul?")`, // the pattern expanded, lexically clean
		events: []string{`glob.glob("/dev/nul?", False)`, `glob.glob/2("/dev/nul?", False, None, None)`}},
	{name: "proc.run", src: `proc.run(["touch", "made"])`,
		events:  []string{`subprocess.Popen("` + which("touch") + `", ["touch", "made"], "DIR", ` + defaultEnv + `)`},
		changed: content("made", "")},
	{name: "proc.run/cwd+env", src: `proc.run(["/usr/bin/touch", "made"], cwd="d", env={"B": "2", "A": "1"})`,
		events:  []string{`subprocess.Popen("/usr/bin/touch", ["/usr/bin/touch", "made"], "DIR/d", {"A": "1", "B": "2"})`},
		changed: content("d/made", "")},
	{name: "proc.run/dotdot", src: `proc.run(["` + dotdot(which("touch")) + `", "made"])`, // the executable run, lexically clean
		events:  []string{`subprocess.Popen("` + which("touch") + `", ["` + dotdot(which("touch")) + `", "made"], "DIR", ` + defaultEnv + `)`},
		changed: content("made", "")},
	{name: "proc.run/relative", src: `proc.run(["../bin/tool"], cwd="d")`,
		events:  []string{`subprocess.Popen("DIR/bin/tool", ["../bin/tool"], "DIR/d", ` + defaultEnv + `)`},
		changed: content("d/tool-ran", "")},
	{name: "os.getenv", src: `os.getenv("SSTAR_EVENT_TEST")`,
		events: []string{`os.getenv("SSTAR_EVENT_TEST")`}},
	{name: "os.getcwd", src: `os.getcwd()`,
		events: []string{`os.getcwd()`}},
	{name: "time.now", src: `time.now()`,
		events: []string{`time.now()`}},
}

// setupDir makes the working directory every case starts from: a file f
// ("data"), a directory d, and an executable bin/tool that creates
// tool-ran in its working directory.
func setupDir(t *testing.T) string {
	dir := t.TempDir()
	t.Chdir(dir)
	must(t, os.WriteFile("f", []byte("data"), 0o644))
	must(t, os.Mkdir("d", 0o755))
	must(t, os.Mkdir("bin", 0o755))
	must(t, os.WriteFile("bin/tool", []byte("#!/bin/sh\ntouch tool-ran\n"), 0o755))
	return dir
}

// TestEvents checks, for every function, the exact events it raises and
// that its effect happens.
func TestEvents(t *testing.T) {
	t.Setenv("SSTAR_EVENT_TEST", "v")
	for _, c := range eventCases {
		t.Run(c.name, func(t *testing.T) {
			dir := setupDir(t)
			rec := new(audittest.Recorder)
			th, _ := newThread(t, rec.Hook)
			if _, err := run(th, c.src); err != nil {
				t.Fatal(err)
			}
			want := make([]string, len(c.events))
			for i, e := range c.events {
				want[i] = strings.ReplaceAll(e, "DIR", dir)
			}
			if got := rec.Strings(); !slices.Equal(got, want) {
				t.Errorf("events:\n got %q\nwant %q", got, want)
			}
			if c.changed != nil {
				c.changed(t, dir)
			}
		})
	}
}

// TestEventsAborted checks, for every function, that a hook that aborts
// its (first) event stops the action: the error names the event and
// reaches the script, and nothing changed.
func TestEventsAborted(t *testing.T) {
	t.Setenv("SSTAR_EVENT_TEST", "v")
	for _, c := range eventCases {
		t.Run(c.name, func(t *testing.T) {
			dir := setupDir(t)
			before := snapshot(t, dir)
			event := c.events[0][:strings.IndexByte(c.events[0], '(')]
			rec := new(audittest.Recorder)
			deny := func(ev audit.Event) error {
				if ev.Name == event {
					return errors.New("denied by test")
				}
				return nil
			}
			th, _ := newThread(t, rec.Hook, deny)
			rec.Take() // sys.addaudithook, for deny
			globals, err := run(th, "result = "+c.src)
			want := fmt.Sprintf("audit event %q aborted: denied by test", event)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error = %v, want one containing %q", err, want)
			}
			fname := c.name
			if i := strings.IndexByte(fname, '/'); i >= 0 {
				fname = fname[:i]
			}
			if !strings.Contains(err.Error(), fname+": audit event") {
				t.Errorf("error %q does not name %s", err, fname)
			}
			if _, ok := globals["result"]; ok {
				t.Errorf("the script got a result: %v", globals)
			}
			var ae *audit.AbortError
			if !errors.As(err, &ae) || ae.Event != event {
				t.Errorf("error %v is not an *audit.AbortError for %s", err, event)
			}
			if after := snapshot(t, dir); !slices.Equal(before, after) {
				t.Errorf("an aborted %s changed the directory:\nbefore %q\nafter  %q", c.name, before, after)
			}
			evs := rec.Strings()
			if len(evs) != 2 || !strings.HasPrefix(evs[1], "sstar.abort(\""+event+"\"") {
				t.Errorf("events %q: want the event, then sstar.abort", evs)
			}
		})
	}
}

// An abort half-way through mkdir(parents=True) leaves the directories
// made before it, and makes none after it.
func TestMkdirParentsAbortedHalfway(t *testing.T) {
	dir := setupDir(t)
	deny := func(ev audit.Event) error {
		if ev.Name == "os.mkdir" && ev.Args()[0].String() == fmt.Sprintf("%q", filepath.Join(dir, "p/q")) {
			return errors.New("not p/q")
		}
		return nil
	}
	th, _ := newThread(t, deny)
	if _, err := run(th, `fs.mkdir("p/q/r", parents=True)`); err == nil || !strings.Contains(err.Error(), "not p/q") {
		t.Fatalf("error = %v, want the abort", err)
	}
	if !exists(filepath.Join(dir, "p")) || exists(filepath.Join(dir, "p/q")) {
		t.Errorf("want p made and p/q not")
	}
}

// Arguments are validated before the event: a bad call raises nothing.
func TestNoEventForBadArguments(t *testing.T) {
	dir := setupDir(t)
	before := snapshot(t, dir)
	for _, src := range []string{
		`fs.read("")`, `fs.read("a\x00b")`, `fs.read(1)`, `fs.read_bytes("")`,
		`fs.write("", "x")`, `fs.write("f", 1)`, `fs.write("f\x00", "x")`, `fs.append("f", None)`,
		`fs.exists("")`, `fs.listdir("\x00")`, `fs.stat("")`, `fs.mkdir("")`, `fs.mkdir("m", parents=1)`,
		`fs.remove("")`, `fs.rename("f", "")`, `fs.rename("", "g")`, `fs.glob("")`, `fs.glob("[")`,
		`proc.run("touch made")`, `proc.run([])`, `proc.run([""])`, `proc.run(["touch", 1])`,
		`proc.run(["touch", "ma\x00de"])`, `proc.run(["touch", "made"], env={"A": 1})`,
		`proc.run(["touch", "made"], cwd="")`, `proc.run(["touch", "made"], timeout=0)`,
		`proc.run(["touch", "made"], stdin=[])`, `os.getenv("")`, `os.getenv("A=B")`, `os.getcwd(1)`,
		`time.now(1)`,
	} {
		rec := new(audittest.Recorder)
		th, _ := newThread(t, rec.Hook)
		if _, err := run(th, src); err == nil {
			t.Errorf("%s: no error", src)
		}
		if evs := rec.Strings(); len(evs) > 0 {
			t.Errorf("%s raised %q", src, evs)
		}
	}
	if after := snapshot(t, dir); !slices.Equal(before, after) {
		t.Errorf("bad calls changed the directory:\nbefore %q\nafter  %q", before, after)
	}
}

// A run with no dispatcher attached does nothing at all.
func TestNoDispatcher(t *testing.T) {
	dir := setupDir(t)
	before := snapshot(t, dir)
	for _, c := range eventCases {
		th := newBareThread(t)
		if _, err := run(th, c.src); !errors.Is(err, audit.ErrNoDispatcher) {
			t.Errorf("%s: error %v, want ErrNoDispatcher", c.src, err)
		}
	}
	if after := snapshot(t, dir); !slices.Equal(before, after) {
		t.Errorf("unaudited calls changed the directory:\nbefore %q\nafter  %q", before, after)
	}
}

// A script hook sees frozen copies: it cannot change what runs, even by
// changing the script's own argv list, and a failed attempt to change the
// event's env aborts it.
func TestPopenArgumentsAreWhatRuns(t *testing.T) {
	setupDir(t)
	th, _ := newThread(t)
	_, err := run(th, `
sh = "`+which("sh")+`"
argv = ["sh", "-c", "echo original"]
env = {"A": "1"}
seen = []
def hook(event, args):
    if event == "subprocess.Popen":
        seen.append(args)
        argv[2] = "echo changed by the hook"
        env["A"] = "2"

sys.addaudithook(hook)
r = proc.run(argv, env = env)
if r.stdout != "original\n":
    fail("ran", r.stdout)
if proc.run(["env"], env = {"A": "1"}).stdout != "A=1\n":
    fail("env changed")
if seen[0] != (sh, ["sh", "-c", "echo original"], seen[0][2], {"A": "1"}):
    fail("event", seen[0])
`)
	if err != nil {
		t.Fatal(err)
	}

	th, _ = newThread(t)
	_, err = run(th, `
def hook(event, args):
    if event == "subprocess.Popen":
        args[3]["EVIL"] = "1"

sys.addaudithook(hook)
proc.run(["touch", "made"])
`)
	if err == nil || !strings.Contains(err.Error(), "frozen") {
		t.Fatalf("error = %v, want a frozen-dict error", err)
	}
	if exists("made") {
		t.Error("the process ran after its event failed")
	}
}

// A program that cannot be found still raises its event (an attempt is
// worth recording), with argv[0] as given, then fails.
func TestPopenMissingExecutable(t *testing.T) {
	dir := setupDir(t)
	rec := new(audittest.Recorder)
	th, _ := newThread(t, rec.Hook)
	_, err := run(th, `proc.run(["sstar-no-such-program", "x"])`)
	if err == nil || !strings.Contains(err.Error(), `executable "sstar-no-such-program" not found in PATH`) {
		t.Fatalf("error = %v", err)
	}
	want := []string{`subprocess.Popen("sstar-no-such-program", ["sstar-no-such-program", "x"], "` + dir + `", ` + defaultEnv + `)`}
	if got := rec.Strings(); !slices.Equal(got, want) {
		t.Errorf("events:\n got %q\nwant %q", got, want)
	}
}

// Files and directories are created with FilePerm and DirPerm, less the
// umask.
func TestCreationModes(t *testing.T) {
	dir := setupDir(t)
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	th, _ := newThread(t)
	if _, err := run(th, `
fs.write("w", "x")
fs.append("a", "x")
fs.mkdir("m")
fs.mkdir("p/q", parents = True)
`); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{
		"w": 0o640, "a": 0o640, "m": 0o750 | fs.ModeDir, "p": 0o750 | fs.ModeDir, "p/q": 0o750 | fs.ModeDir,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
}

func content(name, want string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
}

func isDir(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || !fi.IsDir() {
			t.Errorf("%s: not a directory: %v", name, err)
		}
	}
}

func missing(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if exists(filepath.Join(dir, name)) {
			t.Errorf("%s: still there", name)
		}
	}
}

// snapshot lists every file under dir with its mode and content.
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", p, fi.Mode())
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += " " + string(data)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// which finds a program the way proc.run does with the default PATH.
// dotdot returns the absolute path p the long way round, such as
// /usr/bin/../../usr/bin/touch.
func dotdot(p string) string { return filepath.Dir(p) + "/../.." + p }

func which(name string) string {
	for _, dir := range filepath.SplitList(builtins.DefaultPath) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}
