package forms_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/promtest"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRuleThatFailsAtRunTimeIsRecordedLoggedAndCounted: a rule that
// explodes on a response's values is neither a violation nor silently
// skipped: the response records it, the log names the rule (not the
// values), and a counter counts it.
func TestRuleThatFailsAtRunTimeIsRecordedLoggedAndCounted(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var logs lockedBuffer
	reg := prometheus.NewRegistry()
	metrics := forms.NewMetrics(reg)
	f.pipeline.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	f.pipeline.Metrics = metrics
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	forms.SetRulesClock(f.rules, func() time.Time { return now })
	for name, expression := range map[string]string{
		"savings":     "monthly_savings <= monthly_income",                   // runs and holds
		"income_code": "int(local_word_for_water) >= 0",                      // int("पाणी")
		"per_room":    "household_size % (rooms - 3) == 0",                   // rooms is 3: modulo by zero
		"nested":      "all(member, {all(1..1000, {all(1..1000, {true})})})", // over the memory budget
	} {
		if _, err := f.rules.SaveRule(ctx, f.catalog, "household_survey", name, expression, "message "+name, "admin-1"); err != nil {
			t.Fatalf("save %s: %v", name, err)
		}
	}
	res, err := f.pipeline.Receive(ctx, forms.Input{XML: household(t), Source: "openrosa"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Flags) != 0 {
		t.Errorf("flags %v, want none: a rule that failed is not a violation", res.Flags)
	}
	var flagged bool
	var raw []byte
	if err := f.pool.QueryRow(ctx, `SELECT flagged, rule_errors FROM response WHERE id = $1`, *res.ResponseID).Scan(&flagged, &raw); err != nil {
		t.Fatal(err)
	}
	var recorded []forms.RuleError
	if err := json.Unmarshal(raw, &recorded); err != nil {
		t.Fatalf("rule_errors %s: %v", raw, err)
	}
	got := map[string]string{}
	for _, e := range recorded {
		got[e.Rule] = e.Error
	}
	if flagged || len(got) != 3 || got["income_code"] == "" || !strings.Contains(got["per_room"], "divide by zero") ||
		!strings.Contains(got["nested"], "memory budget") {
		t.Errorf("flagged %v, rule_errors %v; want income_code, per_room (divide by zero), nested (memory budget)", flagged, got)
	}
	if n := promtest.Value(t, reg, "shala_form_rule_errors_total", nil); n != 3 {
		t.Errorf("shala_form_rule_errors_total = %v, want 3", n)
	}
	log := logs.String()
	for _, rule := range []string{"income_code", "per_room", "nested"} {
		if !strings.Contains(log, `"rule":"`+rule+`"`) {
			t.Errorf("log does not name rule %s:\n%s", rule, log)
		}
	}
	if strings.Contains(log, "पाणी") {
		t.Errorf("log quotes an answer:\n%s", log)
	}

	// A response whose rules all run has no rule_errors. The rules are
	// deleted behind the pipeline's back (as through Hasura): they apply
	// once the fast path's cached settings are SettingsTTL old.
	if _, err := f.pool.Exec(ctx, `DELETE FROM form_rule WHERE name <> 'savings'`); err != nil {
		t.Fatal(err)
	}
	now = now.Add(forms.SettingsTTL)
	res, err = f.pipeline.Receive(ctx, forms.Input{XML: household(t, firstInstance, "uuid:0b7e2c4a-1d2f-4e3a-9b8c-7d6e5f4a3b2c"), Source: "openrosa"})
	if err != nil {
		t.Fatal(err)
	}
	if n := f.count(`SELECT count(*) FROM response WHERE id = $1 AND rule_errors IS NULL`, *res.ResponseID); n != 1 {
		t.Errorf("a response whose rules all ran has rule_errors set")
	}
}

func TestRuleCostIsCappedWhenSaved(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	long := strings.Repeat("monthly_income + ", forms.MaxRuleNodes) + "0 > 0"
	_, err := f.rules.SaveRule(context.Background(), f.catalog, "household_survey", "long", long, "x", "admin-1")
	if fault.As(err).Field != "expression" || !strings.Contains(err.Error(), "nodes") {
		t.Errorf("a %d-node rule: got %v, want a refusal on expression about its size", forms.MaxRuleNodes*2, err)
	}
}
