package fault_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/constant"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// listed is a package as `go list -export -deps -json` describes it.
type listed struct {
	ImportPath, Dir, Export string
	GoFiles                 []string
	Standard                bool
	Module                  *struct{ Path string }
}

// emittedCodes type-checks every package of the module (its non-test
// files) and returns each fault.Code constant's value with where it is
// declared, and every place a string literal becomes a fault.Code outside a
// constant declaration (an untyped code: `fault.New(k, "OOPS", …)`).
func emittedCodes(t *testing.T) (codes map[string]string, untyped []string, root string) {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root = filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd := exec.Command("go", "list", "-export", "-deps", "-json=ImportPath,Dir,Export,GoFiles,Standard,Module", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	exports := map[string]string{}
	var module []listed
	modulePath := ""
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
		if !p.Standard && p.Module != nil && p.Dir != "" && strings.HasPrefix(p.Dir, root) {
			module = append(module, p)
			modulePath = p.Module.Path
		}
	}
	faultPath := modulePath + "/internal/fault"
	isCode := func(t types.Type) bool {
		n, ok := t.(*types.Named)
		return ok && n.Obj().Name() == "Code" && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == faultPath
	}

	fset := token.NewFileSet()
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		if exports[path] == "" {
			return nil, errors.New("no export data for " + path)
		}
		return os.Open(exports[path])
	})
	codes = map[string]string{}
	for _, p := range module {
		var files []*ast.File
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Defs: map[*ast.Ident]types.Object{}}
		if _, err := (&types.Config{Importer: imp}).Check(p.ImportPath, fset, files, info); err != nil {
			t.Fatalf("type-check %s: %v", p.ImportPath, err)
		}
		for id, obj := range info.Defs {
			if c, ok := obj.(*types.Const); ok && isCode(c.Type()) {
				codes[constant.StringVal(c.Val())] = fset.Position(id.Pos()).String()
			}
		}
		for _, f := range files {
			var consts []ast.Node // const declarations: where a literal may be a code
			ast.Inspect(f, func(n ast.Node) bool {
				if d, ok := n.(*ast.GenDecl); ok && d.Tok == token.CONST {
					consts = append(consts, d)
				}
				return true
			})
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || lit.Value == `""` || !isCode(info.Types[lit].Type) {
					return true
				}
				if !slices.ContainsFunc(consts, func(d ast.Node) bool { return d.Pos() <= lit.Pos() && lit.End() <= d.End() }) {
					untyped = append(untyped, fset.Position(lit.Pos()).String()+": "+lit.Value)
				}
				return true
			})
		}
	}
	return codes, untyped, root
}

var readmeCode = regexp.MustCompile("^\\| `([A-Z][A-Z0-9_]+)` \\|")

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
		if m := readmeCode.FindStringSubmatch(line); in && m != nil {
			codes[m[1]] = true
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
