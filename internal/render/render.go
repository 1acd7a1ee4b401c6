// Package render writes Starlark values as JSON for the audit sinks, so
// that whoever reads an audit record gets back exactly the values the
// event carried: the JSON Lines log and syslog's structured data use it,
// and Parse reads it back.
//
// The mapping is faithful: no two different values render alike, and
// Parse(AppendArgs(nil, args)) equals args for every value Starlark can
// compare. JSON has no tuples, no non-string keys, no bytes and no NaN, so
// those are written as an object with a single key that names the type:
//
//	Starlark                     JSON
//	None                         null
//	True, False                  true, false
//	int (any size)               number, every digit: 12345678901234567890123
//	float, finite                number that always has "." or "e": 1.0, 2.5e-07
//	float, not finite            {"float":"nan"}, {"float":"inf"}, {"float":"-inf"}
//	string, valid UTF-8          string
//	string, not valid UTF-8      {"string":"<base64 of its bytes>"}
//	bytes                        {"bytes":"<base64>"}
//	list                         array
//	tuple                        {"tuple":[...]}
//	dict                         {"dict":[[key, value], ...]}  (insertion order; keys of any type)
//	set                          {"set":[...]}
//	anything else                {"type":"<type>","repr":"<str(value)>"}
//	nested deeper than MaxDepth  {"truncated":"<type>"}
//
// A JSON object in rendered arguments is therefore never a Starlark dict:
// it is always one of the tagged forms above. Base64 is the standard
// alphabet with padding (RFC 4648 section 4). Integers outside ±2^53 are
// written exactly; a reader that parses JSON numbers as doubles (as
// JavaScript does) loses their low digits, so use one that keeps big
// numbers (Python's json, Go's json.Number).
package render

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.starlark.net/starlark"
)

// MaxDepth is how deeply nested values are rendered; deeper ones (which
// include a list that contains itself) are written as {"truncated":type}.
const MaxDepth = 32

// AppendArgs appends the JSON array of an event's arguments to dst.
func AppendArgs(dst []byte, args starlark.Tuple) []byte {
	dst = append(dst, '[')
	for i, v := range args {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendValue(dst, v, 1)
	}
	return append(dst, ']')
}

// AppendValue appends the JSON of v to dst.
func AppendValue(dst []byte, v starlark.Value) []byte {
	return appendValue(dst, v, 0)
}

func appendValue(dst []byte, v starlark.Value, depth int) []byte {
	if depth > MaxDepth {
		return appendTag(dst, "truncated", func(b []byte) []byte { return AppendString(b, typeName(v)) })
	}
	switch v := v.(type) {
	case nil, starlark.NoneType:
		return append(dst, "null"...)
	case starlark.Bool:
		return strconv.AppendBool(dst, bool(v))
	case starlark.Int:
		if i, ok := v.Int64(); ok {
			return strconv.AppendInt(dst, i, 10)
		}
		return v.BigInt().Append(dst, 10)
	case starlark.Float:
		return appendFloat(dst, float64(v))
	case starlark.String:
		s := string(v)
		if utf8.ValidString(s) {
			return AppendString(dst, s)
		}
		return appendTag(dst, "string", func(b []byte) []byte { return appendBase64(b, s) })
	case starlark.Bytes:
		return appendTag(dst, "bytes", func(b []byte) []byte { return appendBase64(b, string(v)) })
	case *starlark.List:
		dst = append(dst, '[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, v.Index(i), depth+1)
		}
		return append(dst, ']')
	case starlark.Tuple:
		return appendTag(dst, "tuple", func(b []byte) []byte {
			b = append(b, '[')
			for i, x := range v {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendValue(b, x, depth+1)
			}
			return append(b, ']')
		})
	case *starlark.Dict:
		return appendTag(dst, "dict", func(b []byte) []byte {
			b = append(b, '[')
			for i, kv := range v.Items() {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, '[')
				b = appendValue(b, kv[0], depth+1)
				b = append(b, ',')
				b = appendValue(b, kv[1], depth+1)
				b = append(b, ']')
			}
			return append(b, ']')
		})
	case *starlark.Set:
		return appendTag(dst, "set", func(b []byte) []byte {
			b = append(b, '[')
			iter := v.Iterate()
			defer iter.Done()
			var x starlark.Value
			for i := 0; iter.Next(&x); i++ {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendValue(b, x, depth+1)
			}
			return append(b, ']')
		})
	}
	dst = append(dst, `{"type":`...)
	dst = AppendString(dst, typeName(v))
	dst = append(dst, `,"repr":`...)
	dst = AppendString(dst, strings.ToValidUTF8(v.String(), "\uFFFD"))
	return append(dst, '}')
}

func typeName(v starlark.Value) string {
	if v == nil {
		return "NoneType"
	}
	return v.Type()
}

func appendTag(dst []byte, tag string, body func([]byte) []byte) []byte {
	dst = append(dst, `{"`...)
	dst = append(dst, tag...)
	dst = append(dst, `":`...)
	dst = body(dst)
	return append(dst, '}')
}

func appendBase64(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, []byte(s))
	return append(dst, '"')
}

func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `{"float":"nan"}`...)
	case math.IsInf(f, 1):
		return append(dst, `{"float":"inf"}`...)
	case math.IsInf(f, -1):
		return append(dst, `{"float":"-inf"}`...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
	// A float must not read back as an int: 1.0, not 1.
	if bytes.IndexAny(dst[start:], ".e") < 0 {
		dst = append(dst, ".0"...)
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// AppendString appends s, which must be valid UTF-8, as a JSON string.
// Only '"', '\\' and control characters are escaped; the rest is written
// as it is (no HTML escaping).
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != 0x7f {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Parse reads back rendered arguments (a JSON array, as AppendArgs
// writes it) as Starlark values. Lists come back unfrozen. A value that
// was rendered as {"type":..,"repr":..} or {"truncated":..} comes back as
// the string of its repr or type: it cannot be rebuilt.
func Parse(data []byte) (starlark.Tuple, error) {
	v, err := ParseValue(data)
	if err != nil {
		return nil, err
	}
	l, ok := v.(*starlark.List)
	if !ok {
		return nil, fmt.Errorf("render: arguments are %s, want a JSON array", v.Type())
	}
	out := make(starlark.Tuple, l.Len())
	for i := range out {
		out[i] = l.Index(i)
	}
	return out, nil
}

// ParseValue reads back one value written by AppendValue.
func ParseValue(data []byte) (starlark.Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("render: %v", err)
	}
	if dec.More() {
		return nil, errors.New("render: trailing data after the value")
	}
	return fromJSON(x, 0)
}

func fromJSON(x any, depth int) (starlark.Value, error) {
	if depth > MaxDepth+1 {
		return nil, errors.New("render: nested too deeply")
	}
	switch x := x.(type) {
	case nil:
		return starlark.None, nil
	case bool:
		return starlark.Bool(x), nil
	case string:
		return starlark.String(x), nil
	case json.Number:
		s := string(x)
		if strings.ContainsAny(s, ".eE") {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("render: float %s: %v", s, err)
			}
			return starlark.Float(f), nil
		}
		n, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return nil, fmt.Errorf("render: bad int %s", s)
		}
		return starlark.MakeBigInt(n), nil
	case []any:
		elems, err := fromJSONList(x, depth)
		if err != nil {
			return nil, err
		}
		return starlark.NewList(elems), nil
	case map[string]any:
		return fromTagged(x, depth)
	}
	return nil, fmt.Errorf("render: unexpected JSON %T", x)
}

func fromJSONList(x []any, depth int) ([]starlark.Value, error) {
	out := make([]starlark.Value, len(x))
	for i, e := range x {
		v, err := fromJSON(e, depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func fromTagged(m map[string]any, depth int) (starlark.Value, error) {
	if _, ok := m["type"].(string); ok && len(m) == 2 {
		if r, ok := m["repr"].(string); ok {
			return starlark.String(r), nil
		}
	}
	if len(m) != 1 {
		return nil, fmt.Errorf("render: object with %d keys is not a tagged value", len(m))
	}
	for tag, body := range m {
		switch tag {
		case "float":
			switch body {
			case "nan":
				return starlark.Float(math.NaN()), nil
			case "inf":
				return starlark.Float(math.Inf(1)), nil
			case "-inf":
				return starlark.Float(math.Inf(-1)), nil
			}
		case "string", "bytes":
			s, ok := body.(string)
			if !ok {
				break
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("render: %s: %v", tag, err)
			}
			if tag == "bytes" {
				return starlark.Bytes(b), nil
			}
			return starlark.String(b), nil
		case "truncated":
			if s, ok := body.(string); ok {
				return starlark.String(s), nil
			}
		case "tuple", "set":
			l, ok := body.([]any)
			if !ok {
				break
			}
			elems, err := fromJSONList(l, depth)
			if err != nil {
				return nil, err
			}
			if tag == "tuple" {
				return starlark.Tuple(elems), nil
			}
			set := starlark.NewSet(len(elems))
			for _, e := range elems {
				if err := set.Insert(e); err != nil {
					return nil, fmt.Errorf("render: set: %v", err)
				}
			}
			return set, nil
		case "dict":
			l, ok := body.([]any)
			if !ok {
				break
			}
			d := starlark.NewDict(len(l))
			for _, item := range l {
				pair, ok := item.([]any)
				if !ok || len(pair) != 2 {
					return nil, errors.New("render: dict item is not a [key, value] pair")
				}
				k, err := fromJSON(pair[0], depth+1)
				if err != nil {
					return nil, err
				}
				v, err := fromJSON(pair[1], depth+1)
				if err != nil {
					return nil, err
				}
				if err := d.SetKey(k, v); err != nil {
					return nil, fmt.Errorf("render: dict: %v", err)
				}
			}
			return d, nil
		}
		return nil, fmt.Errorf("render: bad tagged value %q", tag)
	}
	panic("unreachable")
}
