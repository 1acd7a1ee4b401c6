// Package render writes Starlark values as JSON for audit records, so
// that a SIEM, jq or a person can query them as they are, and reads them
// back.
//
// Values are plain JSON wherever JSON can say them, so that the obvious
// query works (`.args[1][0] == "curl"` in jq):
//
//	Starlark                     JSON
//	None, True, False            null, true, false
//	int within ±2^53             number: 12345
//	float, finite                number that always has "." or "e": 1.0, 2.5e-07
//	string, valid UTF-8          string
//	list, tuple                  array
//	dict, every key a string     object, in insertion order
//	  not starting with "$"
//
// A typed wrapper, an object whose keys start with "$", stands only where
// JSON cannot say the value:
//
//	int beyond ±2^53             {"$int":"12345678901234567890"} (exact; JSON readers
//	                             that use doubles would lose digits of a number)
//	float, not finite            {"$float":"nan"}, {"$float":"inf"}, {"$float":"-inf"}
//	string, not valid UTF-8      {"$str":"<base64 of its bytes>"}
//	bytes                        {"$bytes":"<base64>"}
//	set                          {"$set":[...]}
//	dict with another key        {"$dict":[[key, value], ...]}
//	anything else                {"$type":"<type>","$repr":"<str(value)>"}
//	nested deeper than MaxDepth  {"$truncated":"<type>"}
//	too large for the record     {"$omitted":{"type":..,"len":..,"sha256":..,"prefix":..}}
//	arguments left out           {"$more":N} (the last element: N arguments did not fit)
//
// An object without "$" keys is therefore always a dict, and one with them
// always a wrapper. Lists and tuples both become arrays, and Parse gives
// back lists: that is the one distinction the rendering drops. Base64 is
// the standard alphabet with padding (RFC 4648 section 4).
//
// # Bounds
//
// A record has a size bound (AppendArgs's max), so that no receiver has
// to split it and no argument can push a forged record past a receiver's
// limit. Rendering stops as soon as an argument would not fit, so its
// cost is bounded by the bound, not by the value; that argument is then
// replaced by an $omitted marker that keeps what matters: its type, its
// full length (bytes of a string, elements of a container, bits of an
// int), the SHA-256 of its content, and a prefix. An int is never
// converted to decimal when it has more than MaxIntBits bits (a 67-million
// bit int takes seconds to print): it is recorded by its bit length, a hex
// prefix and the hash of its magnitude.
package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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
// include a list that contains itself) are written as {"$truncated":type}.
const MaxDepth = 32

// MaxIntBits is the largest int, in bits, that is written in decimal;
// larger ones are always $omitted (about 1,233 decimal digits).
const MaxIntBits = 4096

// prefixLen is how many bytes of an omitted value's content its marker
// keeps.
const prefixLen = 32

// MarkerSize bounds the length of an $omitted marker, and MinBound the
// smallest bound AppendArgs keeps to: with it, the array always has room
// for one marker and for {"$more":N}, which stands for the arguments that
// did not fit at all.
const (
	MarkerSize = 512
	moreSize   = 32
	MinBound   = MarkerSize + moreSize + 2
)

// hashCap bounds the rendering an omitted container's hash covers: past
// it, the marker says how much was hashed ("hashed"), so that hashing a
// value nested wide and deep is bounded too.
const hashCap = 16 << 20

// AppendArgs appends the JSON array of an event's arguments to dst, in at
// most max bytes (max <= 0: no bound; a bound below MinBound is raised to
// it). Arguments are written in order while they fit; one that does not
// fit in what is left is replaced by its $omitted marker; when not even a
// marker fits, {"$more":N} says how many arguments are left out.
func AppendArgs(dst []byte, args starlark.Tuple, max int) []byte {
	if max > 0 && max < MinBound {
		max = MinBound
	}
	start := len(dst)
	dst = append(dst, '[')
	for i, v := range args {
		if i > 0 {
			dst = append(dst, ',')
		}
		limit := -1
		if max > 0 {
			limit = start + max - 1 // the closing ']'
			if i < len(args)-1 {
				limit -= moreSize // room to say that the rest did not fit
			}
			if limit-len(dst) < MarkerSize {
				dst = append(dst, `{"$more":`...)
				dst = strconv.AppendInt(dst, int64(len(args)-i), 10)
				dst = append(dst, '}')
				break
			}
		}
		at := len(dst)
		w := writer{b: dst, limit: limit}
		w.value(v, 1)
		if w.over {
			dst = appendOmitted(dst[:at], v)
		} else {
			dst = w.b
		}
	}
	return append(dst, ']')
}

// AppendValue appends the JSON of v to dst, without a bound.
func AppendValue(dst []byte, v starlark.Value) []byte {
	w := writer{b: dst, limit: -1}
	w.value(v, 0)
	return w.b
}

// writer renders into b until it would pass limit (-1: no limit); it
// then stops, with over set. With hash set it writes into the hash
// instead, and stops past hashCap bytes.
type writer struct {
	b       []byte
	limit   int
	over    bool
	hash    *hasher
	scratch []byte // what put appends, when hashing
}

// put appends what f appends, unless that passes the limit.
func (w *writer) put(f func([]byte) []byte) {
	if w.over {
		return
	}
	if w.hash != nil {
		w.scratch = f(w.scratch[:0])
		w.hash.write(w.scratch)
		w.over = w.hash.n >= hashCap
		return
	}
	at := len(w.b)
	w.b = f(w.b)
	if w.limit >= 0 && len(w.b) > w.limit {
		w.b, w.over = w.b[:at], true
	}
}

func (w *writer) write(p string) {
	w.put(func(b []byte) []byte { return append(b, p...) })
}

func (w *writer) str(s string) {
	w.put(func(b []byte) []byte { return AppendString(b, s) })
}

// room is how many bytes may still be written (hashing: no bound).
func (w *writer) room() int {
	if w.hash != nil || w.limit < 0 {
		return math.MaxInt
	}
	return w.limit - len(w.b)
}

func (w *writer) value(v starlark.Value, depth int) {
	if w.over {
		return
	}
	if depth > MaxDepth {
		w.write(`{"$truncated":`)
		w.str(typeName(v))
		w.write("}")
		return
	}
	switch v := v.(type) {
	case nil, starlark.NoneType:
		w.write("null")
	case starlark.Bool:
		w.put(func(b []byte) []byte { return strconv.AppendBool(b, bool(v)) })
	case starlark.Int:
		w.int(v)
	case starlark.Float:
		w.put(func(b []byte) []byte { return appendFloat(b, float64(v)) })
	case starlark.String:
		s := string(v)
		if len(s) > w.room() {
			w.over = true // it cannot fit: do not even escape it
			return
		}
		if utf8.ValidString(s) {
			w.str(s)
			return
		}
		w.put(func(b []byte) []byte { return appendBase64(append(b, `{"$str":`...), s) })
		w.write("}")
	case starlark.Bytes:
		if len(v)/3*4 > w.room() {
			w.over = true
			return
		}
		w.put(func(b []byte) []byte { return appendBase64(append(b, `{"$bytes":`...), string(v)) })
		w.write("}")
	case *starlark.List:
		w.seq(v, depth)
	case starlark.Tuple:
		w.seq(v, depth)
	case *starlark.Dict:
		w.dict(v, depth)
	case *starlark.Set:
		w.write(`{"$set":`)
		w.seq(v, depth)
		w.write("}")
	default:
		w.write(`{"$type":`)
		w.str(typeName(v))
		w.write(`,"$repr":`)
		w.str(strings.ToValidUTF8(v.String(), "\uFFFD"))
		w.write("}")
	}
}

// maxSafe is 2^53: integers within ±maxSafe are exact as JSON numbers in
// every reader (doubles included).
const maxSafe = 1 << 53

func (w *writer) int(v starlark.Int) {
	if i, ok := v.Int64(); ok && i >= -maxSafe && i <= maxSafe {
		w.put(func(b []byte) []byte { return strconv.AppendInt(b, i, 10) })
		return
	}
	n := v.BigInt()
	if n.BitLen() > MaxIntBits {
		if w.hash != nil {
			w.write(string(intMarker(n)))
		} else {
			w.over = true // never converted to decimal: recorded by its marker
		}
		return
	}
	w.put(func(b []byte) []byte { return append(n.Append(append(b, `{"$int":"`...), 10), `"}`...) })
}

func (w *writer) seq(v starlark.Iterable, depth int) {
	w.write("[")
	iter := v.Iterate()
	defer iter.Done()
	var x starlark.Value
	for i := 0; !w.over && iter.Next(&x); i++ {
		if i > 0 {
			w.write(",")
		}
		w.value(x, depth+1)
	}
	w.write("]")
}

func (w *writer) dict(v *starlark.Dict, depth int) {
	plain := true
	for _, k := range v.Keys() {
		if s, ok := k.(starlark.String); !ok || strings.HasPrefix(string(s), "$") || !utf8.ValidString(string(s)) {
			plain = false
			break
		}
	}
	if plain {
		w.write("{")
		for i, kv := range v.Items() {
			if w.over {
				return
			}
			if i > 0 {
				w.write(",")
			}
			w.str(string(kv[0].(starlark.String)))
			w.write(":")
			w.value(kv[1], depth+1)
		}
		w.write("}")
		return
	}
	w.write(`{"$dict":[`)
	for i, kv := range v.Items() {
		if w.over {
			return
		}
		if i > 0 {
			w.write(",")
		}
		w.write("[")
		w.value(kv[0], depth+1)
		w.write(",")
		w.value(kv[1], depth+1)
		w.write("]")
	}
	w.write(`]}`)
}

// hasher counts what it hashes.
type hasher struct {
	h interface{ Write([]byte) (int, error) }
	n int
}

func (h *hasher) write(p []byte) { h.h.Write(p); h.n += len(p) }

// appendOmitted appends the $omitted marker of v.
func appendOmitted(dst []byte, v starlark.Value) []byte {
	if i, ok := v.(starlark.Int); ok {
		return append(dst, intMarker(i.BigInt())...)
	}
	var n int
	var sum [sha256.Size]byte
	var prefix string
	hashed := -1
	switch v := v.(type) {
	case starlark.String:
		n, sum = len(v), sha256.Sum256([]byte(v))
		prefix = strings.ToValidUTF8(cutUTF8(string(v), prefixLen), "\uFFFD")
	case starlark.Bytes:
		n, sum = len(v), sha256.Sum256([]byte(v))
		prefix = base64.StdEncoding.EncodeToString([]byte(v[:min(len(v), prefixLen*3/4)]))
	default:
		if l, ok := v.(starlark.Sequence); ok {
			n = l.Len()
		} else if m, ok := v.(starlark.IterableMapping); ok {
			n = len(m.Items())
		}
		// The content of a container is its rendering: hashed whole, up
		// to hashCap bytes; its first bytes are the prefix.
		h := sha256.New()
		w := writer{hash: &hasher{h: h}}
		w.value(v, 1)
		h.Sum(sum[:0])
		if w.over {
			hashed = w.hash.n
		}
		pw := writer{limit: prefixLen}
		pw.value(v, 1)
		prefix = strings.ToValidUTF8(string(pw.b), "\uFFFD")
	}
	dst = append(dst, `{"$omitted":{"type":`...)
	dst = AppendString(dst, cutUTF8(strings.ToValidUTF8(typeName(v), "?"), 64))
	dst = append(dst, `,"len":`...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, `,"sha256":"`...)
	dst = hex.AppendEncode(dst, sum[:])
	dst = append(dst, '"')
	if hashed >= 0 {
		dst = append(dst, `,"hashed":`...)
		dst = strconv.AppendInt(dst, int64(hashed), 10)
	}
	dst = append(dst, `,"prefix":`...)
	dst = AppendString(dst, prefix)
	return append(dst, `}}`...)
}

// intMarker is the $omitted marker of an int: its bit length, the
// SHA-256 of its sign and big-endian magnitude ("-" then the bytes, for a
// negative one), and the first hex digits of its magnitude. Nothing here
// is proportional to more than the int's size in memory.
func intMarker(b *big.Int) []byte {
	mag := new(big.Int).Abs(b).Bytes()
	h := sha256.New()
	sign := ""
	if b.Sign() < 0 {
		sign = "-"
		h.Write([]byte("-"))
	}
	h.Write(mag)
	var dst []byte
	dst = append(dst, `{"$omitted":{"type":"int","len":`...)
	dst = strconv.AppendInt(dst, int64(b.BitLen()), 10)
	dst = append(dst, `,"sha256":"`...)
	dst = hex.AppendEncode(dst, h.Sum(nil))
	dst = append(dst, `","prefix":"`...)
	dst = append(dst, sign+"0x"...)
	dst = hex.AppendEncode(dst, mag[:min(len(mag), 8)])
	return append(dst, `"}}`...)
}

// cutUTF8 returns at most n bytes of s, not cutting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func typeName(v starlark.Value) string {
	if v == nil {
		return "NoneType"
	}
	return v.Type()
}

func appendBase64(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, []byte(s))
	return append(dst, '"')
}

func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `{"$float":"nan"}`...)
	case math.IsInf(f, 1):
		return append(dst, `{"$float":"inf"}`...)
	case math.IsInf(f, -1):
		return append(dst, `{"$float":"-inf"}`...)
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
// writes it) as Starlark values. Arrays come back as unfrozen lists
// (tuples too). A value that was written as {"$type":..,"$repr":..},
// {"$truncated":..}, {"$omitted":..} or {"$more":..} comes back as a
// string (its repr, or the JSON after the key): it cannot be rebuilt.
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
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("render: %v", err)
	}
	v, err := parseFrom(dec, tok, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("render: trailing data after the value")
	}
	return v, nil
}

// parseFrom reads the value that starts with tok. It reads tokens, not a
// decoded tree, so that an object's keys keep their order (a dict's
// insertion order) and nesting is bounded before it is built.
func parseFrom(dec *json.Decoder, tok json.Token, depth int) (starlark.Value, error) {
	if depth > MaxDepth+2 {
		return nil, errors.New("render: nested too deeply")
	}
	switch t := tok.(type) {
	case nil:
		return starlark.None, nil
	case bool:
		return starlark.Bool(t), nil
	case string:
		return starlark.String(t), nil
	case json.Number:
		return parseNumber(string(t))
	case json.Delim:
		switch t {
		case '[':
			var elems []starlark.Value
			for dec.More() {
				v, err := parseNext(dec, depth+1)
				if err != nil {
					return nil, err
				}
				elems = append(elems, v)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, fmt.Errorf("render: %v", err)
			}
			return starlark.NewList(elems), nil
		case '{':
			return parseObject(dec, depth)
		}
	}
	return nil, fmt.Errorf("render: unexpected JSON %v", tok)
}

func parseNext(dec *json.Decoder, depth int) (starlark.Value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("render: %v", err)
	}
	return parseFrom(dec, tok, depth)
}

func parseNumber(s string) (starlark.Value, error) {
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
}

// parseObject reads an object after its '{': a dict, or a wrapper.
func parseObject(dec *json.Decoder, depth int) (starlark.Value, error) {
	var keys []string
	var vals []starlark.Value
	var raws []json.RawMessage
	wrapped := false
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("render: %v", err)
		}
		k, _ := kt.(string)
		if len(keys) == 0 {
			wrapped = strings.HasPrefix(k, "$")
		} else if wrapped != strings.HasPrefix(k, "$") {
			return nil, errors.New(`render: an object mixes "$" keys and others`)
		}
		keys = append(keys, k)
		if wrapped && (k == "$omitted" || k == "$truncated" || k == "$more") {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, fmt.Errorf("render: %v", err)
			}
			raws = append(raws, raw)
			vals = append(vals, nil)
			continue
		}
		v, err := parseNext(dec, depth+1)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
		raws = append(raws, nil)
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, fmt.Errorf("render: %v", err)
	}
	if !wrapped {
		d := starlark.NewDict(len(keys))
		for i, k := range keys {
			if _, found, _ := d.Get(starlark.String(k)); found {
				return nil, fmt.Errorf("render: key %q twice in an object", k)
			}
			d.SetKey(starlark.String(k), vals[i])
		}
		return d, nil
	}
	return fromWrapper(keys, vals, raws)
}

func fromWrapper(keys []string, vals []starlark.Value, raws []json.RawMessage) (starlark.Value, error) {
	if len(keys) == 2 && keys[0] == "$type" && keys[1] == "$repr" {
		if r, ok := vals[1].(starlark.String); ok {
			return r, nil
		}
	}
	if len(keys) != 1 {
		return nil, fmt.Errorf("render: wrapper with keys %v", keys)
	}
	v := vals[0]
	s, isStr := v.(starlark.String)
	switch keys[0] {
	case "$int":
		if isStr {
			if n, ok := new(big.Int).SetString(string(s), 10); ok {
				return starlark.MakeBigInt(n), nil
			}
		}
	case "$float":
		switch s {
		case "nan":
			return starlark.Float(math.NaN()), nil
		case "inf":
			return starlark.Float(math.Inf(1)), nil
		case "-inf":
			return starlark.Float(math.Inf(-1)), nil
		}
	case "$str", "$bytes":
		if !isStr {
			break
		}
		b, err := base64.StdEncoding.DecodeString(string(s))
		if err != nil {
			return nil, fmt.Errorf("render: %s: %v", keys[0], err)
		}
		if keys[0] == "$bytes" {
			return starlark.Bytes(b), nil
		}
		return starlark.String(b), nil
	case "$truncated", "$omitted", "$more":
		return starlark.String(raws[0]), nil
	case "$set":
		l, ok := v.(*starlark.List)
		if !ok {
			break
		}
		set := starlark.NewSet(l.Len())
		for i := range l.Len() {
			if err := set.Insert(hashable(l.Index(i))); err != nil {
				return nil, fmt.Errorf("render: set: %v", err)
			}
		}
		return set, nil
	case "$dict":
		l, ok := v.(*starlark.List)
		if !ok {
			break
		}
		d := starlark.NewDict(l.Len())
		for i := range l.Len() {
			pair, ok := l.Index(i).(*starlark.List)
			if !ok || pair.Len() != 2 {
				return nil, errors.New("render: $dict item is not a [key, value] pair")
			}
			if err := d.SetKey(hashable(pair.Index(0)), pair.Index(1)); err != nil {
				return nil, fmt.Errorf("render: $dict: %v", err)
			}
		}
		return d, nil
	}
	return nil, fmt.Errorf("render: bad wrapper %q", keys[0])
}

// hashable turns the lists in v (which were tuples, since a list cannot
// be a key or in a set) back into tuples. v comes from parseFrom, so it
// recurses at most MaxDepth+2 levels.
func hashable(v starlark.Value) starlark.Value {
	l, ok := v.(*starlark.List)
	if !ok {
		return v
	}
	t := make(starlark.Tuple, l.Len())
	for i := range t {
		t[i] = hashable(l.Index(i))
	}
	return t
}
