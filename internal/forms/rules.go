package forms

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/xform"
)

// Rules compiles and evaluates business rules with expr
// (github.com/expr-lang/expr): expressions over a form's fields, evaluated
// on typed values, so `monthly_savings <= monthly_income` compares numbers,
// not strings. Top-level fields are variables by name; a repeat group is a
// list of objects named after it (`all(member, .member_age <= 120)`).
type Rules struct {
	mu       sync.Mutex
	programs map[string]*vm.Program // form id|version|expression → program
	// settings are forms' rules and receipts for the fast path.
	settings settingsCache
}

// NewRules returns an empty rule cache.
func NewRules() *Rules {
	return &Rules{programs: map[string]*vm.Program{}, settings: settingsCache{byID: map[string]cachedSettings{}, now: time.Now}}
}

// env is the compile-time environment of f: every variable with a value of
// its type.
func env(f *xform.Form) map[string]any {
	out := map[string]any{}
	repeats := map[string]map[string]any{}
	for _, fl := range f.Fields {
		if strings.Contains(fl.Path, "/meta/") {
			continue
		}
		if fl.Repeat != "" {
			name := repeatName(fl.Repeat)
			if repeats[name] == nil {
				repeats[name] = map[string]any{}
			}
			repeats[name][fl.Name] = zero(fl.Type)
			continue
		}
		out[fl.Name] = zero(fl.Type)
	}
	for name, fields := range repeats {
		out[name] = []map[string]any{fields}
	}
	return out
}

func repeatName(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }

func zero(t xform.Type) any {
	switch t {
	case xform.Int:
		return 0
	case xform.Decimal:
		return 0.0
	case xform.Select:
		return []string{}
	case xform.Date, xform.DateTime:
		return time.Time{}
	case xform.Boolean:
		return false
	default:
		return ""
	}
}

// values is the runtime environment of a submission's answers. Fields
// without an answer are absent (nil): a rule that needs them does not fire.
func values(f *xform.Form, answers []xform.Answer) map[string]any {
	out := map[string]any{}
	repeats := map[string]map[int]map[string]any{}
	counts := map[string]int{}
	for _, a := range answers {
		v := typed(a)
		if a.Field.Repeat == "" {
			out[a.Field.Name] = v
			continue
		}
		name := repeatName(a.Field.Repeat)
		if repeats[name] == nil {
			repeats[name] = map[int]map[string]any{}
		}
		i := a.Index[len(a.Index)-1]
		if repeats[name][i] == nil {
			repeats[name][i] = map[string]any{}
		}
		repeats[name][i][a.Field.Name] = v
		counts[name] = max(counts[name], i)
	}
	for name, items := range repeats {
		list := make([]map[string]any, 0, counts[name])
		for i := 1; i <= counts[name]; i++ {
			if items[i] != nil {
				list = append(list, items[i])
			}
		}
		out[name] = list
	}
	for _, r := range f.Repeats {
		if _, ok := out[repeatName(r)]; !ok {
			out[repeatName(r)] = []map[string]any{}
		}
	}
	return out
}

func typed(a xform.Answer) any {
	switch a.Field.Type {
	case xform.Int:
		return int(*a.Number)
	case xform.Decimal:
		return *a.Number
	case xform.Select:
		return a.Choices
	case xform.Date, xform.DateTime:
		return *a.Time
	case xform.Boolean:
		return *a.Bool
	default:
		return a.Raw
	}
}

// A rule's cost is capped when it is saved: at most MaxRuleNodes nodes in
// its syntax tree (a business rule is a comparison or two; the cap keeps a
// pasted program out), and when it runs, at most RuleMemoryBudget units of
// expr's memory accounting, which also bounds loops (each loop over a list
// charges the list's length: nested loops over a large repeat stop there
// with an error instead of running for minutes).
const (
	MaxRuleNodes     = 200
	RuleMemoryBudget = 100_000
)

// Compile checks expression against f's fields.
func (r *Rules) Compile(f *xform.Form, expression string) (*vm.Program, error) {
	key := f.ID + "|" + f.Version + "|" + expression
	r.mu.Lock()
	p := r.programs[key]
	r.mu.Unlock()
	if p != nil {
		return p, nil
	}
	p, err := expr.Compile(expression, expr.Env(env(f)), expr.AsBool(), expr.MaxNodes(MaxRuleNodes))
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.programs[key] = p
	r.mu.Unlock()
	return p, nil
}

// Metrics are the forms pipeline's Prometheus metrics.
type Metrics struct {
	ruleErrorsTotal    prometheus.Counter
	checkFailuresTotal prometheus.Counter
}

// NewMetrics registers the forms metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{ruleErrorsTotal: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "shala_form_rule_errors_total",
		Help: "Form rules that failed to evaluate on a response's values (recorded in response.rule_errors).",
	}), checkFailuresTotal: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "shala_form_response_check_failures_total",
		Help: "Responses inserted through Hasura whose rules and receipt could not be run (recorded on the submission row's errors).",
	})}
	reg.MustRegister(m.ruleErrorsTotal, m.checkFailuresTotal)
	return m
}

func (m *Metrics) checkFailed() {
	if m != nil {
		m.checkFailuresTotal.Inc()
	}
}

func (m *Metrics) ruleErrors(n int) {
	if m != nil {
		m.ruleErrorsTotal.Add(float64(n))
	}
}

// Rule is a stored business rule.
type Rule struct {
	ID                        uuid.UUID
	Name, Expression, Message string
}

// RuleError is a rule that failed while running on a response's values
// (e.g. int() of a text answer, a modulo by a zero answer, a loop over its
// budget). It is recorded on the response (response.rule_errors), logged
// and counted; the rule neither flags nor passes the response.
type RuleError struct {
	RuleID uuid.UUID `json:"rule_id"`
	Rule   string    `json:"rule"`
	Error  string    `json:"error"`
}

// Evaluate runs rules on a submission's answers and returns the violated
// ones and those that failed to run. A rule that cannot run on this version
// (a field it names is not in it) or on these values (a field left empty)
// is skipped.
func (r *Rules) Evaluate(f *xform.Form, answers []xform.Answer, rules []Rule) (broken []Rule, failed []RuleError) {
	if len(rules) == 0 {
		return nil, nil
	}
	vals := values(f, answers)
	for _, rule := range rules {
		p, err := r.Compile(f, rule.Expression)
		if err != nil {
			continue
		}
		machine := vm.VM{MemoryBudget: RuleMemoryBudget}
		out, err := machine.Run(p, vals)
		if err != nil && !answered(f, vals, p) {
			continue // a field it names was left empty
		}
		if err != nil {
			failed = append(failed, RuleError{RuleID: rule.ID, Rule: rule.Name, Error: truncateRunes(firstLine(err.Error()), 500)})
			continue
		}
		if ok, _ := out.(bool); !ok {
			broken = append(broken, rule)
		}
	}
	return broken, failed
}

// answered reports whether every form field the program names by itself
// (not a repeat member's field) has a value in vals.
func answered(f *xform.Form, vals map[string]any, p *vm.Program) bool {
	v := &identifiers{}
	node := p.Node()
	ast.Walk(&node, v)
	fields := env(f)
	for _, name := range v.names {
		if _, isField := fields[name]; isField {
			if _, ok := vals[name]; !ok {
				return false
			}
		}
	}
	return true
}

type identifiers struct{ names []string }

func (v *identifiers) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok {
		v.names = append(v.names, id.Value)
	}
}

func truncateRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// SaveRule stores a named rule for formID, replacing one of the same name.
// The expression must compile against the form's latest version, with the
// reason when it does not.
func (r *Rules) SaveRule(ctx context.Context, c *Catalog, formID, name, expression, message, by string) (uuid.UUID, error) {
	name, expression, message = strings.TrimSpace(name), strings.TrimSpace(expression), strings.TrimSpace(message)
	switch {
	case name == "":
		return uuid.Nil, fault.Invalidf("name", "must not be empty")
	case expression == "":
		return uuid.Nil, fault.Invalidf("expression", "must not be empty")
	case message == "":
		return uuid.Nil, fault.Invalidf("message", "must not be empty")
	}
	d, err := c.latestDataCollection(ctx, formID, "rules")
	if err != nil {
		return uuid.Nil, err
	}
	if _, err := r.Compile(d.Form, expression); err != nil {
		return uuid.Nil, fault.Invalidf("expression", "does not compile against %s version %s: %v", formID, d.Form.Version, firstLine(err.Error()))
	}
	var id uuid.UUID
	err = c.pool.QueryRow(ctx, `INSERT INTO form_rule (form_id, name, expression, message, created_by)
		VALUES ($1, $2, $3, $4, nullif($5, ''))
		ON CONFLICT (form_id, name) DO UPDATE SET expression = EXCLUDED.expression, message = EXCLUDED.message
		RETURNING id`, formID, name, expression, message, by).Scan(&id)
	r.settings.forget(formID)
	return id, postgres.Translate(err, "rule")
}

// latestDataCollection is the latest version of formID, a data-collection
// form: what's settings (rules, receipts) are checked against.
func (c *Catalog) latestDataCollection(ctx context.Context, formID, what string) (*Definition, error) {
	var version, purpose string
	err := c.pool.QueryRow(ctx, `SELECT v.version, f.purpose FROM form_version v JOIN form f ON f.id = v.form_id
		WHERE v.form_id = $1 ORDER BY v.registered_at DESC LIMIT 1`, formID).Scan(&version, &purpose)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.New(fault.NotFound, CodeUnknownForm, "form %q is not registered", formID)
	}
	if err != nil {
		return nil, postgres.Translate(err, "form")
	}
	if purpose != DataCollection {
		return nil, fault.Invalidf("formId", "%s apply to data-collection forms; %q is an assessment builder", what, formID)
	}
	return c.Get(ctx, formID, version)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
