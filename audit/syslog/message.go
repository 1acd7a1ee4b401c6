package syslog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sstar-project/sstar/audit/record"
)

// SDID is the structured data element that carries an event.
const SDID = "sstar@32473"

// MaxText is how much of the free-text MSG (the call, its arguments as
// in args) is kept; the structured data always has the arguments whole.
// It is short so that a record at the default bound still fits rsyslog's
// default maxMessageSize (see MessageSize).
const MaxText = 256

// MessageSize is the longest message (without framing) a record of at
// most maxRecord bytes of name and arguments can make, every byte of them
// escaped, with a hostname of at most 255 bytes: what the receiver's
// maximum message size must be at least (rsyslog's maxMessageSize).
func MessageSize(maxRecord int) int {
	const header = len("<190>1 2006-01-02T15:04:05.000000Z ") + 255 + len(" sstar 4294967295 ") + 32 + 1
	const sd = len(`[sstar@32473 event="" seq="18446744073709551615" run="" pid="4294967295" args=""] `) + 32
	return header + sd + len(bom) + 2*maxRecord + len("(…)") + MaxText
}

// bom starts MSG: RFC 5424 section 6.4 says a MSG in UTF-8 begins with
// the byte order mark, so that a receiver knows the encoding.
const bom = "\xEF\xBB\xBF"

// appendContent appends MSGID, the structured data and MSG: everything
// after PROCID.
func appendContent(b []byte, r *record.Record) []byte {
	b = append(b, msgID(r.Name)...)
	b = append(b, ' ')
	b = appendSD(b, r)
	b = append(b, ' ')
	b = append(b, bom...)
	return appendText(b, r)
}

// appendLocal appends the message of the local form (RFC 3164, as
// syslog(3) writes it to /dev/log): TAG "sstar[PID]: ", then the
// structured data and the text as MSG. journald takes sstar as the
// SYSLOG_IDENTIFIER from it, and rsyslog's imuxsock parses it at its
// defaults; neither parses RFC 5424 on the local socket.
func appendLocal(b []byte, r *record.Record) []byte {
	b = appendSD(b, r)
	b = append(b, ' ')
	return appendText(b, r)
}

// appendSD appends the structured data element that carries the record.
func appendSD(b []byte, r *record.Record) []byte {
	b = append(b, '[')
	b = append(b, SDID...)
	b = append(b, ` event="`...)
	b = appendParam(b, strings.ToValidUTF8(r.Name, "\uFFFD"))
	b = append(b, `" seq="`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `" run="`...)
	b = appendParam(b, r.Run)
	b = append(b, `" pid="`...)
	b = strconv.AppendInt(b, int64(r.PID), 10)
	b = append(b, `" args="`...)
	start := len(b)
	b = append(b, r.Args...)
	b = escapeParamInPlace(b, start)
	return append(b, `"]`...)
}

// msgID is the event name when RFC 5424 allows it as MSGID (1 to 32
// printable ASCII characters), else "-".
func msgID(name string) string {
	if name == "" || len(name) > 32 {
		return "-"
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 33 || name[i] > 126 {
			return "-"
		}
	}
	return name
}

// headerField makes s fit a header field: printable ASCII, at most max
// bytes, "-" if empty.
func headerField(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		if s[i] >= 33 && s[i] <= 126 {
			b.WriteByte(s[i])
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// appendParam appends s as a PARAM-VALUE body: '"', '\' and ']' escaped
// with a backslash (RFC 5424 section 6.3.3).
func appendParam(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', ']':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return b
}

// escapeParamInPlace escapes b[start:] as appendParam would.
func escapeParamInPlace(b []byte, start int) []byte {
	n := 0
	for _, c := range b[start:] {
		if c == '"' || c == '\\' || c == ']' {
			n++
		}
	}
	if n == 0 {
		return b
	}
	end := len(b)
	b = append(b, make([]byte, n)...)
	w := len(b)
	for r := end - 1; r >= start; r-- {
		c := b[r]
		w--
		b[w] = c
		if c == '"' || c == '\\' || c == ']' {
			w--
			b[w] = '\\'
		}
	}
	return b
}

// appendText appends the event as a call, name(args), with the
// arguments as the record rendered them (the JSON array's elements), cut
// at MaxText bytes.
func appendText(b []byte, r *record.Record) []byte { return r.AppendCall(b, MaxText) }

// ParseStructuredData parses the STRUCTURED-DATA part of an RFC 5424
// message ("-" or one or more [ID name="value" ...] elements) into a map
// from SD-ID to its parameters, unescaping the values. Tests and readers
// of sstar's messages use it to get events back: the sstar@32473
// element's "args" goes to render.Parse.
func ParseStructuredData(sd string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	if sd == "-" {
		return out, nil
	}
	if sd == "" {
		return nil, errors.New("structured data: empty (want \"-\" or elements)")
	}
	i := 0
	for i < len(sd) {
		if sd[i] != '[' {
			return nil, fmt.Errorf("structured data: want '[' at offset %d", i)
		}
		i++
		id, n := sdName(sd[i:])
		if n == 0 {
			return nil, fmt.Errorf("structured data: no SD-ID at offset %d", i)
		}
		i += n
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("structured data: SD-ID %q twice", id)
		}
		params := map[string]string{}
		out[id] = params
		for {
			if i >= len(sd) {
				return nil, errors.New("structured data: unterminated element")
			}
			if sd[i] == ']' {
				i++
				break
			}
			if sd[i] != ' ' {
				return nil, fmt.Errorf("structured data: want ' ' or ']' at offset %d", i)
			}
			i++
			name, n := sdName(sd[i:])
			if n == 0 || i+n+1 >= len(sd) || sd[i+n] != '=' || sd[i+n+1] != '"' {
				return nil, fmt.Errorf("structured data: want name=\"value\" at offset %d", i)
			}
			i += n + 2
			var v strings.Builder
			for {
				if i >= len(sd) {
					return nil, errors.New("structured data: unterminated value")
				}
				c := sd[i]
				if c == '"' {
					i++
					break
				}
				if c == '\\' && i+1 < len(sd) && (sd[i+1] == '"' || sd[i+1] == '\\' || sd[i+1] == ']') {
					c = sd[i+1]
					i++
				} else if c == ']' {
					return nil, fmt.Errorf("structured data: unescaped ']' in a value at offset %d", i)
				}
				v.WriteByte(c)
				i++
			}
			if _, dup := params[name]; dup {
				return nil, fmt.Errorf("structured data: parameter %q twice in %s", name, id)
			}
			params[name] = v.String()
		}
	}
	return out, nil
}

// sdName returns the SD-NAME at the start of s: 1 to 32 printable ASCII
// characters other than '=', ' ', ']' and '"'.
func sdName(s string) (string, int) {
	n := 0
	for n < len(s) && n < 32 {
		c := s[n]
		if c < 33 || c > 126 || c == '=' || c == ']' || c == '"' {
			break
		}
		n++
	}
	return s[:n], n
}
