// Package modtest loads the module's own packages for tests that check
// rules over the whole tree — which package may import which, where SQL
// runs, which error codes exist: as `go list` describes them and, when
// asked, type-checked from source against the compiled export data of
// their dependencies (the build cache has them after a build).
package modtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Package is one package of the module (its non-test files).
type Package struct {
	Path string // import path
	Rel  string // path inside the module: "internal/sms"
	Dir  string
	// Imports are its direct imports, Deps everything it depends on;
	// the module's own packages by their Rel, others by import path.
	Imports, Deps []string
	// Files and Info are set when the module was loaded typed.
	Files []*ast.File
	Info  *types.Info
}

// Module is the module's packages.
type Module struct {
	Path, Root string
	Fset       *token.FileSet
	Packages   []*Package
}

type listed struct {
	ImportPath, Dir, Export string
	GoFiles, Imports, Deps  []string
	Standard                bool
	Module                  *struct{ Path string }
}

// Load lists the module's packages; typed also parses and type-checks
// them (a few seconds: it compiles what is not in the build cache).
func Load(t testing.TB, typed bool) *Module {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	m := &Module{Root: filepath.Dir(strings.TrimSpace(string(gomod))), Fset: token.NewFileSet()}
	args := []string{"list", "-deps", "-json=ImportPath,Dir,Export,GoFiles,Imports,Deps,Standard,Module", "./..."}
	if typed {
		args = append(args[:1], append([]string{"-export"}, args[1:]...)...)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = m.Root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	exports := map[string]string{}
	var own []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		exports[p.ImportPath] = p.Export
		if !p.Standard && p.Module != nil && strings.HasPrefix(p.Dir, m.Root) {
			own = append(own, p)
			m.Path = p.Module.Path
		}
	}
	if len(own) < 20 {
		t.Fatalf("go list found %d packages of the module: not the module", len(own))
	}
	imp := importer.ForCompiler(m.Fset, "gc", func(path string) (io.ReadCloser, error) {
		if exports[path] == "" {
			return nil, errors.New("no export data for " + path)
		}
		return os.Open(exports[path])
	})
	for _, l := range own {
		p := &Package{Path: l.ImportPath, Rel: m.Rel(l.ImportPath), Dir: l.Dir}
		for _, i := range l.Imports {
			p.Imports = append(p.Imports, m.Rel(i))
		}
		for _, d := range l.Deps {
			p.Deps = append(p.Deps, m.Rel(d))
		}
		if typed {
			for _, name := range l.GoFiles {
				f, err := parser.ParseFile(m.Fset, filepath.Join(l.Dir, name), nil, parser.SkipObjectResolution)
				if err != nil {
					t.Fatal(err)
				}
				p.Files = append(p.Files, f)
			}
			p.Info = &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Defs: map[*ast.Ident]types.Object{},
				Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
			if _, err := (&types.Config{Importer: imp}).Check(l.ImportPath, m.Fset, p.Files, p.Info); err != nil {
				t.Fatalf("type-check %s: %v", l.ImportPath, err)
			}
		}
		m.Packages = append(m.Packages, p)
	}
	return m
}

// Rel is importPath inside the module ("." for its root), or importPath
// itself for another module's package.
func (m *Module) Rel(importPath string) string {
	if importPath == m.Path {
		return "."
	}
	if r, ok := strings.CutPrefix(importPath, m.Path+"/"); ok {
		return r
	}
	return importPath
}

// Position is where n is, with its file relative to the module's root.
func (m *Module) Position(n ast.Node) string {
	pos := m.Fset.Position(n.Pos())
	if rel, err := filepath.Rel(m.Root, pos.Filename); err == nil {
		pos.Filename = rel
	}
	return pos.String()
}
