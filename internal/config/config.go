// Package config is shala's configuration: one typed struct read from
// environment variables, with defaults, validation that names the variable,
// and secrets that can come from Vault (KV v2) instead of the environment and
// are masked whenever the config is logged or printed. The struct tags are the
// single source of the README's configuration table (see Table).
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shala-edu/shala/internal/auth"
)

// Secret is a string that never prints: fmt and slog show "****".
type Secret string

// Reveal returns the secret's value, for the one place that uses it.
func (s Secret) Reveal() string { return string(s) }

// String masks the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "****"
}

// LogValue masks the value in slog records.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Config is every setting shala reads. Tags: env is the variable; default its
// value when unset; vault the key in the KV v2 secret that overrides it when
// Vault is configured; oneof the allowed values; help the README text.
type Config struct {
	DatabaseURL        Secret        `env:"DATABASE_URL" vault:"database_url" help:"Postgres connection string. Unset under 'shala dev' (make run): a project-local cluster is started under .data/."`
	Addr               string        `env:"SHALA_ADDR" default:":8080" help:"HTTP listen address."`
	PublicURL          string        `env:"SHALA_PUBLIC_URL" default:"http://localhost:8080" help:"Base URL people and Hasura use to reach shala (links in SMS, QR codes)."`
	WebhookSecret      Secret        `env:"SHALA_WEBHOOK_SECRET" vault:"webhook_secret" help:"Shared secret Hasura sends in X-Shala-Webhook-Secret (at least 16 characters). 'shala dev' generates one."`
	OperatorPassword   Secret        `env:"SHALA_OPERATOR_PASSWORD" vault:"operator_password" help:"Password of user 'operator' for the River UI at /riverui/ (failed jobs, retries; at least 12 characters). Unset: no UI. 'shala dev' generates one."`
	JWTSecret          Secret        `env:"HASURA_GRAPHQL_JWT_SECRET" vault:"hasura_jwt_secret" help:"Hasura's JWT key configuration (the same JSON value Hasura is given): shala's REST endpoints verify the apps' Hasura JWTs with it, and mints short-lived ones (moderator links) with an HMAC key. Unset: those endpoints answer 401."`
	BlobURL            string        `env:"SHALA_BLOB_URL" help:"gocloud.dev/blob URL for files (exam uploads, certificates, ODK attachments): file:///abs/dir?create_dir=true, or s3://bucket?endpoint=…&use_path_style=true for MinIO/S3/R2. 'shala dev' uses .data/blobs."`
	TusDir             string        `env:"SHALA_TUS_DIR" default:".data/tus" help:"Directory of resumable (tus) exam uploads in progress, kept 24 h unfinished. With several replicas: a shared volume, or route each upload code to one replica."`
	PublicRate         float64       `env:"SHALA_PUBLIC_RATE" default:"20" help:"Requests per second each client IP may make to public token/code endpoints (OpenRosa), per process; bursts up to SHALA_PUBLIC_BURST."`
	PublicBurst        int           `env:"SHALA_PUBLIC_BURST" default:"100" min:"1" help:"Burst allowance of SHALA_PUBLIC_RATE (a school's NAT sending a morning's forms at once)."`
	OpenRosaMaxBytes   int64         `env:"SHALA_OPENROSA_MAX_BYTES" default:"10485760" min:"65536" help:"Largest OpenRosa submission (XML and attachments) accepted; advertised in X-OpenRosa-Accept-Content-Length."`
	UploadMinRate      int64         `env:"SHALA_UPLOAD_MIN_RATE" default:"512" min:"1" help:"Slowest upload served (OpenRosa submissions, exam files, transfer documents), in bytes per second averaged over each SHALA_UPLOAD_WINDOW. Uploads at any speed above it are read to the end; one that stalls or falls below it is dropped and answered 503 so the client sends again."`
	UploadWindow       time.Duration `env:"SHALA_UPLOAD_WINDOW" default:"30s" help:"How long an upload may deliver less than SHALA_UPLOAD_MIN_RATE before it is dropped (the read deadline moves forward with every window that brings enough)."`
	SMSProvider        string        `env:"SHALA_SMS_PROVIDER" default:"log" oneof:"log,cdac,twilio" help:"SMS provider (log writes messages to a file and the log; never the network)."`
	SMSRate            float64       `env:"SHALA_SMS_RATE" default:"0" help:"SMS per second this process may send (0 = unlimited). C-DAC historically needs about 2; with N replicas give each 1/N of the provider's limit."`
	SMSWorkers         int           `env:"SHALA_SMS_WORKERS" default:"20" min:"1" help:"SMS send jobs worked at once by this process (its own queue, so waiting sends never block other jobs)."`
	SMSOutbox          string        `env:"SHALA_SMS_OUTBOX" default:".data/sms-outbox.log" help:"File the log provider appends each message to (full number and text)."`
	CDACURL            string        `env:"SHALA_CDAC_URL" default:"https://msdgweb.mgov.gov.in" help:"C-DAC Mobile Seva base URL (send: /esms/sendsmsrequestDLT, reports: /ReportAPI/csvreport)."`
	CDACUsername       string        `env:"SHALA_CDAC_USERNAME" vault:"cdac_username" help:"C-DAC department username."`
	CDACPassword       Secret        `env:"SHALA_CDAC_PASSWORD" vault:"cdac_password" help:"C-DAC password (sent as its SHA-1)."`
	CDACSenderID       string        `env:"SHALA_CDAC_SENDER_ID" help:"DLT-approved sender id (6 characters)."`
	CDACSecureKey      Secret        `env:"SHALA_CDAC_SECURE_KEY" vault:"cdac_secure_key" help:"C-DAC department secure key (signs each request)."`
	TwilioURL          string        `env:"SHALA_TWILIO_URL" default:"https://api.twilio.com" help:"Twilio API base URL."`
	TwilioAccountSID   string        `env:"SHALA_TWILIO_ACCOUNT_SID" vault:"twilio_account_sid" help:"Twilio Account SID (AC…)."`
	TwilioAuthToken    Secret        `env:"SHALA_TWILIO_AUTH_TOKEN" vault:"twilio_auth_token" help:"Twilio Auth Token (API auth and callback signatures)."`
	TwilioFrom         string        `env:"SHALA_TWILIO_FROM" help:"Twilio sender: a number (+1…) or a Messaging Service SID (MG…)."`
	SheetsCredentials  Secret        `env:"SHALA_SHEETS_CREDENTIALS" vault:"google_service_account" help:"Google service account key (the JSON file's contents) that appends responses to Google Sheets; share each spreadsheet with its client_email as Editor. Unset: connectSheet refuses and no sheet is written."`
	SheetsURL          string        `env:"SHALA_SHEETS_URL" default:"https://sheets.googleapis.com/" help:"Google Sheets API endpoint."`
	SheetsWrites       int           `env:"SHALA_SHEETS_WRITES_PER_MINUTE" default:"50" min:"0" help:"Sheets writes a minute shared by every replica (Google allows 60 per minute per service account; 0 = unpaced)."`
	ExportLinkKey      Secret        `env:"SHALA_EXPORT_LINK_KEY" vault:"export_link_key" help:"Key signing CSV export links (at least 32 characters). Unset: derived from SHALA_WEBHOOK_SECRET, so every replica agrees."`
	LogLevel           string        `env:"SHALA_LOG_LEVEL" default:"info" oneof:"debug,info,warn,error" help:"Minimum log level (JSON logs on stderr)."`
	MaxBodyBytes       int64         `env:"SHALA_MAX_BODY_BYTES" default:"1048576" min:"1024" help:"Largest event, cron and action body accepted (413 beyond); registerForm and submitForm accept what their columns hold (5 MiB definitions, 10 MiB submissions, as JSON)."`
	ShutdownTimeout    time.Duration `env:"SHALA_SHUTDOWN_TIMEOUT" default:"25s" help:"On SIGTERM, how long in-flight requests and jobs may take to finish."`
	DBMaxConns         int           `env:"SHALA_DB_MAX_CONNS" default:"40" min:"2" help:"Postgres pool size of this process."`
	QueueWorkers       int           `env:"SHALA_QUEUE_WORKERS" default:"50" min:"0" help:"Jobs worked at once by this process; 0 serves HTTP only."`
	EventLogRetention  time.Duration `env:"SHALA_EVENT_LOG_RETENTION" default:"168h" help:"How long Hasura's finished event-trigger events (delivered, or failed for good) and their invocation logs are kept in hdb_catalog before shala deletes them, hourly and in batches; 0 keeps them. Hasura's own cleanup_config runs only on Cloud and Enterprise."`
	QueueFetchCooldown time.Duration `env:"SHALA_QUEUE_FETCH_COOLDOWN" default:"5ms" help:"Minimum pause between job fetches under load (River's default 100ms caps ~1,000 jobs/s)."`
	BBBTimeout         time.Duration `env:"SHALA_BBB_TIMEOUT" default:"5s" help:"How long one BigBlueButton API call may take; a server that does not answer in time counts as unreachable (startLesson tries up to 3 servers within Hasura's 30 s); at most 6s."`
	BBBHosts           string        `env:"SHALA_BBB_HOSTS" help:"Comma-separated hosts that may self-register as BBB servers by heartbeat: bbb1.example.org or *.bbb.example.org. Servers an admin added always may send heartbeats. Unset: no self-registration."`
	PrometheusURL      string        `env:"SHALA_PROMETHEUS_URL" help:"Prometheus base URL the bbb_alerts cron reads /api/v1/alerts from (firing alerts labelled hostname or instance disable that BBB server). Unset: no alert checks."`
	ModeratorAppURL    string        `env:"SHALA_MODERATOR_APP_URL" help:"The moderators' web app: a moderator quick link (/m/{token}) redirects there with a short-lived Hasura JWT in the URL fragment. Unset: quick links answer 503."`
	ModeratorTokenTTL  time.Duration `env:"SHALA_MODERATOR_TOKEN_TTL" default:"15m" help:"Lifetime of the Hasura JWT a moderator quick link mints."`
	PostHogKey         Secret        `env:"SHALA_POSTHOG_KEY" vault:"posthog_key" help:"PostHog project API key; unset disables product analytics."`
	PostHogHost        string        `env:"SHALA_POSTHOG_HOST" default:"https://eu.i.posthog.com" help:"PostHog ingestion host."`
	DataDir            string        `env:"SHALA_DATA_DIR" default:".data" help:"Directory for local state without Vault: the development certificate signing key and Aadhaar key (never used when VAULT_ADDR is set)."`
	AadhaarKey         Secret        `env:"SHALA_AADHAAR_KEY" vault:"aadhaar_key" help:"32 random bytes, base64: keys the Aadhaar hash (uniqueness) and encryption. Required with Vault; without Vault a development key is kept in SHALA_DATA_DIR."`
	TransitMount       string        `env:"SHALA_VAULT_TRANSIT_MOUNT" default:"transit" help:"Mount of Vault's transit engine that signs leaving certificates."`
	CertificateKey     string        `env:"SHALA_CERTIFICATE_KEY" default:"shala-slc" help:"Name of the ed25519 transit key that signs leaving certificates (its public keys are published at /.well-known/shala-keys.json)."`
	PDFTabs            int           `env:"SHALA_PDF_TABS" default:"2" min:"1" help:"Certificate PDFs rendered at once by this process's warm Chromium."`
	Chromium           string        `env:"SHALA_CHROMIUM" help:"Chromium binary for PDFs; empty: chromium (or chromium-browser, google-chrome) on PATH."`
	ChromiumNoSandbox  bool          `env:"SHALA_CHROMIUM_NO_SANDBOX" default:"false" help:"Run Chromium without its sandbox (containers whose seccomp profile refuses it, as Docker's default does; the image sets it)."`
	VaultAddr          string        `env:"VAULT_ADDR" help:"Vault address. When set, secrets are read from Vault (KV v2) and override the environment."`
	VaultToken         Secret        `env:"VAULT_TOKEN" help:"Vault token (or use Vault Agent to inject it)."`
	VaultKVMount       string        `env:"SHALA_VAULT_KV_MOUNT" default:"secret" help:"Mount of the KV v2 engine holding shala's secrets."`
	VaultKVPath        string        `env:"SHALA_VAULT_KV_PATH" default:"shala" help:"Path of shala's secret in that engine; its keys are the vault names in this table."`

	// Sources says where each secret came from ("env", "vault"), by variable.
	Sources map[string]string `env:"-"`

	// TrustedProxies are the load balancers whose X-Forwarded-For shala
	// believes (internal/server, clientAddr).
	TrustedProxies []netip.Prefix `env:"SHALA_TRUSTED_PROXIES" help:"Load balancers or reverse proxies in front of shala, as IP addresses or CIDR prefixes separated by commas (10.0.0.0/8,192.0.2.7). A request from one of them is counted, for rate limits and logs, as from the rightmost address in X-Forwarded-For that is not one of them. List every hop that appends to the header, and only proxies: anyone inside a listed range can claim any address. Unset: the connection's address, and X-Forwarded-For is ignored (anyone could write it)."`
}

// SecretReader reads a KV v2 secret (vault.Client implements it).
type SecretReader interface {
	ReadKV(ctx context.Context, mount, path string) (map[string]string, error)
}

// Load reads the configuration from getenv and, when VAULT_ADDR is set, from
// the secret read by openVault (called with the address and token). Every
// problem is reported, each naming its variable.
func Load(ctx context.Context, getenv func(string) string, openVault func(addr, token string) (SecretReader, error)) (*Config, error) {
	c := &Config{Sources: map[string]string{}}
	var errs []error
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("env")
		if name == "" || name == "-" {
			continue
		}
		raw := getenv(name)
		if raw == "" {
			raw = f.Tag.Get("default")
		} else if f.Tag.Get("vault") != "" {
			c.Sources[name] = "env"
		}
		if err := set(v.Field(i), f, raw); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if len(errs) == 0 && c.VaultAddr != "" {
		if err := c.overlayVault(ctx, openVault); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) overlayVault(ctx context.Context, openVault func(addr, token string) (SecretReader, error)) error {
	if _, err := url.ParseRequestURI(c.VaultAddr); err != nil {
		return fmt.Errorf("VAULT_ADDR: want a URL such as http://127.0.0.1:8200, got %q", c.VaultAddr)
	}
	if c.VaultToken == "" {
		return errors.New("VAULT_TOKEN: required when VAULT_ADDR is set")
	}
	r, err := openVault(c.VaultAddr, c.VaultToken.Reveal())
	if err != nil {
		return fmt.Errorf("VAULT_ADDR: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	secrets, err := r.ReadKV(ctx, c.VaultKVMount, c.VaultKVPath)
	if err != nil {
		return fmt.Errorf("SHALA_VAULT_KV_PATH: %w", err)
	}
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	var errs []error
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("vault")
		val, ok := secrets[key]
		if key == "" || !ok || val == "" {
			continue
		}
		if err := set(v.Field(i), f, val); err != nil {
			errs = append(errs, fmt.Errorf("%s (vault key %q): %w", f.Tag.Get("env"), key, err))
			continue
		}
		c.Sources[f.Tag.Get("env")] = "vault"
	}
	return errors.Join(errs...)
}

func set(fv reflect.Value, f reflect.StructField, raw string) error {
	if oneof := f.Tag.Get("oneof"); oneof != "" && raw != "" && !slices.Contains(strings.Split(oneof, ","), raw) {
		return fmt.Errorf("want one of %s, got %q", strings.ReplaceAll(oneof, ",", ", "), raw)
	}
	if raw == "" {
		return nil
	}
	switch fv.Interface().(type) {
	case []netip.Prefix:
		var prefixes []netip.Prefix
		for _, item := range strings.Split(raw, ",") {
			p, err := parseProxy(strings.TrimSpace(item))
			if err != nil {
				return err
			}
			prefixes = append(prefixes, p)
		}
		fv.Set(reflect.ValueOf(prefixes))
		return nil
	case time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration such as 30s or 5m, got %q", raw)
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(raw)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", raw)
		}
		if m := f.Tag.Get("min"); m != "" {
			if min, _ := strconv.ParseInt(m, 10, 64); n < min {
				return fmt.Errorf("want at least %d, got %d", min, n)
			}
		}
		fv.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || f < 0 {
			return fmt.Errorf("want a number ≥ 0, got %q", raw)
		}
		fv.SetFloat(f)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", raw)
		}
		fv.SetBool(b)
	default:
		return fmt.Errorf("unsupported config type %s", fv.Type())
	}
	return nil
}

// parseProxy reads one trusted proxy: an address, or a CIDR prefix with
// no host bits set. It refuses what could only be a mistake: an empty
// item, a zone, a prefix that holds every address (every client could then
// name itself in X-Forwarded-For).
func parseProxy(item string) (netip.Prefix, error) {
	const want = "want IP addresses or CIDR prefixes separated by commas, such as 10.0.0.0/8,192.0.2.7"
	if item == "" {
		return netip.Prefix{}, fmt.Errorf("%s; got an empty item (a stray comma?)", want)
	}
	p, err := netip.ParsePrefix(item)
	if err != nil {
		a, aerr := netip.ParseAddr(item)
		if aerr != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%s; got %q", want, item)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() { // peers are compared as IPv4
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix needs at least /96 (/96 is all of IPv4)", item)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("%q has bits set past its /%d: did you mean %s, or %s/%d for one address?", item, p.Bits(), p.Masked(), p.Addr(), p.Addr().BitLen())
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, fmt.Errorf("%q trusts every address: any client could name itself in X-Forwarded-For", item)
	}
	return p, nil
}

// MaxBBBTimeout bounds SHALA_BBB_TIMEOUT.
const MaxBBBTimeout = 6 * time.Second

// ValidateServe checks what serving needs beyond what Load checks.
func (c *Config) ValidateServe() error {
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL: required (or run 'shala dev' for a local cluster)"))
	}
	if n := len(c.WebhookSecret); n < 16 {
		errs = append(errs, fmt.Errorf("SHALA_WEBHOOK_SECRET: required, at least 16 characters (got %d); set it or store webhook_secret in Vault", n))
	}
	if n := len(c.OperatorPassword); n > 0 && n < 12 {
		errs = append(errs, fmt.Errorf("SHALA_OPERATOR_PASSWORD: at least 12 characters (got %d), or unset to serve no River UI", n))
	}
	require := func(names ...string) {
		for _, n := range names {
			if c.get(n) == "" {
				errs = append(errs, fmt.Errorf("%s: required when SHALA_SMS_PROVIDER=%s", n, c.SMSProvider))
			}
		}
	}
	switch c.SMSProvider {
	case "cdac":
		require("SHALA_CDAC_URL", "SHALA_CDAC_USERNAME", "SHALA_CDAC_PASSWORD", "SHALA_CDAC_SENDER_ID", "SHALA_CDAC_SECURE_KEY")
	case "twilio":
		require("SHALA_TWILIO_URL", "SHALA_TWILIO_ACCOUNT_SID", "SHALA_TWILIO_AUTH_TOKEN", "SHALA_TWILIO_FROM")
	}
	// What waits on a BBB call: the lesson sweep starts a check only while
	// 8 s are left, a connection check makes up to three calls within a
	// job's 20 s, a start tries up to three servers within Hasura's 30 s.
	// 0 would be no timeout at all.
	if c.BBBTimeout <= 0 || c.BBBTimeout > MaxBBBTimeout {
		errs = append(errs, fmt.Errorf("SHALA_BBB_TIMEOUT: want more than 0 and at most %s (got %s)", MaxBBBTimeout, c.BBBTimeout))
	}
	if n := len(c.ExportLinkKey); n > 0 && n < 32 {
		errs = append(errs, fmt.Errorf("SHALA_EXPORT_LINK_KEY: at least 32 characters (got %d), or unset to derive one", n))
	}
	if c.JWTSecret != "" {
		if _, err := auth.ParseConfig(c.JWTSecret.Reveal()); err != nil {
			errs = append(errs, fmt.Errorf("HASURA_GRAPHQL_JWT_SECRET: %w", err))
		}
	}
	if _, err := url.Parse(c.PublicURL); err != nil || !strings.HasPrefix(c.PublicURL, "http") {
		errs = append(errs, fmt.Errorf("SHALA_PUBLIC_URL: want an http(s) URL, got %q", c.PublicURL))
	}
	return errors.Join(errs...)
}

// get returns the value of the field read from variable name, as text.
func (c *Config) get(name string) string {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("env") == name {
			return fmt.Sprint(v.Field(i).Interface())
		}
	}
	return ""
}

// LogValue lists every setting by variable name with secrets masked.
func (c *Config) LogValue() slog.Value {
	var attrs []slog.Attr
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("env")
		if name == "" || name == "-" {
			continue
		}
		val := v.Field(i).Interface()
		if s, ok := val.(fmt.Stringer); ok {
			val = s.String()
		}
		attrs = append(attrs, slog.Any(name, val))
	}
	return slog.GroupValue(attrs...)
}

// Var describes one variable for documentation.
type Var struct {
	Name, Default, Vault, Help, OneOf string
	Secret                            bool
}

// Table lists every variable in declaration order.
func Table() []Var {
	var out []Var
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("env")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, Var{Name: name, Default: f.Tag.Get("default"), Vault: f.Tag.Get("vault"),
			Help: f.Tag.Get("help"), OneOf: f.Tag.Get("oneof"), Secret: f.Type == reflect.TypeFor[Secret]()})
	}
	return out
}
