package config_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/vault"
	"github.com/shala-edu/shala/internal/vault/vaulttest"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func openVault(addr, token string) (config.SecretReader, error) { return vault.New(addr, token) }

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(context.Background(), env(nil), openVault)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.SMSProvider != "log" || c.ShutdownTimeout != 25*time.Second || c.MaxBodyBytes != 1<<20 || c.QueueWorkers != 50 {
		t.Errorf("defaults: %+v", c)
	}
	if err := c.ValidateServe(); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || !strings.Contains(err.Error(), "SHALA_WEBHOOK_SECRET") {
		t.Errorf("ValidateServe without database and secret: %v", err)
	}
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	c, err := config.Load(context.Background(), env(map[string]string{
		"SHALA_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7,2001:db8::/32, ::ffff:198.51.100.4, ::ffff:172.16.0.0/108",
	}), openVault)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("198.51.100.4/32"),
		netip.MustParsePrefix("172.16.0.0/12"),
	}
	if !slices.Equal(c.TrustedProxies, want) {
		t.Errorf("got %v, want %v", c.TrustedProxies, want)
	}
	if c, err = config.Load(context.Background(), env(nil), openVault); err != nil || c.TrustedProxies != nil {
		t.Errorf("unset: got %v (%v), want none", c.TrustedProxies, err)
	}
	for _, tt := range []struct{ in, want string }{
		{"balancer.internal", `got "balancer.internal"`},
		{"10.0.0.1,", "got an empty item (a stray comma?)"},
		{"10.1.2.3/8", `"10.1.2.3/8" has bits set past its /8: did you mean 10.0.0.0/8, or 10.1.2.3/32 for one address?`},
		{"0.0.0.0/0", `"0.0.0.0/0" trusts every address`},
		{"::/0", `"::/0" trusts every address`},
		{"fe80::1%eth0", `got "fe80::1%eth0"`},
		{"::ffff:0.0.0.0/96", `"::ffff:0.0.0.0/96" trusts every address`},
		{"::ffff:10.0.0.0/95", `"::ffff:10.0.0.0/95": an IPv4-mapped prefix needs at least /96`},
		{"::ffff:10.1.2.3/104", `"::ffff:10.1.2.3/104" has bits set past its /8: did you mean 10.0.0.0/8, or 10.1.2.3/32 for one address?`},
	} {
		_, err := config.Load(context.Background(), env(map[string]string{"SHALA_TRUSTED_PROXIES": tt.in}), openVault)
		if err == nil || !strings.Contains(err.Error(), "SHALA_TRUSTED_PROXIES: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want an error naming the variable and saying %s", tt.in, err, tt.want)
		}
	}
}

func TestEveryBadValueIsReportedByName(t *testing.T) {
	t.Parallel()
	_, err := config.Load(context.Background(), env(map[string]string{
		"SHALA_SMS_PROVIDER":     "pigeon",
		"SHALA_SHUTDOWN_TIMEOUT": "soon",
		"SHALA_QUEUE_WORKERS":    "many",
		"SHALA_MAX_BODY_BYTES":   "10",
	}), openVault)
	if err == nil {
		t.Fatal("got nil error")
	}
	for _, want := range []string{
		`SHALA_SMS_PROVIDER: want one of log, cdac, twilio, got "pigeon"`,
		`SHALA_SHUTDOWN_TIMEOUT: want a duration`,
		`SHALA_QUEUE_WORKERS: want an integer, got "many"`,
		`SHALA_MAX_BODY_BYTES: want at least 1024, got 10`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestSecretsFromVaultOverrideEnvironment(t *testing.T) {
	t.Parallel()
	v := vaulttest.New(t, "root-token")
	v.Put("secret", "shala", map[string]any{
		"webhook_secret": "from-vault-0123456789",
		"database_url":   "postgres://shala:vaultpw@db:5432/shala",
	})
	c, err := config.Load(context.Background(), env(map[string]string{
		"VAULT_ADDR":           v.URL,
		"VAULT_TOKEN":          "root-token",
		"SHALA_WEBHOOK_SECRET": "from-env-0123456789",
		"SHALA_POSTHOG_KEY":    "phc_env",
	}), openVault)
	if err != nil {
		t.Fatal(err)
	}
	if c.WebhookSecret.Reveal() != "from-vault-0123456789" || c.DatabaseURL.Reveal() != "postgres://shala:vaultpw@db:5432/shala" {
		t.Errorf("vault values not applied: secret from %s", c.Sources["SHALA_WEBHOOK_SECRET"])
	}
	if c.PostHogKey.Reveal() != "phc_env" || c.Sources["SHALA_POSTHOG_KEY"] != "env" || c.Sources["SHALA_WEBHOOK_SECRET"] != "vault" {
		t.Errorf("sources %v: want posthog from env (fallback), webhook secret from vault", c.Sources)
	}
}

func TestVaultProblemsStopStartup(t *testing.T) {
	t.Parallel()
	v := vaulttest.New(t, "root-token")
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"wrong token", map[string]string{"VAULT_ADDR": v.URL, "VAULT_TOKEN": "nope"}, "permission denied"},
		{"no token", map[string]string{"VAULT_ADDR": v.URL}, "VAULT_TOKEN: required"},
		{"missing secret", map[string]string{"VAULT_ADDR": v.URL, "VAULT_TOKEN": "root-token", "SHALA_VAULT_KV_PATH": "other"}, "secret not found"},
		{"unreachable", map[string]string{"VAULT_ADDR": "http://127.0.0.1:1", "VAULT_TOKEN": "t"}, "SHALA_VAULT_KV_PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(context.Background(), env(tt.env), openVault)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestSecretsAreMaskedWhenLoggedOrPrinted(t *testing.T) {
	t.Parallel()
	c, err := config.Load(context.Background(), env(map[string]string{
		"DATABASE_URL":         "postgres://shala:hunter2@db/shala",
		"SHALA_WEBHOOK_SECRET": "very-secret-value-123",
	}), openVault)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "config", c)
	fmt.Fprintf(&buf, "%v %+v %s", c.WebhookSecret, c.DatabaseURL, c.WebhookSecret)
	if strings.Contains(buf.String(), "hunter2") || strings.Contains(buf.String(), "very-secret") {
		t.Errorf("secret leaked: %s", buf.String())
	}
	if !strings.Contains(buf.String(), `"SHALA_WEBHOOK_SECRET":"****"`) {
		t.Errorf("log lacks the masked secret: %s", buf.String())
	}
}

func TestReadmeDocumentsEveryVariable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range config.Table() {
		if !strings.Contains(string(readme), "`"+v.Name+"`") {
			t.Errorf("README.md does not document %s", v.Name)
		}
	}
}

// TestBBBTimeoutFitsItsCallers: a BBB call's timeout must fit what waits on
// it — the lesson sweep starts a check only while 8 s are left, a connection
// check makes up to three calls within a job's 20 s, a start up to three
// servers within Hasura's 30 s — and 0 would mean no timeout at all.
func TestBBBTimeoutFitsItsCallers(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"0s", "7s", "1m"} {
		c, err := config.Load(context.Background(), env(map[string]string{"SHALA_BBB_TIMEOUT": v}), openVault)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ValidateServe(); err == nil || !strings.Contains(err.Error(), "SHALA_BBB_TIMEOUT") {
			t.Errorf("SHALA_BBB_TIMEOUT=%s: ValidateServe says %v; want it named", v, err)
		}
	}
	for _, v := range []string{"", "2s", "6s"} {
		c, err := config.Load(context.Background(), env(map[string]string{"SHALA_BBB_TIMEOUT": v}), openVault)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ValidateServe(); err != nil && strings.Contains(err.Error(), "SHALA_BBB_TIMEOUT") {
			t.Errorf("SHALA_BBB_TIMEOUT=%q refused: %v", v, err)
		}
	}
}
