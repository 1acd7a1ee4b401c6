// Package sinkproc runs audit sinks in a process of their own: sstar's
// sink process (cmd/sstar-sinks), which the run starts only when it has a
// sink that needs the network stack (syslog, RELP, journald).
//
// Why a process: the network sinks bring in the network and TLS stacks,
// whose package initialisers run on every start of a program that links
// them, used or not (about a tenth of sstar's start-up, measured with
// internal/bench/cmd/sidebyside). A run that records only to a local log
// should not pay for them, and the interpreter need not hold the TLS code
// at all.
//
// Delivery stays synchronous and fail-closed: a Proxy is a record.Sink
// whose Write sends the record to the sink process and returns only when
// the process answers that its sink took it (or why not). A process that
// dies, or answers with an error, fails the record: the run's fan-out
// then stops the run (exit 255).
//
// The protocol, on a socket pair (the process's descriptor 3): each
// request is a frame, a 4-byte big-endian length and that many bytes:
// an op byte, a 4-byte sink id, and the op's payload:
//
//	'O' open sink id: the sink's spec (opaque here; sstar sends JSON)
//	'W' write a record to sink id: the record (see appendRecord)
//	'C' close sink id
//
// Each request gets one reply frame: a status byte (0 ok, 1 error) and,
// for an error, its message. Requests are answered in order, one at a
// time.
package sinkproc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/record"
)

// MaxFrame bounds a frame: more than the largest record a policy may
// allow (record.MaxMaxRecord) with its fields.
const MaxFrame = 4 << 20

const (
	opOpen  = 'O'
	opWrite = 'W'
	opClose = 'C'
)

// A Client is sstar's end of a sink process.
type Client struct {
	path string
	cmd  *exec.Cmd
	conn *os.File

	mu     sync.Mutex // one request at a time
	next   uint32     // the next sink id
	buf    []byte
	failed error // sticky: the process is gone or lost the protocol

	roundTripFn func([]byte) ([]byte, error) // for tests: instead of conn
}

// Start starts the sink process at path, a program that calls Serve on
// descriptor 3, with no environment and standard error going to stderr.
func Start(path string, stderr *os.File) (*Client, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sink process: socketpair: %v", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "sinkproc"), os.NewFile(uintptr(fds[1]), "sinkproc")
	defer theirs.Close()
	cmd := &exec.Cmd{
		Path:       path,
		Args:       []string{path},
		Env:        []string{}, // nothing from sstar's environment
		Stderr:     stderr,
		ExtraFiles: []*os.File{theirs},
		SysProcAttr: &syscall.SysProcAttr{
			// It outlives nothing: if sstar dies, so does it.
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if err := cmd.Start(); err != nil {
		ours.Close()
		return nil, fmt.Errorf("cannot start the sink process %s: %v; it is installed next to sstar (make build makes bin/sstar-sinks)", path, err)
	}
	return &Client{path: path, cmd: cmd, conn: ours}, nil
}

// Open opens a sink in the process from spec and returns its proxy.
func (c *Client) Open(spec []byte) (*Proxy, error) {
	c.mu.Lock()
	id := c.next
	c.next++
	c.mu.Unlock()
	if err := c.call(opOpen, id, spec); err != nil {
		var re *remoteError
		if errors.As(err, &re) {
			return nil, errors.New(re.msg) // the sink's own words: it could not be opened
		}
		return nil, err
	}
	return &Proxy{c: c, id: id}, nil
}

// Close ends the process: it closes its connection, which makes the
// process close whatever is left open, and waits for it to exit.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil && c.failed == nil {
			return fmt.Errorf("the sink process %s: %v", c.path, err)
		}
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-done
		return fmt.Errorf("the sink process %s did not exit within 30s; killed", c.path)
	}
	return nil
}

// call sends one request and waits for its reply.
func (c *Client) call(op byte, id uint32, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed != nil {
		return c.failed
	}
	c.buf = appendFrame(c.buf[:0], op, id, payload)
	reply, err := c.roundTrip(c.buf)
	if err != nil {
		c.failed = fmt.Errorf("%w: the sink process %s: %v", audit.ErrNotRecorded, c.path, err)
		return c.failed
	}
	if len(reply) == 0 || reply[0] > 1 {
		c.failed = fmt.Errorf("%w: the sink process %s answered a malformed reply", audit.ErrNotRecorded, c.path)
		return c.failed
	}
	if reply[0] == 1 {
		return &remoteError{msg: strings.TrimPrefix(string(reply[1:]), audit.ErrNotRecorded.Error()+": ")}
	}
	return nil
}

// remoteError is a sink's error in the sink process: the record was not
// recorded.
type remoteError struct{ msg string }

func (e *remoteError) Error() string { return audit.ErrNotRecorded.Error() + ": " + e.msg }
func (e *remoteError) Unwrap() error { return audit.ErrNotRecorded }

func (c *Client) roundTrip(frame []byte) ([]byte, error) {
	if c.roundTripFn != nil {
		return c.roundTripFn(frame)
	}
	if _, err := c.conn.Write(frame); err != nil {
		return nil, fmt.Errorf("sending: %v", err)
	}
	return readFrame(c.conn)
}

// A Proxy is a record.Sink in the sink process.
type Proxy struct {
	c   *Client
	id  uint32
	buf []byte
}

// Write sends r to the sink and returns when the sink process has
// answered.
func (p *Proxy) Write(r *record.Record) error {
	p.buf = appendRecord(p.buf[:0], r)
	return p.c.call(opWrite, p.id, p.buf)
}

// Close closes the sink in the process.
func (p *Proxy) Close() error { return p.c.call(opClose, p.id, nil) }

func appendFrame(b []byte, op byte, id uint32, payload []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(5+len(payload)))
	b = append(b, op)
	b = binary.BigEndian.AppendUint32(b, id)
	return append(b, payload...)
}

// readFrame reads one frame's bytes.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return nil, fmt.Errorf("a frame of %d bytes, over the %d allowed", n, MaxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// appendRecord encodes r: seq (8 bytes), time in Unix nanoseconds (8),
// pid (4), kind (1), then run, name and args, each a 4-byte length and
// its bytes.
func appendRecord(b []byte, r *record.Record) []byte {
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixNano()))
	b = binary.BigEndian.AppendUint32(b, uint32(r.PID))
	b = append(b, byte(r.Kind))
	for _, s := range []string{r.Run, r.Name} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Args)))
	return append(b, r.Args...)
}

var errShort = errors.New("sinkproc: a record cut short")

// parseRecord decodes what appendRecord encoded. Args aliases b.
func parseRecord(b []byte) (*record.Record, error) {
	if len(b) < 21 {
		return nil, errShort
	}
	r := &record.Record{
		Seq:  binary.BigEndian.Uint64(b),
		Time: time.Unix(0, int64(binary.BigEndian.Uint64(b[8:]))).UTC(),
		PID:  int(binary.BigEndian.Uint32(b[16:])),
		Kind: audit.Kind(b[20]),
	}
	b = b[21:]
	var fields [3][]byte
	for i := range fields {
		if len(b) < 4 {
			return nil, errShort
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, errShort
		}
		fields[i], b = b[:n], b[n:]
	}
	if len(b) != 0 {
		return nil, errors.New("sinkproc: bytes after a record")
	}
	r.Run, r.Name, r.Args = string(fields[0]), string(fields[1]), fields[2]
	if k, _ := audit.KindOf(r.Name); k != r.Kind {
		return nil, fmt.Errorf("sinkproc: a record of kind %d named %q", r.Kind, r.Name)
	}
	return r, nil
}

// Serve is the sink process's side: it reads requests from conn, opens
// sinks with open, writes records to them, and answers each request,
// until conn ends; then it closes every sink still open. It returns the
// first error closing them, or a protocol error.
func Serve(conn io.ReadWriter, open func(spec []byte) (record.Sink, error)) error {
	sinks := map[uint32]record.Sink{}
	defer func() {
		for _, s := range sinks {
			s.Close()
		}
	}()
	var out []byte
	for {
		frame, err := readFrame(conn)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sinkproc: reading a request: %v", err)
		}
		if len(frame) < 5 {
			return errors.New("sinkproc: a request cut short")
		}
		op, id, payload := frame[0], binary.BigEndian.Uint32(frame[1:5]), frame[5:]
		var res error
		switch s, ok := sinks[id]; {
		case op == opOpen && !ok:
			var sink record.Sink
			if sink, res = open(payload); res == nil {
				sinks[id] = sink
			}
		case op == opWrite && ok:
			var r *record.Record
			if r, res = parseRecord(payload); res == nil {
				res = s.Write(r)
			}
		case op == opClose && ok:
			delete(sinks, id)
			res = s.Close()
		default:
			return fmt.Errorf("sinkproc: request %q for sink %d, which is %s", op, id, map[bool]string{true: "open", false: "not open"}[ok])
		}
		out = out[:0]
		if res == nil {
			out = append(out, 0)
		} else {
			out = append(append(out, 1), res.Error()...)
		}
		reply := binary.BigEndian.AppendUint32(nil, uint32(len(out)))
		if _, err := conn.Write(append(reply, out...)); err != nil {
			return fmt.Errorf("sinkproc: answering: %v", err)
		}
	}
}
