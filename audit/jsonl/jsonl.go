// Package jsonl is the JSON Lines audit sink: one JSON object per event,
// appended to a file with one write per line.
package jsonl

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/render"
)

// A Log appends events to a file. It is safe for concurrent use.
type Log struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// Open opens (creating it 0600 if needed) the log at path for appending.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return &Log{f: f, path: path}, nil
}

type line struct {
	Event string `json:"event"`
	Args  []any  `json:"args"`
}

// Hook records ev. A failure to write wraps audit.ErrNotRecorded.
func (l *Log) Hook(ev audit.Event) error {
	b, err := json.Marshal(line{Event: ev.Name, Args: render.Args(ev.Args)})
	if err != nil {
		return fmt.Errorf("%w: audit log %s: %v", audit.ErrNotRecorded, l.path, err)
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(b); err != nil {
		return fmt.Errorf("%w: audit log %s: %v", audit.ErrNotRecorded, l.path, err)
	}
	return nil
}

// Close closes the file.
func (l *Log) Close() error { return l.f.Close() }
