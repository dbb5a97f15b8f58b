// Package app is shala's composition root: New builds every long-lived
// dependency once — the pool, the metrics registry, the queue client with
// its workers, the blob bucket, the SMS provider, the stores, the forms
// pipeline, the inbox, the operator UI, the HTTP handler — in dependency
// order, and Close releases them in reverse. `shala serve`, the tests and
// the benchmarks all build shala through it, so what they exercise is what
// runs in production.
//
// Adding a dependency: a field on App, one construction line in New (after
// what it needs), and the field of server.Deps or jobs.Deps that hands it to
// its routes or workers. internal/server/routes.go and internal/jobs/jobs.go
// only map routes and job kinds to makers over what is built here.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/aadhaar"
	"github.com/shala-edu/shala/internal/analytics"
	"github.com/shala-edu/shala/internal/auth"
	"github.com/shala-edu/shala/internal/bbb"
	"github.com/shala-edu/shala/internal/blob"
	"github.com/shala-edu/shala/internal/certificate"
	"github.com/shala-edu/shala/internal/collector"
	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/eventlog"
	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/inbox"
	"github.com/shala-edu/shala/internal/jobs"
	"github.com/shala-edu/shala/internal/lesson"
	"github.com/shala-edu/shala/internal/pdf"
	"github.com/shala-edu/shala/internal/ping"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/progress"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/schema"
	"github.com/shala-edu/shala/internal/server"
	"github.com/shala-edu/shala/internal/sheets"
	"github.com/shala-edu/shala/internal/slowread"
	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/sms/cdac"
	"github.com/shala-edu/shala/internal/sms/outbox"
	"github.com/shala-edu/shala/internal/sms/twilio"
	"github.com/shala-edu/shala/internal/student"
	"github.com/shala-edu/shala/internal/upload"
	"github.com/shala-edu/shala/internal/vault"
	"github.com/shala-edu/shala/internal/web"
	"github.com/shala-edu/shala/migrations"
)

// Options replace what New would otherwise build from the configuration.
// The zero value is production: everything from cfg.
type Options struct {
	// Pool is used instead of opening cfg.DatabaseURL (tests, benchmarks):
	// the caller migrated it (its schema is not checked here, so a test can
	// hand in a pool whose database is down) and closes it.
	Pool *pgxpool.Pool
	// SMSProvider is used instead of the one cfg.SMSProvider names (tests
	// with a provider's local test server).
	SMSProvider sms.Provider
	// RetryPolicy overrides River's backoff (tests retry fast).
	RetryPolicy river.ClientRetryPolicy
	// Version is reported in shala_build_info.
	Version string
	// Now is the clock of exam expiry, exam windows and download links
	// (tests move it); nil is time.Now.
	Now func() time.Time
}

// App is shala, built: every long-lived dependency, constructed once.
// Fields are set by New and read-only afterwards.
type App struct {
	Config   *config.Config
	Log      *slog.Logger
	Pool     *pgxpool.Pool
	Registry *prometheus.Registry
	// Analytics posts recorded product events to PostHog (the
	// analytics.send job); without a key it discards them.
	Analytics *analytics.Sender
	Bucket    *blob.Bucket

	SMS        sms.Provider
	SMSMetrics *sms.Metrics
	SMSReports *sms.Reports

	Pings       *ping.Store
	Catalog     *forms.Catalog
	Rules       *forms.Rules
	Pipeline    *forms.Pipeline
	Collectors  *collector.Store
	Attachments *forms.Attachments
	Listings    *progress.Store
	// Students and Certificates: registration, promotion, leaving
	// certificates (Aadhaar protected by the key from Vault or a dev key;
	// certificates signed in Vault transit or with a dev key); PDF renders
	// them in a warm Chromium started at the first render.
	Students     *student.Store
	Certificates *certificate.Store
	PDF          *pdf.Pool
	// Documents stores transfer documents (exam files' rules).
	Documents *upload.Store
	// Exams are exam answer files (built after Queue, which they enqueue
	// blob deletions into).
	Exams *exam.Store

	// Online lessons: the BBB API client, groups and tokens, the server
	// pool, lessons.
	BBB          *bbb.Client
	LessonGroups *lesson.Groups
	BBBServers   *lesson.Servers
	Lessons      *lesson.Rooms
	// Exports: Sheets is nil (and Exporter too) without a Google service
	// account; CSV links are signed with Links; JWT verifies apps' Hasura
	// tokens on REST endpoints (nil without HASURA_GRAPHQL_JWT_SECRET).
	Sheets   *sheets.Client
	Exporter *export.Exporter
	Langs    *export.Languages
	Links    *export.Links
	JWT      *auth.Verifier

	// Queue works every job kind jobs.Workers lists (once Start is
	// called); Inbox records Hasura deliveries and enqueues through it.
	Queue *queue.Client
	Inbox *inbox.Inbox
	// Operator is River's UI, nil without SHALA_OPERATOR_PASSWORD.
	Operator http.Handler

	handler http.Handler
	closers []func() error // in construction order; Close runs them backwards
	cancel  context.CancelFunc
	started bool
}

// New builds shala from cfg. On error, whatever was built is released.
// ctx bounds the construction only; background work (the River UI) lives
// until Close.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts Options) (_ *App, err error) {
	a := &App{Config: cfg, Log: log}
	defer func() {
		if err != nil {
			err = errors.Join(err, a.Close())
		}
	}()
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel

	// Database: the one pool, on a schema whose migrations are current.
	a.Pool = opts.Pool
	if a.Pool == nil {
		if cfg.DatabaseURL == "" {
			return nil, errors.New("DATABASE_URL: required")
		}
		if a.Pool, err = postgres.Open(ctx, cfg.DatabaseURL.Reveal(), int32(cfg.DBMaxConns)); err != nil {
			return nil, err
		}
		a.onClose(func() error { a.Pool.Close(); return nil })
		if err := schema.Status(ctx, a.Pool, migrations.Default()); err != nil {
			return nil, fmt.Errorf("database schema is not current (run 'shala migrate' first): %w", err)
		}
	}

	a.Registry = newRegistry(opts.Version)

	a.Analytics = analytics.NewSender(a.Pool, cfg.PostHogKey.Reveal(), cfg.PostHogHost, 0, log, analytics.NewMetrics(a.Registry, a.Pool))
	a.onClose(a.Analytics.Close)

	blob.NewMetrics(a.Registry)
	if a.Bucket, err = openBucket(ctx, cfg, log); err != nil {
		return nil, err
	}
	a.onClose(a.Bucket.Close)

	a.SMS = opts.SMSProvider
	if a.SMS == nil {
		if a.SMS, err = smsProvider(cfg, log); err != nil {
			return nil, err
		}
		if c, ok := a.SMS.(io.Closer); ok {
			a.onClose(c.Close)
		}
	}
	a.SMSMetrics = sms.NewMetrics(a.Registry)
	a.SMSReports = sms.NewReports(a.Pool)

	// Domain stores and services.
	a.Pings = ping.NewStore(a.Pool)
	a.Catalog = forms.NewCatalog(a.Pool)
	a.Rules = forms.NewRules()
	a.Pipeline = &forms.Pipeline{Pool: a.Pool, Catalog: a.Catalog, Rules: a.Rules, Log: log, Metrics: forms.NewMetrics(a.Registry)}
	a.Collectors = collector.NewStore(a.Pool)
	a.Attachments = forms.NewAttachments(a.Pool)
	a.Listings = progress.NewStore(a.Pool)
	if err := a.buildExports(ctx, cfg, log); err != nil {
		return nil, err
	}

	a.BBB = bbb.New(cfg.BBBTimeout, bbb.NewMetrics(a.Registry))
	alerts, err := prometheusAlerts(cfg.PrometheusURL)
	if err != nil {
		return nil, err
	}
	protector, err := aadhaar.OpenProtector(cfg.AadhaarKey.Reveal(), cfg.VaultAddr != "", cfg.DataDir, log.Warn)
	if err != nil {
		return nil, err
	}
	a.Students = student.NewStore(a.Pool, protector)
	signer, err := certificate.OpenSigner(ctx, cfg.VaultAddr, cfg.VaultToken.Reveal(), cfg.TransitMount, cfg.CertificateKey, cfg.DataDir,
		vault.NewMetrics(a.Registry), log)
	if err != nil {
		return nil, err
	}
	protectLegacyAadhaar(ctx, a.Pool, protector, log)
	a.PDF = pdf.NewLazy(pdf.Options{ExecPath: cfg.Chromium, Tabs: cfg.PDFTabs, NoSandbox: cfg.ChromiumNoSandbox,
		Metrics: pdf.NewMetrics(a.Registry)})
	a.Documents = upload.New(a.Bucket, student.DocumentPrefix, student.DocumentMaxBytes, upload.Documents()...)
	a.onClose(func() error { a.PDF.Close(); return nil })

	// The queue and what records work into it.
	jd := jobs.Deps{Pool: a.Pool, Log: log, Analytics: a.Analytics, SMSProvider: a.SMS, SMSRate: cfg.SMSRate,
		SMSMetrics: a.SMSMetrics, Pipeline: a.Pipeline, Exporter: a.Exporter, Blobs: a.Bucket, Now: opts.Now,
		BBB: a.BBB, LessonPolicy: lesson.DefaultPolicy(), Alerts: alerts,
		PDF: a.PDF, PublicURL: cfg.PublicURL, Students: a.Students,
		EventLog: &eventlog.Cleaner{Pool: a.Pool, Retention: cfg.EventLogRetention, Metrics: eventlog.NewMetrics(a.Registry)}}
	if a.Queue, err = queue.New(a.Pool, jobs.Workers(jd), queue.Config{
		Workers:       cfg.QueueWorkers,
		Queues:        jobs.Queues(cfg.SMSWorkers),
		FetchCooldown: cfg.QueueFetchCooldown,
		Periodic:      jobs.Periodic(jd),
		Log:           log,
		Metrics:       queue.NewMetrics(a.Registry, a.Pool),
		RetryPolicy:   opts.RetryPolicy,
	}); err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	a.Inbox = inbox.New(a.Pool, a.Queue)
	a.LessonGroups = lesson.NewGroups(a.Pool)
	a.BBBServers = lesson.NewServers(a.Pool, a.Queue, a.BBB, log, splitList(cfg.BBBHosts))
	a.Lessons = lesson.NewRooms(a.Pool, a.Queue, a.BBB, log, lesson.DefaultPolicy())
	minter, err := moderatorMinter(cfg, log)
	if err != nil {
		return nil, err
	}
	a.Certificates = certificate.NewStore(a.Pool, signer, a.Queue)
	a.Exams = exam.New(exam.Deps{Pool: a.Pool, Files: exam.NewFiles(a.Bucket), Queue: a.Queue, Now: opts.Now, Log: log})
	if err := os.MkdirAll(cfg.TusDir, 0o750); err != nil {
		return nil, fmt.Errorf("SHALA_TUS_DIR: %w", err)
	}
	if cfg.OperatorPassword != "" {
		if a.Operator, err = server.NewOperatorUI(bg, a.Queue, log); err != nil {
			return nil, err
		}
	}

	a.handler = server.NewServer(server.Deps{
		Log: log, Pool: a.Pool, Gatherer: a.Registry, Metrics: server.NewMetrics(a.Registry),
		WebhookSecret: cfg.WebhookSecret.Reveal(), MaxBodyBytes: cfg.MaxBodyBytes,
		PublicURL: cfg.PublicURL, PublicRate: cfg.PublicRate, PublicBurst: cfg.PublicBurst, TrustedProxies: cfg.TrustedProxies,
		Inbox: a.Inbox, Pings: a.Pings, Catalog: a.Catalog, Rules: a.Rules, Pipeline: a.Pipeline, Collectors: a.Collectors, Attachments: a.Attachments, SMSReports: a.SMSReports,
		Listings: a.Listings,
		Exams:    a.Exams, Blobs: a.Bucket, TusDir: cfg.TusDir, OpenRosaMaxBytes: cfg.OpenRosaMaxBytes,
		Upload:          slowread.Options{MinRate: cfg.UploadMinRate, Window: cfg.UploadWindow},
		TwilioAuthToken: cfg.TwilioAuthToken.Reveal(), TwilioCallbackURL: TwilioCallbackURL(cfg),
		LessonGroups: a.LessonGroups, BBBServers: a.BBBServers, Lessons: a.Lessons,
		ModeratorMinter: minter, ModeratorAppURL: cfg.ModeratorAppURL, ModeratorTokenTTL: cfg.ModeratorTokenTTL,
		Operator: a.Operator, OperatorPassword: cfg.OperatorPassword.Reveal(),
		Students: a.Students, Certificates: a.Certificates, Documents: a.Documents,
		Ready: a.Ready,
		Queue: a.Queue, Langs: a.Langs, Links: a.Links, JWT: a.JWT, SheetsAccount: a.sheetsAccount(),
	})
	return a, nil
}

// protectLegacyAadhaar encrypts Aadhaar numbers stored in plaintext before
// migration 1795313000000 (a no-op once done). A failure (database briefly
// down) does not stop shala: it is logged and tried again at the next start.
func protectLegacyAadhaar(ctx context.Context, pool *pgxpool.Pool, p *aadhaar.Protector, log *slog.Logger) {
	done, dropped, stuck, err := student.ProtectLegacy(ctx, pool, p)
	if err != nil {
		log.Error("could not encrypt Aadhaar numbers stored before encryption; trying again at the next start", "err", err)
		return
	}
	if done+dropped+stuck > 0 {
		log.Warn("Aadhaar numbers stored before encryption", "encrypted", done, "invalid_cleared", dropped, "left_until_corrected", stuck)
	}
}

// buildExports builds the Sheets client and exporter (with a service
// account), the CSV link signer and the JWT verifier.
func (a *App) buildExports(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	a.Langs = export.NewLanguages()
	metrics := export.NewMetrics(a.Registry)
	if cfg.SheetsCredentials != "" {
		var err error
		a.Sheets, err = sheets.New(ctx, sheets.Config{URL: cfg.SheetsURL, CredentialsJSON: []byte(cfg.SheetsCredentials.Reveal()),
			CallTimeout: export.CallTimeout})
		if err != nil {
			return fmt.Errorf("SHALA_SHEETS_CREDENTIALS: %w", err)
		}
		a.Exporter = export.NewExporter(a.Pool, a.Sheets, a.Langs, export.NewPacer(cfg.SheetsWrites), log, metrics)
	}
	key := []byte(cfg.ExportLinkKey.Reveal())
	if len(key) == 0 {
		key = export.DeriveKey(cfg.WebhookSecret.Reveal())
	}
	a.Links = export.NewLinks(key, cfg.PublicURL)
	if cfg.JWTSecret != "" {
		jc, err := auth.ParseConfig(cfg.JWTSecret.Reveal())
		if err != nil {
			return fmt.Errorf("HASURA_GRAPHQL_JWT_SECRET: %w", err)
		}
		if a.JWT, err = auth.NewVerifier(jc); err != nil {
			return fmt.Errorf("HASURA_GRAPHQL_JWT_SECRET: %w", err)
		}
	}
	return nil
}

func (a *App) sheetsAccount() string {
	if a.Sheets == nil {
		return ""
	}
	return a.Sheets.Account()
}

// onClose registers f to run on Close, after everything built later.
func (a *App) onClose(f func() error) { a.closers = append(a.closers, f) }

// Handler is shala's whole HTTP surface (see internal/server/routes.go).
func (a *App) Handler() http.Handler { return a.handler }

// Ready reports whether this instance can serve: database reachable and
// every migration applied unchanged.
func (a *App) Ready(ctx context.Context) error {
	if err := a.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return schema.Status(ctx, a.Pool, migrations.Default())
}

// Start starts the River workers and periodic jobs (none when
// SHALA_QUEUE_WORKERS is 0). They run until Stop, not until ctx ends:
// stopping must be a soft stop that lets running jobs finish.
func (a *App) Start(ctx context.Context) error {
	if a.Config.QueueWorkers == 0 {
		return nil
	}
	if err := a.Queue.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start queue: %w", err)
	}
	a.started = true
	return nil
}

// Stop lets running jobs finish within timeout, then cancels the rest
// (queue.Stop); nothing is lost. It does nothing when the workers were not
// started.
func (a *App) Stop(timeout time.Duration) error {
	if !a.started {
		return nil
	}
	a.started = false
	return queue.Stop(a.Queue, timeout, a.Log)
}

// Close releases everything New built, in reverse order (the SMS outbox
// file, the bucket, PostHog's queue, the pool it opened). Stop the workers
// first.
func (a *App) Close() error {
	if a.cancel != nil {
		a.cancel()
	}
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// newRegistry is the Prometheus registry every metric registers with: Go
// and process collectors and shala_build_info.
func newRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shala_build_info", Help: "Build version of the running shala."},
		[]string{"version", "goversion"})
	if version == "" {
		version = "dev"
	}
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	reg.MustRegister(buildInfo)
	return reg
}

// openBucket opens SHALA_BLOB_URL, or .data/blobs under the working
// directory when it is unset.
func openBucket(ctx context.Context, cfg *config.Config, log *slog.Logger) (*blob.Bucket, error) {
	url := cfg.BlobURL
	if url == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		url = "file://" + filepath.Join(wd, ".data", "blobs") + "?create_dir=true"
		log.Warn("SHALA_BLOB_URL unset: storing files under the working directory", "url", url)
	}
	return blob.Open(ctx, url)
}

// smsProvider builds the provider SHALA_SMS_PROVIDER names.
func smsProvider(cfg *config.Config, log *slog.Logger) (sms.Provider, error) {
	switch cfg.SMSProvider {
	case "cdac":
		return cdac.New(cfg.CDACURL, cfg.CDACUsername, cfg.CDACPassword.Reveal(), cfg.CDACSenderID, cfg.CDACSecureKey.Reveal()), nil
	case "twilio":
		return twilio.New(cfg.TwilioURL, cfg.TwilioAccountSID, cfg.TwilioAuthToken.Reveal(), cfg.TwilioFrom, TwilioCallbackURL(cfg)), nil
	default:
		return outbox.New(cfg.SMSOutbox, log)
	}
}

// TwilioCallbackURL is the status-callback URL Twilio is given and signs:
// SHALA_PUBLIC_URL + twilio.CallbackPath.
func TwilioCallbackURL(cfg *config.Config) string {
	return strings.TrimRight(cfg.PublicURL, "/") + twilio.CallbackPath
}

// prometheusAlerts is the alert source of the bbb_alerts check: Prometheus
// at url, or nil when url is empty.
func prometheusAlerts(url string) (lesson.AlertSource, error) {
	if url == "" {
		return nil, nil
	}
	c, err := promapi.NewClient(promapi.Config{Address: url})
	if err != nil {
		return nil, fmt.Errorf("SHALA_PROMETHEUS_URL: %w", err)
	}
	return promv1.NewAPI(c), nil
}

// moderatorMinter signs moderators' quick-link JWTs with the HMAC key of
// HASURA_GRAPHQL_JWT_SECRET; nil (links answer 503) when that is unset or
// holds a public key only.
func moderatorMinter(cfg *config.Config, log *slog.Logger) (web.Minter, error) {
	if u := cfg.ModeratorAppURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return nil, fmt.Errorf("SHALA_MODERATOR_APP_URL: want an absolute http(s) URL, got %q", u)
		}
	}
	if cfg.JWTSecret == "" {
		return nil, nil
	}
	jc, err := auth.ParseConfig(cfg.JWTSecret.Reveal())
	if err != nil {
		return nil, fmt.Errorf("HASURA_GRAPHQL_JWT_SECRET: %w", err)
	}
	if !strings.HasPrefix(jc.Type, "HS") {
		log.Warn("moderator quick links are off: HASURA_GRAPHQL_JWT_SECRET holds no HMAC key to sign with", "type", jc.Type)
		return nil, nil
	}
	iss, err := auth.NewIssuer(jc, nil, "", nil)
	if err != nil {
		return nil, fmt.Errorf("HASURA_GRAPHQL_JWT_SECRET: %w", err)
	}
	return iss, nil
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
