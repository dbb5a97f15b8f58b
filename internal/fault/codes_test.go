package fault_test

import (
	"bufio"
	"go/ast"
	"go/constant"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shala-edu/shala/internal/modtest"
)

// emittedCodes returns each fault.Code constant of the module's packages
// (their non-test files) with where it is declared, and every place a
// string literal becomes a fault.Code outside a constant declaration (an
// untyped code: `fault.New(k, "OOPS", …)`).
func emittedCodes(t *testing.T) (codes map[string]string, untyped []string, root string) {
	t.Helper()
	m := modtest.Load(t, true)
	faultPath := m.Path + "/internal/fault"
	isCode := func(t types.Type) bool {
		n, ok := t.(*types.Named)
		return ok && n.Obj().Name() == "Code" && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == faultPath
	}
	// Another string type converted to fault.Code (a certificate's
	// verification problem becoming its code) makes its constants codes
	// too.
	named := func(t types.Type) string {
		if n, ok := t.(*types.Named); ok && n.Obj().Pkg() != nil {
			return n.Obj().Pkg().Path() + "." + n.Obj().Name()
		}
		return ""
	}
	asCodes := map[string]bool{}
	for _, p := range m.Packages {
		for _, f := range p.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				if call, ok := n.(*ast.CallExpr); ok && len(call.Args) == 1 {
					if tv := p.Info.Types[call.Fun]; tv.IsType() && isCode(tv.Type) {
						if from := named(p.Info.Types[call.Args[0]].Type); from != "" && from != faultPath+".Code" {
							asCodes[from] = true
						}
					}
				}
				return true
			})
		}
	}
	codes = map[string]string{}
	for _, p := range m.Packages {
		for id, obj := range p.Info.Defs {
			if c, ok := obj.(*types.Const); ok && (isCode(c.Type()) || asCodes[named(c.Type())]) {
				codes[constant.StringVal(c.Val())] = m.Position(id)
			}
		}
		for _, f := range p.Files {
			var consts []ast.Node // const declarations: where a literal may be a code
			ast.Inspect(f, func(n ast.Node) bool {
				if d, ok := n.(*ast.GenDecl); ok && d.Tok == token.CONST {
					consts = append(consts, d)
				}
				return true
			})
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || lit.Value == `""` || !isCode(p.Info.Types[lit].Type) {
					return true
				}
				if !slices.ContainsFunc(consts, func(d ast.Node) bool { return d.Pos() <= lit.Pos() && lit.End() <= d.End() }) {
					untyped = append(untyped, m.Position(lit)+": "+lit.Value)
				}
				return true
			})
		}
	}
	return codes, untyped, m.Root
}

// readmeRow is a row of the Error codes table: its first cell names one
// code or several (`A`, `B`).
var (
	readmeRow  = regexp.MustCompile("^\\| (`[A-Z][A-Z0-9_]+`(?:, `[A-Z][A-Z0-9_]+`)*) \\|")
	readmeCode = regexp.MustCompile("`([A-Z][A-Z0-9_]+)`")
)

// readmeCodes are the codes in the README's "Error codes" table.
func readmeCodes(t *testing.T, root string) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	codes := map[string]bool{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			in = strings.TrimSpace(strings.TrimLeft(line, "#")) == "Error codes"
			continue
		}
		if m := readmeRow.FindStringSubmatch(line); in && m != nil {
			for _, c := range readmeCode.FindAllStringSubmatch(m[1], -1) {
				codes[c[1]] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(codes) == 0 {
		t.Fatal(`README.md has no "Error codes" table`)
	}
	return codes
}

// TestReadmeListsEveryCode: every error code shala can emit is a typed
// fault.Code constant, and the README's contract lists exactly those.
func TestReadmeListsEveryCode(t *testing.T) {
	t.Parallel()
	codes, untyped, root := emittedCodes(t)
	t.Run("codes are typed constants", func(t *testing.T) {
		for _, u := range untyped {
			t.Errorf("%s: a string literal used as a fault.Code; declare `const CodeX fault.Code = ...` in the domain package", u)
		}
	})
	documented := readmeCodes(t, root)
	t.Run("README lists every code", func(t *testing.T) {
		var missing []string
		for code, where := range codes {
			if !documented[code] {
				missing = append(missing, code+" (declared at "+where+")")
			}
		}
		slices.Sort(missing)
		for _, m := range missing {
			t.Errorf("README.md Error codes lacks %s", m)
		}
	})
	t.Run("README lists no code the code cannot emit", func(t *testing.T) {
		for code := range documented {
			if _, ok := codes[code]; !ok {
				t.Errorf("README.md Error codes lists %s, which no fault.Code constant declares", code)
			}
		}
	})
}
