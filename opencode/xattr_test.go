package opencode

import (
	"strings"
	"testing"
)

func TestXattrNamespace(t *testing.T) {
	for name, want := range map[string]string{
		DefaultXattrName:                   "user.",
		"user.example.code":                "user.",
		"trusted.sstar.sha256":             "trusted.",
		"user." + strings.Repeat("x", 250): "user.",
		"user." + strings.Repeat("x", 251): "", // 256 bytes
		"user.":                            "",
		"trusted.":                         "",
		"security.sstar":                   "",
		"system.x":                         "",
		"sstar.sha256":                     "",
		"USER.sstar":                       "",
		"user.a\x00b":                      "",
		"":                                 "",
	} {
		if got := XattrNamespace(name); got != want {
			t.Errorf("XattrNamespace(%q) = %q, want %q", name, got, want)
		}
	}
}
