// Package syslog is the syslog audit sink: every event becomes one RFC
// 5424 message, with structured data that carries the event exactly, sent
// through github.com/RackSec/srslog to a local socket or over UDP, TCP or
// TLS (with RFC 5425 octet-counting framing on the streams).
//
// A message looks like this (one line; wrapped here):
//
//	<86>1 2026-11-22T12:34:56.123456Z build-7 sstar 4242 open
//	 [sstar@32473 event="open" seq="2" run="6f1c0a4e9b2d4c8f8e7a5b3c1d2e4f60"
//	 pid="4242" args="[\"/etc/hosts\",\"r\",0\]"] open("/etc/hosts", "r", 0)
//
// The header's APP-NAME is "sstar", PROCID the pid, MSGID the event name
// (or "-" if it is not 1 to 32 printable ASCII characters). The
// structured data element sstar@32473 (32473 is the enterprise number
// RFC 5612 reserves for examples: sstar has none of its own) carries the
// event name, its seq and run id (the same as in the JSON Lines log), the
// pid, and args: the arguments as JSON, exactly as package render writes
// them. The free-text MSG is the call in Starlark syntax for people,
// shortened past 1024 bytes; args is the exact record.
//
// The header's timestamp, seq, run, pid and args come from the run's
// record (package record), made once per event for every sink: the copy
// of an event in the JSON Lines log carries the same run id, seq, time
// and args. A Sink is a record.Sink: add it to the run's record.Fanout.
//
// Facility is authpriv (event arguments can be sensitive). Severity comes
// from the event table: critical events (code integrity failures, refused
// launch modes, panics) at LOG_CRIT, aborted events (sstar.abort) at
// LOG_ERR, everything else, including events scripts raise, at LOG_INFO.
//
// # Delivery
//
// Hook returns only once the message was handed to the kernel whole. On a
// stream (TCP, TLS, a local stream socket) it first checks that the
// connection is still open: a server that closed it cleanly had read
// everything sent before (Linux closes with a reset, not a FIN, when
// unread data is left, and every byte had been acknowledged), so the sink
// reconnects once and sends the pending message again. A reset, bytes the
// server never acknowledged, a failed write, a write that blocks longer
// than WriteTimeout, or a failed reconnect means events may be lost: Hook
// returns an error wrapping audit.ErrNotRecorded, and so does every later
// call. Close ends the stream and waits for the server to close its end,
// which it does only after reading everything: that confirms the whole
// run arrived.
//
// What this cannot promise: plain syslog has no acknowledgements, so an
// event that the server's kernel accepted and the server then died
// without reading is found lost at the next event or at Close (and sstar
// exits 255), not before the event's action ran. What the server does
// after reading (a queue in memory, a disk that fails) is the server's
// to make safe. UDP and datagram sockets confirm nothing at all.
package syslog

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/RackSec/srslog"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/record"
	"github.com/sstar-project/sstar/internal/ospath"
)

// Options configure a Sink.
type Options struct {
	// Addr is where to send: unix:///dev/log (or another socket path),
	// udp://host:port, tcp://host:port or tls://host:port.
	Addr string
	// CAFile holds PEM certificates of the authorities that may sign the
	// server's certificate (tls only). If empty, the system's roots.
	CAFile string
	// CertFile and KeyFile, if set, are a PEM client certificate and key
	// for servers that authenticate clients (tls only).
	CertFile, KeyFile string
	// Hostname for the header; if empty, the machine's.
	Hostname string
	// DialTimeout bounds connecting, TLS handshake included (default 10s).
	DialTimeout time.Duration
	// WriteTimeout bounds how long one message may wait for a slow server
	// before the sink gives up and fails closed (default 1 minute).
	WriteTimeout time.Duration
	// CloseTimeout bounds how long Close waits for the server to confirm
	// it read everything (default 10s).
	CloseTimeout time.Duration
}

// A Sink sends events to a syslog server. It is safe for concurrent use.
type Sink struct {
	opts     Options
	scheme   string // unix, udp, tcp, tls
	addr     string // host:port or socket path
	tls      *tls.Config
	hostname string

	mu     sync.Mutex
	w      *srslog.Writer
	cur    *conn          // the connection srslog writes to now
	rec    *record.Record // the record being sent (for the formatter)
	run    string         // the run of the last record sent
	seq    uint64         // and its seq
	buf    []byte
	broke  error // why the last write on a connection failed, if it did
	lost   error // sticky: events may have been lost; never reconnect
	failed error // sticky: Hook's error once an event was not delivered
	closed bool
}

// Dial parses opts.Addr and connects. A server that cannot be reached is
// an error: sstar then exits before running anything.
func Dial(opts Options) (*Sink, error) {
	s := &Sink{opts: opts, hostname: opts.Hostname}
	if s.opts.DialTimeout <= 0 {
		s.opts.DialTimeout = 10 * time.Second
	}
	if s.opts.WriteTimeout <= 0 {
		s.opts.WriteTimeout = time.Minute
	}
	if s.opts.CloseTimeout <= 0 {
		s.opts.CloseTimeout = 10 * time.Second
	}
	if s.hostname == "" {
		s.hostname, _ = os.Hostname()
	}
	s.hostname = headerField(s.hostname, 255)
	if err := s.parseAddr(); err != nil {
		return nil, fmt.Errorf("syslog %s: %v", opts.Addr, err)
	}
	if s.scheme == "tls" {
		cfg, err := s.tlsConfig()
		if err != nil {
			return nil, fmt.Errorf("syslog %s: %v; give readable PEM files", opts.Addr, err)
		}
		s.tls = cfg
	} else if opts.CAFile != "" || opts.CertFile != "" || opts.KeyFile != "" {
		return nil, fmt.Errorf("syslog %s: a CA file or client certificate is only for tls:// addresses", opts.Addr)
	}
	w, err := srslog.DialWithCustomDialer("custom", s.addr, srslog.LOG_AUTHPRIV|srslog.LOG_INFO, appName, s.dial)
	if err != nil {
		return nil, fmt.Errorf("syslog %s: cannot connect: %v; check that the syslog server is up and reachable at this address", opts.Addr, err)
	}
	w.SetHostname(s.hostname)
	w.SetFormatter(s.format)
	if s.cur.stream {
		w.SetFramer(srslog.RFC5425MessageLengthFramer)
	} else {
		w.SetFramer(srslog.DefaultFramer)
	}
	s.w = w
	return s, nil
}

const appName = "sstar"

func (s *Sink) parseAddr() error {
	u, err := url.Parse(s.opts.Addr)
	if err != nil || u.Scheme == "" || !strings.Contains(s.opts.Addr, "://") {
		return errors.New("want unix:///path, udp://host:port, tcp://host:port or tls://host:port")
	}
	s.scheme = u.Scheme
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return errors.New("want unix:// and an absolute socket path, as in unix:///dev/log")
		}
		s.addr = u.Path
		return nil
	case "udp", "tcp", "tls":
		if u.Path != "" || u.RawQuery != "" || u.User != nil {
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
	return fmt.Errorf("unknown scheme %q: want unix, udp, tcp or tls", u.Scheme)
}

// SystemCAFiles are where the system's CA bundle is looked for when a
// tls:// sink names no CA file: the paths Go itself tries on Linux, but
// fixed here, not overridable from the environment.
var SystemCAFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Gentoo
	"/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
	"/etc/ssl/ca-bundle.pem",             // openSUSE
	"/etc/pki/tls/cacert.pem",            // OpenELEC
	"/etc/ssl/cert.pem",                  // Alpine
}

func (s *Sink) tlsConfig() (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(s.addr)
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	// The roots always come from a file named here: never from Go's
	// system pool, which SSL_CERT_FILE and SSL_CERT_DIR can replace, so
	// whoever starts sstar cannot choose whom its audit trail trusts.
	caFile := s.opts.CAFile
	if caFile == "" {
		for _, f := range SystemCAFiles {
			if _, err := os.Stat(f); err == nil {
				caFile = f
				break
			}
		}
		if caFile == "" {
			return nil, fmt.Errorf("no CA file given and none of %s exists; give one with --syslog-ca", strings.Join(SystemCAFiles, ", "))
		}
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %v", ospath.Reason(err))
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

// Write sends r as one message. An error wraps audit.ErrNotRecorded;
// after one, every later call fails too.
func (s *Sink) Write(r *record.Record) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if s.closed {
		return s.fail(r, errors.New("the sink is closed"))
	}
	if s.scheme == "unix" {
		s.buf = appendLocal(s.buf[:0], r)
	} else {
		s.buf = appendContent(s.buf[:0], r)
	}
	s.broke = nil
	s.rec = r
	_, err = s.w.WriteWithPriority(priority(r.Severity()), s.buf)
	s.rec = nil
	if err == nil && s.lost != nil {
		err = s.lost
	}
	if err != nil {
		if s.broke != nil && s.broke != err && !errors.Is(err, s.broke) {
			err = fmt.Errorf("%v, and then %v", s.broke, err)
		}
		return s.fail(r, err)
	}
	s.run, s.seq = r.Run, r.Seq
	return nil
}

func (s *Sink) fail(r *record.Record, err error) error {
	s.failed = r.NotRecorded("syslog "+s.opts.Addr, "not delivered", err, "check that the syslog server is up and reachable")
	return s.failed
}

// Close ends the connection. On a stream it first waits for the server to
// close its end, which confirms that it read every message; an error
// (wrapping audit.ErrNotRecorded) means the last events may not have
// arrived.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if c := s.cur; c != nil && c.stream && c.broken == nil && s.failed == nil {
		err = c.finish(s.opts.CloseTimeout)
	}
	s.w.Close()
	if err != nil {
		return fmt.Errorf("%w: syslog %s: the server did not confirm it received the last events of run %s (up to #%d): %v; check the syslog server",
			audit.ErrNotRecorded, s.opts.Addr, s.run, s.seq, err)
	}
	return nil
}

// priority maps an event's severity to syslog's.
func priority(sev audit.Severity) srslog.Priority {
	p := srslog.LOG_INFO
	switch sev {
	case audit.Critical:
		p = srslog.LOG_CRIT
	case audit.Error:
		p = srslog.LOG_ERR
	}
	return srslog.LOG_AUTHPRIV | p
}

// format is the srslog.Formatter: the header, then the content that
// Write built, with the record's time and pid. To a local socket the
// header is RFC 3164's, as syslog(3) writes it ("<PRI>Mmm dd hh:mm:ss
// sstar[PID]: ", the time in UTC); elsewhere RFC 5424's. srslog appends a
// newline to every message; neither RFC has one, so it is dropped.
func (s *Sink) format(p srslog.Priority, hostname, tag, content string) string {
	var b strings.Builder
	b.Grow(64 + len(content))
	b.WriteByte('<')
	b.WriteString(strconv.Itoa(int(p)))
	now, pid := time.Now(), os.Getpid()
	if s.rec != nil { // srslog formats only from Write, under s.mu
		now, pid = s.rec.Time, s.rec.PID
	}
	if s.scheme == "unix" {
		b.WriteByte('>')
		b.WriteString(now.UTC().Format(time.Stamp))
		b.WriteByte(' ')
		b.WriteString(tag)
		b.WriteByte('[')
		b.WriteString(strconv.Itoa(pid))
		b.WriteString("]: ")
		b.WriteString(strings.TrimSuffix(content, "\n"))
		return b.String()
	}
	b.WriteString(">1 ")
	b.WriteString(now.UTC().Format("2006-01-02T15:04:05.000000Z"))
	b.WriteByte(' ')
	b.WriteString(hostname)
	b.WriteByte(' ')
	b.WriteString(tag)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(pid))
	b.WriteByte(' ')
	b.WriteString(strings.TrimSuffix(content, "\n"))
	return b.String()
}
