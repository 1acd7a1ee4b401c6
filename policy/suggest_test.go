package policy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.starlark.net/syntax"

	"github.com/sstar-project/sstar/policy"
)

// The suggestion is the same whatever the order of the records, collapses
// a directory of many files, drops what another grant covers, keeps
// variable names and never their values.
func TestSuggest(t *testing.T) {
	var lines []string
	for i := range policy.SuggestDirFiles {
		lines = append(lines, fmt.Sprintf(`{"seq":%d,"run":"r1","event":"open","args":["/srv/many/f%d","r",0]}`, i+1, i))
	}
	lines = append(lines,
		`{"seq":20,"run":"r1","event":"open","args":["/srv/one.txt","r",0]}`,
		`{"seq":21,"run":"r2","event":"open","args":["/srv/out/a/b.txt","w",0]}`,
		`{"seq":22,"run":"r2","event":"os.mkdir","args":["/srv/out/a",493,-1]}`,
		`{"seq":23,"run":"r2","event":"subprocess.Popen","args":["/usr/bin/git",["git"],"/srv",{"GIT_TOKEN":"s3cret","PATH":"/usr/bin"}]}`,
		`{"seq":24,"run":"r2","event":"os.getenv","args":["HOME"]}`,
		`{"seq":25,"run":"r2","event":"sstar.open_code","args":["/srv/code/x.star"]}`,
		`{"seq":26,"run":"r2","event":"open","args":["relative","r",0]}`,
	)
	render := func(lines []string) string {
		s := policy.NewSuggestion()
		if err := s.Read(strings.NewReader(strings.Join(lines, "\n")+"\n"), "log"); err != nil {
			t.Fatal(err)
		}
		return s.String()
	}
	got := render(lines)
	rev := append([]string(nil), lines...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	if again := render(rev); again != got {
		t.Errorf("order changed the suggestion:\n%s\n---\n%s", got, again)
	}
	for _, want := range []string{
		`"/srv/many",  # 8 paths in it were read`,
		`"/srv/one.txt",`,
		"write = [\n        \"/srv/out\",\n    ],",
		`"/usr/bin/git",`,
		"env = [\n        \"GIT_TOKEN\",\n        \"HOME\",\n        \"PATH\",\n    ],",
		`# Left out, not an absolute clean path: "relative" (open)`,
		"from 14 actions of 2 runs",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("suggestion lacks %q:\n%s", want, got)
		}
	}
	for _, never := range []string{"s3cret", "/usr/bin\"\n", "/srv/code", "/srv/many/f"} {
		if strings.Contains(got, never) {
			t.Errorf("suggestion has %q:\n%s", never, got)
		}
	}
	if err := policy.NewSuggestion().Read(strings.NewReader("not json\n"), "bad.jsonl"); err == nil || !strings.Contains(err.Error(), "bad.jsonl:1: not a JSON Lines audit record") {
		t.Errorf("err = %v", err)
	}
}

// FuzzSuggest: whatever the logs hold (they are written by the runs
// being reviewed), Suggest does not crash, and what it suggests is a
// Starlark file that parses, with every path it read as a string in it,
// so no record can add code to the policy it suggests.
func FuzzSuggest(f *testing.F) {
	f.Add(`{"seq":1,"run":"r","event":"open","args":["/srv/a","r",0]}` + "\n" + `{"run":"r","event":"subprocess.Popen","args":["/bin/x",[],"/",{"K":1}]}`)
	f.Add(`{"event":"open","args":["/a\"),\nfail(1)#","r",0]}` + "\n" + `{"event":"os.rename","args":["/x/\n/y","/z"]}`)
	f.Add(`{"event":"glob.glob","args":["/srv/*/x"]}` + "\n" + `{"event":"os.getenv","args":["A\"B"]}`)
	f.Add(`{"event":"open","args":` + strings.Repeat("[", 20000) + `]}`)
	f.Fuzz(func(t *testing.T, log string) {
		s := policy.NewSuggestion()
		if err := s.Read(strings.NewReader(log), "log"); err != nil {
			return
		}
		out := s.String()
		file, err := syntax.Parse("suggested.star", out, 0)
		if err != nil {
			t.Fatalf("the suggestion does not parse: %v\n%s", err, out)
		}
		if len(file.Stmts) != 1 {
			t.Fatalf("the suggestion is %d statements, want the one policy.allow call:\n%s", len(file.Stmts), out)
		}
	})
}

// minimalPaths keeps the paths no other one covers, by directory, not by
// string prefix, and in time linear in the list: comparing every pair
// stalled on a log with many thousands of paths.
func TestMinimalPaths(t *testing.T) {
	got := policy.MinimalPaths([]string{"/a/b", "/a/b-c", "/a/b/c", "/a/b/c/d", "/x", "/x/y", "/z/w"})
	if want := []string{"/a/b", "/a/b-c", "/x", "/z/w"}; !slices.Equal(got, want) {
		t.Errorf("minimalPaths = %q, want %q", got, want)
	}
	if got := policy.MinimalPaths([]string{"/", "/etc", "/usr/bin/x"}); !slices.Equal(got, []string{"/"}) {
		t.Errorf("minimalPaths under / = %q", got)
	}
	var many []string
	for i := range 200_000 {
		many = append(many, fmt.Sprintf("/data/d%d/f%d", i%1000, i))
	}
	slices.Sort(many)
	if got := policy.MinimalPaths(many); len(got) != len(many) {
		t.Errorf("%d of %d distinct files kept", len(got), len(many))
	}
}
