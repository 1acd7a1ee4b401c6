// Package relptest runs RELP servers for tests: a real rsyslogd with
// imrelp (Debian's rsyslog-relp package) on loopback, with a
// configuration, work directory, certificates and output file of the
// test's own, never touching the system's rsyslog; and a Scripted server,
// a few lines of Go speaking the protocol, for answers rsyslogd never
// gives (a negative reply to a syslog command).
//
// Every message rsyslogd receives is written to a file, one line each,
// with the fields its RFC 5424 parser found, so that a test can check
// what arrived. Start skips the test, saying why, where rsyslogd or its
// RELP input is not installed.
package relptest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sstar-project/sstar/audit/relp"
	sslog "github.com/sstar-project/sstar/audit/syslog"
	"github.com/sstar-project/sstar/internal/testcert"
	"github.com/sstar-project/sstar/internal/testproc"
)

// Options say how the server listens: RELP on a TCP port of 127.0.0.1.
type Options struct {
	TLS bool // RELP over TLS, with a certificate from a CA made for the test (CAFile)
	// Syslog adds a plain syslog input (imtcp) on another port
	// (SyslogPort), so that one server can take both for a comparison.
	Syslog bool
	// Forward, if not "", is an omrelp action (docs/sinks.md shows
	// one) that this server runs on every message after writing it,
	// as a host of a fleet does to forward to a central server.
	Forward string
}

// A Server is a running rsyslogd with an imrelp input.
type Server struct {
	Dir    string // its work directory
	Port   int
	CAFile string // if TLS: the CA that signed the server's certificate
	TLS    bool
	// Forward is the forwarding action, if Options.Forward.
	Forward string
	// ClientCert and ClientKey are, if TLS, a client certificate the
	// server accepts (signed by the same CA) and its key.
	ClientCert, ClientKey string
	// SyslogPort is the plain syslog TCP input, if Options.Syslog.
	SyslogPort int

	t   testing.TB
	out string
	d   *testproc.Daemon
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

func haveModule(name string) bool {
	m, _ := filepath.Glob("/usr/lib/*/rsyslog/" + name)
	m2, _ := filepath.Glob("/usr/lib/rsyslog/" + name)
	return len(m)+len(m2) > 0
}

// Start starts rsyslogd and waits until it listens. It is killed when
// the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("needs rsyslogd (Debian package rsyslog; .ci/deps installs it)")
	}
	if !haveModule("imrelp.so") {
		t.Skip("needs rsyslog's RELP input imrelp (Debian package rsyslog-relp; .ci/deps installs it)")
	}
	dir, err := os.MkdirTemp("", "relptest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &Server{Dir: dir, t: t, out: filepath.Join(dir, "messages"), TLS: o.TLS, Port: freePort(t), Forward: o.Forward}
	if o.Syslog {
		s.SyslogPort = freePort(t)
	}
	if o.TLS {
		s.makeCerts()
	}
	s.start(bin)
	return s
}

// Restart starts the server again after Stop or Kill, on the same port,
// appending to the same output.
func (s *Server) Restart() {
	s.t.Helper()
	s.start(Binary())
}

// Config is the rsyslog configuration of a server on port, keeping every
// message in out; with TLS, the certificate files in dir; with a
// syslogPort, a plain syslog TCP input too; with forward, that action
// (omrelp's, to a central server) after the file's. docs/sinks.md shows
// the same configuration.
func Config(dir string, port int, out string, tls bool, syslogPort int, forward string) string {
	var conf strings.Builder
	fmt.Fprintf(&conf, "global(workDirectory=%q maxMessageSize=\"128k\" net.enableDNS=\"off\")\n", dir)
	conf.WriteString("module(load=\"imrelp\")\n")
	fmt.Fprintf(&conf, "input(type=\"imrelp\" address=\"127.0.0.1\" port=\"%d\" maxDataSize=\"128k\" oversizeMode=\"abort\" ruleset=\"out\"", port)
	if tls {
		// librelp's TLS with certificates always asks the client for
		// one; certvalid accepts any the CA signed.
		fmt.Fprintf(&conf, " tls=\"on\" tls.authMode=\"certvalid\" tls.caCert=%q tls.myCert=%q tls.myPrivKey=%q",
			filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"))
	}
	conf.WriteString(")\n")
	if forward != "" {
		conf.WriteString("module(load=\"omrelp\")\n")
	}
	if syslogPort != 0 {
		conf.WriteString("module(load=\"imtcp\")\n")
		fmt.Fprintf(&conf, "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"%d\" ruleset=\"out\")\n", syslogPort)
	}
	conf.WriteString("template(name=\"fields\" type=\"string\" string=\"%syslogfacility%\\t%syslogseverity%\\t%hostname%\\t%app-name%\\t%procid%\\t%msgid%\\t%structured-data%\\t%msg%\\n\")\n")
	// A direct queue: imrelp acknowledges a message only after omfile
	// wrote it, so that an acknowledged record survives rsyslogd's kill.
	fmt.Fprintf(&conf, "ruleset(name=\"out\" queue.type=\"Direct\") {\n  action(type=\"omfile\" file=%q template=\"fields\")\n", out)
	conf.WriteString(forward)
	conf.WriteString("}\n")
	return conf.String()
}

func (s *Server) start(bin string) {
	t := s.t
	t.Helper()
	confPath := filepath.Join(s.Dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(Config(s.Dir, s.Port, s.out, s.TLS, s.SyslogPort, s.Forward)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-n", "-f", confPath, "-i", filepath.Join(s.Dir, "rsyslogd.pid"))
	d, err := testproc.Start("rsyslogd", cmd, filepath.Join(s.Dir, "rsyslogd.out"))
	if err != nil {
		t.Fatal(err)
	}
	s.d = d
	t.Cleanup(s.Kill)
	// Ready is when every input accepts a connection.
	if err := d.WaitReady("start listening", func() bool {
		return listens(s.Port) && (s.SyslogPort == 0 || listens(s.SyslogPort))
	}); err != nil {
		t.Fatal(err)
	}
}

// Addr returns the sink address: tcp://127.0.0.1:PORT, or tls://.
func (s *Server) Addr() string {
	scheme := "tcp"
	if s.TLS {
		scheme = "tls"
	}
	return fmt.Sprintf("%s://127.0.0.1:%d", scheme, s.Port)
}

// Output returns what rsyslogd itself printed.
func (s *Server) Output() string { return s.d.Output() }

// Stop stops rsyslogd gracefully (SIGTERM), which writes out everything
// it received, and waits for it to exit.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill kills rsyslogd (SIGKILL) and waits for it to exit.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) { s.d.Signal(sig) }

// Pause stops rsyslogd (SIGSTOP) and waits until every thread of it is
// stopped.
func (s *Server) Pause() {
	s.t.Helper()
	syscall.Kill(s.Pid(), syscall.SIGSTOP)
	deadline := time.Now().Add(10 * time.Second)
	for !allStopped(s.Pid()) {
		if time.Now().After(deadline) {
			s.t.Fatal("rsyslogd did not stop within 10s of SIGSTOP")
		}
		time.Sleep(time.Millisecond)
	}
}

// Continue lets a paused rsyslogd go on (SIGCONT).
func (s *Server) Continue() { syscall.Kill(s.Pid(), syscall.SIGCONT) }

func allStopped(pid int) bool {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue // the thread has gone
		}
		// The state follows the command name, which is in parentheses.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
			return false
		}
	}
	return len(tasks) > 0
}

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
	f, err := os.Open(s.out)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	defer f.Close()
	var out []Message
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.SplitN(line, "\t", 8)
		if len(fields) != 8 {
			s.t.Fatalf("rsyslogd wrote a line with %d fields: %q", len(fields), line)
		}
		m := Message{Hostname: fields[2], App: fields[3], ProcID: fields[4], MsgID: fields[5], StructuredData: fields[6], Text: fields[7]}
		m.Facility, _ = strconv.Atoi(fields[0])
		m.Severity, _ = strconv.Atoi(fields[1])
		sd, err := sslog.ParseStructuredData(m.StructuredData)
		if err != nil {
			s.t.Fatalf("rsyslogd received structured data that does not parse: %v: %q", err, line)
		}
		m.Params = sd[sslog.SDID]
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		s.t.Fatal(err)
	}
	return out
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

func listens(port int) bool {
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// makeCerts makes a CA, and a server and a client certificate signed
// by it, in the server's directory.
func (s *Server) makeCerts() {
	testcert.Write(s.t, s.Dir)
	s.CAFile = filepath.Join(s.Dir, testcert.CA)
	s.ClientCert, s.ClientKey = filepath.Join(s.Dir, testcert.ClientCert), filepath.Join(s.Dir, testcert.ClientKey)
}

// A Scripted server speaks RELP on loopback and answers each syslog
// command with what Answer returns for it (the n-th, from 1, and its
// message): "200 OK", or a negative reply such as "500 queue full".
type Scripted struct {
	Answer func(n int, msg []byte) string

	l        net.Listener
	mu       sync.Mutex
	n        int
	Received [][]byte // every syslog message, in order
}

// StartScripted starts a Scripted server; it stops when the test ends.
func StartScripted(t testing.TB, answer func(n int, msg []byte) string) *Scripted {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Scripted{Answer: answer, l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

// Addr returns the sink address, tcp://127.0.0.1:PORT.
func (s *Scripted) Addr() string { return "tcp://" + s.l.Addr().String() }

// Messages returns the syslog messages received so far.
func (s *Scripted) Messages() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.Received...)
}

func (s *Scripted) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		f, err := relp.ReadFrame(r, 1<<20)
		if err != nil {
			return
		}
		var answer string
		switch f.Command {
		case "open":
			answer = "200 OK\nrelp_version=0\nrelp_software=relptest\ncommands=syslog"
		case "syslog":
			s.mu.Lock()
			s.n++
			n := s.n
			s.Received = append(s.Received, f.Data)
			s.mu.Unlock()
			answer = s.Answer(n, f.Data)
		case "close":
			c.Write(relp.AppendFrame(nil, relp.Frame{Txnr: f.Txnr, Command: "rsp", Data: []byte("200 OK")}))
			c.Write(relp.AppendFrame(nil, relp.Frame{Command: "serverclose"}))
			return
		default:
			answer = "500 unknown command"
		}
		if _, err := c.Write(relp.AppendFrame(nil, relp.Frame{Txnr: f.Txnr, Command: "rsp", Data: []byte(answer)})); err != nil {
			return
		}
	}
}
