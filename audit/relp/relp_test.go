package relp_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.starlark.net/starlark"
	"golang.org/x/sys/unix"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/record"
	"github.com/sstar-project/sstar/audit/relp"
	sslog "github.com/sstar-project/sstar/audit/syslog"
	"github.com/sstar-project/sstar/internal/docblock"
	"github.com/sstar-project/sstar/internal/relptest"
	"github.com/sstar-project/sstar/internal/render"
)

// dial connects a sink as the only one of a run's fan-out, as sstar does:
// Hook sends an event, Close ends the run.
func dial(opts relp.Options) (*record.Fanout, *relp.Sink, error) {
	s, err := relp.Dial(opts)
	if err != nil {
		return nil, nil, err
	}
	f := new(record.Fanout)
	if err := f.Add(s); err != nil {
		return nil, nil, err
	}
	return f, s, nil
}

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

// checkArrived checks that exactly the events sent arrived, in order,
// each parsed back to the same name and arguments.
func checkArrived(t *testing.T, got []relptest.Message, sent []audit.Event, run string) {
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
		if m.App != "sstar" || m.Facility != 10 {
			t.Fatalf("message %d: app %q facility %d", i, m.App, m.Facility)
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
	}
}

func send(t *testing.T, f *record.Fanout, evs []audit.Event) {
	t.Helper()
	for i, ev := range evs {
		if err := f.Hook(ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
}

func TestPlain(t *testing.T) {
	srv := relptest.Start(t, relptest.Options{})
	f, _, err := dial(relp.Options{Addr: srv.Addr()})
	if err != nil {
		t.Fatalf("%v\n%s", err, srv.Output())
	}
	evs := events(2000)
	send(t, f, evs)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// Every record was acknowledged: it is in rsyslog's queue, and
	// written out at the latest when rsyslogd stops.
	srv.Stop()
	checkArrived(t, srv.Messages(), evs, f.Run())
}

func TestTLS(t *testing.T) {
	srv := relptest.Start(t, relptest.Options{TLS: true})
	if _, _, err := dial(relp.Options{Addr: srv.Addr(), DialTimeout: 5 * time.Second}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("connected to a server whose certificate no trusted CA signed: %v", err)
	}
	if _, _, err := dial(relp.Options{Addr: srv.Addr(), CAFile: srv.CAFile}); err == nil {
		t.Fatal("a server that wants a client certificate opened a session without one")
	}
	f, _, err := dial(relp.Options{Addr: srv.Addr(), CAFile: srv.CAFile, CertFile: srv.ClientCert, KeyFile: srv.ClientKey})
	if err != nil {
		t.Fatalf("%v\n%s", err, srv.Output())
	}
	evs := events(500)
	send(t, f, evs)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	checkArrived(t, srv.Messages(), evs, f.Run())
}

// A server killed mid-run: the very next event is not acknowledged, the
// one reconnect finds nobody, and the sink fails closed. Every event
// acknowledged before the kill is in the server's file.
func TestServerKilled(t *testing.T) {
	srv := relptest.Start(t, relptest.Options{})
	f, _, err := dial(relp.Options{Addr: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	evs := events(60)
	send(t, f, evs[:50])
	srv.Kill()
	err = f.Hook(evs[50])
	if !errors.Is(err, audit.ErrNotRecorded) || !strings.Contains(err.Error(), "reconnecting") {
		t.Fatalf("the first event after the kill = %v, want not recorded after a failed reconnect", err)
	}
	t.Logf("%v", err)
	if err := f.Hook(evs[51]); err == nil {
		t.Fatal("a failed sink took a later event")
	}
	f.Close()
	// The server writes before it acknowledges (a direct queue), so
	// what was acknowledged survived the kill.
	checkArrived(t, srv.Messages(), evs[:50], f.Run())
}

// A server that shuts down cleanly (a restart) sends serverclose: the
// sink opens a new session and sends the record again, and nothing is
// lost.
func TestServerRestart(t *testing.T) {
	srv := relptest.Start(t, relptest.Options{})
	f, s, err := dial(relp.Options{Addr: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	evs := events(40)
	send(t, f, evs[:20])
	srv.Stop()
	srv.Restart()
	send(t, f, evs[20:])
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if s.Reconnects() != 1 {
		t.Errorf("%d reconnects, want 1", s.Reconnects())
	}
	checkArrived(t, srv.Messages(), evs, f.Run())
}

// A stopped server (SIGSTOP) holds the script up: the event waits for
// its acknowledgement, and once the server goes on, everything arrives,
// once.
func TestServerStopped(t *testing.T) {
	srv := relptest.Start(t, relptest.Options{})
	f, s, err := dial(relp.Options{Addr: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	evs := events(30)
	send(t, f, evs[:10])
	srv.Pause()
	stopped := true
	defer func() {
		if stopped {
			srv.Continue()
		}
	}()
	done := make(chan error, 1)
	go func() {
		for _, ev := range evs[10:] {
			if err := f.Hook(ev); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		t.Fatalf("events went through while the server was stopped: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	srv.Continue()
	stopped = false
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if s.Reconnects() != 0 {
		t.Errorf("%d reconnects, want 0", s.Reconnects())
	}
	checkArrived(t, srv.Messages(), evs, f.Run())
}

// A server stopped for longer than AckTimeout: the record counts as not
// recorded, the reconnect gets no session either, and the sink fails
// closed.
func TestServerStoppedTooLong(t *testing.T) {
	srv := relptest.Start(t, relptest.Options{})
	f, _, err := dial(relp.Options{Addr: srv.Addr(), AckTimeout: 300 * time.Millisecond, DialTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	send(t, f, events(5))
	srv.Pause()
	defer srv.Continue()
	start := time.Now()
	err = f.Hook(events(1)[0])
	if !errors.Is(err, audit.ErrNotRecorded) || !strings.Contains(err.Error(), "no answer in time") {
		t.Fatalf("Hook to a stopped server = %v", err)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 10*time.Second {
		t.Errorf("failed after %v, want AckTimeout plus DialTimeout", d)
	}
}

// A negative reply is not an acknowledgement: the sink sends the record
// again on a new session, and fails closed if the answer is the same.
func TestNegativeReply(t *testing.T) {
	srv := relptest.StartScripted(t, func(n int, _ []byte) string {
		if n >= 3 {
			return "500 queue full"
		}
		return "200 OK"
	})
	f, s, err := dial(relp.Options{Addr: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	evs := events(4)
	send(t, f, evs[:2])
	err = f.Hook(evs[2])
	var re *relp.ResponseError
	if !errors.Is(err, audit.ErrNotRecorded) || !errors.As(errors.Unwrap(err), &re) && !strings.Contains(err.Error(), "500 queue full") {
		t.Fatalf("Hook answered 500 = %v", err)
	}
	if s.Reconnects() != 1 || len(srv.Messages()) != 4 {
		t.Errorf("%d reconnects, %d messages: want the third sent twice", s.Reconnects(), len(srv.Messages()))
	}
	if err := f.Hook(evs[3]); err == nil {
		t.Fatal("a failed sink took a later event")
	}
	f.Close()
}

// A negative reply once: the record is sent again and acknowledged; the
// server has it twice, with the same run and seq, and a receiver drops
// the copy by (run, seq).
func TestNegativeReplyOnceDuplicates(t *testing.T) {
	srv := relptest.StartScripted(t, func(n int, _ []byte) string {
		if n == 3 {
			return "500 try again"
		}
		return "200 OK"
	})
	f, _, err := dial(relp.Options{Addr: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := f.Hook(audit.NewEvent("open", starlark.String(fmt.Sprintf("/tmp/%d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	msgs := srv.Messages()
	if len(msgs) != 6 || !bytes.Equal(msgs[2], msgs[3]) {
		t.Fatalf("%d messages; want 6, the third twice", len(msgs))
	}
	seen := map[string]bool{}
	var kept []string
	for _, m := range msgs {
		sd := m[bytes.IndexByte(m, '['):]
		sd = sd[:bytes.Index(sd, []byte("] "))+1]
		p, err := sslog.ParseStructuredData(string(sd))
		if err != nil {
			t.Fatal(err)
		}
		key := p[sslog.SDID]["run"] + "/" + p[sslog.SDID]["seq"]
		if !seen[key] {
			seen[key] = true
			kept = append(kept, p[sslog.SDID]["seq"])
		}
	}
	if strings.Join(kept, ",") != "1,2,3,4,5" {
		t.Errorf("after dropping duplicates: %v", kept)
	}
}

func TestBadAddresses(t *testing.T) {
	for _, addr := range []string{"", "localhost:2514", "udp://h:1", "unix:///dev/log", "tcp://localhost", "tcp://:1", "tcp://h:0", "tcp://h:99999", "tcp://h:1/path", "tls://u@h:1"} {
		if _, err := relp.Dial(relp.Options{Addr: addr}); err == nil || !strings.HasPrefix(err.Error(), "relp "+addr+": ") {
			t.Errorf("Dial(%q) = %v, want an error naming the address", addr, err)
		}
	}
	if _, err := relp.Dial(relp.Options{Addr: "tcp://127.0.0.1:1", CAFile: "ca.pem"}); err == nil || !strings.Contains(err.Error(), "only for tls") {
		t.Errorf("CA file with tcp:// = %v", err)
	}
}

func TestServerDownAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + l.Addr().String()
	l.Close()
	_, err = relp.Dial(relp.Options{Addr: addr})
	if err == nil || !strings.Contains(err.Error(), "cannot open a session") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Dial to a closed port = %v", err)
	}
}

// A record larger than the server takes fails closed before it is sent.
func TestTooLarge(t *testing.T) {
	srv := relptest.StartScripted(t, func(int, []byte) string { return "200 OK" })
	f, _, err := dial(relp.Options{Addr: srv.Addr(), MaxMessage: 1000})
	if err != nil {
		t.Fatal(err)
	}
	err = f.Hook(audit.NewEvent("big", starlark.String(strings.Repeat("x", 2000))))
	if !errors.Is(err, audit.ErrNotRecorded) || !strings.Contains(err.Error(), "maxDataSize") {
		t.Fatalf("Hook of a too large record = %v", err)
	}
	if len(srv.Messages()) != 0 {
		t.Error("a too large record was sent")
	}
}

func TestReadFrame(t *testing.T) {
	open := "200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"
	in := fmt.Sprintf("1 rsp %d %s\n", len(open), open) +
		"2 rsp 6 200 OK\n0 serverclose 0\n0 serverclose 0 \n3 rsp 0\n"
	r := bufio.NewReader(strings.NewReader(in))
	var got []string
	for {
		f, err := relp.ReadFrame(r, 1000)
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatal(err)
			}
			break
		}
		got = append(got, fmt.Sprintf("%d %s %q", f.Txnr, f.Command, f.Data))
	}
	want := []string{
		`1 rsp "200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"`,
		`2 rsp "200 OK"`, `0 serverclose ""`, `0 serverclose ""`, `3 rsp ""`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rsp, err := relp.ParseResponse([]byte("200 OK\nrelp_version=0\ncommands=syslog"))
	if err != nil || !rsp.OK() || rsp.Text != "OK" {
		t.Fatalf("ParseResponse = %+v, %v", rsp, err)
	}
	offers, err := relp.Offers(rsp.Data)
	if err != nil || offers["relp_version"][0] != "0" || offers["commands"][0] != "syslog" {
		t.Fatalf("Offers = %v, %v", offers, err)
	}
	for _, bad := range []string{"x rsp 0\n", "1  rsp 0\n", "1 r5p 0\n", "1 rsp 3 abc", "1 rsp 3 abcd", "1 rsp 1\n", "1234567890 rsp 0\n", "1 rsp 2000 \n", "1 " + strings.Repeat("a", 33) + " 0\n", "1 rsp 0 x\n"} {
		if f, err := relp.ReadFrame(bufio.NewReader(strings.NewReader(bad)), 1000); err == nil {
			t.Errorf("ReadFrame(%q) = %+v, want an error", bad, f)
		}
	}
	for _, bad := range []string{"", "20", "abc OK", "200OK"} {
		if r, err := relp.ParseResponse([]byte(bad)); err == nil {
			t.Errorf("ParseResponse(%q) = %+v, want an error", bad, r)
		}
	}
}

// FuzzReadFrame feeds what a server might send to the client's parsers:
// frames, then responses and offers. Whatever parses re-encodes to the
// same bytes.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("1 rsp 89 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog\n"))
	f.Add([]byte("2 rsp 6 200 OK\n0 serverclose 0\n"))
	f.Add([]byte("3 rsp 20 500 command disabled\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(bytes.NewReader(in))
		for {
			fr, err := relp.ReadFrame(r, 1<<16)
			if err != nil {
				return
			}
			if fr.Txnr < 0 || fr.Txnr > relp.MaxTxnr || fr.Command == "" || len(fr.Command) > 32 {
				t.Fatalf("bad frame %+v", fr)
			}
			back, err := relp.ReadFrame(bufio.NewReader(bytes.NewReader(relp.AppendFrame(nil, fr))), 1<<16)
			if err != nil || back.Txnr != fr.Txnr || back.Command != fr.Command || !bytes.Equal(back.Data, fr.Data) {
				t.Fatalf("frame %+v re-encoded reads back as %+v, %v", fr, back, err)
			}
			rsp, err := relp.ParseResponse(fr.Data)
			if err != nil {
				continue
			}
			if rsp.Code < 0 || rsp.Code > 999 || strings.Contains(rsp.Text, "\n") {
				t.Fatalf("bad response %+v", rsp)
			}
			relp.Offers(rsp.Data)
		}
	})
}

// BenchmarkDelivery measures events per second to one real rsyslogd,
// side by side: RELP (each event acknowledged before the next) and plain
// syslog over TCP (each event handed to the kernel). Both check that
// every event arrived.
func BenchmarkDelivery(b *testing.B) {
	srv := relptest.Start(b, relptest.Options{Syslog: true})
	ev := audit.NewEvent("open", starlark.String("/etc/hosts"), starlark.String("r"), starlark.MakeInt(0))
	run := func(b *testing.B, s record.Sink) {
		f := new(record.Fanout)
		if err := f.Add(s); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := f.Hook(ev); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		deadline := time.Now().Add(60 * time.Second)
		for {
			n := 0
			for _, m := range srv.Messages() {
				if m.Params["run"] == f.Run() {
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
	relpSink := func(b *testing.B) {
		s, err := relp.Dial(relp.Options{Addr: srv.Addr()})
		if err != nil {
			b.Fatal(err)
		}
		run(b, s)
	}
	tcpSink := func(b *testing.B) {
		s, err := sslog.Dial(sslog.Options{Addr: fmt.Sprintf("tcp://127.0.0.1:%d", srv.SyslogPort)})
		if err != nil {
			b.Fatal(err)
		}
		run(b, s)
	}
	b.Run("relp", relpSink)
	b.Run("syslog-tcp", tcpSink)
	// The same with the sender and rsyslogd on one CPU (see onOneCPU):
	// an acknowledged record is a round trip between two processes, and
	// on this kind of virtual machine waking a process on the other CPU
	// is an interrupt through the hypervisor, tens of microseconds each.
	b.Run("relp-one-cpu", func(b *testing.B) { onOneCPU(b, srv.Pid()); relpSink(b) })
	b.Run("syslog-tcp-one-cpu", func(b *testing.B) { onOneCPU(b, srv.Pid()); tcpSink(b) })
}

// onOneCPU puts every thread of this process and of the processes pids
// on one CPU, the first this process may use, for the rest of b, and
// then back on the CPUs each had.
func onOneCPU(b *testing.B, pids ...int) {
	var all, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		b.Skipf("sched_getaffinity: %v", err)
	}
	for c := range 1024 {
		if all.IsSet(c) {
			one.Set(c)
			break
		}
	}
	for _, pid := range append([]int{os.Getpid()}, pids...) {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			b.Skipf("cannot list the threads of %d: %v", pid, err)
		}
		for _, t := range tasks {
			tid, _ := strconv.Atoi(t.Name())
			var was unix.CPUSet
			if unix.SchedGetaffinity(tid, &was) != nil || unix.SchedSetaffinity(tid, &one) != nil {
				continue // a thread that ended meanwhile
			}
			b.Cleanup(func() { unix.SchedSetaffinity(tid, &was) })
		}
	}
}

// A fleet: sstar sends to the host's rsyslogd, which forwards with
// omrelp over TLS to a central one, with the action docs/sinks.md shows
// (on loopback, with the test's certificates). Every event reaches the
// central server once, in order, with its structured data.
func TestForwardToCentral(t *testing.T) {
	central := relptest.Start(t, relptest.Options{TLS: true})
	forward := docblock.Replace(t, docblock.Find(t, "sinks.md", "# each host: the forwarding action, in ruleset \"sstar\" above"),
		`target="central.example.net"`, `target="127.0.0.1"`,
		`port="2514"`, fmt.Sprintf(`port="%d"`, central.Port),
		`tls.permittedPeer=["central.example.net"]`, `tls.permittedPeer=["localhost"]`,
		"/etc/rsyslog.d/tls/ca.pem", central.CAFile,
		"/etc/rsyslog.d/tls/client.pem", central.ClientCert,
		"/etc/rsyslog.d/tls/client.key", central.ClientKey)
	host := relptest.Start(t, relptest.Options{Forward: forward})
	f, _, err := dial(relp.Options{Addr: host.Addr()})
	if err != nil {
		t.Fatalf("%v\n%s", err, host.Output())
	}
	evs := events(500)
	send(t, f, evs)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	checkArrived(t, host.Messages(), evs, f.Run())
	central.WaitMessages(len(evs), 30*time.Second)
	host.Stop()
	central.Stop()
	checkArrived(t, central.Messages(), evs, f.Run())
}
