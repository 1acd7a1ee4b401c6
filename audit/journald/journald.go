// Package journald is the journald audit sink: every record becomes one
// journal entry, sent with journald's native protocol to its socket,
// /run/systemd/journal/socket, with the fields a journalctl user expects
// and the record's own:
//
//	MESSAGE=open("/etc/hosts", "r", 0)
//	PRIORITY=6
//	SYSLOG_FACILITY=10
//	SYSLOG_IDENTIFIER=sstar
//	SYSLOG_PID=4242
//	SSTAR_EVENT=open
//	SSTAR_RUN=6f1c0a4e9b2d4c8f8e7a5b3c1d2e4f60
//	SSTAR_SEQ=2
//	SSTAR_TIME=2026-11-22T12:34:56.123456789Z
//	SSTAR_ARGS=["/etc/hosts","r",0]
//
// MESSAGE is the call for people, cut past 1024 bytes; SSTAR_ARGS is the
// record: the arguments as JSON, exactly as package render writes them
// (render.Parse reads them back). PRIORITY comes from the event table:
// 2 (crit) for critical events, 3 (err) for aborted ones, 6 (info) for
// the rest; facility 10 is authpriv, as for syslog. SSTAR_RUN, SSTAR_SEQ
// and SSTAR_TIME are the run's record, the same in every sink. So
//
//	journalctl SYSLOG_IDENTIFIER=sstar SSTAR_RUN=6f1c0a4e... -o json
//
// shows one run, in order.
//
// # The native protocol
//
// An entry is one datagram of fields, each NAME=value and a newline, or,
// for a value that holds a newline, NAME, a newline, the value's length
// as 64 bits little-endian, the value and a newline. An entry too large
// for one datagram (the kernel refuses it with EMSGSIZE) goes in a
// memfd: written, sealed against any change, and its descriptor sent
// alone in an empty datagram, which journald reads whole.
//
// # Delivery
//
// journald answers nothing. Write returns once the kernel put the entry
// in journald's socket queue; a full queue (journald busy or stopped)
// holds the script up, for up to WriteTimeout (default one minute), then
// fails closed. A socket that is gone or refuses (journald not running)
// fails closed at once, and every later record too: entries queued to a
// journald that died may be lost, so the sink does not pretend otherwise
// by reconnecting. Close waits (up to CloseTimeout, default 10s) until
// journald has read every entry sent (the socket's unread bytes, as
// SIOCOUTQ counts them, are zero): a successful run's records are all in
// journald's hands.
//
// What this cannot promise: between an event and the end of the run, a
// journald crash can lose what it had not read (under systemd the socket
// belongs to systemd and survives journald's restarts, so the next
// journald reads the queue). And journald's rate limiting drops entries
// of a systemd unit that logs more than RateLimitBurst (default 10000)
// entries in RateLimitIntervalSec (default 30s), saying only how many it
// suppressed: sstar cannot see that. Run sstar in a unit with
// LogRateLimitIntervalSec=0, or set RateLimitIntervalSec=0 in
// journald.conf (docs/sinks.md).
package journald

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/record"
)

// DefaultSocket is journald's native socket.
const DefaultSocket = "/run/systemd/journal/socket"

// MaxMessage is how much of MESSAGE (the call) is kept; SSTAR_ARGS always
// has the arguments whole.
const MaxMessage = 1024

// Options configure a Sink. The zero value sends to the system's journald.
type Options struct {
	// Socket is journald's native socket (default DefaultSocket). Tests
	// point it at a journald of their own.
	Socket string
	// WriteTimeout bounds how long one entry may wait for room in
	// journald's queue before the sink fails closed (default 1 minute).
	WriteTimeout time.Duration
	// CloseTimeout bounds how long Close waits for journald to read
	// every entry (default 10s).
	CloseTimeout time.Duration
}

// A Sink sends records to journald. It is safe for concurrent use.
type Sink struct {
	opts Options

	mu     sync.Mutex
	conn   *net.UnixConn
	raw    syscall.RawConn
	buf    []byte
	memfds int // entries sent through a memfd
	run    string
	seq    uint64
	failed error
	closed bool
}

// Dial connects to journald's socket. A journald that is not there is an
// error: sstar then exits before running anything.
func Dial(opts Options) (*Sink, error) {
	if opts.Socket == "" {
		opts.Socket = DefaultSocket
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = time.Minute
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = 10 * time.Second
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: opts.Socket, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("journald %s: cannot connect: %v; check that systemd-journald is running", opts.Socket, unwrap(err))
	}
	raw, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("journald %s: %v", opts.Socket, err)
	}
	return &Sink{opts: opts, conn: c, raw: raw}, nil
}

// Write sends r as one entry. An error wraps audit.ErrNotRecorded; after
// one, every later call fails too.
func (s *Sink) Write(r *record.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if s.closed {
		return s.fail(r, errors.New("the sink is closed"))
	}
	s.buf = AppendEntry(s.buf[:0], r)
	s.conn.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
	_, err := s.conn.Write(s.buf)
	if errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, syscall.ENOBUFS) {
		err = s.sendMemfd()
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("journald did not take the entry within %v", s.opts.WriteTimeout)
		}
		return s.fail(r, unwrap(err))
	}
	s.run, s.seq = r.Run, r.Seq
	return nil
}

// sendMemfd sends s.buf in a sealed memfd, for an entry larger than a
// datagram may be.
func (s *Sink) sendMemfd() error {
	fd, err := unix.MemfdCreate("sstar-journal-entry", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("memfd_create: %v", err)
	}
	defer unix.Close(fd)
	for b := s.buf; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("writing the memfd: %v", err)
		}
		b = b[n:]
	}
	// journald maps a sealed memfd instead of copying it, and trusts
	// that nobody can change it after it was sent.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		return fmt.Errorf("sealing the memfd: %v", err)
	}
	// The connected socket takes no address, which net's WriteMsgUnix
	// insists on for datagrams: sendmsg through the poller, which keeps
	// the write deadline.
	rights := unix.UnixRights(fd)
	var serr error
	if err := s.raw.Write(func(sock uintptr) bool {
		serr = unix.Sendmsg(int(sock), nil, rights, nil, 0)
		return serr != unix.EAGAIN && serr != unix.EINTR
	}); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	s.memfds++
	return nil
}

func (s *Sink) fail(r *record.Record, err error) error {
	s.failed = r.NotRecorded("journald "+s.opts.Socket, "not delivered", err, "check that systemd-journald is running")
	return s.failed
}

// Memfds returns how many entries went through a memfd.
func (s *Sink) Memfds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.memfds
}

// Close waits until journald has read every entry sent, then closes the
// socket. An error (wrapping audit.ErrNotRecorded) means the last
// entries may not have reached it.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	defer s.conn.Close()
	if s.failed != nil || s.seq == 0 {
		return nil
	}
	deadline := time.Now().Add(s.opts.CloseTimeout)
	for {
		q, err := s.unread()
		if err != nil {
			return s.closeErr(fmt.Errorf("reading the socket's queue: %v", err))
		}
		if q == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return s.closeErr(fmt.Errorf("%d bytes still unread by journald after %v", q, s.opts.CloseTimeout))
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *Sink) closeErr(err error) error {
	return fmt.Errorf("%w: journald %s: cannot confirm that journald read the last events of run %s (up to #%d): %v",
		audit.ErrNotRecorded, s.opts.Socket, s.run, s.seq, err)
}

// unread returns the bytes of entries sent that journald has not read:
// on a Unix socket, SIOCOUTQ counts what the receiver has not consumed.
func (s *Sink) unread() (int, error) {
	var q int
	var err error
	if cerr := s.raw.Control(func(fd uintptr) { q, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); cerr != nil {
		return 0, cerr
	}
	return q, err
}

// AppendEntry appends r as one entry of the native protocol.
func AppendEntry(b []byte, r *record.Record) []byte {
	b = appendField(b, "MESSAGE", appendText(nil, r))
	b = append(b, "PRIORITY="...)
	b = strconv.AppendInt(b, int64(priority(r.Severity())), 10)
	b = append(b, "\nSYSLOG_FACILITY=10\nSYSLOG_IDENTIFIER=sstar\nSYSLOG_PID="...)
	b = strconv.AppendInt(b, int64(r.PID), 10)
	b = append(b, '\n')
	b = appendField(b, "SSTAR_EVENT", []byte(r.Name))
	b = append(b, "SSTAR_RUN="...)
	b = append(b, r.Run...)
	b = append(b, "\nSSTAR_SEQ="...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, "\nSSTAR_TIME="...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '\n')
	return appendField(b, "SSTAR_ARGS", r.Args)
}

// appendField appends NAME=value, or the length-prefixed form if value
// holds a newline.
func appendField(b []byte, name string, value []byte) []byte {
	b = append(b, name...)
	if !containsNewline(value) {
		b = append(b, '=')
		b = append(b, value...)
		return append(b, '\n')
	}
	b = append(b, '\n')
	b = binary.LittleEndian.AppendUint64(b, uint64(len(value)))
	b = append(b, value...)
	return append(b, '\n')
}

func containsNewline(b []byte) bool {
	for _, c := range b {
		if c == '\n' {
			return true
		}
	}
	return false
}

// appendText appends the event as a call, name(args), cut at MaxMessage
// bytes.
func appendText(b []byte, r *record.Record) []byte { return r.AppendCall(b, MaxMessage) }

// priority maps an event's severity to syslog's levels, which journald
// uses.
func priority(sev audit.Severity) int {
	switch sev {
	case audit.Critical:
		return 2
	case audit.Error:
		return 3
	}
	return 6
}

func unwrap(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}
