package kaudit

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// An Entry is one of sstar's records read back from the audit log.
type Entry struct {
	Event string
	Run   string
	Seq   uint64
	Time  time.Time
	Args  []byte // the JSON of the arguments, or of this part of them
	Part  int    // from 1, if the record was split; else 0
	Parts int    // how many parts, if split; else 0
}

// Parse reads one of sstar's records back from a line of the audit log
// (type=TRUSTED_APP msg=audit(...): ... msg='...'), or from the text of
// a record as the kernel sends it to audit readers (audit(...): ...
// msg='...'). It decodes the fields of the inner msg='...'.
func Parse(line string) (Entry, error) {
	var e Entry
	i := strings.Index(line, " msg='")
	if i < 0 {
		return e, errors.New("kernel audit record: no msg='...'")
	}
	text := line[i+len(" msg='"):]
	j := strings.IndexByte(text, '\'')
	if j < 0 {
		return e, errors.New("kernel audit record: msg='... is not closed")
	}
	text = text[:j]
	seen := map[string]bool{}
	for _, f := range strings.Fields(text) {
		name, value, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			return e, fmt.Errorf("kernel audit record: field %q is not name=value", f)
		}
		if seen[name] {
			return e, fmt.Errorf("kernel audit record: field %s twice", name)
		}
		seen[name] = true
		var err error
		switch name {
		case "op":
			if value != "sstar" {
				return e, fmt.Errorf("kernel audit record: op=%s is not sstar's", value)
			}
		case "event":
			e.Event, err = decodeValue(value)
		case "run":
			e.Run, err = decodeValue(value)
		case "seq":
			e.Seq, err = strconv.ParseUint(value, 10, 64)
		case "time":
			e.Time, err = time.Parse(time.RFC3339Nano, value)
		case "args":
			var s string
			s, err = decodeValue(value)
			e.Args = []byte(s)
		case "part":
			p, n, ok := strings.Cut(value, "/")
			if !ok {
				err = errors.New("want i/n")
				break
			}
			if e.Part, err = strconv.Atoi(p); err == nil {
				e.Parts, err = strconv.Atoi(n)
			}
			if err == nil && (e.Part < 1 || e.Part > e.Parts) {
				err = errors.New("want 1 <= i <= n")
			}
		}
		if err != nil {
			return e, fmt.Errorf("kernel audit record: field %s: %v", name, err)
		}
	}
	for _, name := range []string{"op", "event", "run", "seq", "args"} {
		if !seen[name] {
			return e, fmt.Errorf("kernel audit record: no field %s", name)
		}
	}
	return e, nil
}

// decodeValue undoes AppendValue: a quoted string, or hex.
func decodeValue(v string) (string, error) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1], nil
	}
	b, err := hex.DecodeString(v)
	if err != nil {
		return "", fmt.Errorf("neither quoted nor hex: %v", err)
	}
	return string(b), nil
}
