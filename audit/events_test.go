package audit_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"

	"github.com/sstar-project/sstar/audit"
)

// The Specs and the table are separate static data (so that nothing runs
// at start-up to build them): every Spec declared in events.go must be in
// the table, once, in the order declared.
func TestTableListsEverySpec(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "events.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	ast.Inspect(f, func(n ast.Node) bool {
		u, ok := n.(*ast.UnaryExpr)
		if !ok || u.Op != token.AND {
			return true
		}
		lit, ok := u.X.(*ast.CompositeLit)
		if !ok {
			return true
		}
		if id, ok := lit.Type.(*ast.Ident); !ok || id.Name != "Spec" {
			return true
		}
		for _, e := range lit.Elts {
			if kv, ok := e.(*ast.KeyValueExpr); ok && kv.Key.(*ast.Ident).Name == "Name" {
				name, err := strconv.Unquote(kv.Value.(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				declared = append(declared, name)
			}
		}
		return true
	})
	table := audit.Table()
	if len(declared) < 20 || len(table) != len(declared) {
		t.Fatalf("events.go declares %d Specs, the table has %d", len(declared), len(table))
	}
	for i, s := range table {
		if s.Name != declared[i] {
			t.Fatalf("table entry %d is %s, events.go declares %s there", i, s.Name, declared[i])
		}
	}
}
