package jsonl

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/sstar-project/sstar/internal/ospath"
	"github.com/sstar-project/sstar/internal/render"
)

// Resume opens the log at path to continue run: the next record written
// chains from the last line of that run in the file, whatever other runs
// appended since, and may have any seq after that line's (the records in
// between, if any, never reached this file, and Verify will say so). It
// is for the crash monitor, which writes the run_end of a process that
// died: the dead process's chain ends where its last write(2) ended. If
// the file ends in an incomplete line (a write cut short as the process
// died), the record first ends that line with a newline, so that its own
// line is whole; Verify reports the incomplete line as damage. If the
// file has no line of run, the record chains from the file's last line,
// as a new run would.
func Resume(path, run string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|syscall.O_CLOEXEC|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %v", path, ospath.Reason(err))
	}
	fail := func(err error) (*Log, error) {
		f.Close()
		return nil, fmt.Errorf("audit log %s: %v", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(ospath.Reason(err))
	}
	if !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("not a regular file (%s)", fi.Mode().Type()))
	}
	l := &Log{path: path, f: f, fd: int(f.Fd()), buf: make([]byte, 0, 512), resumed: true}
	size := fi.Size()
	last, cut, err := lastLine(f, size)
	if err != nil {
		return fail(fmt.Errorf("reading its last line: %v", err))
	}
	l.prev, l.endCut = last, cut != nil
	seq, sum, found, err := lastOfRun(f, size, run)
	if err != nil {
		return fail(fmt.Errorf("looking for run %s: %v", run, err))
	}
	if found {
		l.seq, l.prev = seq, sum
	}
	return l, nil
}

// lastOfRun finds the last complete line of run in r[0:size]: its seq
// and hash. It reads the file backwards, a line at a time.
func lastOfRun(r *os.File, size int64, run string) (seq uint64, sum [sha256.Size]byte, found bool, err error) {
	want := []byte(`,"run":` + string(render.AppendString(nil, run)) + `,`)
	end, err := lastIndexByte(r, size, '\n') // skip an incomplete last line
	if err != nil || end < 0 {
		return 0, sum, false, err
	}
	for end > 0 {
		start, err := lastIndexByte(r, end, '\n')
		if err != nil {
			return 0, sum, false, err
		}
		if n := end - (start + 1); n > 0 && n <= 4<<20 {
			line := make([]byte, n)
			if _, err := r.ReadAt(line, start+1); err != nil {
				return 0, sum, false, err
			}
			if bytes.Contains(line, want) && bytes.HasPrefix(line, []byte(`{"seq":`)) {
				digits := line[len(`{"seq":`):]
				if i := bytes.IndexByte(digits, ','); i > 0 {
					if seq, err := strconv.ParseUint(string(digits[:i]), 10, 64); err == nil {
						return seq, sha256.Sum256(line), true, nil
					}
				}
			}
		}
		end = start
	}
	return 0, sum, false, nil
}
