// Package rsyslogtest runs a real rsyslogd for sstar's tests: on
// loopback, with a configuration, work directory, certificate and output
// file of the test's own, never touching the system's rsyslog. Every message it
// receives is written to a file, one line each, with the fields its
// RFC 5424 parser found, so that a test can check what arrived.
//
// Start skips the test, saying why, where rsyslogd is not installed
// (Debian's rsyslog package; rsyslog-gnutls for TLS). Launch does the
// same without a testing.TB, for the commands of cmd/sstar's stories.
package rsyslogtest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	sslog "github.com/sstar-project/sstar/audit/syslog"
	"github.com/sstar-project/sstar/internal/testcert"
	"github.com/sstar-project/sstar/internal/testproc"
)

// Options say which inputs the server has. It always listens on TCP
// (plain, or TLS if TLS is set) on 127.0.0.1.
type Options struct {
	TLS     bool // the TCP input speaks TLS, with a certificate from a CA made for the test (CAFile)
	TCPPort int  // the TCP port; 0 picks a free one
	UDP     bool // also listen on a UDP port of 127.0.0.1
	Unix    bool // also listen on a Unix datagram socket (Socket)
	// MaxMessageSize is rsyslogd's maxMessageSize, as rsyslog.conf says
	// it ("8k"); empty: "64k".
	MaxMessageSize string
}

// A Server is a running rsyslogd.
type Server struct {
	Dir     string // its work directory
	TCPPort int
	UDPPort int    // if Options.UDP
	Socket  string // if Options.Unix
	CAFile  string // if Options.TLS: the CA that signed the server's certificate
	TLS     bool

	t    testing.TB // nil for a Server from Launch
	out  string
	d    *testproc.Daemon
	opts Options
}

// Binary returns the path of rsyslogd, or "" if it is not installed.
func Binary() string {
	if p, err := exec.LookPath("rsyslogd"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/rsyslogd", "/sbin/rsyslogd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Missing says what a server with options o needs that is not
// installed, or "" if nothing is missing.
func Missing(o Options) string {
	if Binary() == "" {
		return "needs rsyslogd (Debian package rsyslog; `make deps` installs it)"
	}
	if o.TLS {
		if m, _ := filepath.Glob("/usr/lib/*/rsyslog/lmnsd_gtls.so"); len(m) == 0 {
			return "needs rsyslog's TLS driver (Debian package rsyslog-gnutls; `make deps` installs it)"
		}
	}
	return ""
}

// Start starts rsyslogd and waits until it listens. It is stopped when
// the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if why := Missing(o); why != "" {
		t.Skip(why)
	}
	dir, err := os.MkdirTemp("", "rsyslogtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := Launch(dir, o)
	if s != nil {
		t.Cleanup(s.Kill)
	}
	if err != nil {
		t.Fatal(err)
	}
	s.t = t
	return s
}

// Launch starts rsyslogd with its files in dir, an existing directory,
// and waits until it listens. The caller stops it (Stop or Kill); if
// Launch fails after starting it, it returns the Server too, to be
// killed. Messages, WaitMessages and Restart are for servers from Start.
func Launch(dir string, o Options) (*Server, error) {
	if why := Missing(o); why != "" {
		return nil, errors.New(why)
	}
	s := &Server{Dir: dir, out: filepath.Join(dir, "messages"), TLS: o.TLS, opts: o}
	if o.TLS {
		if err := s.makeCerts(); err != nil {
			return nil, err
		}
	}
	if err := s.start(o.TCPPort); err != nil {
		if s.d != nil {
			return s, err
		}
		return nil, err
	}
	return s, nil
}

// Restart starts the server again after Stop or Kill, on the same ports,
// appending to the same output.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(s.TCPPort); err != nil {
		s.t.Fatal(err)
	}
}

func (s *Server) start(tcpPort int) error {
	portFile := filepath.Join(s.Dir, "tcp.port")
	os.Remove(portFile)
	var conf strings.Builder
	maxSize := s.opts.MaxMessageSize
	if maxSize == "" {
		maxSize = "64k"
	}
	fmt.Fprintf(&conf, "global(workDirectory=%q maxMessageSize=%q net.enableDNS=\"off\"", s.Dir, maxSize)
	if s.TLS {
		fmt.Fprintf(&conf, " defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q",
			s.CAFile, filepath.Join(s.Dir, testcert.ServerCert), filepath.Join(s.Dir, testcert.ServerKey))
	}
	conf.WriteString(")\n")
	if s.TLS {
		conf.WriteString("module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\")\n")
	} else {
		conf.WriteString("module(load=\"imtcp\")\n")
	}
	fmt.Fprintf(&conf, "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\" listenPortFileName=%q ruleset=\"out\")\n", tcpPort, portFile)
	if s.opts.UDP {
		if s.UDPPort == 0 {
			port, err := freeUDPPort()
			if err != nil {
				return err
			}
			s.UDPPort = port
		}
		conf.WriteString("module(load=\"imudp\")\n")
		fmt.Fprintf(&conf, "input(type=\"imudp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"out\")\n", s.UDPPort)
	}
	if s.opts.Unix {
		s.Socket = filepath.Join(s.Dir, "log.sock")
		conf.WriteString("module(load=\"imuxsock\" sysSock.use=\"off\")\n")
		// imuxsock at its defaults (the special parser on, no hostname
		// parsed), as Debian's rsyslog.conf has it, but for the rate limit.
		fmt.Fprintf(&conf, "input(type=\"imuxsock\" socket=%q rateLimit.interval=\"0\" ruleset=\"out\")\n", s.Socket)
	}
	conf.WriteString("template(name=\"fields\" type=\"string\" string=\"%syslogfacility%\\t%syslogseverity%\\t%hostname%\\t%app-name%\\t%procid%\\t%msgid%\\t%structured-data%\\t%msg%\\n\")\n")
	fmt.Fprintf(&conf, "ruleset(name=\"out\") { action(type=\"omfile\" file=%q template=\"fields\") }\n", s.out)
	confPath := filepath.Join(s.Dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(Binary(), "-n", "-f", confPath, "-i", filepath.Join(s.Dir, "rsyslogd.pid"))
	d, err := testproc.Start("rsyslogd", cmd, filepath.Join(s.Dir, "rsyslogd.out"))
	if err != nil {
		return err
	}
	s.d = d
	// rsyslogd writes the port file (only for port 0) when it has bound
	// the port, which may be before it accepts: ready is when a
	// connection is accepted.
	if err := d.WaitReady("start listening", func() bool {
		port := tcpPort
		if port == 0 {
			if b, err := os.ReadFile(portFile); err == nil {
				port, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			}
		}
		if port <= 0 {
			return false
		}
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false
		}
		c.Close()
		s.TCPPort = port
		return true
	}); err != nil {
		return err
	}
	if s.opts.Unix {
		return d.WaitReady("create "+s.Socket, func() bool {
			_, err := os.Stat(s.Socket)
			return err == nil
		})
	}
	return nil
}

// Addr returns the sink address of the TCP input: tcp://127.0.0.1:PORT,
// or tls:// if it speaks TLS.
func (s *Server) Addr() string {
	scheme := "tcp"
	if s.TLS {
		scheme = "tls"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, s.TCPPort)
}

// Output returns what rsyslogd itself printed.
func (s *Server) Output() string { return s.d.Output() }

// Stop stops rsyslogd gracefully (SIGTERM), which writes out everything
// it received, and waits for it to exit.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill kills rsyslogd (SIGKILL) and waits for it to exit.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) { s.d.Signal(sig) }

// Pid returns rsyslogd's process id.
func (s *Server) Pid() int { return s.d.Pid() }

// A Message is one message as rsyslogd parsed it.
type Message struct {
	Facility, Severity int
	Hostname, App      string
	ProcID, MsgID      string
	StructuredData     string
	Params             map[string]string // the sstar@32473 element
	Text               string            // MSG
}

// Messages returns every message received so far.
func (s *Server) Messages() []Message {
	s.t.Helper()
	ms, err := s.ReadMessages()
	if err != nil {
		s.t.Fatal(err)
	}
	return ms
}

// ReadMessages returns every message received so far.
func (s *Server) ReadMessages() ([]Message, error) {
	f, err := os.Open(s.out)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Message
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.SplitN(line, "\t", 8)
		if len(fields) != 8 {
			return nil, fmt.Errorf("rsyslogd wrote a line with %d fields: %q", len(fields), line)
		}
		m := Message{Hostname: fields[2], App: fields[3], ProcID: fields[4], MsgID: fields[5], StructuredData: fields[6], Text: fields[7]}
		m.Facility, _ = strconv.Atoi(fields[0])
		m.Severity, _ = strconv.Atoi(fields[1])
		m.Text = strings.TrimPrefix(m.Text, "\xEF\xBB\xBF") // RFC 5424's BOM, which rsyslog keeps
		if local := strings.TrimPrefix(m.Text, " "); m.StructuredData == "-" && strings.HasPrefix(local, "["+sslog.SDID+" ") {
			// The local form (RFC 3164) carries the structured data in
			// MSG, which rsyslog keeps with the space after the tag.
			end := sdEnd(local)
			m.StructuredData, m.Text = local[:end], strings.TrimPrefix(local[end:], " ")
		}
		sd, err := sslog.ParseStructuredData(m.StructuredData)
		if err != nil {
			return nil, fmt.Errorf("rsyslogd received structured data that does not parse: %v: %q", err, line)
		}
		m.Params = sd[sslog.SDID]
		out = append(out, m)
	}
	return out, sc.Err()
}

// WaitMessages waits until at least n messages arrived, or timeout, and
// returns them.
func (s *Server) WaitMessages(n int, timeout time.Duration) []Message {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ms := s.Messages()
		if len(ms) >= n || time.Now().After(deadline) {
			return ms
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func freeUDPPort() (int, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, nil
}

// makeCerts makes a CA and a server certificate for 127.0.0.1 and
// localhost signed by it (and a client certificate, unused here).
func (s *Server) makeCerts() error {
	if err := testcert.Make(s.Dir); err != nil {
		return err
	}
	s.CAFile = filepath.Join(s.Dir, testcert.CA)
	return nil
}

// sdEnd returns the end of the structured data element at the start of s:
// the first ']' not escaped by a backslash.
func sdEnd(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case ']':
			return i + 1
		}
	}
	return len(s)
}
