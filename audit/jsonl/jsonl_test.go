package jsonl_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/jsonl"
	"github.com/sstar-project/sstar/audit/record"
	"github.com/sstar-project/sstar/internal/render"
)

// openRun opens the log at path as the only sink of a run's fan-out, as
// sstar does: Hook records an event, Close ends the run.
func openRun(path string) (*record.Fanout, error) {
	l, err := jsonl.Open(path)
	if err != nil {
		return nil, err
	}
	f := new(record.Fanout)
	if err := f.Add(l); err != nil {
		return nil, err
	}
	return f, nil
}

// openTicked opens a log in a new directory with one event written.
func openTicked(t *testing.T) (string, *record.Fanout) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := openRun(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Hook(tick(0)); err != nil {
		t.Fatal(err)
	}
	return path, l
}

func tick(i int) audit.Event {
	return audit.NewEvent("tick", starlark.MakeInt(i), starlark.String(fmt.Sprintf("event %d", i)))
}

// writeRun appends n tick events to path as one run and returns its id.
func writeRun(t testing.TB, path string, n int) string {
	t.Helper()
	l, err := openRun(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := l.Hook(tick(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return l.Run()
}

func verify(t testing.TB, data []byte) *jsonl.Report {
	t.Helper()
	r, err := jsonl.Verify(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func lines(data []byte) [][]byte {
	return bytes.SplitAfter(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

func join(ls [][]byte) []byte {
	out := bytes.Join(ls, nil)
	if !bytes.HasSuffix(out, []byte("\n")) {
		out = append(out, '\n')
	}
	return out
}

type line struct {
	Seq   uint64          `json:"seq"`
	Time  string          `json:"time"`
	PID   int             `json:"pid"`
	Run   string          `json:"run"`
	Event string          `json:"event"`
	Args  json.RawMessage `json:"args"`
	Prev  string          `json:"prev"`
	Cut   string          `json:"cut"`
}

func TestFormatAndChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	run := writeRun(t, path, 3)
	data, _ := os.ReadFile(path)
	ls := lines(data)
	if len(ls) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(ls), data)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("log created with mode %v, want 0600", fi.Mode().Perm())
	}
	prev := strings.Repeat("0", 64)
	for i, raw := range ls {
		var l line
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if l.Seq != uint64(i+1) || l.Run != run || l.PID != os.Getpid() || l.Event != "tick" || l.Prev != prev {
			t.Errorf("line %d = %s", i+1, raw)
		}
		args, err := render.Parse(l.Args)
		if err != nil || len(args) != 2 || args[0].String() != fmt.Sprint(i) {
			t.Errorf("line %d: args %s: %v", i+1, l.Args, err)
		}
		if !strings.HasPrefix(string(raw), fmt.Sprintf(`{"seq":%d,"time":"`, i+1)) || len(l.Time) != len("2006-01-02T15:04:05.000000000Z") {
			t.Errorf("line %d: want seq then time with nanoseconds: %s", i+1, raw)
		}
		sum := sha256.Sum256(bytes.TrimSuffix(raw, []byte("\n")))
		prev = hex.EncodeToString(sum[:])
	}
	if r := verify(t, data); !r.Intact() || r.Records != 3 || r.Runs != 1 {
		t.Errorf("Verify = %+v, want intact, 3 records, 1 run", r)
	}
}

// A new run chains from the last line in the file when it opened it.
func TestRunChainsFromLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeRun(t, path, 2)
	before, _ := os.ReadFile(path)
	writeRun(t, path, 2)
	data, _ := os.ReadFile(path)
	ls := lines(data)
	var third line
	json.Unmarshal(ls[2], &third)
	sum := sha256.Sum256(bytes.TrimSuffix(lines(before)[1], []byte("\n")))
	if third.Seq != 1 || third.Prev != hex.EncodeToString(sum[:]) {
		t.Errorf("first line of the second run chains from %s, want the last line before it", third.Prev)
	}
	if r := verify(t, data); !r.Intact() || r.Runs != 2 {
		t.Errorf("Verify = %+v", r)
	}
	// Removing the whole first run is seen through the second's anchor.
	r := verify(t, join(ls[2:]))
	if r.Intact() || r.Problems[0].Kind != jsonl.Removed || r.Problems[0].Line != 1 {
		t.Errorf("first run removed: Verify = %+v", r)
	}
}

// Many writers append to one file at once (each Log has its own open file
// description, as separate processes would): lines never interleave and
// every chain stays intact.
func TestConcurrentAppenders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	const writers, events = 8, 500
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			writeRun(t, path, events)
		}()
	}
	wg.Wait()
	data, _ := os.ReadFile(path)
	r := verify(t, data)
	if !r.Intact() || r.Records != writers*events || r.Runs != writers {
		t.Errorf("Verify = %d records, %d runs, problems %v", r.Records, r.Runs, r.Problems)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeRun(t, path, 6)
	data, _ := os.ReadFile(path)
	ls := lines(data)
	edit := func(i int, f func([]byte) []byte) [][]byte {
		out := append([][]byte(nil), ls...)
		out[i] = f(append([]byte(nil), ls[i]...))
		return out
	}
	for _, tc := range []struct {
		name string
		log  []byte
		line int
		kind jsonl.Kind
	}{
		{"edited args", join(edit(2, func(b []byte) []byte { return bytes.Replace(b, []byte(`"event 2"`), []byte(`"event X"`), 1) })), 3, jsonl.Edited},
		{"edited prev", join(edit(2, func(b []byte) []byte {
			// Another hex digit (flipping a bit would make 'a' or 'f'
			// no hex at all, a malformed line, in one run of eight).
			i := bytes.Index(b, []byte(`"prev":"`)) + 8
			if b[i] == '0' {
				b[i] = '1'
			} else {
				b[i] = '0'
			}
			return b
		})), 3, jsonl.Edited},
		{"removed", join(append(append([][]byte(nil), ls[:2]...), ls[3:]...)), 3, jsonl.Removed},
		{"removed first", join(ls[1:]), 1, jsonl.Removed},
		{"reordered", join([][]byte{ls[0], ls[1], ls[3], ls[2], ls[4], ls[5]}), 4, jsonl.Reordered},
		{"inserted copy", join(append(append(append([][]byte(nil), ls[:4]...), ls[1]), ls[4:]...)), 5, jsonl.Inserted},
		{"inserted junk", join(append(append(append([][]byte(nil), ls[:4]...), []byte("hello\n")), ls[4:]...)), 5, jsonl.Malformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := verify(t, tc.log)
			if r.Intact() || !r.Tampered() {
				t.Fatalf("Verify says intact:\n%s", tc.log)
			}
			if p := r.Problems[0]; p.Line != tc.line || p.Kind != tc.kind {
				t.Errorf("first problem %v, want %s at line %d (all: %v)", p, tc.kind, tc.line, r.Problems)
			}
		})
	}
}

// A log cut off by a crash is damage, not tampering, and a run that
// later appends to it records the cut line, which stays damage.
func TestTruncated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeRun(t, path, 4)
	data, _ := os.ReadFile(path)
	cut := data[:len(data)-20]
	r := verify(t, cut)
	if r.Intact() || r.Tampered() || len(r.Problems) != 1 || r.Problems[0].Kind != jsonl.Truncated || r.Problems[0].Line != 4 {
		t.Fatalf("truncated log: Verify = %+v", r)
	}
	// Cut exactly at a line end: nothing shows (the chain cannot tell).
	if r := verify(t, join(lines(data)[:3])); !r.Intact() {
		t.Errorf("log cut at a line end: %v", r.Problems)
	}

	os.WriteFile(path, cut, 0o600)
	writeRun(t, path, 2)
	after, _ := os.ReadFile(path)
	r = verify(t, after)
	if r.Tampered() || len(r.Problems) != 1 || r.Problems[0].Kind != jsonl.CutOff || r.Problems[0].Line != 4 {
		t.Fatalf("appended after a crash: Verify = %+v\n%s", r, after)
	}
	var first line
	json.Unmarshal(lines(after)[4], &first)
	if first.Seq != 1 || first.Cut == "" {
		t.Errorf("the run after the cut line does not record it: %s", lines(after)[4])
	}
}

func TestRemovedLogFailsClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := openRun(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Hook(tick(0)); err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	time.Sleep(2 * time.Millisecond) // the link count is checked once a millisecond
	err = l.Hook(tick(1))
	if !errors.Is(err, audit.ErrNotRecorded) || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("Hook after the log was removed = %v, want ErrNotRecorded naming the removal", err)
	}
	if err2 := l.Hook(tick(2)); err2 == nil {
		t.Error("a failed log accepted a later event")
	}
}

// Lines written in the last millisecond before Close, after the file was
// removed, make Close fail: the run ends failed, not silently.
func TestRemovedLogFailsAtClose(t *testing.T) {
	path, l := openTicked(t)
	os.Remove(path)
	l.Hook(tick(1)) // within the millisecond, or not: Close must fail either way
	if err := l.Close(); !errors.Is(err, audit.ErrNotRecorded) || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("Close after the log was removed = %v, want ErrNotRecorded naming the removal", err)
	}
}

// Timestamps are formatted whole once a second and in part otherwise:
// both ways give RFC 3339 UTC with nine digits, as time formats it.
func TestTimestamps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := jsonl.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 12, 31, 23, 59, 59, 999_999_999, time.FixedZone("x", 3600))
	times := []time.Time{base, base.Add(1), base.Add(time.Nanosecond * 7), base.Add(time.Second + 5), base.Add(time.Hour)}
	for i, tm := range times {
		r := &record.Record{Run: "0123456789abcdef", Seq: uint64(i + 1), Time: tm, PID: 1, Name: "tick", Args: []byte("[]")}
		if err := l.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	data, _ := os.ReadFile(path)
	for i, ln := range lines(data) {
		var got struct{ Time string }
		json.Unmarshal(ln, &got)
		if want := times[i].UTC().Format("2006-01-02T15:04:05.000000000Z"); got.Time != want {
			t.Errorf("line %d: time %q, want %q", i+1, got.Time, want)
		}
	}
}

func TestOpenRefusesNonRegular(t *testing.T) {
	if _, err := jsonl.Open(t.TempDir()); err == nil {
		t.Error("opened a directory as the audit log")
	}
}

// BenchmarkJSONL measures events per second appended to the log, and
// checks that every one of them is in the file.
func BenchmarkJSONL(b *testing.B) {
	path := filepath.Join(b.TempDir(), "audit.jsonl")
	l, err := openRun(path)
	if err != nil {
		b.Fatal(err)
	}
	ev := audit.NewEvent("open", starlark.String("/etc/hosts"), starlark.String("r"), starlark.MakeInt(0))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.Hook(ev); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	r, err := jsonl.Verify(f)
	if err != nil {
		b.Fatal(err)
	}
	if r.Records != b.N || !r.Intact() {
		b.Fatalf("%d events written, %d records in the log, problems %v", b.N, r.Records, r.Problems)
	}
	b.ReportMetric(jsonlFloor(b, path), "floor-events/s")
}

var floorSink byte // keeps jsonlFloor's hashes live

// jsonlFloor is what BenchmarkJSONL cannot beat on this machine, measured
// in the same run: b.N lines of the log's size, each hashed with SHA-256
// and appended with one write(2), in events per second.
func jsonlFloor(b *testing.B, path string) float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	ls := lines(data)
	line := append(ls[len(ls)-1], '\n')
	fd, err := syscall.Open(path+".floor", syscall.O_WRONLY|syscall.O_APPEND|syscall.O_CREAT|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer syscall.Close(fd)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		sum := sha256.Sum256(line[:len(line)-1])
		floorSink ^= sum[0]
		if n, err := syscall.Write(fd, line); err != nil || n != len(line) {
			b.Fatalf("floor: write = %d, %v", n, err)
		}
	}
	return float64(b.N) / time.Since(start).Seconds()
}

// panicky is a value whose String method panics, as a buggy value type of
// an embedding program's might.
type panicky struct{ starlark.Tuple }

func (panicky) String() string { panic("String of a buggy value") }
func (panicky) Type() string   { return "panicky" }

// The dispatcher does not recover a hook's panic, so the run's fan-out
// does: an event it could not render is not recorded, and the run fails
// closed, with what the log had before intact.
func TestPanicWhileRecordingFailsClosed(t *testing.T) {
	path, l := openTicked(t)
	err := l.Hook(audit.NewEvent("app.bad", panicky{}))
	if !errors.Is(err, audit.ErrNotRecorded) || !strings.Contains(err.Error(), "String of a buggy value") {
		t.Fatalf("Hook of an event that panics = %v, want ErrNotRecorded with the panic", err)
	}
	if err := l.Hook(tick(2)); !errors.Is(err, audit.ErrNotRecorded) {
		t.Fatalf("a failed log took a later event: %v", err)
	}
	l.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if r := verify(t, data); !r.Intact() || r.Records != 1 {
		t.Fatalf("log after the panic: %d records, problems %v", r.Records, r.Problems)
	}
}
