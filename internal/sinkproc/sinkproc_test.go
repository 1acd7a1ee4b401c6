package sinkproc

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sstar-project/sstar/audit"
	"github.com/sstar-project/sstar/audit/record"
)

type memSink struct{ recs []record.Record }

func (m *memSink) Write(r *record.Record) error {
	if r.Name == "app.refuse" {
		return errors.New("disk full")
	}
	c := *r
	c.Args = append([]byte(nil), r.Args...)
	m.recs = append(m.recs, c)
	return nil
}
func (m *memSink) Close() error { return nil }

// A record crosses the socket whole, is written by the sink in the
// process, and the sink's error comes back as not recorded.
func TestServe(t *testing.T) {
	a, b := net.Pipe()
	sink := new(memSink)
	done := make(chan error, 1)
	go func() {
		done <- Serve(b, func(spec []byte) (record.Sink, error) {
			if string(spec) != "mem" {
				return nil, errors.New("unknown spec " + string(spec))
			}
			return sink, nil
		})
		b.Close()
	}()
	c := &Client{path: "test", conn: nil}
	c.roundTripFn = func(frame []byte) ([]byte, error) {
		if _, err := a.Write(frame); err != nil {
			return nil, err
		}
		return readFrame(a)
	}
	if _, err := c.Open([]byte("nope")); err == nil || err.Error() != "unknown spec nope" {
		t.Fatalf("Open(nope) = %v", err)
	}
	p, err := c.Open([]byte("mem"))
	if err != nil {
		t.Fatal(err)
	}
	r := record.Record{Run: strings.Repeat("a", 32), Seq: 7, Time: time.Unix(1, 2).UTC(), PID: 42, Kind: audit.Open, Name: "open", Args: []byte(`["/x","r",0]`)}
	if err := p.Write(&r); err != nil {
		t.Fatal(err)
	}
	if len(sink.recs) != 1 || sink.recs[0].Seq != 7 || !sink.recs[0].Time.Equal(r.Time) || sink.recs[0].PID != 42 || sink.recs[0].Kind != audit.Open || !bytes.Equal(sink.recs[0].Args, r.Args) || sink.recs[0].Run != r.Run {
		t.Fatalf("the sink got %+v", sink.recs)
	}
	bad := record.Record{Name: "app.refuse", Args: []byte("[]")}
	if err := p.Write(&bad); !errors.Is(err, audit.ErrNotRecorded) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("a refused record: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// FuzzParseRecord: what the sink process reads never crashes it, and
// what parses encodes back to the same bytes.
func FuzzParseRecord(f *testing.F) {
	r := record.Record{Run: "r", Seq: 1, Time: time.Unix(0, 5), PID: 1, Kind: audit.Open, Name: "open", Args: []byte(`[]`)}
	f.Add(appendRecord(nil, &r))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseRecord(data)
		if err != nil {
			return
		}
		if again := appendRecord(nil, r); !bytes.Equal(again, data) {
			t.Fatalf("%x parsed and encoded again as %x", data, again)
		}
	})
}
