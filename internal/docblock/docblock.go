// Package docblock gives tests the configuration files the documentation
// shows, so that what a page tells an operator to write is what the
// tests run: a test takes the block, puts its own addresses and paths
// in place of the page's (with Replace), and starts the daemon with it.
//
// A block is a fenced code block of a page in docs/ whose first line is
// a comment naming the file, such as "# central: /etc/audit/auditd.conf";
// Find looks a block up by that line.
package docblock

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Dir is the repository's docs directory.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "docs")
}

// Find returns the one fenced block of docs/page whose first line is
// first, with that line. It fails the test if there is none, or more
// than one.
func Find(t testing.TB, page, first string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(Dir(), page))
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	var cur *strings.Builder
	for _, l := range strings.SplitAfter(string(data), "\n") {
		trimmed := strings.TrimSpace(l)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = new(strings.Builder)
		case cur != nil && trimmed == "```":
			if text := cur.String(); strings.HasPrefix(text, first+"\n") {
				found = append(found, text)
			}
			cur = nil
		case cur != nil:
			cur.WriteString(l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("docs/%s: %d fenced blocks begin with %q, want 1", page, len(found), first)
	}
	return found[0]
}

// Replace returns block with each old string replaced by its new one
// (old, new, old, new, ...), failing the test if an old one is not in
// it: a page edited so that the test's replacement no longer applies
// would otherwise run the page's address or path.
func Replace(t testing.TB, block string, oldnew ...string) string {
	t.Helper()
	for i := 0; i+1 < len(oldnew); i += 2 {
		if !strings.Contains(block, oldnew[i]) {
			t.Fatalf("the documented block has no %q to replace:\n%s", oldnew[i], block)
		}
	}
	return strings.NewReplacer(oldnew...).Replace(block)
}
