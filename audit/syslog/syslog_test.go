package syslog_test

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/record"
	sslog "github.com/sstar-project/sstar/audit/syslog"
	"github.com/sstar-project/sstar/internal/journaldtest"
	"github.com/sstar-project/sstar/internal/render"
	"github.com/sstar-project/sstar/internal/rsyslogtest"
)

// dial connects a sink as the only one of a run's fan-out, as sstar does:
// Hook sends an event, Close ends the run.
func dial(opts sslog.Options) (*record.Fanout, error) {
	s, err := sslog.Dial(opts)
	if err != nil {
		return nil, err
	}
	f := new(record.Fanout)
	if err := f.Add(s); err != nil {
		return nil, err
	}
	return f, nil
}

const (
	authpriv = 10
	crit     = 2
	errSev   = 3
	info     = 6
)

// events returns n events whose arguments exercise the escaping of
// structured data and the rendering of values.
func events(n int) []audit.Event {
	huge, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	d := starlark.NewDict(2)
	d.SetKey(starlark.MakeInt(1), starlark.String("one"))
	d.SetKey(starlark.Tuple{starlark.True}, starlark.None)
	kinds := []audit.Event{
		audit.NewEvent("open", starlark.String("/etc/hosts"), starlark.String("r"), starlark.MakeInt(0)),
		audit.NewEvent("sstar.code_integrity_failure", starlark.String("/x/evil.star"), starlark.String("no stamp")),
		audit.NewEvent("sstar.abort", starlark.String("app.x"), starlark.String(`"quoted" \back\ [bracket] ]`)),
		audit.NewEvent("app.custom event", starlark.MakeBigInt(huge), starlark.Float(0.5), d, starlark.Bytes("\x00\xff"), starlark.String("é\n\t#")),
		audit.NewEvent("subprocess.Popen", starlark.String("/bin/ls"), starlark.NewList([]starlark.Value{starlark.String("ls"), starlark.String("-l")}), starlark.None, starlark.Tuple{}),
	}
	out := make([]audit.Event, n)
	for i := range out {
		k := kinds[i%len(kinds)]
		out[i] = audit.NewEvent(k.Name, append(starlark.Tuple{starlark.MakeInt(i)}, k.Args()...)...)
	}
	return out
}

func wantSeverity(name string) int {
	switch name {
	case "sstar.code_integrity_failure":
		return crit
	case "sstar.abort":
		return errSev
	}
	return info
}

// checkArrived checks that exactly the events sent arrived, in order,
// each parsed back to the same name and arguments.
func checkArrived(t *testing.T, got []rsyslogtest.Message, sent []audit.Event, run string) {
	t.Helper()
	check(t, got, sent, run, false)
}

// checkArrivedLocal is checkArrived for the local socket's form (RFC
// 3164), which has no MSGID: the event is named in the structured data.
func checkArrivedLocal(t *testing.T, got []rsyslogtest.Message, sent []audit.Event, run string) {
	t.Helper()
	check(t, got, sent, run, true)
}

func check(t *testing.T, got []rsyslogtest.Message, sent []audit.Event, run string, local bool) {
	t.Helper()
	if len(got) != len(sent) {
		t.Fatalf("%d messages arrived, %d sent", len(got), len(sent))
	}
	for i, m := range got {
		ev := sent[i]
		p := m.Params
		if p["seq"] != strconv.Itoa(i+1) || p["run"] != run || p["event"] != ev.Name || p["pid"] != m.ProcID {
			t.Fatalf("message %d: %+v, want seq %d of run %s, event %q", i, p, i+1, run, ev.Name)
		}
		if m.App != "sstar" || m.Facility != authpriv || m.Severity != wantSeverity(ev.Name) {
			t.Fatalf("message %d: app %q facility %d severity %d", i, m.App, m.Facility, m.Severity)
		}
		if want := ev.Name; local || strings.ContainsRune(want, ' ') {
			if m.MsgID != "-" {
				t.Fatalf("message %d: MSGID %q for an event name with a space", i, m.MsgID)
			}
		} else if m.MsgID != want {
			t.Fatalf("message %d: MSGID %q, want %q", i, m.MsgID, want)
		}
		args, err := render.Parse([]byte(p["args"]))
		if err != nil {
			t.Fatalf("message %d: args %q: %v", i, p["args"], err)
		}
		// Parsed and rendered again, the arguments are what was sent, as
		// rendered (a tuple comes back a list: JSON has one kind of array).
		if again, want := render.AppendArgs(nil, args, 0), render.AppendArgs(nil, ev.Args(), 0); string(again) != string(want) {
			t.Fatalf("message %d: args came back as %s, sent %s", i, again, want)
		}
		if !strings.HasPrefix(m.Text, ev.Name+"(") {
			t.Fatalf("message %d: text %q", i, m.Text)
		}
	}
}

func send(t *testing.T, s *record.Fanout, evs []audit.Event) {
	t.Helper()
	for i, ev := range evs {
		if err := s.Hook(ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
}

func TestTCP(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{})
	s, err := dial(sslog.Options{Addr: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	evs := events(2000)
	send(t, s, evs)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	srv.Stop()
	checkArrived(t, srv.Messages(), evs, s.Run())
}

func TestTLS(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{TLS: true})
	if _, err := dial(sslog.Options{Addr: srv.Addr()}); err == nil {
		t.Fatal("connected to a server whose certificate no trusted CA signed")
	}
	s, err := dial(sslog.Options{Addr: srv.Addr(), CAFile: srv.CAFile})
	if err != nil {
		t.Fatalf("%v\n%s", err, srv.Output())
	}
	evs := events(500)
	send(t, s, evs)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	srv.Stop()
	checkArrived(t, srv.Messages(), evs, s.Run())
}

func TestUnixSocket(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{Unix: true})
	s, err := dial(sslog.Options{Addr: "unix://" + srv.Socket})
	if err != nil {
		t.Fatal(err)
	}
	evs := events(100)
	send(t, s, evs)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkArrivedLocal(t, srv.WaitMessages(len(evs), 20*time.Second), evs, s.Run())
}

// UDP confirms nothing; on loopback, a few messages arrive all the same.
func TestUDP(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{UDP: true})
	s, err := dial(sslog.Options{Addr: fmt.Sprintf("udp://127.0.0.1:%d", srv.UDPPort)})
	if err != nil {
		t.Fatal(err)
	}
	evs := events(20)
	send(t, s, evs)
	s.Close()
	checkArrived(t, srv.WaitMessages(len(evs), 20*time.Second), evs, s.Run())
}

func TestBadAddresses(t *testing.T) {
	for _, addr := range []string{"", "localhost:514", "tcp://localhost", "tcp://:514", "tcp://h:0", "tcp://h:99999", "unix://dev/log", "http://h:1", "tcp://h:1/path", "udp://u@h:1"} {
		if _, err := dial(sslog.Options{Addr: addr}); err == nil || !strings.HasPrefix(err.Error(), "syslog "+addr+": ") {
			t.Errorf("Dial(%q) = %v, want an error naming the address", addr, err)
		}
	}
	if _, err := dial(sslog.Options{Addr: "tcp://127.0.0.1:1", CAFile: "ca.pem"}); err == nil || !strings.Contains(err.Error(), "only for tls") {
		t.Errorf("CA file with tcp:// = %v", err)
	}
}

// A server that is not there at the start is an error of Dial: sstar
// exits before running anything.
func TestServerDownAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	l.Close()
	_, err = dial(sslog.Options{Addr: addr})
	if err == nil || !strings.Contains(err.Error(), "cannot connect") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Dial to a closed port = %v", err)
	}
}

// A server killed mid-run is noticed: the sink fails closed at the next
// event it sends after the kernel learnt of it, and every later event is
// refused.
func TestServerKilled(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{})
	s, err := dial(sslog.Options{Addr: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	evs := events(10050)
	send(t, s, evs[:50])
	srv.Kill()
	failedAt := -1
	for i, ev := range evs[50:] {
		if err := s.Hook(ev); err != nil {
			if !errors.Is(err, audit.ErrNotRecorded) {
				t.Fatalf("error does not wrap ErrNotRecorded: %v", err)
			}
			t.Logf("failed at event %d: %v", 50+i, err)
			failedAt = i
			break
		}
	}
	// Usually the very next event fails; the kernel may take a moment to
	// deliver the reset, which is why this is not exact.
	if failedAt < 0 {
		t.Fatal("10000 events went to a killed server without an error")
	}
	if err := s.Hook(evs[0]); err == nil {
		t.Error("a failed sink accepted a later event")
	}
	if err := s.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
}

// A server that closed the connection cleanly (a restart) read everything:
// the sink reconnects once and sends the pending event again, and nothing
// is lost.
func TestReconnectAfterRestart(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{})
	s, err := dial(sslog.Options{Addr: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	evs := events(40)
	send(t, s, evs[:20])
	srv.WaitMessages(20, 20*time.Second)
	srv.Stop()
	srv.Restart()
	send(t, s, evs[20:])
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	srv.Stop()
	checkArrived(t, srv.Messages(), evs, s.Run())
}

// A server that stops reading slows the sender down; one that does not
// read for longer than WriteTimeout fails the sink closed.
func TestStuckServer(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{})
	s, err := dial(sslog.Options{Addr: srv.Addr(), WriteTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(srv.Pid(), syscall.SIGSTOP)
	defer syscall.Kill(srv.Pid(), syscall.SIGCONT)
	big := audit.NewEvent("big", starlark.String(strings.Repeat("x", 60<<10)))
	for i := 0; i < 10000; i++ {
		if err := s.Hook(big); err != nil {
			if !errors.Is(err, audit.ErrNotRecorded) || !strings.Contains(err.Error(), "took more than") {
				t.Fatalf("error: %v", err)
			}
			return
		}
	}
	t.Fatal("600 MB went to a stopped server without an error")
}

func TestParseStructuredData(t *testing.T) {
	got, err := sslog.ParseStructuredData(`[a@1 x="1" y="q\"b\\s\]"][b z=""]`)
	if err != nil {
		t.Fatal(err)
	}
	if got["a@1"]["x"] != "1" || got["a@1"]["y"] != `q"b\s]` || got["b"]["z"] != "" || len(got) != 2 {
		t.Errorf("got %v", got)
	}
	if m, err := sslog.ParseStructuredData("-"); err != nil || len(m) != 0 {
		t.Errorf(`"-" = %v, %v`, m, err)
	}
	for _, bad := range []string{"", "[", "[a", `[a x="1"`, `[a x=1]`, `[a x="]"]`, `[a x="1" x="2"]`, `[a][a]`, `x`, `[a x="1"]junk`} {
		if m, err := sslog.ParseStructuredData(bad); err == nil {
			t.Errorf("ParseStructuredData(%q) = %v, want an error", bad, m)
		}
	}
}

func FuzzParseStructuredData(f *testing.F) {
	f.Add(`[sstar@32473 event="open" args="[\"a\\\"b\]\"]"]`)
	f.Add(`[a x="1"][b]`)
	f.Fuzz(func(t *testing.T, sd string) {
		m, err := sslog.ParseStructuredData(sd)
		if err != nil {
			return
		}
		for id, params := range m {
			if id == "" {
				t.Fatal("empty SD-ID")
			}
			for name := range params {
				if name == "" {
					t.Fatal("empty name")
				}
			}
		}
	})
}

// BenchmarkSyslogTCP measures events per second to a real rsyslogd over
// TCP, and checks that every one arrived.
func BenchmarkSyslogTCP(b *testing.B) {
	srv := rsyslogtest.Start(b, rsyslogtest.Options{})
	ev := audit.NewEvent("open", starlark.String("/etc/hosts"), starlark.String("r"), starlark.MakeInt(0))
	s, err := dial(sslog.Options{Addr: srv.Addr()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Hook(ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := 0
		for _, m := range srv.Messages() {
			if m.Params["run"] == s.Run() {
				n++
			}
		}
		if n == b.N {
			break
		}
		if n > b.N || time.Now().After(deadline) {
			b.Fatalf("%d events sent, %d arrived", b.N, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// panicky is a value whose String method panics, as a buggy value type of
// an embedding program's might.
type panicky struct{ starlark.Tuple }

func (panicky) String() string { panic("String of a buggy value") }
func (panicky) Type() string   { return "panicky" }

// The dispatcher does not recover a hook's panic, so the run's fan-out
// does: an event it could not render is not delivered, and the run fails
// closed.
func TestPanicWhileSendingFailsClosed(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{})
	s, err := dial(sslog.Options{Addr: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := audit.NewEvent("open", starlark.String("/etc/hosts"), starlark.String("r"), starlark.MakeInt(0))
	if err := s.Hook(first); err != nil {
		t.Fatal(err)
	}
	err = s.Hook(audit.NewEvent("app.bad", panicky{}))
	if !errors.Is(err, audit.ErrNotRecorded) || !strings.Contains(err.Error(), "String of a buggy value") {
		t.Fatalf("Hook of an event that panics = %v, want ErrNotRecorded with the panic", err)
	}
	if err := s.Hook(first); !errors.Is(err, audit.ErrNotRecorded) {
		t.Fatalf("a failed sink sent a later event: %v", err)
	}
}

// The largest record the default bound allows, every byte of it needing
// escape, still makes a message within rsyslog's default maxMessageSize
// (8 KiB), and MessageSize says so.
func TestMessageSizeAtTheDefaultBound(t *testing.T) {
	if n := sslog.MessageSize(record.DefaultMaxRecord); n > 8192 {
		t.Fatalf("MessageSize(%d) = %d, over rsyslog's default 8192", record.DefaultMaxRecord, n)
	}
	srv := rsyslogtest.Start(t, rsyslogtest.Options{MaxMessageSize: "8k"}) // rsyslog's default
	f, err := dial(sslog.Options{Addr: srv.Addr(), Hostname: strings.Repeat("h", 255)})
	if err != nil {
		t.Fatal(err)
	}
	name := "app." + strings.Repeat("n", 124)
	worst := starlark.String(strings.Repeat(`"]\`, 4000))
	for _, ev := range []audit.Event{audit.NewEvent(name, worst), audit.NewEvent(name, starlark.String(strings.Repeat(`"`, 1700)), starlark.String(strings.Repeat(`\`, 1700)))} {
		if err := f.Hook(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ms := srv.WaitMessages(2, 10*time.Second)
	if len(ms) != 2 {
		t.Fatalf("%d messages arrived, 2 sent; rsyslogd said: %s", len(ms), srv.Output())
	}
	if n := len(ms[1].Params["args"]); n < 3300 {
		t.Fatalf("the second message's args are %d bytes: not near the bound", n)
	}
	for i, m := range ms {
		args, err := render.Parse([]byte(m.Params["args"]))
		if m.Params["event"] != name || m.Params["seq"] != strconv.Itoa(i+1) || err != nil || len(args) == 0 {
			t.Errorf("message %d cut or split: %v: %.300q", i, err, m.Params)
		}
	}
}

// What goes on the wire: over a stream, RFC 5424 with octet counting and
// the BOM that says MSG is UTF-8 (section 6.4); to a local socket, the
// form syslog(3) writes (RFC 3164), which journald and rsyslog's imuxsock
// parse at their defaults, with the structured data at the start of MSG.
func TestWireFormat(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		n, _ := io.ReadAtLeast(c, buf, 1)
		got <- string(buf[:n])
	}()
	f, err := dial(sslog.Options{Addr: "tcp://" + ln.Addr().String(), Hostname: "h"})
	if err != nil {
		t.Fatal(err)
	}
	f.Hook(audit.NewEvent("open", starlark.String("/etc/hosts"), starlark.String("r"), starlark.MakeInt(0)))
	frame := <-got
	f.Close()
	re := regexp.MustCompile(`^\d+ <86>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z h sstar \d+ open \[sstar@32473 event="open" seq="1" run="[0-9a-f]{32}" pid="\d+" args="\[\\"/etc/hosts\\",\\"r\\",0\\]"\] \x{FEFF}open\("/etc/hosts","r",0\)$`)
	if !re.MatchString(frame) {
		t.Errorf("TCP frame %q", frame)
	}

	sock := filepath.Join(t.TempDir(), "log.sock")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	f, err = dial(sslog.Options{Addr: "unix://" + sock})
	if err != nil {
		t.Fatal(err)
	}
	f.Hook(audit.NewEvent("app.x", starlark.MakeInt(1)))
	buf := make([]byte, 4096)
	n, err := pc.Read(buf)
	f.Close()
	re = regexp.MustCompile(`^<86>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d sstar\[\d+\]: \[sstar@32473 event="app.x" seq="1" run="[0-9a-f]{32}" pid="\d+" args="\[1\\]"\] app.x\(1\)$`)
	if err != nil || !re.Match(buf[:n]) {
		t.Errorf("local datagram %q (%v)", buf[:n], err)
	}
}

// recorder keeps a copy of every record, as the JSON Lines log would.
type recorder struct{ recs []record.Record }

func (r *recorder) Write(rec *record.Record) error {
	c := *rec
	c.Args = append([]byte(nil), rec.Args...)
	r.recs = append(r.recs, c)
	return nil
}
func (r *recorder) Close() error { return nil }

// nasty is a corpus of arguments that have broken receivers: brackets,
// quotes, backslashes, control characters, NUL, invalid UTF-8, a BOM,
// 10 KiB and 10 MiB strings, deep and cyclic values, huge ints.
func nasty() []audit.Event {
	cyclic := starlark.NewList(nil)
	cyclic.Append(cyclic)
	deep := starlark.Value(starlark.None)
	for range 100 {
		deep = starlark.NewList([]starlark.Value{deep})
	}
	huge := new(big.Int).Lsh(big.NewInt(1), 1<<20)
	strs := []string{`]`, `"`, `\`, `"]\`, "\x00", "\x1b[31mred\x1b[0m", "\r\n<86>1 forged", "\xff\xfe", "\xEF\xBB\xBF", "é中\U0001F600",
		strings.Repeat("x", 10<<10), strings.Repeat(`"]`, 5<<10), strings.Repeat("y", 10<<20)}
	var evs []audit.Event
	for _, s := range strs {
		evs = append(evs, audit.NewEvent("app.nasty", starlark.String(s), starlark.Bytes(s)))
	}
	evs = append(evs,
		audit.NewEvent("app.nasty", cyclic, deep),
		audit.NewEvent("app.nasty", starlark.MakeBigInt(huge), starlark.MakeBigInt(new(big.Int).Neg(huge))),
		audit.NewEvent("app.nasty", starlark.Float(math.NaN()), starlark.Float(math.Inf(-1))),
	)
	return evs
}

// The corpus arrives over every transport, one message per record, and
// each message's args are the record's exactly (the same bytes the JSON
// Lines log holds), bounded records and markers included.
func TestNastyCorpus(t *testing.T) {
	srv := rsyslogtest.Start(t, rsyslogtest.Options{UDP: true, Unix: true, MaxMessageSize: "8k"})
	for _, addr := range []string{srv.Addr(), fmt.Sprintf("udp://127.0.0.1:%d", srv.UDPPort), "unix://" + srv.Socket} {
		before := len(srv.Messages())
		s, err := sslog.Dial(sslog.Options{Addr: addr})
		if err != nil {
			t.Fatal(err)
		}
		rec := new(recorder)
		f := new(record.Fanout)
		f.Add(rec)
		f.Add(s)
		evs := nasty()
		for _, ev := range evs {
			if err := f.Hook(ev); err != nil {
				t.Fatalf("%s: %v", addr, err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		got := srv.WaitMessages(before+len(evs), 20*time.Second)[before:]
		if len(got) != len(evs) {
			t.Fatalf("%s: %d messages arrived, %d sent", addr, len(got), len(evs))
		}
		for i, m := range got {
			r := rec.recs[i]
			if m.Params["args"] != string(r.Args) || m.Params["seq"] != strconv.FormatUint(r.Seq, 10) {
				t.Errorf("%s: message %d: args %.200q, record %.200q", addr, i, m.Params["args"], r.Args)
			}
			if _, err := render.Parse([]byte(m.Params["args"])); err != nil {
				t.Errorf("%s: message %d: args do not parse: %v", addr, i, err)
			}
		}
	}
}

// journald reads the local form on its /dev/log socket: the identifier
// is sstar (journalctl -t sstar finds the events), the pid is sstar's,
// and MESSAGE carries the structured data and the text.
func TestJournaldDevLog(t *testing.T) {
	j := journaldtest.Start(t)
	sock := filepath.Join(j.Dir, "run/systemd/journal/dev-log")
	deadline := time.Now().Add(20 * time.Second)
	for _, err := os.Stat(sock); err != nil; _, err = os.Stat(sock) {
		if time.Now().After(deadline) {
			t.Fatalf("journald made no dev-log socket: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	f, err := dial(sslog.Options{Addr: "unix://" + sock})
	if err != nil {
		t.Fatal(err)
	}
	evs := events(20)
	send(t, f, evs)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	entries := j.WaitEntries(len(evs), 20*time.Second, "SYSLOG_IDENTIFIER=sstar")
	if len(entries) != len(evs) {
		t.Fatalf("journalctl -t sstar: %d entries, %d sent", len(entries), len(evs))
	}
	for i, e := range entries {
		msg, _ := journaldtest.Field(e, "MESSAGE")
		pid, _ := journaldtest.Field(e, "SYSLOG_PID")
		end := 0
		for end < len(msg) && msg[end] != ']' { // the first ']' not escaped
			if msg[end] == '\\' {
				end++
			}
			end++
		}
		sd, err := sslog.ParseStructuredData(msg[:min(end+1, len(msg))])
		if err != nil || pid != strconv.Itoa(os.Getpid()) || sd[sslog.SDID]["seq"] != strconv.Itoa(i+1) || sd[sslog.SDID]["event"] != evs[i].Name {
			t.Fatalf("entry %d: MESSAGE %.200q, SYSLOG_PID %s: %v", i, msg, pid, err)
		}
	}
}
