package builtins_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/audittest"
	"github.com/sstar-project/sstar/internal/render"
)

// The events sstar names after CPython's carry CPython's arguments, in
// CPython's positions: the same actions, done by this machine's python3
// and by sstar's builtins, raise the same events with the same arguments
// (as JSON), so that detection rules written for Python carry over.
func TestCPythonParity(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("needs python3, to compare sstar's events with CPython's")
	}
	pyDir := t.TempDir()
	const py = `
import glob, json, os, subprocess, sys
names = {"open", "os.mkdir", "os.remove", "os.rename", "os.listdir", "glob.glob", "glob.glob/2", "subprocess.Popen"}
events = []
def hook(event, args):
    if event in names and not (event == "open" and args[0] == "/dev/null"):
        events.append([event, list(args)])
sys.addaudithook(hook)
d = os.getcwd()
os.mkdir(d + "/x", 0o755)
open(d + "/x/f", "w").close()
open(d + "/x/f", "a").close()
open(d + "/x/f", "r").close()
os.listdir(d + "/x")
os.rename(d + "/x/f", d + "/x/g")
glob.glob(d + "/x/*")
os.remove(d + "/x/g")
subprocess.run(["/bin/echo", "hi"], cwd=d, env={"PATH": "/bin"}, stdout=subprocess.DEVNULL)
sys.stdout.write(json.dumps(events))
`
	cmd := exec.Command(python, "-I", "-c", py)
	cmd.Dir = pyDir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var want [][]json.RawMessage
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("python3 printed %q: %v", out, err)
	}

	dir := setupDir(t)
	rec := new(audittest.Recorder)
	th, _ := newThread(t, rec.Hook)
	_, err = run(th, `
d = os.getcwd()
fs.mkdir(d + "/x")
fs.write(d + "/x/f", "")
fs.append(d + "/x/f", "")
fs.read(d + "/x/f")
fs.listdir(d + "/x")
fs.rename(d + "/x/f", d + "/x/g")
fs.glob(d + "/x/*")
fs.remove(d + "/x/g")
proc.run(["/bin/echo", "hi"], cwd=d, env={"PATH": "/bin"})
`)
	if err != nil {
		t.Fatal(err)
	}
	var got []audit.Event
	for _, ev := range rec.Events() {
		if ev.Kind.Spec().CPython && ev.Kind != audit.AddAuditHook {
			got = append(got, ev)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("sstar raised %d CPython events, python3 %d:\n sstar: %q\npython: %s", len(got), len(want), rec.Strings(), out)
	}
	for i, ev := range got {
		var name string
		json.Unmarshal(want[i][0], &name)
		var compact bytes.Buffer
		json.Compact(&compact, want[i][1])
		args := strings.ReplaceAll(string(render.AppendArgs(nil, ev.Args(), 0)), dir, "DIR")
		pyArgs := strings.ReplaceAll(compact.String(), pyDir, "DIR")
		if ev.Name != name || args != pyArgs {
			t.Errorf("event %d: sstar %s%s, python3 %s%s", i, ev.Name, args, name, pyArgs)
		}
	}
	if t.Failed() {
		t.Logf("python3 %s", strings.TrimSpace(string(must2(exec.Command(python, "--version").Output()))))
	}
}

func must2(b []byte, _ error) []byte { return b }
