// Package kaudit is the kernel audit sink: every record becomes a
// user-space record of the Linux audit subsystem, sent through a
// NETLINK_AUDIT socket with the kernel's acknowledgement asked for, so
// that it sits in the audit log next to the kernel's own records
// (system calls, IMA, Landlock, AppArmor) and ausearch finds it:
//
//	ausearch -m TRUSTED_APP -i
//	type=TRUSTED_APP msg=audit(1764590000.123:4711): pid=4242 uid=0 auid=1000 ses=3
//	 subj=unconfined msg='op=sstar event="open" run=6f1c0a4e9b2d4c8f8e7a5b3c1d2e4f60 seq=2
//	 time=2026-11-22T12:34:56.123456789Z args=5B222F6574632F686F737473222C2272222C305D'
//
// The record type is AUDIT_TRUSTED_APP (1121), the type the audit
// subsystem has for an application's own free-form records (1112, which
// some write for "user message", is USER_LOGIN). The kernel adds the
// timestamp, serial, pid, uid, auid, session and security context; the
// text is key=value fields in the audit format:
//
//	op     always sstar
//	event  the event name
//	run    the run id (the same in every sink)
//	seq    the event's number in its run
//	time   when the event was raised, RFC 3339, UTC
//	args   the arguments as JSON (package render), hex-encoded
//	part   i/n, only for a record split in parts (below)
//
// A value is "quoted" if it is printable ASCII without spaces and
// quotes, and otherwise, as the audit format requires for untrusted
// strings, the uppercase hex of its bytes (ausearch -i and auparse decode
// it; so does Parse). args always has quotes, so it is always hex.
//
// The kernel cuts a user record's text at AUDIT_MESSAGE_TEXT_MAX (8560)
// bytes without saying so; a record whose text would be longer is sent
// as several records, each with event, run, seq and part=i/n, the hex of
// the arguments divided between them in order. Parse joins nothing: a
// reader concatenates the args of the parts of one (run, seq).
//
// # Delivery
//
// Write returns once the kernel acknowledged the record (the netlink
// error message with error 0 that NLM_F_ACK asks for), or an error,
// wrapping audit.ErrNotRecorded, with the kernel's refusal. The kernel
// answers only after it queued the record for kauditd; if its backlog is
// full it holds the sender up (backlog_wait_time), which is sstar's
// back-pressure. What the acknowledgement cannot say: the kernel also
// acknowledges records it drops, when auditing is off (AUDIT_GET's
// enabled=0, the default on many systems), when a user-message filter
// rule excludes them, or when the audit rate limit is exceeded (the
// lost counter grows). Dial therefore asks the kernel's status, if
// it may (that needs CAP_AUDIT_CONTROL), and refuses to start when
// auditing is off. Kept records need a reader: auditd (or journald's
// audit socket); with none, the kernel prints them to its log
// (rate-limited) and drops them. See docs/sinks.md.
//
// Sending needs CAP_AUDIT_WRITE in the initial user namespace: without
// it, Dial fails naming the capability.
package kaudit

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit/record"
)

// RecordType is the audit record type of sstar's records: AUDIT_TRUSTED_APP.
const RecordType = 1121

// MaxText is the most of a user record's text the kernel keeps
// (AUDIT_MESSAGE_TEXT_MAX).
const MaxText = unix.AUDIT_MESSAGE_TEXT_MAX

// maxName bounds the encoded event name: every part carries it whole.
const maxName = 2048

// ErrNoCapability is wrapped by Dial's error when the process lacks
// CAP_AUDIT_WRITE.
var ErrNoCapability = errors.New("needs the CAP_AUDIT_WRITE capability to write to the kernel's audit log")

// ErrAuditOff is wrapped by Dial's error when the kernel's auditing is
// off, so that it would acknowledge records and drop them.
var ErrAuditOff = errors.New("the kernel's auditing is off (enabled=0): it would acknowledge sstar's records and drop them")

// Options configure a Sink. The zero value works.
type Options struct {
	// AckTimeout bounds the wait for the kernel's answer (default 1
	// minute; the kernel answers at once unless its backlog is full).
	AckTimeout time.Duration
}

// A Sink writes records to the kernel's audit log. It is safe for
// concurrent use.
type Sink struct {
	opts   Options
	mu     sync.Mutex
	fd     int
	nlseq  uint32
	text   []byte
	msg    []byte
	rbuf   []byte
	parts  int // records sent in more than one part
	failed error
	closed bool
}

// Dial opens the audit socket. It fails, wrapping ErrNoCapability,
// without CAP_AUDIT_WRITE, and, wrapping ErrAuditOff, if the kernel says
// auditing is off.
func Dial(opts Options) (*Sink, error) {
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = time.Minute
	}
	if ok, err := haveCapability(unix.CAP_AUDIT_WRITE); err != nil {
		return nil, fmt.Errorf("kernel audit: reading the process's capabilities: %v", err)
	} else if !ok {
		return nil, fmt.Errorf("kernel audit: %w; run sstar as root, or give it the capability (AmbientCapabilities=CAP_AUDIT_WRITE in its systemd unit)", ErrNoCapability)
	}
	fd, err := Open()
	if err != nil {
		return nil, fmt.Errorf("kernel audit: %v", err)
	}
	s := &Sink{opts: opts, fd: fd, rbuf: make([]byte, 8192)}
	st, err := GetStatus(fd)
	switch {
	case err == nil && st.Enabled == 0:
		unix.Close(fd)
		return nil, fmt.Errorf("kernel audit: %w; turn it on with auditctl -e 1 (auditd does at start)", ErrAuditOff)
	case errors.Is(err, unix.ECONNREFUSED):
		// What the kernel answers a user namespace other than the
		// initial one: it takes no audit records from containers.
		unix.Close(fd)
		return nil, fmt.Errorf("kernel audit: the kernel takes audit records only from its initial user namespace, and this process is in another (a container): %v", err)
	case err != nil && !errors.Is(err, unix.EPERM):
		unix.Close(fd)
		return nil, fmt.Errorf("kernel audit: asking the kernel's audit status: %v", err)
	}
	// EPERM: without CAP_AUDIT_CONTROL the status cannot be read; the
	// records are sent, and kept if auditing is on.
	if err := s.setTimeout(); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("kernel audit: %v", err)
	}
	return s, nil
}

// Open opens a NETLINK_AUDIT socket. Readers of the log (and tests) use
// it too.
func Open() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		if err == unix.EPROTONOSUPPORT || err == unix.EAFNOSUPPORT {
			return -1, fmt.Errorf("this kernel has no audit subsystem (CONFIG_AUDIT): %v", err)
		}
		return -1, fmt.Errorf("opening the audit socket: %v", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("binding the audit socket: %v", err)
	}
	return fd, nil
}

func (s *Sink) setTimeout() error {
	tv := unix.NsecToTimeval(s.opts.AckTimeout.Nanoseconds())
	return unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
}

func haveCapability(c int) (bool, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false, err
	}
	return data[c/32].Effective&(1<<(uint(c)%32)) != 0, nil
}

// Write sends r as one record (or, if it is too long, several) and waits
// for the kernel's acknowledgement of each. An error wraps
// audit.ErrNotRecorded; after one, every later call fails too.
func (s *Sink) Write(r *record.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if s.closed {
		return s.fail(r, errors.New("the sink is closed"))
	}
	if 2*len(r.Name) > maxName {
		return s.fail(r, fmt.Errorf("the event name is too long for an audit record (%d bytes, at most %d)", len(r.Name), maxName/2))
	}
	head := appendHead(s.text[:0], r)
	argsHex := hex.EncodedLen(len(r.Args))
	// " args=" and, when split, " part=NNNN/NNNN".
	room := MaxText - len(head) - len(" args=")
	if argsHex <= room {
		b := append(head, " args="...)
		b = appendHex(b, r.Args)
		s.text = b
		if err := s.send(b); err != nil {
			return s.fail(r, err)
		}
		return nil
	}
	room -= len(" part=00000/00000")
	room &^= 1 // whole bytes in each part
	n := (argsHex + room - 1) / room
	if n > 99999 {
		return s.fail(r, fmt.Errorf("the arguments (%d bytes) need more than 99999 audit records", len(r.Args)))
	}
	s.parts++
	perPart := room / 2
	for i := 0; i < n; i++ {
		b := appendHead(s.text[:0], r)
		b = append(b, " part="...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(b, " args="...)
		lo, hi := i*perPart, min((i+1)*perPart, len(r.Args))
		b = appendHex(b, r.Args[lo:hi])
		s.text = b
		if err := s.send(b); err != nil {
			return s.fail(r, fmt.Errorf("part %d of %d: %v", i+1, n, err))
		}
	}
	return nil
}

// appendHead appends the fields every part of r has.
func appendHead(b []byte, r *record.Record) []byte {
	b = append(b, "op=sstar event="...)
	b = AppendValue(b, r.Name)
	b = append(b, " run="...)
	b = AppendValue(b, r.Run)
	b = append(b, " seq="...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, " time="...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	return b
}

// AppendValue appends v as the audit format has an untrusted string: in
// double quotes if it is printable ASCII with no space or quote, else
// the uppercase hex of its bytes.
func AppendValue(b []byte, v string) []byte {
	plain := v != ""
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c > '~' || c == '"' || c == '\'' {
			plain = false
			break
		}
	}
	if plain {
		b = append(b, '"')
		b = append(b, v...)
		return append(b, '"')
	}
	return appendHex(b, []byte(v))
}

// appendHex appends the uppercase hex of v, as the audit format writes it.
func appendHex(b, v []byte) []byte {
	const digits = "0123456789ABCDEF"
	for _, c := range v {
		b = append(b, digits[c>>4], digits[c&15])
	}
	return b
}

// send sends one user record and waits for the kernel's answer.
func (s *Sink) send(text []byte) error {
	s.nlseq++
	seq := s.nlseq
	// The kernel ends the text at its last byte (it writes a NUL there),
	// so the NUL is sent.
	size := unix.NLMSG_HDRLEN + len(text) + 1
	s.msg = append(s.msg[:0], make([]byte, nlmsgAlign(size))...)
	h := (*unix.NlMsghdr)(unsafe.Pointer(&s.msg[0]))
	h.Len = uint32(size)
	h.Type = RecordType
	h.Flags = unix.NLM_F_REQUEST | unix.NLM_F_ACK
	h.Seq = seq
	copy(s.msg[unix.NLMSG_HDRLEN:], text)
	return s.exchange(s.msg[:size], seq)
}

// exchange sends one netlink request and waits for its acknowledgement.
func (s *Sink) exchange(msg []byte, seq uint32) error {
	for {
		err := unix.Sendto(s.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("sending to the kernel: %v", err)
		}
		break
	}
	return waitAck(s.fd, s.rbuf, seq)
}

// waitAck reads answers until the one to seq: nil for an
// acknowledgement, else the kernel's error.
func waitAck(fd int, buf []byte, seq uint32) error {
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN || err == unix.EWOULDBLOCK {
			return errors.New("the kernel did not answer in time")
		}
		if err != nil {
			return fmt.Errorf("reading the kernel's answer: %v", err)
		}
		for _, m := range Messages(buf[:n]) {
			if m.Header.Seq != seq || m.Header.Type != unix.NLMSG_ERROR {
				continue // an answer to an earlier request, or data
			}
			if len(m.Data) < 4 {
				return errors.New("the kernel's answer is too short")
			}
			if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
				return fmt.Errorf("the kernel refused the record: %v", unix.Errno(-e))
			}
			return nil
		}
	}
}

// Messages splits what one read from an audit socket returned into its
// netlink messages. Unlike syscall.ParseNetlinkMessage it accepts a last
// message without padding, as the kernel sends audit records.
func Messages(b []byte) []syscall.NetlinkMessage {
	var out []syscall.NetlinkMessage
	for len(b) >= unix.NLMSG_HDRLEN {
		h := *(*syscall.NlMsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			break
		}
		out = append(out, syscall.NetlinkMessage{Header: h, Data: b[unix.NLMSG_HDRLEN:l]})
		b = b[min(nlmsgAlign(l), len(b)):]
	}
	return out
}

func nlmsgAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

func (s *Sink) fail(r *record.Record, err error) error {
	s.failed = r.NotRecorded("kernel audit", "not recorded", err, "")
	return s.failed
}

// Split returns how many records were sent in more than one part.
func (s *Sink) Split() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parts
}

// Close closes the socket. Every record was acknowledged when its Write
// returned; Close always returns nil.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		unix.Close(s.fd)
	}
	return nil
}

// A Status is the kernel's audit status (struct audit_status), as far as
// sstar needs it.
type Status struct {
	Enabled      uint32 // 0 off, 1 on, 2 on and locked
	Failure      uint32
	PID          uint32 // the registered audit daemon, 0 if none
	RateLimit    uint32
	BacklogLimit uint32
	Lost         uint32
	Backlog      uint32
}

// GetStatus asks the kernel for its audit status (AUDIT_GET; needs
// CAP_AUDIT_CONTROL) on an audit socket from Open.
func GetStatus(fd int) (Status, error) {
	var st Status
	tv := unix.NsecToTimeval(int64(10 * time.Second))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	seq := uint32(os.Getpid()) ^ uint32(time.Now().UnixNano())
	msg := make([]byte, unix.NLMSG_HDRLEN)
	h := (*unix.NlMsghdr)(unsafe.Pointer(&msg[0]))
	*h = unix.NlMsghdr{Len: unix.NLMSG_HDRLEN, Type: unix.AUDIT_GET, Flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK, Seq: seq}
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return st, err
	}
	buf := make([]byte, 8192)
	got := false
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return st, err
		}
		for _, m := range Messages(buf[:n]) {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
						return st, unix.Errno(-e)
					}
				}
				if got {
					return st, nil
				}
			case unix.AUDIT_GET:
				if len(m.Data) < 32 {
					return st, errors.New("short audit status")
				}
				u := func(i int) uint32 { return binary.NativeEndian.Uint32(m.Data[4*i:]) }
				st = Status{Enabled: u(1), Failure: u(2), PID: u(3), RateLimit: u(4), BacklogLimit: u(5), Lost: u(6), Backlog: u(7)}
				got = true
				return st, nil
			}
		}
	}
}

// SetEnabled sets the kernel's auditing on (1) or off (0) (AUDIT_SET;
// needs CAP_AUDIT_CONTROL), on an audit socket from Open. What auditctl
// -e does; tests use it, and restore what they found.
func SetEnabled(fd int, enabled uint32) error {
	seq := uint32(os.Getpid()) ^ uint32(time.Now().UnixNano()) ^ 0x5a5a
	// struct audit_status: mask, enabled, then fields the mask leaves alone.
	body := make([]byte, 40)
	binary.NativeEndian.PutUint32(body[0:], unix.AUDIT_STATUS_ENABLED)
	binary.NativeEndian.PutUint32(body[4:], enabled)
	msg := make([]byte, unix.NLMSG_HDRLEN+len(body))
	h := (*unix.NlMsghdr)(unsafe.Pointer(&msg[0]))
	*h = unix.NlMsghdr{Len: uint32(len(msg)), Type: unix.AUDIT_SET, Flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK, Seq: seq}
	copy(msg[unix.NLMSG_HDRLEN:], body)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	return waitAck(fd, make([]byte, 8192), seq)
}
