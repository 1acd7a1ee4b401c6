package builtins

import (
	"fmt"
	"strings"

	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
)

// MaxJSONDepth is how deeply json.decode's input and json.encode's (and
// json.encode_indent's) value may nest: arrays and objects, lists, tuples,
// dicts and structs, each a level. go.starlark.net's decoder and encoder
// recurse once per level, and a goroutine's stack is bounded: a few
// megabytes of "[" from a file would otherwise end the process with
// "fatal error: stack overflow" instead of an error the script can
// handle. Real configuration nests a few dozen levels; Python's json
// module stops near 1000 (its recursion limit), as sstar does.
const MaxJSONDepth = 1000

// jsonModule is go.starlark.net/lib/json with the depth caps.
func jsonModule() starlark.Value {
	return library(json.Module, map[string]starlark.Value{
		"decode":        fn("json.decode", jsonDecode),
		"encode":        fn("json.encode", jsonEncoder("encode")),
		"encode_indent": fn("json.encode_indent", jsonEncoder("encode_indent")),
	})
}

var (
	libDecode = json.Module.Members["decode"].(*starlark.Builtin)
	libEncode = map[string]*starlark.Builtin{
		"encode":        json.Module.Members["encode"].(*starlark.Builtin),
		"encode_indent": json.Module.Members["encode_indent"].(*starlark.Builtin),
	}
)

// json.decode(x, default=) refuses input nested deeper than MaxJSONDepth
// before the library's recursive decoder sees it.
func jsonDecode(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) > 0 {
		if s, ok := args[0].(starlark.String); ok {
			if at := jsonTooDeep(string(s)); at >= 0 {
				return nil, fmt.Errorf("%s: input nested deeper than %d levels at byte %d (sstar's limit on JSON nesting)", b.Name(), MaxJSONDepth, at)
			}
		}
	}
	return libDecode.CallInternal(t, args, kwargs)
}

// jsonTooDeep returns the offset of the first bracket that opens level
// MaxJSONDepth+1 in s, outside strings, or -1. Malformed input is left
// to the decoder to report.
func jsonTooDeep(s string) int {
	depth := 0
	inString := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			if depth++; depth > MaxJSONDepth {
				return i
			}
		case ']', '}':
			depth--
		}
	}
	return -1
}

// jsonEncoder makes json.encode and json.encode_indent, which refuse a
// value nested deeper than MaxJSONDepth before the library's recursive
// encoder walks it.
func jsonEncoder(name string) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	lib := libEncode[name]
	return func(t *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if len(args) > 0 && tooDeep(args[0], 0) {
			return nil, fmt.Errorf("%s: value nested deeper than %d levels (sstar's limit on JSON nesting)", b.Name(), MaxJSONDepth)
		}
		v, err := lib.CallInternal(t, args, kwargs)
		if s, ok := v.(starlark.String); ok && err == nil && strings.Contains(string(s), `\x`) {
			v = starlark.String(fixDEL(string(s)))
		}
		return v, err
	}
}

// fixDEL rewrites the escape \x7f, which go.starlark.net's encoder
// writes for the byte DEL (it quotes printable-looking ASCII with
// strconv.Quote) and which JSON does not have, as \u007f. Found by
// FuzzJSONDecode: json.decode(json.encode("\x7f")) failed.
func fixDEL(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			if strings.HasPrefix(s[i:], `\x7f`) {
				b.WriteString(`\u007f`)
				i += 3
				continue
			}
			b.WriteString(s[i : i+2]) // an escape: the next byte is not one's start
			i++
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// tooDeep reports whether v, at nesting level depth, has containers
// nested past MaxJSONDepth. It recurses at most MaxJSONDepth+1 levels. A
// value that contains itself is too deep (the library would refuse the
// cycle anyway). It visits only what the encoder would visit: the
// encoder's own output is as large as the walk.
func tooDeep(v starlark.Value, depth int) bool {
	switch v := v.(type) {
	case starlark.NoneType, starlark.Bool, starlark.Int, starlark.Float, starlark.String:
		return false
	case starlark.IterableMapping:
		if depth++; depth > MaxJSONDepth {
			return true
		}
		for _, kv := range v.Items() {
			if tooDeep(kv[1], depth) {
				return true
			}
		}
		return false
	case starlark.Iterable:
		if depth++; depth > MaxJSONDepth {
			return true
		}
		it := v.Iterate()
		defer it.Done()
		var x starlark.Value
		for it.Next(&x) {
			if tooDeep(x, depth) {
				return true
			}
		}
		return false
	case starlark.HasAttrs:
		if depth++; depth > MaxJSONDepth {
			return true
		}
		for _, name := range v.AttrNames() {
			x, err := v.Attr(name)
			if err == nil && x != nil && tooDeep(x, depth) {
				return true
			}
		}
		return false
	}
	return false
}
