// Package deploy holds the operations files (Prometheus scrape config and
// alert rules, Grafana provisioning and dashboards, Vault init) and the test
// that keeps them honest: Grafana cannot run here, so every dashboard query
// must parse (checked with promtool) and use only metrics shala exports.
package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/shala-edu/shala/internal/analytics"
	"github.com/shala-edu/shala/internal/bbb"
	"github.com/shala-edu/shala/internal/blob"
	"github.com/shala-edu/shala/internal/eventlog"
	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/pdf"
	"github.com/shala-edu/shala/internal/pgcluster"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/server"
	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/vault"
)

// recorder collects what would be registered.
type recorder struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([a-z_:][a-z0-9_:]*)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return false }

// exported lists the metric names shala exports.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	r := &recorder{names: map[string]bool{"shala_build_info": true, "up": true}}
	server.NewMetrics(r)
	pool, err := pgxpool.New(t.Context(), "postgres://unused@127.0.0.1:1/x") // Describe never connects
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	queue.NewMetrics(r, pool)
	sms.NewMetrics(r)
	bbb.NewMetrics(r)
	export.NewMetrics(r)
	eventlog.NewMetrics(r)
	forms.NewMetrics(r)
	analytics.NewMetrics(r, pool)
	pdf.NewMetrics(r)
	vault.NewMetrics(r)
	blob.NewMetrics(r)
	return r.names
}

var metricRef = regexp.MustCompile(`\b(shala_[a-z0-9_]+|go_[a-z0-9_]+|process_[a-z0-9_]+|up)\b`)

func known(name string, names map[string]bool) bool {
	if names[name] || strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && names[base] {
			return true
		}
	}
	return false
}

type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func TestDashboardsUseOnlyExportedMetricsAndParse(t *testing.T) {
	t.Parallel()
	names := exported(t)
	files, _ := filepath.Glob("grafana/dashboards/*.json")
	if len(files) == 0 {
		t.Fatal("no dashboards")
	}
	var exprs []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: needs a uid and a title", f)
		}
		for _, p := range d.Panels {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no queries", f, p.Title)
			}
			for _, tg := range p.Targets {
				for _, m := range metricRef.FindAllString(tg.Expr, -1) {
					if !known(m, names) {
						t.Errorf("%s: panel %q uses %s, which shala does not export", f, p.Title, m)
					}
				}
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	promtool(t, exprs)
}

func TestAlertRulesUseOnlyExportedMetrics(t *testing.T) {
	t.Parallel()
	names := exported(t)
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			for _, m := range metricRef.FindAllString(r.Expr, -1) {
				if !known(m, names) {
					t.Errorf("alert %s uses %s, which shala does not export", r.Alert, m)
				}
			}
		}
	}
	bin := promtoolPath(t)
	for _, args := range [][]string{
		{"check", "rules", "prometheus/alerts.yml"},
		{"test", "rules", "prometheus/alerts_test.yml"},
	} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func promtoolPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if p, err := filepath.Abs("../.tools/bin/promtool"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("promtool not installed: run .ci/tools.sh (make test does)")
	return ""
}

// promtool checks that every expression parses, by checking them as
// recording rules.
func promtool(t *testing.T, exprs []string) {
	t.Helper()
	bin := promtoolPath(t)
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(e)
		fmt.Fprintf(&b, "      - record: dashboard:expr_%d\n        expr: %s\n", i, q)
	}
	f := filepath.Join(t.TempDir(), "exprs.yml")
	if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("dashboard queries do not parse: %v\n%s", err, out)
	}
}

func TestComposeStackIsComplete(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Volumes     []string       `yaml:"volumes"`
			Environment map[string]any `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"postgres", "hasura", "vault", "vault-init", "shala-migrate", "shala", "prometheus", "grafana", "minio"} {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("docker-compose.yml lacks service %s", s)
		}
	}
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil {
					t.Errorf("service %s mounts %s, which does not exist", name, src)
				}
			}
		}
	}
	h := c.Services["hasura"].Environment
	for _, k := range []string{"SHALA_URL", "SHALA_WEBHOOK_SECRET", "HASURA_GRAPHQL_JWT_SECRET", "PG_DATABASE_URL", "HASURA_GRAPHQL_UNAUTHORIZED_ROLE"} {
		if _, ok := h[k]; !ok {
			t.Errorf("hasura service lacks %s", k)
		}
	}
	// shala verifies apps' Hasura JWTs and mints moderators' quick-link ones
	// with the very key configuration Hasura verifies with; in the stack it
	// reaches shala through Vault (vault-init writes it to secret/shala).
	if jwt, init := h["HASURA_GRAPHQL_JWT_SECRET"], c.Services["vault-init"].Environment["HASURA_GRAPHQL_JWT_SECRET"]; jwt == nil || jwt != init {
		t.Errorf("vault-init gets HASURA_GRAPHQL_JWT_SECRET %v, hasura %v; want the same value", init, jwt)
	}
	script, err := os.ReadFile("vault/init.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), `hasura_jwt_secret="${HASURA_GRAPHQL_JWT_SECRET}"`) {
		t.Error("vault/init.sh does not write hasura_jwt_secret (shala's HASURA_GRAPHQL_JWT_SECRET) to secret/shala")
	}
	if got := c.Services["shala"].Environment["SHALA_PROMETHEUS_URL"]; got != "http://prometheus:9090" {
		t.Errorf("shala's SHALA_PROMETHEUS_URL is %v, want the stack's Prometheus (bbb_alerts reads it)", got)
	}
}

// TestComposePostgresLogsNoValues checks that the compose cluster logs
// failed statements the way every cluster shala starts does (no DETAIL, no
// statement text: they carry the values written).
func TestComposePostgresLogsNoValues(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Command any `yaml:"command"` // a list or a string
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	cmd := fmt.Sprint(c.Services["postgres"].Command)
	for k, v := range pgcluster.LogSettings() {
		if !strings.Contains(cmd, "-c "+k+"="+v) {
			t.Errorf("compose postgres command %q lacks -c %s=%s", cmd, k, v)
		}
	}
}
