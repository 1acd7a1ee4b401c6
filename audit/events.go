package audit

import (
	"fmt"
	"io"
	"strings"
)

// A Kind is one kind of event: an index into the event table. The table
// (below) is the one place where sstar's events are listed; `sstar events`
// prints it and docs/events.md is generated from it (go generate ./audit).
//
// Go code can only raise events that are in the table, because Raise
// takes a Kind. Scripts may raise any other name with sys.audit: such an
// event has kind Script, and its name is the script's.
type Kind uint8

// The kinds of event. Keep the order: launch, code, hooks, then builtins;
// the table and the documentation follow it.
const (
	// Script is the kind of an event a script raised with sys.audit,
	// under a name of its own that is not in the table.
	Script Kind = iota

	RunStart
	RunEnd
	RunFile
	RunCommand
	RunStdin
	OpenCode
	ExecCheck
	Catalog
	CodeIntegrityFailure
	Compile
	Exec
	Load
	Policy
	Panic
	Abort
	Watchdog
	AddAuditHook
	Trust
	Confine
	Permission

	// Builtins (fs, proc, os, time).
	Open
	Listdir
	Mkdir
	Remove
	Rename
	Glob
	Glob2
	Stat
	Exists
	Popen
	Getenv
	Getcwd
	TimeNow

	numKinds // keep last: the table's length
)

// A Spec describes one kind of event: its name, its arguments in order,
// and when it is raised.
type Spec struct {
	Name string
	Args []string // argument names, in order
	When string   // when the event is raised, in one sentence
	// CPython is true when the name and argument order are those of
	// CPython's audit events table, so detection rules carry over.
	CPython bool
	// Severity classifies the event for sinks with levels (syslog).
	Severity Severity
}

// Severity is how serious an event is for a sink that has levels.
type Severity int

const (
	Info     Severity = iota // an action about to happen
	Error                    // an action that was stopped (aborted event)
	Critical                 // code refused, launch mode refused, interpreter fault
)

func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Critical:
		return "critical"
	}
	return "info"
}

// table is indexed by Kind, as go/token's token names are: static data
// that the linker lays out, so nothing runs at start-up to build it. The
// assignment below it fails to compile unless the table has exactly one
// entry per Kind; TestTableIsComplete checks that none is left empty.
var table = [...]Spec{
	Script: {Severity: Info},

	RunStart:             {Name: "sstar.run_start", Args: []string{"version", "argv", "uid", "gid", "cwd"}, When: "first, when a run (or `sstar trust`, `sstar verify`) has its sinks: the sstar version, its whole argv (a list), the real uid and gid, the working directory. Delivered to Go hooks (sinks) only.", Severity: Info},
	RunEnd:               {Name: "sstar.run_end", Args: []string{"status", "reason", "seconds", "events", "code", "limits"}, When: "last, for every end the process sees: status is the exit status; reason one of ok, error, limit, aborted, refused, usage, output (standard output could not be written), signal SIGNAME, watchdog, unrecorded, or, written by sstar's crash monitor for a run that died, crash: and the Go runtime's report in one line, memory: and the limit, killed SIGNAME, or killed: and why; seconds the run's duration; events how many records came before this one; code a dict of every file compiled in the run (policies, script, modules) to its SHA-256; limits the steps, timeout and memory in force (0: none). Delivered to Go hooks (sinks) only.", Severity: Info},
	RunFile:              {Name: "sstar.run_file", Args: []string{"path"}, When: "before the main script given to the host is opened; path is the absolute, lexically clean path it is opened by.", Severity: Info},
	RunCommand:           {Name: "sstar.run_command", Args: []string{"code"}, When: "when `sstar -c CODE` is attempted, before it is refused (exit 2).", Severity: Critical},
	RunStdin:             {Name: "sstar.run_stdin", Args: []string{}, When: "when sstar is asked to read code from standard input (`-` or no script), before it is refused (exit 2).", Severity: Critical},
	OpenCode:             {Name: "sstar.open_code", Args: []string{"path"}, When: "before a file that will become code (script, loaded module, policy) is opened; path is absolute and lexically clean.", Severity: Info},
	ExecCheck:            {Name: "sstar.exec_check", Args: []string{"path", "allowed", "enforced", "detail"}, When: "after the kernel was asked execveat(fd, \"\", AT_EMPTY_PATH|AT_EXECVE_CHECK) about an opened code file, before it is read: allowed is the kernel's answer, enforced whether a no refuses the file (SECBIT_EXEC_RESTRICT_FILE set, or the system policy says so), detail \"allowed\" or the errno and its meaning.", Severity: Info},
	Catalog:              {Name: "sstar.catalog", Args: []string{"path", "sha256", "version", "signers", "expires", "state"}, When: "when a signed catalog has verified (signatures by enough trusted keys, not expired, not rolled back), once per run, before any file it vouches for is compiled: path is absolute, sha256 the hex SHA-256 of the catalog file as read, version its version number, signers a tuple of the trusted keys that signed it (\"name+hash\"), expires its expiry (RFC 3339) or \"\", state what the rollback check did (no state_dir, the highest version, recorded, or why not recorded).", Severity: Info},
	CodeIntegrityFailure: {Name: "sstar.code_integrity_failure", Args: []string{"path", "reason", "enforced"}, When: "when a code file is refused (no stamp, malformed stamp, mismatch, a catalog's refusal, not a regular file, too large, noexec mount, kernel check, unsafe owner, unreadable), before the refusal is returned; reason is the refusal's message; enforced is False when the system policy's audit mode (policy.trust(mode=\"audit\")) lets code nothing vouched for run anyway, and True for every refusal that stops it.", Severity: Critical},
	Compile:              {Name: "compile", Args: []string{"filename", "sha256"}, When: "before verified source is compiled; filename is absolute, sha256 the hex SHA-256 of the exact bytes compiled. Deliberately unlike CPython's compile(source, filename): the hash, not the source, which may be large or secret; the verified bytes are the stamped file's.", CPython: true, Severity: Info},
	Exec:                 {Name: "exec", Args: []string{"filename"}, When: "before a compiled module (script, loaded module, policy) starts executing. Deliberately unlike CPython's exec(code_object): filename is the module's absolute path, since Starlark has no code objects a hook could use.", CPython: true, Severity: Info},
	Load:                 {Name: "load", Args: []string{"module", "from", "path"}, When: "before a load statement is resolved: module as written, from the absolute path of the loading file, path the absolute, lexically clean path the module is opened by (symbolic links in it are not resolved). Starlark's load takes the place of import (CPython's import event has other arguments), so it has a name of its own.", Severity: Info},
	Policy:               {Name: "sstar.policy", Args: []string{"path"}, When: "when a policy file (the system policy or a --policy file) has run and takes effect; path is absolute and lexically clean.", Severity: Info},
	Panic:                {Name: "sstar.panic", Args: []string{"where", "value"}, When: "when a Go panic inside a builtin, the interpreter or a Go audit hook was caught and turned into an error.", Severity: Critical},
	Abort:                {Name: "sstar.abort", Args: []string{"event", "reason"}, When: "after a hook aborted an event; delivered to Go hooks (sinks) only, so the abort is recorded.", Severity: Error},
	Watchdog:             {Name: "sstar.watchdog", Args: []string{"reason"}, When: "when a run is still blocked in a builtin some time after its timeout; delivered to Go hooks (sinks) only, then sstar exits with status 1, or 255 if the record could not be written (within a bounded wait).", Severity: Critical},
	AddAuditHook:         {Name: "sys.addaudithook", Args: []string{}, When: "before a hook is added, by a script or by the host; any hook may veto it.", CPython: true, Severity: Info},
	Trust:                {Name: "sstar.trust", Args: []string{"path", "sha256"}, When: "before `sstar trust` writes a stamp on a file (not for a file whose stamp is already right); path is absolute, sha256 the stamp about to be written.", Severity: Info},

	Confine:    {Name: "sstar.confine", Args: []string{"abi", "mode", "kernel", "rules", "enforced", "not_enforced"}, When: "when policy.allow declared permissions: after the system policy ran and before any --policy file or the script is opened, and again, with what they narrowed, once --policy files ran; abi is the kernel's Landlock ABI (0: none), mode \"enforce\" or \"report\", kernel \"require\" or \"best-effort\", rules the Landlock rules sstar restricted itself and its children with (a list of \"RIGHTS PATH\" and \"connect_tcp PORT\" strings, implied ones marked), enforced a dict of each declared category to where it is enforced (\"sstar and kernel\", \"sstar\", \"kernel\"), not_enforced a list of what the kernel could not enforce and why. With kernel=\"require\" and something not enforced, sstar then exits with status 126.", Severity: Info},
	Permission: {Name: "sstar.permission", Args: []string{"permission", "target", "policy", "enforced"}, When: "when an event's action is outside the permissions policy.allow granted, after that event and before its action: permission is the category (read, write, exec, env), target the path or variable name, policy the file whose grant lacks it, enforced True when sstar refuses the action (sstar.abort follows) and False in report mode (policy.allow(mode=\"report\"): the action goes ahead). Delivered to Go hooks (sinks) only.", Severity: Error},

	// Builtins (fs, proc, os, time).
	Open:    {Name: "open", Args: []string{"path", "mode", "flags"}, When: "before fs.read, fs.read_bytes, fs.write or fs.append opens a file; path is absolute, mode \"r\", \"w\" or \"a\", flags the open(2) flags as an int (O_RDONLY|O_CLOEXEC; O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC; O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC).", CPython: true, Severity: Info},
	Listdir: {Name: "os.listdir", Args: []string{"path"}, When: "before fs.listdir reads a directory; path is absolute.", CPython: true, Severity: Info},
	Mkdir:   {Name: "os.mkdir", Args: []string{"path", "mode", "dir_fd"}, When: "before fs.mkdir looks anything up, for path; with parents=True also for each missing parent, top down, just before it is created. Paths are absolute; mode is the permission before the umask (0o755); dir_fd is always -1, as CPython passes it without dir_fd=.", CPython: true, Severity: Info},
	Remove:  {Name: "os.remove", Args: []string{"path", "dir_fd"}, When: "before fs.remove unlinks a file; path is absolute; dir_fd is always -1 (CPython's value without dir_fd=).", CPython: true, Severity: Info},
	Rename:  {Name: "os.rename", Args: []string{"src", "dst", "src_dir_fd", "dst_dir_fd"}, When: "before fs.rename renames src to dst; both are absolute; the descriptors are always -1 (CPython's value without them).", CPython: true, Severity: Info},
	Glob:    {Name: "glob.glob", Args: []string{"pathname", "recursive"}, When: "before fs.glob expands a pattern; pathname is absolute and lexically clean, the pattern expanded (a relative one is joined to the working directory, its metacharacters escaped), recursive is always False. Raised with glob.glob/2 after it, as CPython 3.10 and later raise both.", CPython: true, Severity: Info},
	Glob2:   {Name: "glob.glob/2", Args: []string{"pathname", "recursive", "root_dir", "dir_fd"}, When: "right after glob.glob, for the same expansion, as CPython 3.10 and later raise it: root_dir and dir_fd are always None.", CPython: true, Severity: Info},
	Stat:    {Name: "fs.stat", Args: []string{"path"}, When: "before fs.stat reads a file's metadata; path is absolute (CPython has no event for stat; named after the function).", Severity: Info},
	Exists:  {Name: "fs.exists", Args: []string{"path"}, When: "before fs.exists looks a path up; path is absolute (CPython has no event for it; named after the function).", Severity: Info},
	Popen:   {Name: "subprocess.Popen", Args: []string{"executable", "args", "cwd", "env"}, When: "before proc.run starts a process: executable is the absolute, lexically clean path executed (argv[0] as given if it cannot be found; the call then fails), args the argv as a list (as CPython passes it), cwd the child's absolute working directory, env the child's whole environment (a dict; nothing is inherited; CPython passes None when the child inherits its parent's, which proc.run never does).", CPython: true, Severity: Info},
	Getenv:  {Name: "os.getenv", Args: []string{"name"}, When: "before os.getenv reads an environment variable (CPython has no such event; named after the function).", Severity: Info},
	Getcwd:  {Name: "os.getcwd", Args: []string{}, When: "before os.getcwd reads the working directory (CPython has no such event; named after the function).", Severity: Info},
	TimeNow: {Name: "time.now", Args: []string{}, When: "before time.now reads the clock, the only way the time module reads it (CPython has no such event; named after the function).", Severity: Info},
}

var _ [numKinds]struct{} = [len(table)]struct{}{}

// Spec returns k's entry in the table. It must not be modified. For
// Script, and for a value that is not a kind, the entry is empty.
func (k Kind) Spec() *Spec {
	if k >= numKinds {
		k = Script
	}
	return &table[k]
}

// Name returns the event name of k ("" for Script: the script names it).
func (k Kind) Name() string { return k.Spec().Name }

// Severity returns how serious events of kind k are (Info for Script).
func (k Kind) Severity() Severity { return k.Spec().Severity }

// String returns k's name, or "script" for Script.
func (k Kind) String() string {
	if k == Script || k >= numKinds {
		return "script"
	}
	return table[k].Name
}

// Kinds returns every kind in the table, in its order (Script excluded).
func Kinds() []Kind {
	ks := make([]Kind, 0, numKinds-1)
	for k := Script + 1; k < numKinds; k++ {
		ks = append(ks, k)
	}
	return ks
}

// KindOf returns the kind whose event is named name, or Script and false
// for a name that is not in the table (an event a script may raise).
func KindOf(name string) (Kind, bool) {
	for k := Script + 1; k < numKinds; k++ {
		if table[k].Name == name {
			return k, true
		}
	}
	return Script, false
}

// MaxNameLen is the longest name a script may give an event.
const MaxNameLen = 128

// CheckName checks the name a script gives an event (sys.audit): 1 to
// MaxNameLen characters, each an ASCII letter or digit or one of ". _ - :
// /". Names are thus the same in every sink, need no escaping anywhere
// (a syslog MSGID, a journald field, a terminal), and cannot carry a
// newline, a NUL, a control character or a look-alike. A name in the
// table, or starting with "sstar.", is sstar's own and refused too.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("an event name is 1 to %d characters, not %d", MaxNameLen, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-:/", c) >= 0) {
			return fmt.Errorf("an event name has only ASCII letters, digits and . _ - : /; %q has %q at byte %d", name, name[i:i+1], i)
		}
	}
	if _, ours := KindOf(name); ours || strings.HasPrefix(name, "sstar.") {
		return fmt.Errorf("%q is one of sstar's own events; scripts raise events of their own names (for example \"app.%s\")", name, strings.TrimPrefix(name, "sstar."))
	}
	return nil
}

// WriteTable writes the table as text, one event per block, for
// `sstar events`.
func WriteTable(w io.Writer) error {
	var b strings.Builder
	for _, k := range Kinds() {
		s := k.Spec()
		fmt.Fprintf(&b, "%s(%s)\n    %s [%s, %s]\n", s.Name, strings.Join(s.Args, ", "), s.When, s.origin(), s.Severity)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (s *Spec) origin() string {
	if s.CPython {
		return "CPython"
	}
	return "sstar"
}

// Markdown renders the table as the documentation page docs/events.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# sstar audit events\n\n")
	b.WriteString("<!-- Generated from audit/events.go by `go generate ./audit`. Do not edit. -->\n\n")
	b.WriteString("Every event sstar raises, in the order of the table in `audit/events.go`.\n")
	b.WriteString("Events marked CPython use the name and argument order of CPython's audit\n")
	b.WriteString("events table, so detection rules written for Python carry over.\n")
	b.WriteString("Scripts may raise further events of their own with `sys.audit`, under names\n")
	b.WriteString("that are not in this table and do not start with `sstar.`: those are sstar's.\n\n")
	b.WriteString("| event | arguments | when | origin | severity |\n")
	b.WriteString("| --- | --- | --- | --- | --- |\n")
	for _, k := range Kinds() {
		s := k.Spec()
		when := strings.ReplaceAll(s.When, "|", "\\|")
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", s.Name, strings.Join(s.Args, ", "), when, s.origin(), s.Severity)
	}
	return b.String()
}
