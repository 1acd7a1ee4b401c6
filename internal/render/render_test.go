package render_test

import (
	"encoding/json"
	"math"
	"math/big"
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/sstar-project/sstar/internal/render"
)

func bigInt(s string) starlark.Value {
	n, _ := new(big.Int).SetString(s, 10)
	return starlark.MakeBigInt(n)
}

func dict(kv ...starlark.Value) *starlark.Dict {
	d := starlark.NewDict(len(kv) / 2)
	for i := 0; i < len(kv); i += 2 {
		d.SetKey(kv[i], kv[i+1])
	}
	return d
}

func TestAppendValue(t *testing.T) {
	set := starlark.NewSet(2)
	set.Insert(starlark.MakeInt(1))
	set.Insert(starlark.String("a"))
	for _, tc := range []struct {
		v    starlark.Value
		want string
	}{
		{starlark.None, `null`},
		{starlark.True, `true`},
		{starlark.MakeInt(-42), `-42`},
		{bigInt("123456789012345678901234567890"), `123456789012345678901234567890`},
		{bigInt("-9223372036854775809"), `-9223372036854775809`},
		{starlark.Float(1), `1.0`},
		{starlark.Float(-0.0), `0.0`},
		{starlark.Float(math.Copysign(0, -1)), `-0.0`},
		{starlark.Float(2.5e-7), `2.5e-07`},
		{starlark.Float(1e100), `1e+100`},
		{starlark.Float(math.NaN()), `{"float":"nan"}`},
		{starlark.Float(math.Inf(1)), `{"float":"inf"}`},
		{starlark.Float(math.Inf(-1)), `{"float":"-inf"}`},
		{starlark.String("nan"), `"nan"`},
		{starlark.String("a\"b\\c\n\t\x00\x7f<>&é"), `"a\"b\\c\n\t\u0000\u007f<>&é"`},
		{starlark.String("\xff\xfe"), `{"string":"//4="}`},
		{starlark.Bytes("hi\x00"), `{"bytes":"aGkA"}`},
		{starlark.NewList([]starlark.Value{starlark.MakeInt(1), starlark.String("x")}), `[1,"x"]`},
		{starlark.Tuple{starlark.MakeInt(1), starlark.String("x")}, `{"tuple":[1,"x"]}`},
		{starlark.Tuple{}, `{"tuple":[]}`},
		{dict(starlark.MakeInt(1), starlark.String("one"), starlark.Tuple{starlark.None}, starlark.True), `{"dict":[[1,"one"],[{"tuple":[null]},true]]}`},
		{set, `{"set":[1,"a"]}`},
		{starlark.NewBuiltin("len", nil), `{"type":"builtin_function_or_method","repr":"<built-in function len>"}`},
	} {
		got := string(render.AppendValue(nil, tc.v))
		if got != tc.want {
			t.Errorf("AppendValue(%s) = %s, want %s", tc.v, got, tc.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("AppendValue(%s) = %s: not valid JSON", tc.v, got)
		}
	}
}

func TestDepthCap(t *testing.T) {
	l := starlark.NewList(nil)
	l.Append(l) // a list that contains itself
	got := string(render.AppendValue(nil, l))
	if !strings.HasSuffix(got, `{"truncated":"list"}`+strings.Repeat("]", render.MaxDepth+1)) {
		t.Errorf("self-containing list rendered as %.80s...", got)
	}
	if !json.Valid([]byte(got)) {
		t.Error("not valid JSON")
	}
}

// TestRoundTrip checks the promise in the package comment: Parse gives
// back equal values, and different values never render alike.
func TestRoundTrip(t *testing.T) {
	set := starlark.NewSet(1)
	set.Insert(starlark.Float(0.5))
	args := starlark.Tuple{
		starlark.None, starlark.False, starlark.MakeInt(7), bigInt("-170141183460469231731687303715884105728"),
		starlark.Float(1), starlark.Float(0.1), starlark.Float(math.NaN()), starlark.Float(math.Inf(-1)),
		starlark.String(""), starlark.String("nan"), starlark.String("\xffbin"), starlark.Bytes("\xffbin"),
		starlark.NewList([]starlark.Value{starlark.Tuple{starlark.MakeInt(1)}}),
		starlark.Tuple{starlark.NewList([]starlark.Value{starlark.MakeInt(1)})},
		dict(starlark.MakeInt(1), starlark.String("int key"), starlark.String("1"), starlark.String("str key")),
		set,
	}
	data := render.AppendArgs(nil, args)
	back, err := render.Parse(data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", data, err)
	}
	if len(back) != len(args) {
		t.Fatalf("got %d args back, want %d", len(back), len(args))
	}
	for i := range args {
		if args[i].Type() != back[i].Type() {
			t.Errorf("arg %d: %s came back as %s", i, args[i].Type(), back[i].Type())
			continue
		}
		if eq, err := starlark.Equal(args[i], back[i]); err != nil || !eq {
			t.Errorf("arg %d: %s came back as %s", i, args[i], back[i])
		}
	}
	seen := map[string]int{}
	for i, v := range args {
		s := string(render.AppendValue(nil, v))
		if j, dup := seen[s]; dup {
			t.Errorf("args %d and %d both render as %s", j, i, s)
		}
		seen[s] = i
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{`{}`, `[{"tuple":1}]`, `[{"x":1}]`, `[1] 2`, `[{"dict":[[1]]}]`, `[{"bytes":"!"}]`, `[{"dict":[[[1],2]]}]`} {
		if v, err := render.Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%s) = %v, want an error", in, v)
		}
	}
}

func BenchmarkAppendArgs(b *testing.B) {
	args := starlark.Tuple{starlark.String("/etc/passwd"), starlark.String("r"), starlark.MakeInt(0)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = render.AppendArgs(buf[:0], args)
	}
}

// FuzzParse reads arbitrary text as rendered arguments (logs are input an
// attacker may have written): no panic, and what parses renders back to
// something that parses to an equal value.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`[1,"a",{"tuple":[1.5,null]},{"dict":[[1,{"bytes":"AA=="}]]},{"float":"nan"},{"set":[true]}]`))
	f.Add([]byte(`[{"string":"//4="},{"type":"function","repr":"<f>"},{"truncated":"list"},-0.0,1e400]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		args, err := render.Parse(data)
		if err != nil {
			return
		}
		again, err := render.Parse(render.AppendArgs(nil, args))
		if err != nil {
			t.Fatalf("rendering of %s does not parse: %v", data, err)
		}
		if eq, err := starlark.Equal(args, again); err == nil && !eq {
			t.Fatalf("%s: parsed %s, round trip %s", data, args, again)
		}
	})
}
