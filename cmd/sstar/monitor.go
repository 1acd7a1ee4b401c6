package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/jsonl"
	"github.com/sstar-project/sstar/audit/record"
	"github.com/sstar-project/sstar/internal/render"
	"github.com/sstar-project/sstar/policy"
)

// The crash monitor. A run is two processes: the sstar the user started
// is the monitor, which does nothing but start the run as its child (the
// same program, the same arguments), forward the stop signals to it, and
// wait. Whatever ends the child without its own sstar.run_end (a Go fatal
// error such as a stack overflow or running out of memory, SIGKILL from
// the OOM killer or anyone, a record it could not write in time) the
// monitor then writes that run_end, into every sink of the run, and
// exits with a status of its own (crash, memory, 128+signal).
//
// The two share a memory file (memfd "sstar-run", the child's descriptor
// 3, mapped by the child): the run id, the seq of the last record begun
// (record.Fanout.Progress), the sinks, limits and compiled code as they
// become known, and whether the run's end was recorded. The child points
// the Go runtime's crash report at a second memory file (descriptor 4,
// runtime/debug.SetCrashOutput), whose first lines go into the monitor's
// record. The JSON Lines log chains from the dead run's last line
// (jsonl.Resume). If the monitor itself is killed, the child gets SIGTERM
// (PR_SET_PDEATHSIG), records that it was killed, and stops.
//
// docs/architecture.md says why a supervising parent and not a monitor
// the run starts beside itself, and docs/performance.md what it costs.

const (
	stateName = "sstar-run"
	crashName = "sstar-crash"
	stateSize = 64 << 10
	stateFD   = 3 // in the child
	crashFD   = 4
	// stateMagic opens the state, with the monitor's pid after it: a
	// descriptor 3 that merely looks like a monitor's does not make a
	// run think it is monitored.
	stateMagic = 0x6e75722d72617473 // "star-run"

	offMagic     = 0
	offParent    = 8
	offSeq       = 16 // atomic: record.Fanout.Progress
	offEnded     = 24 // atomic: 1 once run_end was recorded
	offNoteCode  = 28 // the status of a run that ends without its record
	offStart     = 32 // unix nanoseconds
	offSteps     = 40
	offTimeout   = 48
	offMemory    = 56
	offMaxRecord = 64
	offRun       = 72 // 32 hex digits
	offNoteLen   = 104
	offSinksLen  = 108
	offCodeLen   = 112
	offNote      = 128
	maxNote      = 896
	offSinks     = 1024
	maxSinks     = 15 << 10
	offCode      = 16 << 10
	maxCode      = stateSize - offCode
)

// monitorRecordWait bounds how long the monitor tries to record the end
// of a run that died: its sinks may be what hung the run.
const monitorRecordWait = 5 * time.Second

// runState is the shared memory, as the child maps it (or as the monitor
// read it once the child was dead).
type runState struct {
	mem []byte
}

func (st *runState) u64(off int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&st.mem[off]))
}
func (st *runState) u32(off int) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&st.mem[off]))
}

// monitored is the state of this process's run if a monitor started it.
var monitored *runState

// attachMonitor reports whether this process is a run started by a
// monitor, and if so maps the state and sends the runtime's crash report
// to the monitor. Both descriptors are then kept from the script's
// children. A descriptor 3 that is the monitor's memory file but cannot
// be used is an error, never a reason to start a monitor again (which
// would start a run that starts a monitor, and so on).
func attachMonitor() (bool, error) {
	name, err := os.Readlink("/proc/self/fd/3")
	if err != nil || name != "/memfd:"+stateName+" (deleted)" {
		return false, nil
	}
	mem, err := unix.Mmap(stateFD, 0, stateSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return false, fmt.Errorf("mapping the monitor's state: %v", err)
	}
	st := &runState{mem: mem}
	if st.u64(offMagic).Load() != stateMagic || st.u64(offParent).Load() != uint64(os.Getppid()) {
		unix.Munmap(mem)
		return false, errors.New("descriptor 3 is a memory file named like the monitor's, but not from this process's parent")
	}
	unix.CloseOnExec(stateFD)
	crash := os.NewFile(crashFD, crashName)
	if err := debug.SetCrashOutput(crash, debug.CrashOptions{}); err != nil {
		fmt.Fprintf(os.Stderr, "sstar: warning: the crash report will not reach the monitor: %v\n", err)
	}
	crash.Close() // SetCrashOutput keeps its own duplicate, close-on-exec
	monitored = st
	return true, nil
}

// The child's side: each method does nothing without a monitor.

func (st *runState) setRun(id string) {
	if st != nil {
		copy(st.mem[offRun:offRun+32], id)
	}
}

func (st *runState) progress() *atomic.Uint64 {
	if st == nil {
		return nil
	}
	return st.u64(offSeq)
}

func (st *runState) setSinks(specs []policy.Sink) {
	if st == nil {
		return
	}
	b, err := json.Marshal(specs)
	if err != nil || len(b) > maxSinks {
		b = nil // the monitor then records nowhere; said when it reads it
	}
	copy(st.mem[offSinks:], b)
	st.u32(offSinksLen).Store(uint32(len(b)))
}

func (st *runState) setLimits(steps uint64, timeout time.Duration, memory int64, maxRecord int) {
	if st == nil {
		return
	}
	st.u64(offSteps).Store(steps)
	st.u64(offTimeout).Store(uint64(timeout))
	st.u64(offMemory).Store(uint64(memory))
	st.u64(offMaxRecord).Store(uint64(maxRecord))
}

// addCode adds a compiled file; what does not fit is left out.
func (st *runState) addCode(path, sum string) {
	if st == nil {
		return
	}
	n := int(st.u32(offCodeLen).Load())
	entry := path + "\x00" + sum + "\x00"
	if n+len(entry) > maxCode {
		return
	}
	copy(st.mem[offCode+n:], entry)
	st.u32(offCodeLen).Store(uint32(n + len(entry)))
}

// ended says the run's end is recorded: the monitor has nothing to add.
func (st *runState) ended() {
	if st != nil {
		st.u32(offEnded).Store(1)
	}
}

// note leaves the monitor the status and reason of a run that ends
// without its end recorded (the watchdog's record hung), for the monitor
// to record.
func (st *runState) note(status int, reason string) {
	if st == nil {
		return
	}
	if len(reason) > maxNote {
		reason = reason[:maxNote]
	}
	copy(st.mem[offNote:], reason)
	st.u32(offNoteLen).Store(uint32(len(reason)))
	st.u32(offNoteCode).Store(uint32(status))
}

// parentDied reports whether the monitor that started this run is gone.
// PR_SET_PDEATHSIG fires when the monitor's thread that started the run
// ends, and the kernel ends a killed process's threads one by one: the
// run may be told before it is handed to another parent. So it looks
// again for a short while before it answers no.
func (st *runState) parentDied() bool {
	if st == nil {
		return false
	}
	for i := 0; i < 20; i++ {
		if uint64(os.Getppid()) != st.u64(offParent).Load() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// The monitor's side.

// supervise runs this invocation as a monitored run: it starts the run
// as its child and waits for it, and returns the exit status.
func supervise(stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "sstar: CRITICAL: cannot start the run under sstar's crash monitor: %v; nothing ran\n", err)
		return exitUnrecorded
	}
	// Non-dumpable, as the run makes itself (harden.DenyXattrWrites):
	// the monitor holds the environment sstar was started with, and the
	// run's children, the same user's, must not read it from
	// /proc/PID/environ or write the monitor's memory.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fail(fmt.Errorf("prctl(PR_SET_DUMPABLE, 0): %w", err))
	}
	// PR_SET_PDEATHSIG fires when the thread that started the child
	// ends, not the process: keep this goroutine on its thread.
	runtime.LockOSThread()
	state, err := memfd(stateName, stateSize)
	if err != nil {
		return fail(err)
	}
	crash, err := memfd(crashName, 0)
	if err != nil {
		return fail(err)
	}
	var head [40]byte
	binary.LittleEndian.PutUint64(head[offMagic:], stateMagic)
	binary.LittleEndian.PutUint64(head[offParent:], uint64(os.Getpid()))
	start := time.Now()
	binary.LittleEndian.PutUint64(head[offStart:], uint64(start.UnixNano()))
	if _, err := state.WriteAt(head[:], 0); err != nil {
		return fail(err)
	}

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	// syscall.ForkExec, not os/exec: the os package's first process
	// start probes pidfd support with a process of its own, and Wait
	// needs goroutines; this is start-up cost on every run.
	pid, err := syscall.ForkExec(selfExe, os.Args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2, state.Fd(), crash.Fd()},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM},
	})
	if err != nil {
		return fail(err)
	}
	go func() {
		for sig := range sigs {
			if sig != syscall.SIGPIPE {
				syscall.Kill(pid, sig.(syscall.Signal)) // the run records it and stops
			}
		}
	}()
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			break
		}
	}
	signal.Stop(sigs)

	mem := make([]byte, stateSize)
	if _, err := state.ReadAt(mem, 0); err != nil {
		fmt.Fprintf(stderr, "sstar: CRITICAL: cannot read what the run left: %v\n", err)
		return exitUnrecorded
	}
	st := &runState{mem: mem}
	status := ws.ExitStatus()
	if ws.Signaled() {
		status = signalStatus(ws.Signal())
	}
	if st.u32(offEnded).Load() == 1 {
		return status // the run recorded its own end
	}
	report := make([]byte, 16<<10)
	n, _ := crash.ReadAt(report, 0)
	status, reason := outcome(ws, st, report[:n])
	return recordEnd(stderr, st, status, reason, start)
}

// memfd makes a memory file of size bytes.
func memfd(name string, size int64) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %v", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if size > 0 {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// outcome says what ended a run that did not record its end: the status
// the monitor exits with and the reason it records.
func outcome(ws syscall.WaitStatus, st *runState, report []byte) (int, string) {
	if n := st.u32(offNoteLen).Load(); n > 0 && ws.Exited() {
		return int(st.u32(offNoteCode).Load()), string(st.mem[offNote : offNote+int(n)])
	}
	summary := crashSummary(report)
	switch {
	case summary != "" && st.u64(offMemory).Load() != 0 && outOfMemory(summary):
		return exitMemory, "memory: the run went past its memory limit of " + policy.FormatSize(int64(st.u64(offMemory).Load())) + ": " + summary
	case summary != "":
		return exitCrash, "crash: " + summary
	case ws.Signaled():
		return signalStatus(ws.Signal()), "killed " + unix.SignalName(ws.Signal())
	}
	return exitCrash, fmt.Sprintf("crash: the run exited with status %d without recording its end, and the Go runtime reported nothing", ws.ExitStatus())
}

// crashSummary words the Go runtime's crash report in one line. The
// runtime copies to the crash output only what it prints once it is
// crashing: a panic's "panic: …" line and a signal's "SIG…" lines, but not
// the "fatal error: …" line of a throw, which goes to standard error
// alone. So a throw is named by where it was thrown from (runtime.newstack
// throws only for a stack overflow, the allocator when the kernel refuses
// memory), and the summary ends with the first frames: the runtime's and
// the first outside it, such as go.starlark.net's (*List).Freeze.
func crashSummary(report []byte) string {
	var said, frames []string
	for _, line := range strings.Split(string(report), "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "goroutine ") || strings.HasPrefix(line, "created by "):
		case strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") || strings.HasPrefix(line, "SIG") ||
			strings.HasPrefix(line, "[signal ") || strings.HasPrefix(line, "unexpected signal"):
			if len(said) < 3 {
				said = append(said, strings.TrimSpace(line))
			}
		case strings.HasSuffix(line, ")"):
			if i := strings.LastIndexByte(line, '('); i > 0 && len(frames) < 64 {
				frames = append(frames, line[:i])
			}
		}
	}
	if len(said) == 0 {
		switch {
		case slices.Contains(frames, "runtime.newstack"):
			said = append(said, "fatal error: stack overflow")
		case slices.ContainsFunc(frames, allocator):
			said = append(said, "fatal error: runtime: out of memory")
		case len(frames) > 0:
			said = append(said, "fatal error")
		default:
			return ""
		}
	}
	var at []string
	for i, f := range frames {
		if i < 3 || !strings.HasPrefix(f, "runtime.") {
			at = append(at, f)
		}
		if !strings.HasPrefix(f, "runtime.") {
			break
		}
	}
	s := strings.Join(said, "; ")
	if len(at) > 0 {
		s += " (in " + strings.Join(at, " < ") + ")"
	}
	// The report is the run's output, a panic's text among it: the
	// reason recorded is valid UTF-8 whatever it held.
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > 600 {
		s = strings.ToValidUTF8(s[:600], "") + "…"
	}
	return s
}

// allocator reports whether a frame is the Go runtime's memory
// management's (sysMap, persistentalloc, (*mheap).grow, mallocgc,
// newArenaMayUnlock, newMarkBits, recordspan, …): the runtime throws
// from there when the kernel refuses it memory, and from many places:
// a run under a memory limit was seen dying in each of these.
func allocator(frame string) bool {
	if !strings.HasPrefix(frame, "runtime.") {
		return false
	}
	for _, s := range []string{"alloc", "Alloc", "sysMap", "sysReserve", "mheap", "Arena", "arena", "Bits", "recordspan", "grow"} {
		if strings.Contains(frame, s) {
			return true
		}
	}
	return false
}

// outOfMemory reports whether a crash summary says the runtime died for
// want of memory.
func outOfMemory(summary string) bool {
	return strings.Contains(summary, "out of memory") || strings.Contains(summary, "cannot allocate memory")
}

// recordEnd writes the run_end of a run that died into every sink of the
// run, within monitorRecordWait, and returns the status to exit with:
// status, or exitUnrecorded if it could not be recorded.
func recordEnd(stderr io.Writer, st *runState, status int, reason string, start time.Time) int {
	run := string(bytes.TrimRight(st.mem[offRun:offRun+32], "\x00"))
	fmt.Fprintf(stderr, "sstar: the run ended without recording its end: %s\n", reason)
	if run == "" {
		return status // the run had no sinks: nothing to record into
	}
	var specs []policy.Sink
	if n := st.u32(offSinksLen).Load(); n > 0 {
		if err := json.Unmarshal(st.mem[offSinks:offSinks+int(n)], &specs); err != nil {
			fmt.Fprintf(stderr, "sstar: CRITICAL: the run's sinks are unreadable (%v); its end is not recorded\n", err)
			return exitUnrecorded
		}
	}
	done := make(chan error, 1)
	go func() { done <- writeEnd(specs, st, run, status, reason, start) }()
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintf(stderr, "sstar: CRITICAL: the end of the run could not be recorded: %v\n", err)
			return exitUnrecorded
		}
		return status
	case <-time.After(monitorRecordWait):
		fmt.Fprintf(stderr, "sstar: CRITICAL: the end of the run could not be recorded within %s\n", monitorRecordWait)
		return exitUnrecorded
	}
}

// writeEnd writes one run_end record into every sink in specs.
func writeEnd(specs []policy.Sink, st *runState, run string, status int, reason string, start time.Time) error {
	seq := st.u64(offSeq).Load() + 1
	code := starlark.NewDict(0)
	if n := int(st.u32(offCodeLen).Load()); n > 0 {
		f := strings.Split(string(st.mem[offCode:offCode+n]), "\x00")
		for i := 0; i+1 < len(f); i += 2 {
			code.SetKey(starlark.String(f[i]), starlark.String(f[i+1]))
		}
	}
	limits := runLimits(st.u64(offSteps).Load(), time.Duration(st.u64(offTimeout).Load()), int64(st.u64(offMemory).Load()))
	args := starlark.Tuple{starlark.MakeInt(status), starlark.String(reason),
		starlark.Float(time.Since(start).Seconds()), starlark.MakeUint64(seq - 1), code, limits}
	max := int(st.u64(offMaxRecord).Load())
	if max <= 0 {
		max = record.DefaultMaxRecord
	}
	name := audit.RunEnd.Name()
	r := &record.Record{Run: run, Seq: seq, Time: time.Now(), PID: os.Getpid(), Kind: audit.RunEnd, Name: name,
		Args: render.AppendArgs(nil, args, max-len(name))}
	var errs []error
	ms := new(session) // for the sinks in the sink process, started if one is needed
	defer func() {
		if ms.sinkproc != nil {
			ms.sinkproc.Close()
		}
	}()
	for _, spec := range specs {
		var sink record.Sink
		var err error
		if spec.AuditLog != "" {
			sink, err = jsonl.Resume(spec.AuditLog, run)
		} else {
			sink, err = ms.openSink(spec)
		}
		if err == nil {
			err = sink.Write(r)
			if cerr := sink.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", spec, err))
		}
	}
	return errors.Join(errs...)
}

// runLimits is run_end's limits argument.
func runLimits(steps uint64, timeout time.Duration, memory int64) *starlark.Dict {
	limits := starlark.NewDict(3)
	limits.SetKey(starlark.String("steps"), starlark.MakeUint64(steps))
	limits.SetKey(starlark.String("timeout"), starlark.Float(timeout.Seconds()))
	limits.SetKey(starlark.String("memory"), starlark.MakeInt64(memory))
	return limits
}

// mayRecord reports whether a run with flags f can have sinks: flag
// sinks, or a system policy (which may name mandatory ones). A run that
// can have none, and has no --policy files (which may set a memory
// limit) and asks for no memory limit and no result file, has no end to
// record or limit to tell, so it needs no monitor: it then
// starts as one process, which keeps start-up within its budget (a
// monitor doubles the processes a run starts).
func mayRecord(f *runFlags) bool {
	// A memory limit (the flag's, or a --policy file's) or a --result
	// file needs it too: only the monitor can tell a run stopped by its
	// memory limit (status 71) from a crash, and give a run that died,
	// whose result file stays empty, a status that says why.
	if len(f.sinks()) > 0 || policy.Required == "true" || f.maxMemory > 0 || f.result != "" || len(f.policies) > 0 {
		return true
	}
	_, err := os.Lstat(policy.SystemPath)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}
