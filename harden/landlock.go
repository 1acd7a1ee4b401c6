package harden

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// Access is a set of the permission categories a Landlock rule grants.
type Access uint8

const (
	// Read is reading files and listing directories
	// (LANDLOCK_ACCESS_FS_READ_FILE, _READ_DIR).
	Read Access = 1 << iota
	// Write is writing, truncating, creating, removing, renaming and
	// linking files and directories, and device ioctls
	// (_WRITE_FILE, _TRUNCATE, _MAKE_*, _REMOVE_*, _REFER, _IOCTL_DEV).
	Write
	// Exec is executing files (_EXECUTE, and _READ_FILE on files,
	// because the kernel opens what it executes for reading), the
	// executable's ELF interpreter and a script's "#!" interpreter
	// included.
	Exec
)

// Landlock access rights of each category, by ABI as go-landlock numbers
// them; the kernel's own ABI limits which are handled (see Confine).
const (
	readRights  = ll.AccessFSReadFile | ll.AccessFSReadDir
	writeRights = ll.AccessFSWriteFile | ll.AccessFSRemoveDir | ll.AccessFSRemoveFile | ll.AccessFSMakeChar |
		ll.AccessFSMakeDir | ll.AccessFSMakeReg | ll.AccessFSMakeSock | ll.AccessFSMakeFifo | ll.AccessFSMakeBlock |
		ll.AccessFSMakeSym | ll.AccessFSRefer | ll.AccessFSTruncate | ll.AccessFSIoctlDev
	execRights = ll.AccessFSExecute | ll.AccessFSReadFile
	// fileRights are those the kernel accepts on a rule for a file that
	// is not a directory.
	fileRights = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev
)

func (a Access) rights() landlock.AccessFSSet {
	var r landlock.AccessFSSet
	if a&Read != 0 {
		r |= readRights
	}
	if a&Write != 0 {
		r |= writeRights
	}
	if a&Exec != 0 {
		r |= execRights
	}
	return r
}

// handled returns the rights a Confinement that handles the categories
// in a restricts. Executing a file needs reading it, so an exec rule
// grants _READ_FILE too; but only handling Read restricts reading: a
// policy that declares exec= alone leaves every file readable, as a
// category never declared keeps today's behaviour.
func (a Access) handled() landlock.AccessFSSet {
	r := a.rights()
	if a&Read == 0 {
		r &^= ll.AccessFSReadFile
	}
	return r
}

func (a Access) String() string {
	var s []string
	for _, c := range []struct {
		a    Access
		name string
	}{{Read, "read"}, {Write, "write"}, {Exec, "exec"}} {
		if a&c.a != 0 {
			s = append(s, c.name)
		}
	}
	return strings.Join(s, "+")
}

// A PathRule grants Access to the file hierarchy at Path (a file, or a
// directory and everything under it). Why is "" for a declared grant, or
// says why sstar implies it ("code", "loader", ...).
type PathRule struct {
	Path   string
	Access Access
	Why    string
	// IfExists leaves the rule out, without a gap in the outcome, if
	// nothing is at Path (the loader's directories, which differ
	// between distributions).
	IfExists bool
}

// A Confinement is what the kernel is asked to restrict, for sstar and
// every process it starts. Handled lists the categories restricted at all:
// in a handled category only what a rule grants is allowed; a category
// not handled is not restricted. Connect restricts TCP connect(2) to
// Ports (Landlock ABI 4 and later).
type Confinement struct {
	Handled Access
	Paths   []PathRule
	Connect bool
	Ports   []uint16
}

// An Outcome is what Confine did: the kernel's Landlock ABI (0: none),
// the rules in force, and what the kernel could not enforce and why.
type Outcome struct {
	ABI         int
	Rules       []string
	NotEnforced []string
}

// ABI returns the kernel's Landlock ABI version, 0 if it has none.
func ABI() int {
	v, err := ll.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return v
}

// Confine restricts sstar, on every thread, with c, using Landlock: from
// then on neither sstar nor any process it starts can open, create,
// remove or execute a file, or connect to a TCP port, that c does not
// grant, and (as for every Landlock domain) none of them can ptrace,
// or read /proc/PID/environ, mem and the like of, a process outside the
// domain. The restriction cannot be lifted. Descriptors opened before it
// (the audit log) keep working.
//
// What the kernel cannot enforce (an ABI without network rules, a rule
// path that does not exist) is left out and listed in the outcome; with
// require such a gap is an error instead, and nothing is restricted.
//
// Each rule's path is looked up once: opened with O_PATH, which is what
// the kernel takes as the rule's file hierarchy, and the descriptor,
// not the path, tells a directory from a file.
func Confine(c Confinement, require bool) (Outcome, error) {
	out := Outcome{ABI: ABI()}
	var cfg landlock.Config
	switch {
	case out.ABI >= 7:
		cfg = landlock.V7
	case out.ABI > 0:
		cfg = [...]landlock.Config{landlock.V1, landlock.V1, landlock.V2, landlock.V3, landlock.V4, landlock.V5, landlock.V6}[out.ABI]
	}
	handled := c.Handled.handled() & cfg.HandledAccessFS
	if out.ABI == 0 && (c.Handled != 0 || c.Connect) {
		out.NotEnforced = append(out.NotEnforced, "files and network: the kernel has no Landlock (enabled at boot with lsm=...,landlock)")
	}
	if missing := c.Handled.handled() &^ cfg.HandledAccessFS; out.ABI > 0 && missing != 0 {
		out.NotEnforced = append(out.NotEnforced, fmt.Sprintf("%v: needs a newer Landlock ABI than %d", missing, out.ABI))
	}
	net := landlock.AccessNetSet(0)
	if c.Connect && cfg.HandledAccessNet&ll.AccessNetConnectTCP != 0 {
		net = ll.AccessNetConnectTCP
	}
	ruleset := -1
	if handled != 0 || net != 0 {
		fd, err := ll.LandlockCreateRuleset(&ll.RulesetAttr{HandledAccessFS: uint64(handled), HandledAccessNet: uint64(net)}, 0)
		if err != nil {
			return out, fmt.Errorf("harden: landlock: landlock_create_ruleset: %w", err)
		}
		ruleset = fd
		defer unix.Close(ruleset)
	}
	// A rule has rights only in a handled category: then there is a
	// ruleset to add it to.
	for _, r := range c.Paths {
		rights := r.Access.rights() & handled
		if rights == 0 {
			continue
		}
		if err := addPathRule(ruleset, r.Path, rights); err != nil {
			var missing *missingPath
			if !errors.As(err, &missing) {
				return out, fmt.Errorf("harden: landlock: %w", err)
			}
			if !r.IfExists || !errors.Is(missing.err, unix.ENOENT) {
				out.NotEnforced = append(out.NotEnforced, fmt.Sprintf("%s %s: the kernel grants only existing paths: %v", r.Access, r.Path, missing.err))
			}
			continue
		}
		desc := r.Access.String() + " " + r.Path
		if r.Why != "" {
			desc += " (implied: " + r.Why + ")"
		}
		out.Rules = append(out.Rules, desc)
	}
	if psxReadsTaskDir && out.ABI < 8 && handled&ll.AccessFSReadDir != 0 {
		task := "/proc/" + strconv.Itoa(os.Getpid()) + "/task"
		if err := addPathRule(ruleset, task, ll.AccessFSReadDir); err != nil {
			return out, fmt.Errorf("harden: landlock: %w", err)
		}
		out.Rules = append(out.Rules, "read-dir "+task+" (implied: psx, a cgo build)")
	}
	if c.Connect && net == 0 && out.ABI > 0 {
		out.NotEnforced = append(out.NotEnforced, fmt.Sprintf("connect: TCP rules need Landlock ABI 4, the kernel has %d", out.ABI))
	}
	if net != 0 {
		ports := slices.Clone(c.Ports)
		slices.Sort(ports)
		for _, p := range slices.Compact(ports) {
			if err := ll.LandlockAddNetPortRule(ruleset, &ll.NetPortAttr{AllowedAccess: uint64(net), Port: uint64(p)}, 0); err != nil {
				return out, fmt.Errorf("harden: landlock: landlock_add_rule connect_tcp %d: %w", p, err)
			}
			out.Rules = append(out.Rules, "connect_tcp "+strconv.Itoa(int(p)))
		}
	}
	if require && len(out.NotEnforced) > 0 {
		return out, fmt.Errorf("the kernel cannot enforce every declared permission (kernel=\"require\"): %s", strings.Join(out.NotEnforced, "; "))
	}
	if ruleset < 0 {
		return out, nil
	}
	if err := restrict(ruleset, out.ABI); err != nil {
		return out, fmt.Errorf("harden: landlock: %w", err)
	}
	isolation.Lock()
	isolation.done = true
	isolation.Unlock()
	return out, nil
}

// isolation is whether the process is in a Landlock domain (Confine or
// Isolate put it there), and Isolate's error if it could not be.
var isolation struct {
	sync.Mutex
	done bool
	err  error
}

// Isolate puts the process, once, in a Landlock domain that restricts
// no file access but creating block devices, so that neither it nor any
// process it starts afterwards can ptrace, or open /proc/PID/mem,
// environ and the like of, a process outside the domain: the process
// that started sstar (a user's shell, which no seccomp filter binds:
// writing its memory would make it do what the filter forbids sstar,
// such as stamping a file), and sstar's crash monitor. Landlock applies
// this to every domain, with or without CAP_SYS_PTRACE; Confine's
// domain does it too, and after Confine, Isolate does nothing.
//
// proc.run calls it (through cmd/sstar) before the first process a
// script starts, so that a run that starts none pays nothing; sstar
// itself is non-dumpable (DenyXattrWrites) and so out of its children's
// reach already. It needs no_new_privs (DenyXattrWrites sets it). On a
// kernel without Landlock it does nothing and returns false: there the
// parent is guarded only by the kernel's Yama ptrace_scope, if set.
func Isolate() (bool, error) {
	isolation.Lock()
	defer isolation.Unlock()
	if isolation.done || isolation.err != nil {
		return isolation.done, isolation.err
	}
	abi := ABI()
	if abi == 0 {
		return false, nil
	}
	fd, err := ll.LandlockCreateRuleset(&ll.RulesetAttr{HandledAccessFS: uint64(ll.AccessFSMakeBlock)}, 0)
	if err != nil {
		isolation.err = fmt.Errorf("harden: landlock: landlock_create_ruleset: %w", err)
		return false, isolation.err
	}
	defer unix.Close(fd)
	if err := restrict(fd, abi); err != nil {
		isolation.err = fmt.Errorf("harden: landlock: %w", err)
		return false, isolation.err
	}
	isolation.done = true
	return true, nil
}

// A missingPath is a rule's path that could not be opened: the kernel
// has nothing to make a rule of.
type missingPath struct {
	path string
	err  error
}

func (e *missingPath) Error() string { return "open " + e.path + ": " + e.err.Error() }

// addPathRule adds to ruleset the rule granting rights to the file
// hierarchy at path; only the rights a file can have if it is not a
// directory.
func addPathRule(ruleset int, path string, rights landlock.AccessFSSet) error {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return &missingPath{path, err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("fstat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		rights &= fileRights
	}
	if err := ll.LandlockAddPathBeneathRule(ruleset, &ll.PathBeneathAttr{AllowedAccess: uint64(rights), ParentFd: fd}, 0); err != nil {
		return fmt.Errorf("landlock_add_rule %s: %w", path, err)
	}
	return nil
}

// restrict enforces the ruleset on every thread. From ABI 8 the kernel
// does that itself (LANDLOCK_RESTRICT_SELF_TSYNC). Before it, Landlock
// restricts only the calling thread: go-landlock's psx signals every
// thread of the process, and each restricts itself, which costs about
// 40 µs a thread (cmd/sstar confines before the threads of its signal
// handling and timers exist). landlock_restrict_self needs no_new_privs
// on the thread; DenyXattrWrites has set it on every thread already
// (SECCOMP_FILTER_FLAG_TSYNC carries it to all threads), so setting it
// here, another round of signals, is needed only without that.
func restrict(ruleset, abi int) error {
	if nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); err != nil || nnp != 1 {
		if err := ll.AllThreadsPrctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
		}
	}
	if abi >= 8 {
		if err := ll.LandlockRestrictSelf(ruleset, ll.FlagRestrictSelfTSync); err != nil {
			return fmt.Errorf("landlock_restrict_self: %w", err)
		}
		return nil
	}
	if err := ll.AllThreadsLandlockRestrictSelf(ruleset, 0); err != nil {
		return fmt.Errorf("landlock_restrict_self: %w", err)
	}
	return nil
}
