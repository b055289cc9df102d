package state

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The DNS answer cache trusts an entry while CatalogGeneration stays the
// same, so a write to nodes, services or checks that does not move it
// would leave stale answers in DNS for good. Every such write must go
// through EnsureRegistration or Deregister (commitCatalog), or build a new
// database that reaches the store through replace. This test reads the
// package's source and fails when a function writes those tables from
// anywhere else, or when the writers are called from anywhere else: a new
// path must be looked at, and listed here once it moves the generation.
func TestCatalogWritesMoveTheGeneration(t *testing.T) {
	// The functions allowed to write the catalog's tables, and, for each,
	// the functions allowed to call it.
	writers := map[string][]string{
		"ensureNodeTxn":    {"ensureRegistrationTxn"},
		"ensureServiceTxn": {"ensureRegistrationTxn"},
		"ensureCheckTxn":   {"ensureRegistrationTxn"},
		"deleteServiceTxn": {"deregisterTxn"},
		"deleteCheckTxn":   {"deregisterTxn"},
		"deleteNodeTxn":    {"deregisterTxn"},
		// The service groups (services.go), under the writers above.
		"joinGroupTxn":          {"putServiceTxn"},
		"leaveGroupTxn":         {"putServiceTxn", "deleteServiceRowTxn", "deleteNodeServicesTxn"},
		"deleteNodeServicesTxn": {"deleteNodeTxn"},
		"insert":                {"readSnapshot", "Build"}, // serviceRows.insert, into a new database
		// New databases, installed by Restore (replace).
		"Build":        nil, // Builder.Build: the Consul import
		"readSnapshot": {"ReadSnapshot"},
	}
	callers := map[string][]string{
		"ensureRegistrationTxn": {"EnsureRegistration"},
		"deregisterTxn":         {"Deregister"},
		// Callers of the group writers that write nothing themselves.
		"putServiceTxn":       {"ensureServiceTxn"},
		"deleteServiceRowTxn": {"deleteServiceTxn"},
	}
	catalog := map[string]bool{"tableNodes": true, "tableServices": true, "tableChecks": true,
		"tableNodeServices": true, "tableServiceNames": true}
	writeOps := map[string]bool{"Insert": true, "Delete": true, "DeleteAll": true, "DeletePrefix": true}
	tableConst := regexp.MustCompile(`^table[A-Z]`) // the other tables' names

	fset := token.NewFileSet()
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}        // functions writing the catalog
	calledFrom := map[string][]string{} // function -> the functions calling it
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".go") || strings.HasSuffix(f.Name(), "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f.Name(), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				var name string
				switch fun := call.Fun.(type) {
				case *ast.SelectorExpr:
					name = fun.Sel.Name
					// A write to a table named by a variable could be any.
					if id, ok := call.Args[0].(*ast.Ident); ok && writeOps[name] && (catalog[id.Name] || !tableConst.MatchString(id.Name)) {
						written[fn.Name.Name] = true
					} else if sel, ok := call.Args[0].(*ast.SelectorExpr); ok && writeOps[name] && sel.Sel.Name == "Table" {
						written[fn.Name.Name] = true
					}
				case *ast.Ident:
					name = fun.Name
					if name == "setIndex" || name == "insert" {
						for _, a := range call.Args {
							if id, ok := a.(*ast.Ident); ok && catalog[id.Name] {
								written[fn.Name.Name] = true
							}
						}
					}
				}
				if name != "" && !slices.Contains(calledFrom[name], fn.Name.Name) {
					calledFrom[name] = append(calledFrom[name], fn.Name.Name)
				}
				return true
			})
		}
	}
	for _, fn := range slices.Sorted(maps.Keys(written)) {
		if _, ok := writers[fn]; !ok {
			t.Errorf("%s writes the catalog's tables (nodes, services or checks) outside EnsureRegistration and Deregister: make it move CatalogGeneration (commitCatalog), then list it here", fn)
		}
	}
	for fn, allowed := range writers {
		if !written[fn] {
			t.Errorf("%s is listed as a catalog writer but writes no catalog table: is the list stale?", fn)
		}
		for _, c := range calledFrom[fn] {
			if allowed != nil && !slices.Contains(allowed, c) {
				t.Errorf("%s writes the catalog and is called from %s, which may not move CatalogGeneration", fn, c)
			}
		}
	}
	for fn, allowed := range callers {
		for _, c := range calledFrom[fn] {
			if !slices.Contains(allowed, c) {
				t.Errorf("%s writes the catalog and is called from %s, which may not move CatalogGeneration", fn, c)
			}
		}
	}
	for _, fn := range []string{"EnsureRegistration", "Deregister"} {
		if !slices.Contains(calledFrom["commitCatalog"], fn) {
			t.Errorf("%s does not commit through commitCatalog", fn)
		}
	}
}
