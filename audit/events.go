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

	RunFile
	RunCommand
	RunStdin
	OpenCode
	ExecCheck
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

	// Builtins (fs, proc, os, time).
	Open
	Listdir
	Mkdir
	Remove
	Rename
	Glob
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

	RunFile:              {Name: "sstar.run_file", Args: []string{"path"}, When: "before the main script given to the host is opened; path is the absolute, lexically clean path it is opened by.", Severity: Info},
	RunCommand:           {Name: "sstar.run_command", Args: []string{"code"}, When: "when `sstar -c CODE` is attempted, before it is refused (exit 2).", Severity: Critical},
	RunStdin:             {Name: "sstar.run_stdin", Args: []string{}, When: "when sstar is asked to read code from standard input (`-` or no script), before it is refused (exit 2).", Severity: Critical},
	OpenCode:             {Name: "sstar.open_code", Args: []string{"path"}, When: "before a file that will become code (script, loaded module, policy) is opened; path is absolute and lexically clean.", Severity: Info},
	ExecCheck:            {Name: "sstar.exec_check", Args: []string{"path", "allowed", "enforced", "detail"}, When: "after the kernel was asked execveat(fd, \"\", AT_EMPTY_PATH|AT_EXECVE_CHECK) about an opened code file, before it is read: allowed is the kernel's answer, enforced whether a no refuses the file (SECBIT_EXEC_RESTRICT_FILE set, or the system policy says so), detail \"allowed\" or the errno and its meaning.", Severity: Info},
	CodeIntegrityFailure: {Name: "sstar.code_integrity_failure", Args: []string{"path", "reason"}, When: "when a code file is refused (no stamp, malformed stamp, mismatch, not a regular file, too large, noexec mount, kernel check, unsafe owner, unreadable), before the refusal is returned; reason is the refusal's message.", Severity: Critical},
	Compile:              {Name: "compile", Args: []string{"filename", "sha256"}, When: "before verified source is compiled; filename is absolute, sha256 the hex SHA-256 of the exact bytes compiled.", CPython: true, Severity: Info},
	Exec:                 {Name: "exec", Args: []string{"filename"}, When: "before a compiled module (script, loaded module, policy) starts executing.", CPython: true, Severity: Info},
	Load:                 {Name: "load", Args: []string{"module", "from", "path"}, When: "before a load statement is resolved: module as written, from the absolute path of the loading file, path the absolute, lexically clean path the module is opened by (symbolic links in it are not resolved).", Severity: Info},
	Policy:               {Name: "sstar.policy", Args: []string{"path"}, When: "when a policy file (the system policy or a --policy file) has run and takes effect; path is absolute and lexically clean.", Severity: Info},
	Panic:                {Name: "sstar.panic", Args: []string{"where", "value"}, When: "when a Go panic inside a builtin, the interpreter or a Go audit hook was caught and turned into an error.", Severity: Critical},
	Abort:                {Name: "sstar.abort", Args: []string{"event", "reason"}, When: "after a hook aborted an event; delivered to Go hooks (sinks) only, so the abort is recorded.", Severity: Error},
	Watchdog:             {Name: "sstar.watchdog", Args: []string{"reason"}, When: "when a run is still blocked in a builtin some time after its timeout; delivered to Go hooks (sinks) only, then sstar exits with status 1.", Severity: Critical},
	AddAuditHook:         {Name: "sys.addaudithook", Args: []string{}, When: "before a hook is added, by a script or by the host; any hook may veto it.", CPython: true, Severity: Info},
	Trust:                {Name: "sstar.trust", Args: []string{"path", "sha256"}, When: "before `sstar trust` writes a stamp on a file (not for a file whose stamp is already right); path is absolute, sha256 the stamp about to be written.", Severity: Info},

	// Builtins (fs, proc, os, time).
	Open:    {Name: "open", Args: []string{"path", "mode", "flags"}, When: "before fs.read, fs.read_bytes, fs.write or fs.append opens a file; path is absolute, mode \"r\", \"w\" or \"a\", flags the open(2) flags as an int (O_RDONLY|O_CLOEXEC; O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC; O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC).", CPython: true, Severity: Info},
	Listdir: {Name: "os.listdir", Args: []string{"path"}, When: "before fs.listdir reads a directory; path is absolute.", CPython: true, Severity: Info},
	Mkdir:   {Name: "os.mkdir", Args: []string{"path", "mode"}, When: "before fs.mkdir looks anything up, for path; with parents=True also for each missing parent, top down, just before it is created. Paths are absolute; mode is the permission before the umask (0o755).", CPython: true, Severity: Info},
	Remove:  {Name: "os.remove", Args: []string{"path"}, When: "before fs.remove unlinks a file; path is absolute.", CPython: true, Severity: Info},
	Rename:  {Name: "os.rename", Args: []string{"src", "dst"}, When: "before fs.rename renames src to dst; both are absolute.", CPython: true, Severity: Info},
	Glob:    {Name: "glob.glob", Args: []string{"pattern", "recursive"}, When: "before fs.glob expands a pattern; pattern is absolute and lexically clean, the pattern expanded (a relative one is joined to the working directory, its metacharacters escaped), recursive is always False.", CPython: true, Severity: Info},
	Stat:    {Name: "fs.stat", Args: []string{"path"}, When: "before fs.stat reads a file's metadata; path is absolute (CPython has no event for stat; named after the function).", Severity: Info},
	Exists:  {Name: "fs.exists", Args: []string{"path"}, When: "before fs.exists looks a path up; path is absolute (CPython has no event for it; named after the function).", Severity: Info},
	Popen:   {Name: "subprocess.Popen", Args: []string{"executable", "args", "cwd", "env"}, When: "before proc.run starts a process: executable is the absolute, lexically clean path executed (argv[0] as given if it cannot be found; the call then fails), args the argv tuple, cwd the child's absolute working directory, env the child's whole environment (a dict; nothing is inherited).", CPython: true, Severity: Info},
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
