// Package examples holds sstar's example scripts. This test runs each of
// them the way the launcher does (the builtins predeclared, every event
// to a hook), from a stamped copy, so that they cannot rot.
package examples

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/audittest"
	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/interp"
	"github.com/sstar-project/sstar/opencode"
	"github.com/sstar-project/sstar/opencode/opencodetest"
)

// copyStamped copies the examples (scripts and data) into a fresh
// directory and stamps the scripts as `sstar trust` does.
func copyStamped(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, p)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if strings.HasSuffix(p, ".go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return err
		}
		if strings.HasSuffix(p, ".star") {
			opencodetest.Stamp(t, target)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// has checks that some event, written as audittest.String writes it,
// matches pattern.
func has(t *testing.T, rec *audittest.Recorder, pattern string) {
	t.Helper()
	re := regexp.MustCompile(pattern)
	evs := rec.Strings()
	for _, l := range evs {
		if re.MatchString(l) {
			return
		}
	}
	t.Errorf("no event matches %q; events:\n%s", pattern, strings.Join(evs, "\n"))
}

// scratchDir matches the directories the examples make with mktemp -d
// (their children get an environment of PATH only, so no TMPDIR).
var scratchDir = regexp.MustCompile(`"(/tmp/tmp\.[A-Za-z0-9]{6,})[/"]`)

// run runs an example from dir (the copy's directory, as a user would
// from the examples directory) and returns its output. The scratch
// directories the example made are removed when the test ends: the
// audit trail says which they are.
func run(t *testing.T, dir string, rec *audittest.Recorder, script string, args ...string) (string, error) {
	t.Helper()
	t.Chdir(dir)
	d := new(audit.Dispatcher)
	if err := d.AddHook(rec.Hook); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, l := range rec.Strings() {
			for _, m := range scratchDir.FindAllStringSubmatch(l, -1) {
				os.RemoveAll(m[1])
			}
		}
	})
	var out bytes.Buffer
	h := interp.New(interp.Options{Audit: d, Opener: &opencode.Opener{}, Predeclared: builtins.Modules(), Stdout: &out})
	_, err := h.RunFile(context.Background(), script, args)
	return out.String(), err
}

func TestRotateLogs(t *testing.T) {
	dir := copyStamped(t)
	rec := new(audittest.Recorder)
	out, err := run(t, dir, rec, "rotate_logs.star")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		`(?m)^rotated app.log \(1600 bytes\)$`,
		`(?m)^kept    worker.log \(15 bytes\)$`,
		`(?m)^now in /.*/logs: app.log app.log.1 app.log.2 notes.txt worker.log$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output does not match %q:\n%s", want, out)
		}
	}
	has(t, rec, `^subprocess.Popen\(".*/mktemp", \["mktemp", "-d"\]`)
	has(t, rec, `^glob.glob\("/.*/logs/\*\.log", False\)$`)
	has(t, rec, `^os.remove\("/.*/logs/app.log.3", -1\)$`)
	has(t, rec, `^os.rename\("/.*/logs/app.log.1", "/.*/logs/app.log.2", -1, -1\)$`)
	has(t, rec, `^os.rename\("/.*/logs/app.log", "/.*/logs/app.log.1", -1, -1\)$`)
	has(t, rec, `^open\("/.*/logs/app.log", "w", \d+\)$`)
	has(t, rec, `^time.now\(\)$`)
}

func TestRenderConfig(t *testing.T) {
	dir := copyStamped(t)
	out := t.TempDir()
	rec := new(audittest.Recorder)
	stdout, err := run(t, dir, rec, "render_config.star", "data/service.json", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	conf := filepath.Join(out, "conf.d/billing-api.conf")
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"server 10.0.0.11:9000 weight=3;", "listen 0.0.0.0:8443 ssl;", "server_name billing.example.com billing.internal;"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("config lacks %q:\n%s", want, data)
		}
	}
	if !strings.Contains(stdout, "installed: "+conf+"\nunchanged: "+conf+"\n") {
		t.Errorf("output:\n%s", stdout)
	}
	has(t, rec, `^open\("`+regexp.QuoteMeta(dir)+`/data/service.json", "r", \d+\)$`)
	has(t, rec, `^open\("`+regexp.QuoteMeta(conf)+`.tmp", "w", \d+\)$`)
	has(t, rec, `^os.rename\("`+regexp.QuoteMeta(conf)+`.tmp", "`+regexp.QuoteMeta(conf)+`", -1, -1\)$`)

	// A bad description is refused with a message, and nothing is written.
	bad := filepath.Join(out, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"name": "x", "listen": {"port": 70000}, "server_names": [], "tls": {}, "upstreams": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(out, "second")
	_, err = run(t, dir, new(audittest.Recorder), "render_config.star", bad, out2)
	if err == nil || !strings.Contains(err.Error(), "service description: listen.port 70000 is not a port") {
		t.Errorf("error = %v", err)
	}
	if _, err := os.Stat(out2); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused description created %s", out2)
	}
}

func TestCheckService(t *testing.T) {
	dir := copyStamped(t)
	rec := new(audittest.Recorder)
	out, err := run(t, dir, rec, "check_service.star")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, `"healthy": true`) || !strings.Contains(out, `"detail": "a\nb"`) {
		t.Errorf("output:\n%s", out)
	}
	has(t, rec, `^subprocess.Popen\(".*/uname", \["uname", "-sr"\], ".*", \{"PATH": ".*"\}\)$`)
	has(t, rec, `^subprocess.Popen\(".*/sort", \["sort"\], ".*", \{"LC_ALL": "C"\}\)$`)

	// A failing check fails the script, after the report.
	failing := filepath.Join(t.TempDir(), "checks.json")
	if err := os.WriteFile(failing, []byte(`{"service": "s", "checks": [{"name": "always fails", "argv": ["false"]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = run(t, dir, new(audittest.Recorder), "check_service.star", failing)
	if err == nil || !strings.Contains(err.Error(), "unhealthy: always fails") || !strings.Contains(out, `"healthy": false`) {
		t.Errorf("error = %v, output:\n%s", err, out)
	}
}

func TestSandboxedCleanup(t *testing.T) {
	dir := copyStamped(t)
	rec := new(audittest.Recorder)
	out, err := run(t, dir, rec, "sandboxed_cleanup.star")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^removed main.o, util.o, core.1234; \d+ KiB -> \d+ KiB; left: app, app.log$`).MatchString(out) {
		t.Errorf("output:\n%s", out)
	}

	rec = new(audittest.Recorder)
	out, err = run(t, dir, rec, "sandboxed_cleanup.star", "--try-escape")
	if err == nil || !strings.Contains(err.Error(), `fs.write: audit event "open" aborted: policy: no writing outside`) {
		t.Fatalf("error = %v, want the policy's abort\n%s", err, out)
	}
	if strings.Contains(out, "not reached") {
		t.Error("the script went on after the abort")
	}
	has(t, rec, `^sstar.abort\("open", "policy: no writing outside /.*"\)$`)
	var escaped string
	for _, l := range rec.Strings() {
		if m := regexp.MustCompile(`^open\("(/[^"]*-escaped.txt)", "w"`).FindStringSubmatch(l); m != nil {
			escaped = m[1]
		}
	}
	if escaped == "" {
		t.Fatal("no open event for the escape")
	}
	if _, err := os.Stat(escaped); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s was written despite the abort", escaped)
	}
}
