package policy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"go.starlark.net/starlark"
)

// SuggestDirFiles is how many files read in one directory make Suggest
// grant the directory instead of listing them.
const SuggestDirFiles = 8

// A Suggestion is what audit logs show runs did, as the grants of
// policy.allow that would have allowed exactly that; String renders it
// as a policy file. Add logs with Read.
type Suggestion struct {
	read, write, exec, env map[string]bool
	runs                   map[string]bool
	records                int
	skipped                []string // paths that cannot be grants, and why
}

// NewSuggestion returns an empty suggestion.
func NewSuggestion() *Suggestion {
	return &Suggestion{read: map[string]bool{}, write: map[string]bool{}, exec: map[string]bool{}, env: map[string]bool{}, runs: map[string]bool{}}
}

// suggestRecord is the part of a JSON Lines record Suggest reads.
type suggestRecord struct {
	Run   string            `json:"run"`
	Event string            `json:"event"`
	Args  []json.RawMessage `json:"args"`
}

// Read adds the records of one JSON Lines audit log (docs/sinks.md); name
// is for errors. Events that are not actions (sstar's own, compile,
// exec, load) and bounded records are skipped; of a child's
// environment only the names are kept, never the values.
func (s *Suggestion) Read(r io.Reader, name string) error {
	br := bufio.NewReader(r)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			var rec suggestRecord
			if jerr := json.Unmarshal(b, &rec); jerr != nil {
				return fmt.Errorf("%s:%d: not a JSON Lines audit record: %v", name, line, jerr)
			}
			s.add(&rec)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
	}
}

func (s *Suggestion) add(rec *suggestRecord) {
	str := func(i int) string {
		var v string
		if i < len(rec.Args) {
			json.Unmarshal(rec.Args[i], &v)
		}
		return v
	}
	path := func(set map[string]bool, p string) {
		if err := checkGrantPath(p); err != nil || p != filepath.Clean(p) {
			s.skipped = append(s.skipped, fmt.Sprintf("%q (%s)", p, rec.Event))
			return
		}
		set[p] = true
	}
	counted := true
	switch rec.Event {
	case "open":
		if str(1) == "r" {
			path(s.read, str(0))
		} else {
			// The kernel grants creating a file through its directory.
			path(s.write, filepath.Dir(str(0)))
		}
	case "os.listdir":
		path(s.read, str(0))
	case "glob.glob":
		path(s.read, globDir(str(0)))
	case "os.mkdir", "os.remove":
		path(s.write, filepath.Dir(str(0)))
	case "os.rename":
		path(s.write, filepath.Dir(str(0)))
		path(s.write, filepath.Dir(str(1)))
	case "subprocess.Popen":
		path(s.exec, str(0))
		if len(rec.Args) > 3 {
			var env map[string]json.RawMessage // values are never decoded
			json.Unmarshal(rec.Args[3], &env)
			for k := range env {
				if k != "" && !strings.ContainsAny(k, "=\x00") {
					s.env[k] = true
				}
			}
		}
	case "os.getenv":
		if k := str(0); k != "" && !strings.ContainsAny(k, "=\x00") {
			s.env[k] = true
		}
	default:
		counted = false
	}
	if counted {
		s.records++
		s.runs[rec.Run] = true
	}
}

// String renders the suggestion as a policy file: one commented
// policy.allow call, every list sorted, so the same logs give the same
// file. A grant that another one covers is left out.
func (s *Suggestion) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Suggested by `sstar policy suggest` from %d actions of %d runs.\n", s.records, len(s.runs))
	b.WriteString("# It allows what those runs did through sstar and nothing more; review it,\n")
	b.WriteString("# then replace mode=\"report\" with this call in the system policy.\n")
	b.WriteString("# Not in the logs, so not here: what children read or write themselves\n")
	b.WriteString("# (add their files to read= and write=) and TCP connections (connect=).\n")
	for _, p := range s.skipped {
		fmt.Fprintf(&b, "# Left out, not an absolute clean path: %s\n", p)
	}
	b.WriteString("policy.allow(\n")
	read, collapsed := collapseFiles(s.read)
	writeList(&b, "read", "files and directories read", minimalPaths(read), collapsed)
	writeList(&b, "write", "directories files were created, changed or removed in", minimalPaths(keys(s.write)), nil)
	writeList(&b, "exec", "programs started", minimalPaths(keys(s.exec)), nil)
	writeList(&b, "env", "variable names only: the values the runs used are never copied", keys(s.env), nil)
	b.WriteString(")\n")
	return b.String()
}

func writeList(b *strings.Builder, name, what string, entries []string, notes map[string]string) {
	fmt.Fprintf(b, "    # %s\n", what)
	if len(entries) == 0 {
		fmt.Fprintf(b, "    %s = [],\n", name)
		return
	}
	fmt.Fprintf(b, "    %s = [\n", name)
	for _, e := range entries {
		fmt.Fprintf(b, "        %s,", starlark.String(e).String())
		if n := notes[e]; n != "" {
			fmt.Fprintf(b, "  # %s", n)
		}
		b.WriteString("\n")
	}
	b.WriteString("    ],\n")
}

func keys(m map[string]bool) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// collapseFiles replaces SuggestDirFiles or more paths read in one
// directory by the directory, and says so.
func collapseFiles(set map[string]bool) ([]string, map[string]string) {
	byDir := map[string][]string{}
	for p := range set {
		byDir[filepath.Dir(p)] = append(byDir[filepath.Dir(p)], p)
	}
	out := map[string]bool{}
	notes := map[string]string{}
	for dir, ps := range byDir {
		if len(ps) >= SuggestDirFiles && dir != "/" {
			out[dir] = true
			notes[dir] = fmt.Sprintf("%d paths in it were read", len(ps))
			continue
		}
		for _, p := range ps {
			out[p] = true
		}
	}
	return keys(out), notes
}

// minimalPaths drops every path under another one of the sorted list,
// by looking up each path's directories (linear in the list: comparing
// every pair stalled on a log with many thousands of paths).
func minimalPaths(sorted []string) []string {
	in := make(map[string]bool, len(sorted))
	for _, p := range sorted {
		in[p] = true
	}
	var out []string
	for _, p := range sorted {
		covered := false
		for d := p; d != "/" && d != "." && !covered; {
			d = path.Dir(d)
			covered = in[d]
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}
