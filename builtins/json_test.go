package builtins_test

import (
	"encoding/json"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/builtins"
	"github.com/sstar-project/sstar/internal/render"
)

// FuzzJSONDecode feeds arbitrary text to sstar's json.decode: it returns
// a value or an error, never crashes or overflows the stack, refuses
// nesting past builtins.MaxJSONDepth, and what it returns encodes again,
// decodes to an equal value, and renders for a record within the bound.
func FuzzJSONDecode(f *testing.F) {
	for _, s := range []string{`{"a": [1, 2.5, "x", null, true]}`, `[[[[]]]]`, `"\"[["`, strings.Repeat("[", 1001), `{"a":{"b":{"c":[]}}}`, `1e400`, `-0`, `"\ud800"`} {
		f.Add(s)
	}
	json := builtins.Modules()["json"].(starlark.HasAttrs)
	decode, _ := json.Attr("decode")
	encode, _ := json.Attr("encode")
	f.Fuzz(func(t *testing.T, s string) {
		th := &starlark.Thread{}
		v, err := starlark.Call(th, decode, starlark.Tuple{starlark.String(s)}, nil)
		if err != nil {
			if strings.Contains(err.Error(), "nested deeper") && depth(s) <= builtins.MaxJSONDepth {
				t.Fatalf("refused %q as too deep: %v", s, err)
			}
			return
		}
		if depth(s) > builtins.MaxJSONDepth {
			t.Fatalf("accepted %d levels", depth(s))
		}
		out, err := starlark.Call(th, encode, starlark.Tuple{v}, nil)
		if err != nil {
			t.Fatalf("decoded %q to %s, which does not encode: %v", s, v, err)
		}
		again, err := starlark.Call(th, decode, starlark.Tuple{out}, nil)
		if err != nil {
			t.Fatalf("%s does not decode again: %v", out, err)
		}
		if eq, err := starlark.Equal(v, again); err != nil || !eq {
			t.Fatalf("%q: decoded %s, then %s", s, v, again)
		}
		rec := render.AppendArgs(nil, starlark.Tuple{v}, 4096)
		if len(rec) > 4096 || !jsonValid(rec) {
			t.Fatalf("rendered %q in %d bytes: %s", s, len(rec), rec)
		}
	})
}

func jsonValid(b []byte) bool { return json.Valid(b) }

// depth is how deeply s nests arrays and objects, outside strings.
func depth(s string) int {
	d, deepest, in := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case in && c == '\\':
			i++
		case in:
			in = c != '"'
		case c == '"':
			in = true
		case c == '[' || c == '{':
			d++
			deepest = max(deepest, d)
		case c == ']' || c == '}':
			d--
		}
	}
	return deepest
}
