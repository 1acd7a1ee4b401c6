package bench

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// goCmd is the go command in dir, with the harness's own environment
// (module cache, build cache, GOFLAGS) and extra added to it.
func (h *harness) goCmd(dir string, extra []string, args ...string) *exec.Cmd {
	cmd := exec.Command(h.cfg.Go, args...)
	cmd.Dir = dir
	if len(extra) > 0 {
		cmd.Env = append(cmd.Environ(), extra...)
	}
	return cmd
}

// build builds sstar and the plain starlark command with the same
// toolchain, and finds python3 and strace.
func (h *harness) build() error {
	bin := filepath.Join(h.work, "bin")
	h.sstar, h.plain = filepath.Join(bin, "sstar"), filepath.Join(bin, "starlark")
	// Both static: by default the plain command links libc through cgo
	// (a dependency of its REPL), which alone slows its start-up by
	// loading the dynamic linker; sstar uses no cgo (make build).
	static := []string{"CGO_ENABLED=0"}
	goVersion, err := output(h.goCmd(h.cfg.Root, static, "env", "GOVERSION"))
	if err != nil {
		return err
	}
	h.rep.Machine.Go = goVersion
	// Each program is linked to a scratch name, then copied to the name
	// that is timed (see CopyProgram).
	if _, err := output(h.goCmd(h.cfg.Root, static, "build", "-o", h.sstar+".linked", "./cmd/sstar")); err != nil {
		return err
	}
	if err := installCopy(h.sstar+".linked", h.sstar); err != nil {
		return err
	}
	mod, err := output(h.goCmd(h.cfg.Root, static, "list", "-m", "-f", "{{.Dir}}\t{{.Version}}", "go.starlark.net"))
	if err != nil {
		return err
	}
	dir, version, ok := strings.Cut(mod, "\t")
	if !ok || dir == "" {
		return fmt.Errorf("go.starlark.net is not in the module cache (%q); run go mod download", mod)
	}
	h.rep.Machine.Starlark = version
	// Built in its own module directory, with its own go.sum: the command
	// needs packages (the REPL's) that sstar's go.sum rightly lacks.
	if _, err := output(h.goCmd(dir, append(static, "GOWORK=off"), "build", "-o", h.plain+".linked", "./cmd/starlark")); err != nil {
		return err
	}
	if err := installCopy(h.plain+".linked", h.plain); err != nil {
		return err
	}
	h.parent = filepath.Join(bin, "waitparent")
	if _, err := output(h.goCmd(h.cfg.Root, static, "build", "-o", h.parent, "./internal/bench/cmd/waitparent")); err != nil {
		return err
	}
	h.rep.Machine.Commit = gitDescribe(h.cfg.Root)

	if py, err := exec.LookPath("python3"); err == nil {
		// The real executable: a version manager's shim would add its own
		// start-up to every run.
		out, err := output(exec.Command(py, "-c", "import sys, platform; print(sys.executable); print(platform.python_implementation(), platform.python_version())"))
		if err == nil {
			exe, ver, _ := strings.Cut(out, "\n")
			h.python = exe
			h.rep.Machine.Python = ver
		}
	}
	if h.python == "" {
		h.note("python3 not found: the CPython comparisons, and the budget that needs them, were skipped.")
	}
	if s, err := exec.LookPath("strace"); err == nil {
		h.strace = s
	} else {
		h.note("strace not found: system calls were not counted.")
	}
	return nil
}

// testBinary builds the test binary of the package pkg (once per run) and
// returns its path.
func (h *harness) testBinary(pkg string) (string, error) {
	bin := filepath.Join(h.work, "bin", filepath.Base(pkg)+".test")
	if h.testBins == nil {
		h.testBins = map[string]bool{}
	}
	if !h.testBins[bin] {
		if _, err := output(h.goCmd(h.cfg.Root, nil, "test", "-c", "-o", bin, pkg)); err != nil {
			return "", err
		}
		h.testBins[bin] = true
	}
	return bin, nil
}

// installCopy copies the program at from to a new file to (CopyProgram)
// and removes from.
func installCopy(from, to string) error {
	if err := CopyProgram(from, to); err != nil {
		return err
	}
	return os.Remove(from)
}

// CopyProgram copies the program at from to a new file to, writing it
// with write(2) (or copy_file_range) as cp, install and package managers
// write the programs a host runs. Programs timed against each other
// should be copies made at the same moment.
//
// The linker writes its output through a shared memory mapping, and a
// program run straight from that file starts measurably slower on the
// project's machine (Linux 6.18, ext4) than the same bytes written
// normally, even after sync, and more so the larger the program: in 501
// interleaved runs each, 10% for sstar (10 MB) and 5% for the plain
// command (6 MB). The page cache keeps the file as it was written;
// copying gives both programs the layout an installed program has.
// Copies of one program made minutes apart differed too, by up to 5%,
// in one side-by-side run on a loaded machine (seen once, not
// understood): copy the programs of one comparison together.
func CopyProgram(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %v", from, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copying %s: %v", from, err)
	}
	return nil
}

// output runs cmd and returns its standard output, trimmed; an error
// carries the tail of its standard error.
func output(cmd *exec.Cmd) (string, error) {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, tail(stderr.String(), 2000))
	}
	return strings.TrimSpace(string(out)), nil
}

func gitDescribe(root string) string {
	cmd := exec.Command("git", "rev-parse", "--short=12", "HEAD")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "(unknown commit)"
	}
	rev := strings.TrimSpace(string(out))
	cmd = exec.Command("git", "status", "--porcelain", "--untracked-files=no")
	cmd.Dir = root
	if st, err := cmd.Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		rev += "+dirty"
	}
	return rev
}
