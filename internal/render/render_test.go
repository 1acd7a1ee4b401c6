package render_test

import (
	"crypto/sha256"
	"encoding/hex"
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

func list(vs ...starlark.Value) *starlark.List { return starlark.NewList(vs) }

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
		{starlark.MakeInt64(1 << 53), `9007199254740992`},
		{starlark.MakeInt64(1<<53 + 1), `{"$int":"9007199254740993"}`},
		{bigInt("123456789012345678901234567890"), `{"$int":"123456789012345678901234567890"}`},
		{bigInt("-9223372036854775809"), `{"$int":"-9223372036854775809"}`},
		{starlark.Float(1), `1.0`},
		{starlark.Float(math.Copysign(0, -1)), `-0.0`},
		{starlark.Float(2.5e-7), `2.5e-07`},
		{starlark.Float(1e100), `1e+100`},
		{starlark.Float(math.NaN()), `{"$float":"nan"}`},
		{starlark.Float(math.Inf(1)), `{"$float":"inf"}`},
		{starlark.Float(math.Inf(-1)), `{"$float":"-inf"}`},
		{starlark.String("nan"), `"nan"`},
		{starlark.String("a\"b\\c\n\t\x00\x7f<>&é"), `"a\"b\\c\n\t\u0000\u007f<>&é"`},
		{starlark.String("\xff\xfe"), `{"$str":"//4="}`},
		{starlark.Bytes("hi\x00"), `{"$bytes":"aGkA"}`},
		{list(starlark.MakeInt(1), starlark.String("x")), `[1,"x"]`},
		{starlark.Tuple{starlark.MakeInt(1), starlark.String("x")}, `[1,"x"]`},
		{starlark.Tuple{}, `[]`},
		{dict(starlark.String("curl"), starlark.MakeInt(1), starlark.String("b"), starlark.Tuple{starlark.None}), `{"curl":1,"b":[null]}`},
		{dict(starlark.MakeInt(1), starlark.String("one"), starlark.Tuple{starlark.None}, starlark.True), `{"$dict":[[1,"one"],[[null],true]]}`},
		{dict(starlark.String("$bytes"), starlark.String("x")), `{"$dict":[["$bytes","x"]]}`},
		{set, `{"$set":[1,"a"]}`},
		{starlark.NewBuiltin("len", nil), `{"$type":"builtin_function_or_method","$repr":"<built-in function len>"}`},
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
	if !strings.HasSuffix(got, `{"$truncated":"list"}`+strings.Repeat("]", render.MaxDepth+1)) {
		t.Errorf("self-containing list rendered as %.80s...", got)
	}
	if !json.Valid([]byte(got)) {
		t.Error("not valid JSON")
	}
}

func TestRoundTrip(t *testing.T) {
	set := starlark.NewSet(1)
	set.Insert(starlark.Float(0.5))
	args := starlark.Tuple{
		starlark.None, starlark.False, starlark.MakeInt(7), bigInt("-170141183460469231731687303715884105728"),
		starlark.Float(1), starlark.Float(0.1), starlark.Float(math.NaN()), starlark.Float(math.Inf(-1)),
		starlark.String(""), starlark.String("nan"), starlark.String("\xffbin"), starlark.Bytes("\xffbin"),
		list(list(starlark.MakeInt(1))),
		dict(starlark.MakeInt(1), starlark.String("int key"), starlark.String("1"), starlark.String("str key")),
		dict(starlark.String("b"), starlark.MakeInt(2), starlark.String("a"), starlark.MakeInt(1)),
		dict(starlark.Tuple{starlark.MakeInt(1), starlark.String("k")}, starlark.None),
		set,
	}
	data := render.AppendArgs(nil, args, 0)
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
	if again := render.AppendArgs(nil, back, 0); string(again) != string(data) {
		t.Errorf("rendered again: %s\nfirst: %s", again, data)
	}
	// The one distinction dropped: a tuple is an array, and comes back a list.
	tup, _ := render.Parse(render.AppendArgs(nil, starlark.Tuple{starlark.Tuple{starlark.MakeInt(1)}}, 0))
	if tup[0].Type() != "list" {
		t.Errorf("a tuple came back as %s", tup[0].Type())
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

// The obvious query works on a command's argv, as jq would run it.
func TestQueryable(t *testing.T) {
	argv := starlark.Tuple{starlark.String("curl"), starlark.String("-s")}
	env := dict(starlark.String("PATH"), starlark.String("/usr/bin"))
	data := render.AppendArgs(nil, starlark.Tuple{starlark.String("/usr/bin/curl"), argv, starlark.String("/w"), env}, 0)
	var args []any
	if err := json.Unmarshal(data, &args); err != nil {
		t.Fatal(err)
	}
	if args[1].([]any)[0] != "curl" || args[3].(map[string]any)["PATH"] != "/usr/bin" {
		t.Errorf("args[1][0] and args[3].PATH not plain JSON: %s", data)
	}
}

// A record has a bound: an argument that does not fit is replaced by a
// marker with its type, full length, hash and a prefix; the rest stays.
func TestBound(t *testing.T) {
	big := strings.Repeat("A", 10<<20)
	sum := sha256.Sum256([]byte(big))
	for _, max := range []int{1024, 3000, 8192} {
		data := render.AppendArgs(nil, starlark.Tuple{starlark.String("small"), starlark.String(big), starlark.MakeInt(3)}, max)
		if len(data) > max || !json.Valid(data) {
			t.Fatalf("max %d: %d bytes, valid %v", max, len(data), json.Valid(data))
		}
		var args []any
		json.Unmarshal(data, &args)
		m, _ := args[1].(map[string]any)["$omitted"].(map[string]any)
		if args[0] != "small" || args[2] != 3.0 || m["type"] != "string" || m["len"] != float64(10<<20) || m["sha256"] != hex.EncodeToString(sum[:]) || m["prefix"] != strings.Repeat("A", 32) {
			t.Fatalf("max %d: %s", max, data)
		}
	}
	// More arguments than even markers fit: {"$more":N} ends the array.
	many := make(starlark.Tuple, 100)
	for i := range many {
		many[i] = starlark.String(strings.Repeat("x", 100))
	}
	data := render.AppendArgs(nil, many, 2048)
	if len(data) > 2048 || !json.Valid(data) || !strings.HasSuffix(string(data), `,{"$more":85}]`) {
		t.Fatalf("100 arguments in 2048 bytes: %d bytes: %s", len(data), data)
	}
	// Every size around the bound: never over it, always valid JSON.
	for n := 900; n < 1100; n++ {
		s := strings.Repeat("\"", n/2) + strings.Repeat("é", n/4)
		data := render.AppendArgs(nil, starlark.Tuple{starlark.String(s), list(starlark.String(s), starlark.MakeInt(1))}, 1024)
		if len(data) > 1024 || !json.Valid(data) {
			t.Fatalf("n %d: %d bytes: %.200s", n, len(data), data)
		}
	}
}

// An int too large to print is recorded by its bit length, a prefix and
// a hash, without converting it to decimal (which takes seconds for a
// 67-million-bit int); the same marker whatever the bound.
func TestHugeInt(t *testing.T) {
	x := new(big.Int).Lsh(big.NewInt(3), 1<<26) // 2^67108864 * 3
	data := render.AppendArgs(nil, starlark.Tuple{starlark.MakeBigInt(x)}, 0)
	if !strings.HasPrefix(string(data), `[{"$omitted":{"type":"int","len":67108866,"sha256":"`) || !strings.HasSuffix(string(data), `","prefix":"0x0300000000000000"}}]`) {
		t.Fatalf("huge int: %s", data)
	}
	neg := render.AppendArgs(nil, starlark.Tuple{starlark.MakeBigInt(new(big.Int).Neg(x))}, 0)
	if !strings.Contains(string(neg), `"prefix":"-0x03`) || string(neg[:60]) == string(data[:60]) && string(neg) == string(data) {
		t.Fatalf("negative huge int: %s", neg)
	}
}

// A container too large for the bound: its element count, the hash of its
// rendering (capped: a value nested wide and deep costs bounded time) and
// the first bytes of the rendering.
func TestOmittedContainer(t *testing.T) {
	l := list()
	for i := range 10000 {
		l.Append(starlark.MakeInt(i))
	}
	data := render.AppendArgs(nil, starlark.Tuple{l}, 1024)
	if !strings.Contains(string(data), `{"$omitted":{"type":"list","len":10000,"sha256":"`) || !strings.Contains(string(data), `"prefix":"[0,1,2,3,`) {
		t.Fatalf("big list: %s", data)
	}
	// 2^32 leaves if rendered: x = [x, x] 32 times.
	x := starlark.Value(list())
	for range 32 {
		x = list(x, x)
	}
	data = render.AppendArgs(nil, starlark.Tuple{x}, 4096)
	if !strings.Contains(string(data), `"hashed":167772`) {
		t.Fatalf("wide and deep: %s", data)
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{`{}`, `[{"$tuple":1}]`, `[{"$x":1}]`, `[1] 2`, `[{"$dict":[[1]]}]`, `[{"$bytes":"!"}]`, `[{"$dict":[[{"a":1},2]]}]`, `[{"a":1,"a":2}]`, `[{"a":1,"$b":2}]`, `[{"$int":"x"}]`} {
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
		buf = render.AppendArgs(buf[:0], args, 4096)
	}
}

// FuzzParse reads arbitrary text as rendered arguments (logs are input an
// attacker may have written): no panic, and what parses renders back to
// something that parses to an equal value.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`[1,"a",[1.5,null],{"$dict":[[1,{"$bytes":"AA=="}]]},{"$float":"nan"},{"$set":[true]},{"k":{"$int":"99999999999999999999"}}]`))
	f.Add([]byte(`[{"$str":"//4="},{"$type":"function","$repr":"<f>"},{"$truncated":"list"},-0.0,1e400,{"$omitted":{"type":"str"}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		args, err := render.Parse(data)
		if err != nil {
			return
		}
		again, err := render.Parse(render.AppendArgs(nil, args, 0))
		if err != nil {
			t.Fatalf("rendering of %s does not parse: %v", data, err)
		}
		if eq, err := starlark.Equal(args, again); err == nil && !eq {
			t.Fatalf("%s: parsed %s, round trip %s", data, args, again)
		}
	})
}

// FuzzAppendArgs renders what parsed from arbitrary text under arbitrary
// bounds: always valid JSON, never over the bound (when it leaves room
// for the markers).
func FuzzAppendArgs(f *testing.F) {
	f.Add([]byte(`["a",[1,2,{"x":"yyyyyyyyyyyyyyyyyyyyyyyyyyyy"}],{"$bytes":"AAAAAAAAAAAAAAAA"}]`), 300)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		args, err := render.Parse(data)
		if err != nil || max < 0 || max > 1<<20 {
			return
		}
		max += render.MinBound
		out := render.AppendArgs(nil, args, max)
		if !json.Valid(out) || len(out) > max {
			t.Fatalf("max %d: %d bytes, valid %v: %s", max, len(out), json.Valid(out), out)
		}
	})
}

// Parse is bounded by MaxDepth too (a log line is input an attacker may
// have written): whatever AppendArgs writes parses back, and a line
// nested a million deep, in arrays, objects or wrappers, is refused with
// an error instead of recursing once per level.
func TestParseDepth(t *testing.T) {
	var deep starlark.Value = starlark.None
	for range render.MaxDepth + 10 {
		deep = list(deep)
	}
	if _, err := render.Parse(render.AppendArgs(nil, starlark.Tuple{deep}, 0)); err != nil {
		t.Fatalf("what AppendArgs writes at the cap does not parse: %v", err)
	}
	const n = 1_000_000
	for name, open := range map[string]string{"arrays": `[`, "objects": `{"k":`, "sets": `{"$set":[`} {
		line := strings.Repeat(open, n)
		_, err := render.Parse([]byte("[" + line))
		if err == nil || !strings.Contains(err.Error(), "render: nested too deeply") {
			t.Errorf("%s nested %d deep: err = %.200v", name, n, err)
		}
	}
}
