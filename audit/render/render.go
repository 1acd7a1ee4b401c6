// Package render turns Starlark values into plain Go values for sinks
// that write JSON or structured data.
package render

import (
	"encoding/json"
	"math"
	"strconv"

	"go.starlark.net/starlark"
)

// Args renders an event's arguments.
func Args(args starlark.Tuple) []any {
	out := make([]any, len(args))
	for i, v := range args {
		out[i] = Value(v)
	}
	return out
}

// Value renders v: None as null, bools, ints of any size as JSON numbers
// written exactly, finite floats as numbers and the others as the strings
// "nan", "+inf", "-inf", strings as strings, bytes as strings of their
// Starlark repr, lists and tuples as arrays, dicts as arrays of
// [key, value] pairs (keys need not be strings), and anything else as its
// Starlark string form.
func Value(v starlark.Value) any {
	return value(v, 0)
}

const maxDepth = 64

func value(v starlark.Value, depth int) any {
	if depth > maxDepth {
		return "..."
	}
	switch v := v.(type) {
	case starlark.NoneType:
		return nil
	case starlark.Bool:
		return bool(v)
	case starlark.Int:
		return json.Number(v.String())
	case starlark.Float:
		f := float64(v)
		switch {
		case math.IsNaN(f):
			return "nan"
		case math.IsInf(f, 1):
			return "+inf"
		case math.IsInf(f, -1):
			return "-inf"
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
	case starlark.String:
		return string(v)
	case starlark.Bytes:
		return v.String()
	case *starlark.List:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = value(v.Index(i), depth+1)
		}
		return out
	case starlark.Tuple:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = value(x, depth+1)
		}
		return out
	case *starlark.Dict:
		items := v.Items()
		out := make([]any, len(items))
		for i, kv := range items {
			out[i] = []any{value(kv[0], depth+1), value(kv[1], depth+1)}
		}
		return out
	case nil:
		return nil
	}
	return v.String()
}
