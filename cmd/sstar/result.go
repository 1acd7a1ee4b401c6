package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"syscall"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/interp"
)

// The result of a run, for a program that runs sstar as a separate
// process (package sandbox): --result FILE writes one JSON object to
// FILE, which must exist (the caller makes it, so that sstar never
// creates files on a caller's behalf). After a run that ended by itself:
//
//	{"status":0,"reason":"ok","globals":{"name":value,…}}
//	{"status":1,"reason":"limit","limit":"steps","error":"…"}
//
// globals are the main module's exported values (names without a
// leading _), as json.encode writes them; values JSON cannot hold
// (functions, modules) are left out. A run that dies writes nothing: the
// exit status says why (crash, memory, killed).

// runResult is what --result writes.
type runResult struct {
	Status  int                        `json:"status"`
	Reason  string                     `json:"reason"`
	Limit   string                     `json:"limit,omitempty"`
	Error   string                     `json:"error,omitempty"`
	Globals map[string]json.RawMessage `json:"globals,omitempty"`
}

// writeResult writes the result of a run to path (nothing if path is
// empty); a failure to write is said on stderr and makes the run fail.
func writeResult(stderr io.Writer, path string, status int, reason string, globals starlark.StringDict, runErr error) int {
	if path == "" {
		return status
	}
	res := runResult{Status: status, Reason: reason}
	if runErr != nil {
		res.Error = runErr.Error()
		var re *interp.RunError
		switch {
		case errors.As(runErr, &re) && re.Limit && strings.Contains(res.Error, "too many steps"):
			res.Limit = "steps"
		case errors.As(runErr, &re) && re.Limit:
			res.Limit = "timeout"
		}
	}
	if status == exitOK {
		res.Globals = exported(globals)
	}
	b, err := json.Marshal(res)
	if err == nil {
		err = writeExisting(path, b)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sstar: --result %s: %v\n", path, err)
		if status == exitOK {
			return exitFailed
		}
	}
	return status
}

// exported encodes the exported globals with sstar's json.encode.
func exported(globals starlark.StringDict) map[string]json.RawMessage {
	encode, _ := builtins.Modules()["json"].(starlark.HasAttrs).Attr("encode")
	names := make([]string, 0, len(globals))
	for name := range globals {
		if !strings.HasPrefix(name, "_") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := make(map[string]json.RawMessage, len(names))
	for _, name := range names {
		switch globals[name].(type) {
		case *starlark.Function, *starlark.Builtin:
			continue
		}
		v, err := starlark.Call(&starlark.Thread{Name: "result"}, encode, starlark.Tuple{globals[name]}, nil)
		if s, ok := v.(starlark.String); ok && err == nil {
			out[name] = json.RawMessage(s)
		}
	}
	return out
}

// writeExisting writes b to the existing regular file at path.
func writeExisting(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return errors.New("not a regular file")
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
