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
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/analytics"
	"github.com/shala-edu/shala/internal/auth"
	"github.com/shala-edu/shala/internal/blob"
	"github.com/shala-edu/shala/internal/collector"
	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/eventlog"
	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/inbox"
	"github.com/shala-edu/shala/internal/jobs"
	"github.com/shala-edu/shala/internal/ping"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/schema"
	"github.com/shala-edu/shala/internal/server"
	"github.com/shala-edu/shala/internal/sheets"
	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/sms/cdac"
	"github.com/shala-edu/shala/internal/sms/outbox"
	"github.com/shala-edu/shala/internal/sms/twilio"
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
	// Tracker is used instead of PostHog (tests recording events).
	Tracker analytics.Tracker
	// RetryPolicy overrides River's backoff (tests retry fast).
	RetryPolicy river.ClientRetryPolicy
	// Version is reported in shala_build_info.
	Version string
}

// App is shala, built: every long-lived dependency, constructed once.
// Fields are set by New and read-only afterwards.
type App struct {
	Config   *config.Config
	Log      *slog.Logger
	Pool     *pgxpool.Pool
	Registry *prometheus.Registry
	Tracker  analytics.Tracker
	Bucket   *blob.Bucket

	SMS        sms.Provider
	SMSMetrics *sms.Metrics
	SMSReports *sms.Reports

	Pings       *ping.Store
	Catalog     *forms.Catalog
	Rules       *forms.Rules
	Pipeline    *forms.Pipeline
	Collectors  *collector.Store
	Attachments *forms.Attachments

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

	a.Tracker = opts.Tracker
	if a.Tracker == nil {
		if a.Tracker, err = analytics.New(cfg.PostHogKey.Reveal(), cfg.PostHogHost, log); err != nil {
			return nil, err
		}
		a.onClose(a.Tracker.Close) // flushes queued events
	}

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
	a.Pipeline = &forms.Pipeline{Pool: a.Pool, Catalog: a.Catalog, Rules: a.Rules, Log: log}
	a.Collectors = collector.NewStore(a.Pool)
	a.Attachments = forms.NewAttachments(a.Pool)
	if err := a.buildExports(ctx, cfg, log); err != nil {
		return nil, err
	}

	// The queue and what records work into it.
	jd := jobs.Deps{Pool: a.Pool, Log: log, Tracker: a.Tracker, SMSProvider: a.SMS, SMSRate: cfg.SMSRate,
		SMSMetrics: a.SMSMetrics, Pipeline: a.Pipeline, Exporter: a.Exporter,
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
	if cfg.OperatorPassword != "" {
		if a.Operator, err = server.NewOperatorUI(bg, a.Queue, log); err != nil {
			return nil, err
		}
	}

	a.handler = server.NewServer(server.Deps{
		Log: log, Pool: a.Pool, Gatherer: a.Registry, Metrics: server.NewMetrics(a.Registry),
		WebhookSecret: cfg.WebhookSecret.Reveal(), MaxBodyBytes: cfg.MaxBodyBytes,
		PublicURL: cfg.PublicURL, PublicRate: cfg.PublicRate, PublicBurst: cfg.PublicBurst,
		Inbox: a.Inbox, Pings: a.Pings, Catalog: a.Catalog, Rules: a.Rules, Pipeline: a.Pipeline, Collectors: a.Collectors, Attachments: a.Attachments,
		SMSReports: a.SMSReports,
		Blobs:      a.Bucket, OpenRosaMaxBytes: cfg.OpenRosaMaxBytes,
		TwilioAuthToken: cfg.TwilioAuthToken.Reveal(), TwilioCallbackURL: TwilioCallbackURL(cfg),
		Operator: a.Operator, OperatorPassword: cfg.OperatorPassword.Reveal(),
		Ready: a.Ready,
		Queue: a.Queue, Langs: a.Langs, Links: a.Links, JWT: a.JWT, SheetsAccount: a.sheetsAccount(),
	})
	return a, nil
}

// buildExports builds the Sheets client and exporter (with a service
// account), the CSV link signer and the JWT verifier.
func (a *App) buildExports(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	a.Langs = export.NewLanguages()
	metrics := export.NewMetrics(a.Registry)
	if cfg.SheetsCredentials != "" {
		var err error
		a.Sheets, err = sheets.New(ctx, sheets.Config{URL: cfg.SheetsURL, CredentialsJSON: []byte(cfg.SheetsCredentials.Reveal())})
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
