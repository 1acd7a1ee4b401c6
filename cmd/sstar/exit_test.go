package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The exit statuses are one table in exit.go: --help prints it, and
// README.md's table must say the same, row for row.
func TestExitStatusDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "### Exit status\n")
	if !ok {
		t.Fatal("README.md has no \"### Exit status\" section")
	}
	row := regexp.MustCompile("(?m)^\\| (\\d+) \\| (.*) \\|$")
	rows := row.FindAllStringSubmatch(table[:strings.Index(table, "\n\n##")], -1)
	if len(rows) != len(exitCodes) {
		t.Fatalf("README.md lists %d exit statuses, exit.go %d", len(rows), len(exitCodes))
	}
	for i, r := range rows {
		code, _ := strconv.Atoi(r[1])
		if code != exitCodes[i].code || r[2] != exitCodes[i].meaning {
			t.Errorf("README.md row %d: %s %q; exit.go: %d %q", i, r[1], r[2], exitCodes[i].code, exitCodes[i].meaning)
		}
	}
	help := usageText()
	for _, e := range exitCodes {
		if !regexp.MustCompile(`(?m)^  ` + strconv.Itoa(e.code) + ` +\S`).MatchString(help) {
			t.Errorf("--help does not list exit status %d", e.code)
		}
	}
}
