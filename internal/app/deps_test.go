package app_test

import (
	"go/ast"
	"go/types"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shala-edu/shala/internal/modtest"
)

// The dependency rules of the module: which packages may import what. A
// package is named by its path inside the module; "x/..." is x and every
// package below it. A newcomer's package lands in the right group by its
// path: anything not listed as an edge or a protocol package is a domain
// package and gets the strictest rules.
var (
	// Edge packages turn HTTP requests, Hasura deliveries and job runs into
	// calls of the domain, and wire everything together: they may import
	// anything.
	edge = []string{
		"actions",          // one maker per Hasura action
		"triggers",         // one maker per event trigger or cron
		"internal/server",  // NewServer, routes.go: the HTTP surface
		"internal/app/...", // the composition root (and apptest)
		"internal/jobs",    // every River worker and periodic job
		"internal/openrosa",
		"internal/web/...", // public non-Hasura endpoints
		"cmd/...",
		"bench/...",
		"e2e/...",
	}
	// Protocol packages speak one outside protocol — as a client, as a
	// server, or as the local server tests use (their *test packages) — and
	// so may import net/http. They know nothing of shala's HTTP surface.
	protocol = []string{
		"hasura",            // Hasura's wire format: payloads, session, the action-error writer
		"internal/metadata", // Hasura's metadata format, checked against the router
		"internal/sms/cdac/...", "internal/sms/twilio/...",
		"internal/vault/...",     // Vault's HTTP API
		"internal/analytics/...", // PostHog
		"internal/auth/...",      // JWT verification, jwk_url fetched over HTTPS
		"internal/bbb/...",       // BigBlueButton's API
		"internal/sheets/...",    // Google Sheets' API
		"internal/httperr",       // fault kinds as HTTP statuses, per-route error writers
		"internal/ratelimit",     // per-IP limiting middleware
		"internal/slowread",      // upload bodies read under a floor rate (HTTP middleware)
	}
)

// A rule forbids the packages it applies to some imports.
type rule struct {
	name string
	// applies reports whether the rule binds a package.
	applies func(pkg string) bool
	// forbidden are the packages (patterns, module-relative for the
	// module's own) they must not import.
	forbidden []string
	// transitive forbids reaching them through any chain of imports too;
	// otherwise only direct imports count (libraries may use net/http).
	transitive bool
}

var rules = []rule{
	{
		// The domain holds types, rules and store code: no HTTP, no Hasura
		// wire format, no inbox — so it can be called from an action, a
		// trigger, a job, a test or a command alike, and a Hasura change
		// never reaches it.
		name:       "domain packages import neither hasura nor internal/inbox, even indirectly",
		applies:    func(p string) bool { return !in(p, edge) && !in(p, protocol) && p != "internal/inbox" },
		forbidden:  []string{"hasura", "internal/inbox"},
		transitive: true,
	},
	{
		name:      "domain packages do not import net/http",
		applies:   func(p string) bool { return !in(p, edge) && !in(p, protocol) },
		forbidden: []string{"net/http/..."},
	},
	{
		// The inbox makes deliveries exactly-once; what a delivery looks
		// like on Hasura's wire is the edge's business.
		name:       "internal/inbox does not import hasura",
		applies:    func(p string) bool { return p == "internal/inbox" },
		forbidden:  []string{"hasura"},
		transitive: true,
	},
	{
		// Protocol packages are used by the edge and the domain; importing
		// the inbox or Hasura's format would drag the edge into them.
		name:       "protocol packages import neither internal/inbox nor (but for hasura itself) hasura",
		applies:    func(p string) bool { return in(p, protocol) && p != "hasura" },
		forbidden:  []string{"hasura", "internal/inbox"},
		transitive: true,
	},
	{
		// Dependencies point one way: edges use everything below them,
		// nothing below uses an edge.
		name:       "only edge packages import edge packages",
		applies:    func(p string) bool { return !in(p, edge) },
		forbidden:  edge,
		transitive: true,
	},
}

// in reports whether pkg matches one of patterns.
func in(pkg string, patterns []string) bool {
	for _, p := range patterns {
		if base, ok := strings.CutSuffix(p, "/..."); ok {
			if pkg == base || strings.HasPrefix(pkg, base+"/") {
				return true
			}
		} else if pkg == p {
			return true
		}
	}
	return false
}

// TestDependencyRules fails when a package imports what its group may not
// (see rules above). Add a package to edge or protocol only when it truly is
// one; say why next to it.
func TestDependencyRules(t *testing.T) {
	t.Parallel()
	m := modtest.Load(t, false)
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			for _, p := range m.Packages {
				if !r.applies(p.Rel) {
					continue
				}
				imports, verb := p.Imports, "imports"
				if r.transitive {
					imports, verb = p.Deps, "depends on"
				}
				for _, imp := range imports {
					if in(imp, r.forbidden) && imp != p.Rel {
						t.Errorf("%s %s %s", p.Rel, verb, imp)
					}
				}
			}
		})
	}
}

// TestDependencyRulesCatchBreaks checks the rules against imports that break
// them: a rule that cannot fail protects nothing.
func TestDependencyRulesCatchBreaks(t *testing.T) {
	t.Parallel()
	broken := func(pkg, imp string) []string {
		var names []string
		for _, r := range rules {
			if r.applies(pkg) && in(imp, r.forbidden) {
				names = append(names, r.name)
			}
		}
		return names
	}
	for _, tt := range []struct{ pkg, imp string }{
		{"internal/sms", "internal/inbox"},
		{"internal/ping", "hasura"},
		{"internal/exam", "net/http"},
		{"internal/inbox", "hasura"},
		{"internal/forms", "internal/server"},
		{"internal/vault", "internal/inbox"},
	} {
		if got := broken(tt.pkg, tt.imp); len(got) == 0 {
			t.Errorf("%s importing %s: no rule broken, want one", tt.pkg, tt.imp)
		}
	}
	for _, tt := range []struct{ pkg, imp string }{
		{"triggers", "internal/inbox"},
		{"internal/sms/cdac", "net/http"},
		{"internal/forms", "github.com/jackc/pgx/v5"},
		{"internal/app", "internal/server"},
	} {
		if got := broken(tt.pkg, tt.imp); len(got) != 0 {
			t.Errorf("%s importing %s: broke %v, want no rule broken", tt.pkg, tt.imp, got)
		}
	}
}

// Handler packages answer requests; their SQL lives in the store code of
// the domain package they call, never in a handler.
var handlers = []string{"actions", "triggers", "internal/server", "internal/openrosa", "internal/web/...",
	"internal/sms/twilio", "internal/bbb/...", "hasura"}

// sqlMethods are the pgx calls that run SQL (on a pool, a connection, a
// transaction); sqlFuncs the pgx functions that do.
var (
	sqlMethods = []string{"Exec", "Query", "QueryRow", "SendBatch", "CopyFrom", "Begin", "BeginTx"}
	sqlFuncs   = []string{"BeginFunc", "BeginTxFunc"}
)

// TestHandlersRunNoSQL fails when a handler package calls pgx to run SQL:
// a handler that needs a row calls its domain package's store code.
// (Passing a pool on to a store is allowed.)
func TestHandlersRunNoSQL(t *testing.T) {
	t.Parallel()
	m := modtest.Load(t, true)
	for _, p := range m.Packages {
		if !in(p.Rel, handlers) {
			continue
		}
		for _, f := range p.Files {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if runsSQL(p.Info, sel) {
					t.Errorf("%s: %s runs SQL in a handler package; move it to the store code of its domain package", m.Position(call), sel.Sel.Name)
				}
				return true
			})
		}
	}
}

// runsSQL reports whether sel is a pgx method or function that runs SQL.
func runsSQL(info *types.Info, sel *ast.SelectorExpr) bool {
	fromPgx := func(pkg *types.Package) bool {
		return pkg != nil && strings.HasPrefix(pkg.Path(), "github.com/jackc/pgx/v5")
	}
	if s, ok := info.Selections[sel]; ok && s.Kind() == types.MethodVal {
		return slices.Contains(sqlMethods, sel.Sel.Name) && fromPgx(s.Obj().Pkg())
	}
	if fn, ok := info.Uses[sel.Sel].(*types.Func); ok {
		return slices.Contains(sqlFuncs, fn.Name()) && fromPgx(fn.Pkg())
	}
	return false
}

// TestReadmeLayoutListsEveryPackage: the README's Layout section names
// every Go package of the module, so a newcomer can hold it against the
// tree.
func TestReadmeLayoutListsEveryPackage(t *testing.T) {
	t.Parallel()
	m := modtest.Load(t, false)
	readme, err := os.ReadFile(filepath.Join(m.Root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no ## Layout section")
	}
	if end := strings.Index(layout, "\n## "); end >= 0 {
		layout = layout[:end]
	}
	for _, p := range m.Packages {
		if !strings.Contains(layout, "`"+p.Rel+"`") && !strings.Contains(layout, "`"+p.Rel+"/`") {
			t.Errorf("README.md's Layout does not name %s", p.Rel)
		}
	}
}
