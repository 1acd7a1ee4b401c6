// Package relp is the RELP audit sink: every record goes to a server
// that speaks RELP, the Reliable Event Logging Protocol of rsyslog's
// librelp (rsyslog's imrelp input), and the event's action happens only
// after the server acknowledged that record.
//
// Plain syslog over a stream cannot say whether the server read what the
// kernel accepted (see package audit/syslog). RELP can: every message is
// a command with a transaction number, and the server answers each with
// an rsp frame carrying a status, 200 for "taken". A session goes:
//
//	C: 1 open 50 relp_version=0␤relp_software=sstar␤commands=syslog␤
//	S: 1 rsp 89 200 OK␤relp_version=0␤relp_software=librelp,1.11.0,http://librelp.adiscon.com␤commands=syslog␤
//	C: 2 syslog 187 <86>1 2026-11-22T12:34:56.123456Z build-7 sstar 4242 open [sstar@32473 ...] open(...)␤
//	S: 2 rsp 6 200 OK␤
//	...
//	C: 9 close 0␤
//	S: 9 rsp 0␤
//
// (␤ is a line feed.) A server that shuts down first sends the hint
// "0 serverclose 0".
//
// Each record is one syslog command whose data is exactly the RFC 5424
// message the syslog sink sends (syslog.AppendMessage: the run id, seq,
// event and arguments in the sstar@32473 structured data element), so a
// receiver treats RELP and syslog copies alike.
//
// # Delivery
//
// One record is in flight at a time: Write sends it and returns only
// when the server answered rsp 200 for its transaction number. Anything
// else means the record was not recorded: a negative reply (any code but
// 200), no reply within AckTimeout (default one minute: a server that is
// merely slow, or stopped, holds the script up that long, and nothing is
// dropped), a connection that broke or failed, or the server's
// serverclose hint. The sink then reconnects once (a new session) and
// sends the record again; if that fails too, Write returns an error
// wrapping audit.ErrNotRecorded, and so does every later call: the run
// stops before the event's action.
//
// A record sent again may arrive twice: the server may have taken it and
// then died, or its answer been lost, before the sink heard back. The
// copies are identical (the same run id and seq in the structured data,
// the same timestamp), so a receiver that must not count duplicates drops
// every record whose (run, seq) it already has: within a run, seq goes
// from 1 up without gaps, and a duplicate is always of the last record
// before the reconnect.
//
// What an acknowledgement means is the server's choice: librelp answers
// after handing the message to rsyslog's main queue, which by default is
// in memory; give rsyslog a disk-assisted queue to survive its own crash
// (docs/sinks.md has a configuration).
package relp

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sstar-project/sstar/audit/record"
	"github.com/sstar-project/sstar/audit/syslog"
)

// Options configure a Sink.
type Options struct {
	// Addr is the server: tcp://host:port or tls://host:port.
	Addr string
	// CAFile holds PEM certificates of the authorities that may sign the
	// server's certificate (tls only). If empty, the system bundle at one
	// of syslog.SystemCAFiles.
	CAFile string
	// CertFile and KeyFile, if set, are a PEM client certificate and key
	// for servers that authenticate clients (tls only).
	CertFile, KeyFile string
	// Hostname for the syslog header; if empty, the machine's.
	Hostname string
	// DialTimeout bounds connecting and opening a session (default 10s).
	DialTimeout time.Duration
	// AckTimeout bounds how long one record may wait for the server's
	// answer before it counts as not recorded (default 1 minute).
	AckTimeout time.Duration
	// MaxMessage is the largest syslog message sent, in octets (default
	// DefaultMaxMessage). A larger record fails closed: the server would
	// drop the session. Set it to the server's limit (imrelp's
	// maxDataSize) if that is larger.
	MaxMessage int
}

// DefaultMaxMessage is librelp's default limit on a frame's data.
const DefaultMaxMessage = 128 << 10

// maxResponse bounds the data of a frame from the server: responses are
// short (the open response carries a few offers).
const maxResponse = 64 << 10

// A ResponseError is the server's negative answer to a command.
type ResponseError struct {
	Command string // the command answered: "open", "syslog" or "close"
	Code    int    // the status: anything but 200
	Text    string // the server's text
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("the server answered %s with %d %s", e.Command, e.Code, e.Text)
}

// ErrServerClose is the server's serverclose hint: it is ending the
// session (shutting down, or timing the client out).
var ErrServerClose = errors.New("the server closed the session (serverclose)")

// A Sink sends records to a RELP server and waits for each to be
// acknowledged. It is safe for concurrent use.
type Sink struct {
	opts     Options
	scheme   string // tcp or tls
	addr     string // host:port
	tls      *tls.Config
	hostname string

	mu         sync.Mutex
	sess       *session // nil between a broken session and the next
	msg, out   []byte   // the message being sent, and its frame
	reconnects int
	failed     error // sticky: a record was not recorded
	closed     bool
}

// session is one RELP session on one connection.
type session struct {
	nc   net.Conn
	r    *bufio.Reader
	txnr int // of the last command sent
}

// Dial parses opts.Addr, connects and opens a session. A server that
// cannot be reached, or refuses the session, is an error: sstar then
// exits before running anything.
func Dial(opts Options) (*Sink, error) {
	s := &Sink{opts: opts, hostname: opts.Hostname}
	if s.opts.DialTimeout <= 0 {
		s.opts.DialTimeout = 10 * time.Second
	}
	if s.opts.AckTimeout <= 0 {
		s.opts.AckTimeout = time.Minute
	}
	if s.opts.MaxMessage <= 0 {
		s.opts.MaxMessage = DefaultMaxMessage
	}
	if s.hostname == "" {
		s.hostname, _ = os.Hostname()
	}
	s.hostname = syslog.HeaderField(s.hostname, 255)
	if err := s.parseAddr(); err != nil {
		return nil, fmt.Errorf("relp %s: %v", opts.Addr, err)
	}
	if s.scheme == "tls" {
		cfg, err := s.tlsConfig()
		if err != nil {
			return nil, fmt.Errorf("relp %s: %v; give readable PEM files", opts.Addr, err)
		}
		s.tls = cfg
	} else if opts.CAFile != "" || opts.CertFile != "" || opts.KeyFile != "" {
		return nil, fmt.Errorf("relp %s: a CA file or client certificate is only for tls:// addresses", opts.Addr)
	}
	if err := s.connect(); err != nil {
		return nil, fmt.Errorf("relp %s: cannot open a session: %v; check that the RELP server (rsyslog's imrelp) is up and reachable at this address", opts.Addr, err)
	}
	return s, nil
}

func (s *Sink) parseAddr() error {
	u, err := url.Parse(s.opts.Addr)
	if err != nil || !strings.Contains(s.opts.Addr, "://") || (u.Scheme != "tcp" && u.Scheme != "tls") {
		return errors.New("want tcp://host:port or tls://host:port")
	}
	s.scheme = u.Scheme
	if u.Path != "" || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("want %s://host:port and nothing more", u.Scheme)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("want %s://host:port", u.Scheme)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	s.addr = u.Host
	return nil
}

func (s *Sink) tlsConfig() (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(s.addr)
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	// As for syslog: the roots come from a file named here, never from
	// Go's system pool, which the environment can replace.
	caFile := s.opts.CAFile
	if caFile == "" {
		for _, f := range syslog.SystemCAFiles {
			if _, err := os.Stat(f); err == nil {
				caFile = f
				break
			}
		}
		if caFile == "" {
			return nil, fmt.Errorf("no CA file given and none of %s exists; give one with --syslog-ca", strings.Join(syslog.SystemCAFiles, ", "))
		}
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("CA file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", caFile)
	}
	cfg.RootCAs = pool
	if s.opts.CertFile != "" || s.opts.KeyFile != "" {
		if s.opts.CertFile == "" || s.opts.KeyFile == "" {
			return nil, errors.New("a client certificate needs both a certificate file and a key file")
		}
		cert, err := tls.LoadX509KeyPair(s.opts.CertFile, s.opts.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// offers are what the client offers in open: the protocol version
// librelp speaks (its "version 0" is the specification's version 1
// framing), and the one command it uses.
const offers = "relp_version=0\nrelp_software=sstar\ncommands=syslog"

// connect opens a new session: a connection, then open and its answer.
func (s *Sink) connect() error {
	deadline := time.Now().Add(s.opts.DialTimeout)
	d := &net.Dialer{Deadline: deadline}
	var nc net.Conn
	var err error
	if s.tls != nil {
		nc, err = (&tls.Dialer{NetDialer: d, Config: s.tls}).Dial("tcp", s.addr)
	} else {
		nc, err = d.Dial("tcp", s.addr)
	}
	if err != nil {
		return err
	}
	ss := &session{nc: nc, r: bufio.NewReader(nc)}
	rsp, err := ss.command(s, "open", []byte(offers), deadline)
	if err == nil {
		err = checkOpen(rsp)
	}
	if err != nil {
		nc.Close()
		return err
	}
	s.sess = ss
	return nil
}

// checkOpen checks the server's answer to open: it must accept the
// protocol and the syslog command.
func checkOpen(rsp Response) error {
	offered, err := Offers(rsp.Data)
	if err != nil {
		return fmt.Errorf("the server's offers: %v", err)
	}
	if _, ok := offered["relp_version"]; !ok {
		return errors.New("the server's answer to open has no relp_version offer")
	}
	for _, c := range offered["commands"] {
		if c == "syslog" {
			return nil
		}
	}
	return errors.New("the server does not accept the syslog command")
}

// command sends one command and waits, until deadline, for its answer:
// an error is a *ResponseError for a negative one, ErrServerClose, or why
// there was none.
func (ss *session) command(s *Sink, cmd string, data []byte, deadline time.Time) (Response, error) {
	if ss.txnr == MaxTxnr {
		ss.txnr = 0
	}
	ss.txnr++
	s.out = AppendFrame(s.out[:0], Frame{Txnr: ss.txnr, Command: cmd, Data: data})
	ss.nc.SetDeadline(deadline)
	if _, err := ss.nc.Write(s.out); err != nil {
		return Response{}, describe("sending "+cmd, err)
	}
	for {
		f, err := ReadFrame(ss.r, maxResponse)
		if err != nil {
			return Response{}, describe("waiting for the answer to "+cmd, err)
		}
		switch {
		case f.Txnr == 0 && f.Command == "serverclose":
			return Response{}, ErrServerClose
		case f.Txnr == 0:
			continue // another hint: none is defined, and none needs an answer
		case f.Command != "rsp":
			return Response{}, fmt.Errorf("the server sent the command %q, which only a client may send", f.Command)
		case f.Txnr != ss.txnr:
			return Response{}, fmt.Errorf("the server answered transaction %d while %d was the only one open", f.Txnr, ss.txnr)
		}
		rsp, err := ParseResponse(f.Data)
		if err != nil {
			return Response{}, err
		}
		if !rsp.OK() {
			return rsp, &ResponseError{Command: cmd, Code: rsp.Code, Text: rsp.Text}
		}
		return rsp, nil
	}
}

func describe(what string, err error) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("%s: no answer in time", what)
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return fmt.Errorf("%s: the server closed the connection", what)
	}
	return fmt.Errorf("%s: %v", what, err)
}

// Write sends r as one syslog command and waits for the server's
// acknowledgement; see the package documentation for what happens when
// none comes. An error wraps audit.ErrNotRecorded; after one, every
// later call fails too.
func (s *Sink) Write(r *record.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if s.closed {
		return s.fail(r, errors.New("the sink is closed"))
	}
	s.msg = syslog.AppendMessage(s.msg[:0], s.hostname, r)
	if len(s.msg) > s.opts.MaxMessage {
		return s.fail(r, fmt.Errorf("the record is %d octets, more than the %d the server takes (imrelp's maxDataSize)", len(s.msg), s.opts.MaxMessage))
	}
	var first error
	if s.sess != nil {
		first = s.send()
		if first == nil {
			return nil
		}
		s.drop()
	} else {
		first = errors.New("no session")
	}
	// Not acknowledged: a new session, and the record once more.
	s.reconnects++
	if err := s.connect(); err != nil {
		return s.fail(r, fmt.Errorf("%v; reconnecting: %v", first, err))
	}
	if err := s.send(); err != nil {
		s.drop()
		return s.fail(r, fmt.Errorf("%v; after reconnecting: %v", first, err))
	}
	return nil
}

// send sends s.msg on the session and waits for its acknowledgement.
func (s *Sink) send() error {
	_, err := s.sess.command(s, "syslog", s.msg, time.Now().Add(s.opts.AckTimeout))
	return err
}

// drop ends the current session without ceremony.
func (s *Sink) drop() {
	if s.sess != nil {
		s.sess.nc.Close()
		s.sess = nil
	}
}

func (s *Sink) fail(r *record.Record, err error) error {
	s.failed = r.NotRecorded("relp "+s.opts.Addr, "not acknowledged", err, "check the RELP server")
	return s.failed
}

// Reconnects returns how many times the sink opened a new session to
// send a record again.
func (s *Sink) Reconnects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reconnects
}

// Close ends the session with close. Every record was acknowledged when
// its Write returned, so a server that does not answer close loses
// nothing, and Close always returns nil.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.sess != nil {
		s.sess.command(s, "close", nil, time.Now().Add(s.opts.DialTimeout))
		s.drop()
	}
	return nil
}
