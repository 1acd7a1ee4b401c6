package relp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// A Frame is one RELP frame: TXNR SP COMMAND SP DATALEN [SP DATA] LF.
type Frame struct {
	Txnr    int    // the transaction number: 1 to MaxTxnr, or 0 for a hint
	Command string // "open", "syslog", "close", "rsp", "serverclose", ...
	Data    []byte // DATALEN octets
}

const (
	// MaxTxnr is the largest transaction number; the one after it is 1.
	MaxTxnr = 999_999_999
	// maxCommand is the longest command name the protocol allows.
	maxCommand = 32
	// maxDigits is the longest TXNR or DATALEN: 9 digits.
	maxDigits = 9
)

// A FrameError is a frame that breaks RELP's framing. The connection it
// came on cannot be used any more: where the next frame starts is lost.
type FrameError struct{ Reason string }

func (e *FrameError) Error() string { return "malformed RELP frame: " + e.Reason }

// AppendFrame appends f, framed, to b.
func AppendFrame(b []byte, f Frame) []byte {
	b = strconv.AppendInt(b, int64(f.Txnr), 10)
	b = append(b, ' ')
	b = append(b, f.Command...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(f.Data)), 10)
	if len(f.Data) > 0 {
		b = append(b, ' ')
		b = append(b, f.Data...)
	}
	return append(b, '\n')
}

// ReadFrame reads one frame from r, whose data may be at most maxData
// octets. An error is a *FrameError for bytes that are not a frame (or
// a frame too large), else the reader's error (io.EOF before the first
// byte of a frame; io.ErrUnexpectedEOF within one).
func ReadFrame(r *bufio.Reader, maxData int) (Frame, error) {
	var f Frame
	txnr, _, err := readNumber(r, "TXNR", true)
	if err != nil {
		return f, err
	}
	f.Txnr = txnr
	cmd := make([]byte, 0, 8)
	for {
		c, err := r.ReadByte()
		if err != nil {
			return f, unexpected(err)
		}
		if c == ' ' {
			break
		}
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return f, &FrameError{fmt.Sprintf("byte %q in the command name", c)}
		}
		if len(cmd) == maxCommand {
			return f, &FrameError{"command name longer than 32 letters"}
		}
		cmd = append(cmd, c)
	}
	if len(cmd) == 0 {
		return f, &FrameError{"empty command name"}
	}
	f.Command = string(cmd)
	n, end, err := readNumber(r, "DATALEN", false)
	if err != nil {
		return f, unexpected(err)
	}
	if n == 0 && end == ' ' {
		// "0 serverclose 0 \n": a space and no data, as some senders do.
		c, err := r.ReadByte()
		if err != nil {
			return f, unexpected(err)
		}
		if c != '\n' {
			return f, &FrameError{"DATALEN is 0 but data follows"}
		}
		return f, nil
	}
	if n > maxData {
		return f, &FrameError{fmt.Sprintf("%d octets of data, more than the %d allowed", n, maxData)}
	}
	// readNumber consumed the byte after the number: a space before the
	// data, or the trailer.
	if n > 0 {
		f.Data = make([]byte, n)
		if _, err := io.ReadFull(r, f.Data); err != nil {
			return f, unexpected(err)
		}
		c, err := r.ReadByte()
		if err != nil {
			return f, unexpected(err)
		}
		if c != '\n' {
			return f, &FrameError{fmt.Sprintf("byte %q where the trailer (LF) belongs", c)}
		}
	}
	return f, nil
}

// readNumber reads 1 to 9 digits and the byte that ends them: a space,
// or (for DATALEN) the trailer of a frame without data, which is
// accepted only if the number is 0.
func readNumber(r *bufio.Reader, what string, first bool) (int, byte, error) {
	n, digits := 0, 0
	for {
		c, err := r.ReadByte()
		if err != nil {
			if first && digits == 0 && err == io.EOF {
				return 0, 0, io.EOF
			}
			return 0, 0, unexpected(err)
		}
		switch {
		case '0' <= c && c <= '9':
			if digits == maxDigits {
				return 0, 0, &FrameError{what + " longer than 9 digits"}
			}
			n = n*10 + int(c-'0')
			digits++
			continue
		case digits == 0:
			return 0, 0, &FrameError{fmt.Sprintf("byte %q where %s belongs", c, what)}
		case c == ' ':
			return n, c, nil
		case c == '\n' && what == "DATALEN":
			if n != 0 {
				return 0, 0, &FrameError{"DATALEN is not 0 but there is no data"}
			}
			return 0, c, nil
		}
		return 0, 0, &FrameError{fmt.Sprintf("byte %q after %s", c, what)}
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// A Response is the data of an rsp frame: a status code, a human
// readable text, and data whose meaning depends on the command (the
// accepted offers, for open).
type Response struct {
	Code int    // 200 is success; anything else an error
	Text string // the text after the code, up to the first LF
	Data []byte // what follows the first LF, if anything
}

// OK reports whether the response is a success.
func (r Response) OK() bool { return r.Code == 200 }

// ParseResponse parses an rsp frame's data: RSP-CODE [SP HUMANMSG]
// [LF CMDDATA].
func ParseResponse(data []byte) (Response, error) {
	var r Response
	if len(data) < 3 {
		return r, &FrameError{fmt.Sprintf("rsp data %q has no 3-digit status code", data)}
	}
	for _, c := range data[:3] {
		if c < '0' || c > '9' {
			return r, &FrameError{fmt.Sprintf("rsp data %q has no 3-digit status code", truncate(data))}
		}
		r.Code = r.Code*10 + int(c-'0')
	}
	rest := data[3:]
	if len(rest) > 0 && rest[0] != ' ' && rest[0] != '\n' {
		return r, &FrameError{fmt.Sprintf("rsp data %q: status code not followed by a space or LF", truncate(data))}
	}
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	text, more, found := bytes.Cut(rest, []byte{'\n'})
	if len(rest) > 0 && rest[0] == '\n' {
		text, more, found = nil, rest[1:], true
	}
	r.Text = string(text)
	if found {
		r.Data = more
	}
	return r, nil
}

// Offers parses the offers of an open command or its response: one per
// line, NAME[=VALUE[,VALUE...]]. Empty lines are skipped.
func Offers(data []byte) (map[string][]string, error) {
	out := map[string][]string{}
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		name, values, hasValues := bytes.Cut(line, []byte{'='})
		if len(name) == 0 || len(name) > 32 {
			return nil, &FrameError{fmt.Sprintf("offer %q has no name of 1 to 32 octets", truncate(line))}
		}
		var vs []string
		if hasValues {
			for _, v := range bytes.Split(values, []byte{','}) {
				if len(v) > 255 {
					return nil, &FrameError{fmt.Sprintf("offer %s has a value longer than 255 octets", name)}
				}
				if len(v) > 0 {
					vs = append(vs, string(v))
				}
			}
		}
		out[string(name)] = append(out[string(name)], vs...)
	}
	return out, nil
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
