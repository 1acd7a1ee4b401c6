package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/internal/fusetest"
)

// The stories of escape hatches play an attacker: an unprivileged user
// whose script sstar runs. These are the commands they need: a user to
// be (unprivileged), a /dev/fuse that user may open (fusedev), a FUSE
// mount of root's (fusemount), a mount to clean up whatever happens
// (unmount-at-end), and the attacker's own programs, started from the
// script (sstar-fuse, sstar-inject; see attackerPrograms).

// attackerPrograms are the test binary's programs a story's script runs
// with proc.run (testscript puts them on the story's PATH).
var attackerPrograms = map[string]func(){
	"sstar-fuse":   fuseMain,
	"sstar-inject": injectMain,
}

// uidsTaken are the uids stories running now use: each story has its
// own, so that the processes one kills at its end are its own.
var uidsTaken struct {
	sync.Mutex
	uids map[int]bool
}

// unprivilegedUID is the uid a story runs as with unprivileged: one no
// account on the machine has (so nothing of anyone's is reachable) and
// no process or other story uses, found at the story's first use; release
// gives it back.
func unprivilegedUID() (uid int, release func(), err error) {
	uidsTaken.Lock()
	defer uidsTaken.Unlock()
	if uidsTaken.uids == nil {
		uidsTaken.uids = map[int]bool{}
	}
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return 0, nil, err
	}
	used := map[string]bool{}
	for _, line := range strings.Split(string(passwd), "\n") {
		if f := strings.Split(line, ":"); len(f) > 3 {
			used[f[2]] = true
			used[f[3]] = true
		}
	}
	for uid := 61000; uid < 62000; uid++ {
		if !used[strconv.Itoa(uid)] && !uidsTaken.uids[uid] && len(processesOf(uid)) == 0 {
			uidsTaken.uids[uid] = true
			return uid, func() {
				uidsTaken.Lock()
				delete(uidsTaken.uids, uid)
				uidsTaken.Unlock()
			}, nil
		}
	}
	return 0, nil, errors.New("no free uid in 61000-61999")
}

// processesOf returns the pids of the processes whose real uid is uid.
func processesOf(uid int) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", d.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] == strconv.Itoa(uid) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// An unprivilegedUser is the story's unprivileged user, set up once.
type unprivilegedUser struct {
	uid int
}

// unprivileged [-status CODE] PROGRAM [ARGS...]: runs PROGRAM as exec
// does, but as an unprivileged user (a uid no account has, no groups, no
// capabilities; setpriv), with $HOME the directory home, which that user
// owns. CODE is the exit status wanted (default 0; "!" in front wants a
// failure). The first use in a story makes the story's directories and
// programs reachable to that user (o+x on the directories above them,
// put back when the story ends); when the story ends every process left
// with that uid is killed. Needs root and setpriv: [root] [exec:setpriv].
func cmdUnprivileged(ts *testscript.TestScript, neg bool, args []string) {
	st := state(ts)
	want := -1
	if len(args) > 2 && args[0] == "-status" {
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		want, args = n, args[2:]
	}
	if len(args) == 0 {
		ts.Fatalf("usage: unprivileged [-status CODE] PROGRAM [ARGS...]")
	}
	if st.user == nil {
		uid, release, err := unprivilegedUID()
		ts.Check(err)
		st.user = &unprivilegedUser{uid: uid}
		ts.Defer(func() {
			for _, pid := range processesOf(uid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			release()
		})
		// The directories above the work directory and the programs.
		bin, err := lookPath(ts, "sstar")
		ts.Check(err)
		work := ts.Getenv("WORK")
		for _, p := range []string{work, filepath.Dir(bin)} {
			for d := p; d != "/"; d = filepath.Dir(d) {
				ts.Check(widen(d, 0o001))
				ts.Defer(func() { unwiden(d) })
			}
		}
		home := filepath.Join(work, "home")
		if err := os.Mkdir(home, 0o755); err != nil && !os.IsExist(err) {
			ts.Check(err)
		}
		ts.Check(os.Chown(home, uid, uid))
		ts.Setenv("HOME", home)
		ts.Setenv("UNPRIVILEGED_UID", strconv.Itoa(uid))
	}
	uid := strconv.Itoa(st.user.uid)
	err := ts.Exec("setpriv", append([]string{"--reuid=" + uid, "--regid=" + uid, "--clear-groups", "--inh-caps=-all", "--"}, args...)...)
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		ts.Fatalf("%s: %v", args[0], err)
	}
	switch {
	case want >= 0 && code != want:
		ts.Fatalf("%s as uid %s exited with status %d, want %d", args[0], uid, code, want)
	case want < 0 && neg && code == 0:
		ts.Fatalf("%s as uid %s succeeded unexpectedly", args[0], uid)
	case want < 0 && !neg && code != 0:
		ts.Fatalf("%s as uid %s exited with status %d", args[0], uid, code)
	}
}

// Stories run in parallel and share the directories above their work
// directories, the programs and /dev/fuse: each mode widened (o+x on a
// directory, rw for all on /dev/fuse) is put back when the last story
// that needed it ends.
var widened struct {
	sync.Mutex
	refs  map[string]int
	modes map[string]os.FileMode // the modes to put back
}

// widen adds the permission bits add to path's mode until unwiden.
func widen(path string, add os.FileMode) error {
	widened.Lock()
	defer widened.Unlock()
	if widened.refs == nil {
		widened.refs, widened.modes = map[string]int{}, map[string]os.FileMode{}
	}
	if widened.refs[path] == 0 {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if mode := fi.Mode().Perm(); mode&add != add {
			if err := os.Chmod(path, mode|add); err != nil {
				return err
			}
			widened.modes[path] = mode
		}
	}
	widened.refs[path]++
	return nil
}

// unwiden puts path's mode back if no other story needs it widened.
func unwiden(path string) {
	widened.Lock()
	defer widened.Unlock()
	if widened.refs[path]--; widened.refs[path] > 0 {
		return
	}
	if mode, ok := widened.modes[path]; ok {
		os.Chmod(path, mode)
		delete(widened.modes, path)
	}
}

// fusedev: makes /dev/fuse usable by every user (mode 0666) until the
// story ends, when its mode is put back (once no other story needs it),
// whatever happened. Needs root.
func cmdFusedev(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: fusedev")
	}
	ts.Check(widen("/dev/fuse", 0o666))
	ts.Defer(func() { unwiden("/dev/fuse") })
}

// fusemount DIR NAME FILE: mounts, as root, a FUSE file system on DIR (a
// new directory) holding NAME with FILE's content and, for a stamp, the
// SHA-256 of that content in user.sstar.sha256, which nobody wrote: its
// server (this test) answers getxattr. Unmounted when the story ends.
func cmdFusemount(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: fusemount DIR NAME FILE")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.Mkdir(dir, 0o755))
	data, err := os.ReadFile(ts.MkAbs(args[2]))
	ts.Check(err)
	srv, err := fusetest.Mount(dir, []fusetest.File{servedFile(args[1], data)})
	ts.Check(err)
	ts.Defer(func() { srv.Unmount() })
}

// unmount-at-end DIR: whatever is mounted on DIR when the story ends is
// unmounted then (for stories where the code before a fix mounted it).
func cmdUnmountAtEnd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: unmount-at-end DIR")
	}
	dir := ts.MkAbs(args[0])
	ts.Defer(func() {
		for unix.Unmount(dir, unix.MNT_DETACH) == nil {
		}
	})
}

// servedFile is NAME with data, stamped by its server.
func servedFile(name string, data []byte) fusetest.File {
	sum := sha256.Sum256(data)
	return fusetest.File{Name: name, Data: data, Xattrs: map[string]string{"user.sstar.sha256": hex.EncodeToString(sum[:])}}
}

// fuseMain is the attacker's FUSE program, run from a script:
//
//	sstar-fuse start DIR NAME FILE
//
// mounts on DIR a FUSE file system serving NAME with FILE's content and a
// made-up stamp of it (see servedFile), in the background, and prints the
// pid of the process serving it (which stops after a minute);
//
//	sstar-fuse overlay LOWER UPPER WORK MERGED NAME FILE
//
// serves the same on LOWER, mounts an overlay of it (userxattr) with
// UPPER on MERGED, touches MERGED/NAME, so that the kernel copies the
// content and the stamp up to UPPER, and unmounts both. Both need the
// right to mount: run them under unshare -Urm.
func fuseMain() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "sstar-fuse:", err)
		os.Exit(1)
	}
	args := os.Args[1:]
	switch {
	case len(args) == 4 && args[0] == "start":
		// The server must outlive this process, in this namespace: a
		// child of it serves, and says when it is ready.
		cmd := exec.Command("/proc/self/exe", append([]string{"serve"}, args[1:]...)...)
		cmd.Args[0] = "sstar-fuse"
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		out, err := cmd.StdoutPipe()
		if err != nil {
			fail(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			fail(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "ready\n" {
			fail(fmt.Errorf("the server did not start: %q %v", line, err))
		}
		fmt.Println(cmd.Process.Pid)
	case len(args) == 4 && args[0] == "serve":
		data, err := os.ReadFile(args[3])
		if err != nil {
			fail(err)
		}
		srv, err := fusetest.Mount(args[1], []fusetest.File{servedFile(args[2], data)})
		if err != nil {
			fail(err)
		}
		fmt.Println("ready")
		os.Stdout.Close()
		time.AfterFunc(time.Minute, func() { srv.Unmount(); os.Exit(0) })
		srv.Wait()
	case len(args) == 7 && args[0] == "overlay":
		lower, upper, work, merged, name := args[1], args[2], args[3], args[4], args[5]
		data, err := os.ReadFile(args[6])
		if err != nil {
			fail(err)
		}
		srv, err := fusetest.Mount(lower, []fusetest.File{servedFile(name, data)})
		if err != nil {
			fail(err)
		}
		defer srv.Unmount()
		opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,userxattr", lower, upper, work)
		if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
			srv.Unmount()
			fail(fmt.Errorf("mount overlay: %w", err))
		}
		now := time.Now()
		err = os.Chtimes(filepath.Join(merged, name), now, now) // touch: copy-up
		unix.Unmount(merged, unix.MNT_DETACH)
		srv.Unmount()
		if err != nil {
			fail(err)
		}
		fmt.Println("copied up")
	default:
		fail(errors.New("usage: sstar-fuse start DIR NAME FILE | overlay LOWER UPPER WORK MERGED NAME FILE"))
	}
}

// injectMain is the attacker's ptrace program, run from a script:
//
//	sstar-inject FILE
//
// attaches to its grandparent (the parent of the sstar that started it:
// the user's shell, which no seccomp filter binds) and makes it call
// setxattr(FILE, "user.sstar.sha256", SHA-256 of FILE's content), a stamp
// for code nobody vouched for. x86-64 only.
func injectMain() {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "sstar-inject:", err)
		os.Exit(1)
	}
	if len(os.Args) != 2 || runtime.GOARCH != "amd64" {
		fail(errors.New("usage: sstar-inject FILE (on amd64)"))
	}
	file, err := filepath.Abs(os.Args[1])
	if err != nil {
		fail(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		fail(err)
	}
	sum := sha256.Sum256(data)
	target, err := parentOf(os.Getppid())
	if err != nil {
		fail(err)
	}
	if err := injectSetxattr(target, file, "user.sstar.sha256", []byte(hex.EncodeToString(sum[:]))); err != nil {
		fail(fmt.Errorf("pid %d: %w", target, err))
	}
	fmt.Printf("pid %d stamped %s\n", target, file)
}

// parentOf returns the parent of pid, from /proc/PID/stat.
func parentOf(pid int) (int, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, stat)
	}
	return strconv.Atoi(f[1])
}

// injectSetxattr makes the stopped-in-a-system-call process pid run
// setxattr(path, name, value, 0) with ptrace: the arguments are written
// below its stack pointer (past the red zone), its registers pointed at
// the syscall instruction it is stopped after, one step taken, and
// registers and memory put back, so that it resumes the call it was in.
func injectSetxattr(pid int, path, name string, value []byte) error {
	runtime.LockOSThread() // ptrace requests must come from the tracer thread
	defer runtime.UnlockOSThread()
	if err := unix.PtraceAttach(pid); err != nil {
		return fmt.Errorf("ptrace(PTRACE_ATTACH): %w", err)
	}
	defer unix.PtraceDetach(pid)
	if err := waitStopped(pid); err != nil {
		return err
	}
	var saved unix.PtraceRegs
	if err := unix.PtraceGetRegs(pid, &saved); err != nil {
		return fmt.Errorf("PTRACE_GETREGS: %w", err)
	}
	insn := make([]byte, 2)
	if _, err := unix.PtracePeekText(pid, uintptr(saved.Rip-2), insn); err != nil || insn[0] != 0x0f || insn[1] != 0x05 {
		return fmt.Errorf("not stopped after a syscall instruction (%x, %v)", insn, err)
	}
	args := append(append(append([]byte(path), 0), append([]byte(name), 0)...), value...)
	addr := uintptr(saved.Rsp-4096) &^ 15
	old := make([]byte, len(args))
	if _, err := unix.PtracePeekData(pid, addr, old); err != nil {
		return fmt.Errorf("PTRACE_PEEKDATA: %w", err)
	}
	if _, err := unix.PtracePokeData(pid, addr, args); err != nil {
		return fmt.Errorf("PTRACE_POKEDATA: %w", err)
	}
	defer unix.PtracePokeData(pid, addr, old)
	regs := saved
	regs.Rip = saved.Rip - 2
	regs.Orig_rax = ^uint64(0) // no system call to restart
	regs.Rax = unix.SYS_SETXATTR
	regs.Rdi = uint64(addr)
	regs.Rsi = uint64(addr) + uint64(len(path)) + 1
	regs.Rdx = uint64(addr) + uint64(len(path)+len(name)) + 2
	regs.R10 = uint64(len(value))
	regs.R8 = 0
	if err := unix.PtraceSetRegs(pid, &regs); err != nil {
		return fmt.Errorf("PTRACE_SETREGS: %w", err)
	}
	defer unix.PtraceSetRegs(pid, &saved) // it resumes the call it was in
	if err := unix.PtraceSingleStep(pid); err != nil {
		return fmt.Errorf("PTRACE_SINGLESTEP: %w", err)
	}
	if err := waitStopped(pid); err != nil {
		return err
	}
	if err := unix.PtraceGetRegs(pid, &regs); err != nil {
		return fmt.Errorf("PTRACE_GETREGS: %w", err)
	}
	if r := int64(regs.Rax); r < 0 {
		return fmt.Errorf("the injected setxattr: %w", unix.Errno(-r))
	}
	return nil
}

func waitStopped(pid int) error {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait4: %w", err)
		}
		if ws.Stopped() {
			return nil
		}
		if ws.Exited() || ws.Signaled() {
			return fmt.Errorf("the process ended (%v)", ws)
		}
	}
}

// withAttackerPrograms adds attackerPrograms to a story's programs.
func withAttackerPrograms(programs map[string]func()) map[string]func() {
	for name, f := range attackerPrograms {
		programs[name] = f
	}
	return programs
}
