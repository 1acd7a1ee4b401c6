package syslog

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// conn is the connection srslog writes to (it dials through Sink.dial).
// On a stream it checks, before each write, that the server has neither
// closed nor reset the connection, and tells the Sink when events may
// have been lost, so that srslog's reconnect cannot hide it.
type conn struct {
	net.Conn                 // what messages are written to (a *tls.Conn for TLS)
	sink     *Sink           //
	stream   bool            // TCP, TLS or a stream socket: checked and framed
	tls      *tls.Conn       // non-nil for TLS
	sock     syscall.RawConn // the socket under it all, for the checks
	half     interface{ CloseWrite() error }
	broken   error // set once the connection must not be used again
}

var (
	// errClosed: the server closed the stream after reading everything.
	// srslog reconnects and sends the message again.
	errClosed = errors.New("the server closed the connection")
)

// dial is the srslog.DialFunc: srslog calls it to connect, and again to
// reconnect once after a failed write.
func (s *Sink) dial(_, _ string) (net.Conn, error) {
	if s.lost != nil {
		return nil, fmt.Errorf("not reconnecting, since %v", s.lost)
	}
	c := &conn{sink: s}
	switch s.scheme {
	case "tcp":
		nc, err := net.DialTimeout("tcp", s.addr, s.opts.DialTimeout)
		if err != nil {
			return nil, err
		}
		tc := nc.(*net.TCPConn)
		c.Conn, c.stream, c.half = tc, true, tc
		c.sock, err = tc.SyscallConn()
		if err != nil {
			tc.Close()
			return nil, err
		}
	case "tls":
		d := &net.Dialer{Timeout: s.opts.DialTimeout}
		tc, err := tls.DialWithDialer(d, "tcp", s.addr, s.tls)
		if err != nil {
			return nil, err
		}
		raw := tc.NetConn().(*net.TCPConn)
		c.Conn, c.tls, c.stream, c.half = tc, tc, true, raw
		c.sock, err = raw.SyscallConn()
		if err != nil {
			tc.Close()
			return nil, err
		}
	case "udp":
		nc, err := net.DialTimeout("udp", s.addr, s.opts.DialTimeout)
		if err != nil {
			return nil, err
		}
		c.Conn = nc
	case "unix":
		// A datagram socket as syslogd's /dev/log is, else a stream one.
		nc, err := net.DialTimeout("unixgram", s.addr, s.opts.DialTimeout)
		if err != nil {
			var serr error
			nc, serr = net.DialTimeout("unix", s.addr, s.opts.DialTimeout)
			if serr != nil {
				return nil, err
			}
			uc := nc.(*net.UnixConn)
			c.stream, c.half = true, uc
			c.sock, err = uc.SyscallConn()
			if err != nil {
				uc.Close()
				return nil, err
			}
		}
		c.Conn = nc
	}
	s.cur = c
	return c, nil
}

// Write writes one framed message, all of it or fail.
func (c *conn) Write(b []byte) (int, error) {
	if c.broken != nil {
		return 0, c.broken
	}
	if c.stream {
		if err := c.check(); err != nil {
			return 0, c.breakWith(err)
		}
	}
	c.Conn.SetWriteDeadline(time.Now().Add(c.sink.opts.WriteTimeout))
	n, err := c.Conn.Write(b)
	if err != nil {
		if c.stream {
			// Part of a frame may be out, and what the server had not
			// read yet is gone with the connection.
			c.sink.lose(fmt.Errorf("a write failed (%v)", err))
		}
		return n, c.breakWith(fmt.Errorf("write: %v", describeNetErr(err, c.sink.opts.WriteTimeout)))
	}
	return n, nil
}

func (c *conn) breakWith(err error) error {
	c.broken = err
	c.sink.broke = err
	return err
}

// lose records that events may have been lost, which forbids reconnecting.
func (s *Sink) lose(why error) {
	if s.lost == nil {
		s.lost = fmt.Errorf("events sent before #%d may have been lost: %v", s.seq+1, why)
	}
}

// check looks at the stream without waiting: nothing to read means it is
// open (syslog servers send nothing); end of stream means the server
// closed it; an error means it reset it.
func (c *conn) check() error {
	for range 4 {
		n, err := c.peek()
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
			return nil
		case err != nil:
			c.sink.lose(fmt.Errorf("the server reset the connection (%v)", err))
			return fmt.Errorf("the server reset the connection (%v)", err)
		case n == 0:
			return c.closedByServer(0)
		}
		// The server sent something: TLS records (session tickets, an
		// alert) or, on plain TCP, bytes a syslog server does not send.
		// Read and drop them, then look again.
		if err := c.discard(); err != nil {
			if err == io.EOF {
				return c.closedByServer(0)
			}
			c.sink.lose(fmt.Errorf("reading from the server failed (%v)", err))
			return err
		}
	}
	return nil
}

// closedByServer decides what the server's end of stream means: if every
// byte sent had been acknowledged (allowing for our own FIN), the server
// read them all before closing (a close with unread data resets); if not,
// some may be lost.
func (c *conn) closedByServer(fin int) error {
	q, err := c.unacked()
	if err != nil {
		c.sink.lose(fmt.Errorf("the server closed the connection, and its send queue cannot be read (%v)", err))
		return errClosed
	}
	if q > fin {
		c.sink.lose(fmt.Errorf("the server closed the connection with %d bytes not acknowledged", q-fin))
	}
	return errClosed
}

func (c *conn) peek() (int, error) {
	var buf [1]byte
	var n int
	var err error
	cerr := c.sock.Read(func(fd uintptr) bool {
		for {
			n, _, err = unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			if err != unix.EINTR {
				return true
			}
		}
	})
	if cerr != nil {
		return 0, cerr
	}
	return n, err
}

// unacked returns the bytes sent but not yet acknowledged by the server
// (for a Unix stream socket: not yet read by it).
func (c *conn) unacked() (int, error) {
	var q int
	var err error
	cerr := c.sock.Control(func(fd uintptr) { q, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
	if cerr != nil {
		return 0, cerr
	}
	return q, err
}

// discard reads what the server sent, without waiting for more.
func (c *conn) discard() error {
	var buf [4096]byte
	c.Conn.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
	defer c.Conn.SetReadDeadline(time.Time{})
	_, err := c.Conn.Read(buf[:])
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return nil // TLS records consumed, no application data
	}
	return err
}

// finish ends a stream cleanly and waits for the server to close its end:
// a syslog server closes only after reading everything, so a clean close
// with every byte acknowledged confirms delivery of the whole run.
func (c *conn) finish(timeout time.Duration) error {
	if err := c.check(); err != nil && err != errClosed {
		return err
	} else if err == errClosed {
		if c.sink.lost != nil {
			return c.sink.lost
		}
		return nil // closed by the server after it read everything
	}
	if c.tls != nil {
		if err := c.tls.CloseWrite(); err != nil {
			return fmt.Errorf("ending the TLS stream: %v", err)
		}
	}
	if err := c.half.CloseWrite(); err != nil {
		return fmt.Errorf("ending the stream: %v", err)
	}
	c.Conn.SetReadDeadline(time.Now().Add(timeout))
	var buf [4096]byte
	for {
		_, err := c.Conn.Read(buf[:])
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("no end of stream from the server within %v", timeout)
		}
		if err != io.EOF {
			return fmt.Errorf("the server reset the connection (%v)", err)
		}
		break
	}
	q, err := c.unacked()
	if err != nil {
		return fmt.Errorf("reading the send queue: %v", err)
	}
	if q > 1 { // our FIN counts for one
		return fmt.Errorf("the server closed with %d bytes not acknowledged", q-1)
	}
	return nil
}

// Close closes the connection (srslog calls it before reconnecting).
func (c *conn) Close() error {
	if c.broken == nil {
		c.broken = net.ErrClosed
	}
	return c.Conn.Close()
}

func describeNetErr(err error, timeout time.Duration) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("the server took more than %v to accept the message", timeout)
	}
	return err
}
