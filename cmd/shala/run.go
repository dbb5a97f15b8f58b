package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/shala-edu/shala/internal/analytics"
	"github.com/shala-edu/shala/internal/blob"
	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/jobs"
	"github.com/shala-edu/shala/internal/logging"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/schema"
	"github.com/shala-edu/shala/internal/seed"
	"github.com/shala-edu/shala/internal/server"
	"github.com/shala-edu/shala/internal/slowread"
	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/sms/cdac"
	"github.com/shala-edu/shala/internal/sms/outbox"
	"github.com/shala-edu/shala/internal/sms/twilio"
	"github.com/shala-edu/shala/internal/vault"
	"github.com/shala-edu/shala/migrations"
)

const usage = `usage: shala <command> [flags]

commands:
  serve     serve HTTP (actions, events, cron, probes, metrics) and work jobs
  migrate   apply River's and shala's database migrations, then exit
  dev       local default: start a project-local Postgres under .data/ if
            DATABASE_URL is unset, generate a dev webhook secret, migrate, serve
  seed      fill the database with data (--demo: a realistic district)
  version   print the version
`

// run is the whole program; main only supplies the process's environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, getenv, stderr)
	case "migrate":
		return cmdMigrate(ctx, getenv, stdout, stderr)
	case "dev":
		return cmdDev(ctx, rest, getenv, stdout, stderr)
	case "seed":
		return cmdSeed(ctx, rest, getenv, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "shala %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func openVault(addr, token string) (config.SecretReader, error) { return vault.New(addr, token) }

// setup loads the configuration and builds the logger every command uses.
func setup(ctx context.Context, getenv func(string) string, stderr io.Writer) (*config.Config, *slog.Logger, error) {
	cfg, err := config.Load(ctx, getenv, openVault)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration:\n%w", err)
	}
	level, _ := logging.ParseLevel(cfg.LogLevel)
	log := logging.New(stderr, level)
	return cfg, log, nil
}

// openDB is setup plus a small pool, for the one-shot commands.
func openDB(ctx context.Context, getenv func(string) string, stderr io.Writer) (*pgxpool.Pool, *slog.Logger, error) {
	cfg, log, err := setup(ctx, getenv, stderr)
	if err != nil {
		return nil, nil, err
	}
	if cfg.DatabaseURL == "" {
		return nil, nil, errors.New("DATABASE_URL: required")
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL.Reveal(), 4)
	return pool, log, err
}

func cmdMigrate(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	pool, log, err := openDB(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer pool.Close()
	return migrate(ctx, pool, log, stdout)
}

func migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger, stdout io.Writer) error {
	res, err := schema.Migrate(ctx, pool, migrations.Default(), log)
	if err != nil {
		return err
	}
	names := make([]string, len(res.Applied))
	for i, m := range res.Applied {
		names[i] = fmt.Sprintf("%d_%s", m.Version, m.Name)
	}
	fmt.Fprintf(stdout, "migrate: river versions applied %v; shala migrations applied %d %v\n",
		res.RiverVersions, len(names), strings.Join(names, " "))
	return nil
}

func cmdServe(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	cfg, log, err := setup(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, log)
}

// serve runs the HTTP server and the River workers until ctx is cancelled,
// then shuts both down within cfg.ShutdownTimeout: the listener stops
// accepting, in-flight requests finish, running jobs finish (or, past the
// deadline, are cancelled and retried later by another process).
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	if err := cfg.ValidateServe(); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting shala", "version", version, "config", cfg, "secret_sources", cfg.Sources)

	pool, err := postgres.Open(ctx, cfg.DatabaseURL.Reveal(), int32(cfg.DBMaxConns))
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := schema.Status(ctx, pool, migrations.Default()); err != nil {
		return fmt.Errorf("database schema is not current (run 'shala migrate' first): %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shala_build_info", Help: "Build version of the running shala."}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	reg.MustRegister(buildInfo)

	tracker, err := analytics.New(cfg.PostHogKey.Reveal(), cfg.PostHogHost, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := tracker.Close(); err != nil {
			log.Warn("posthog flush failed", "err", err)
		}
	}()

	provider, err := smsProvider(cfg, log)
	if err != nil {
		return err
	}
	formMetrics := forms.NewMetrics(reg)
	deps := jobs.Deps{Pool: pool, Log: log, Tracker: tracker, SMSProvider: provider, SMSRate: cfg.SMSRate, SMSMetrics: sms.NewMetrics(reg), FormMetrics: formMetrics}
	client, err := queue.New(pool, jobs.Workers(deps), queue.Config{
		Workers:       cfg.QueueWorkers,
		Queues:        jobs.Queues(cfg.SMSWorkers),
		FetchCooldown: cfg.QueueFetchCooldown,
		Periodic:      jobs.Periodic(deps),
		Log:           log,
		Metrics:       queue.NewMetrics(reg, pool),
	})
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	if cfg.QueueWorkers > 0 {
		// The client runs until stopped below, not until ctx ends: stopping
		// must be a soft stop that lets running jobs finish.
		if err := client.Start(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("start queue: %w", err)
		}
	}

	blobURL := cfg.BlobURL
	if blobURL == "" {
		wd, err := os.Getwd()
		if err != nil {
			return err
		}
		blobURL = "file://" + filepath.Join(wd, ".data", "blobs") + "?create_dir=true"
		log.Warn("SHALA_BLOB_URL unset: storing files under the working directory", "url", blobURL)
	}
	bucket, err := blob.Open(ctx, blobURL)
	if err != nil {
		return err
	}
	defer bucket.Close()

	var operator http.Handler
	if cfg.OperatorPassword != "" {
		if operator, err = queue.NewUI(ctx, client, log); err != nil {
			return err
		}
	}
	handler := server.NewServer(server.Deps{
		Log: log, Pool: pool, Queue: client, Gatherer: reg, Metrics: server.NewMetrics(reg), FormMetrics: formMetrics,
		WebhookSecret: cfg.WebhookSecret.Reveal(), MaxBodyBytes: cfg.MaxBodyBytes,
		TwilioAuthToken: cfg.TwilioAuthToken.Reveal(), TwilioCallbackURL: twilioCallbackURL(cfg),
		Blobs: bucket, PublicURL: cfg.PublicURL, OpenRosaMaxBytes: cfg.OpenRosaMaxBytes,
		Upload: slowread.Options{MinRate: cfg.UploadMinRate, Window: cfg.UploadWindow},
		PublicRate: cfg.PublicRate, PublicBurst: cfg.PublicBurst,
		Operator: operator, OperatorPassword: cfg.OperatorPassword.Reveal(),
		Ready: func(ctx context.Context) error {
			if err := pool.Ping(ctx); err != nil {
				return fmt.Errorf("database: %w", err)
			}
			return schema.Status(ctx, pool, migrations.Default())
		},
	})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("SHALA_ADDR: %w", err)
	}
	log.Info("listening", "addr", ln.Addr().String(), "workers", cfg.QueueWorkers)
	tracker.Capture("shala", "server_started", map[string]any{"version": version})

	// The queue stops when shala is told to stop, or when the listener
	// fails (the process then exits with the listener's error).
	qctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	queueDone := make(chan error, 1)
	go func() {
		<-qctx.Done()
		if cfg.QueueWorkers == 0 {
			queueDone <- nil
			return
		}
		queueDone <- stopQueue(client, cfg.ShutdownTimeout, log)
	}()
	httpErr := server.Serve(ctx, ln, handler, log, cfg.ShutdownTimeout)
	if httpErr != nil && ctx.Err() == nil {
		stopWorkers() // the listener failed: no HTTP to drain, but running jobs finish
		return errors.Join(httpErr, <-queueDone)
	}
	qerr := <-queueDone
	log.Info("stopped")
	return errors.Join(httpErr, qerr)
}

// smsProvider builds the configured SMS provider.
func smsProvider(cfg *config.Config, log *slog.Logger) (sms.Provider, error) {
	switch cfg.SMSProvider {
	case "cdac":
		return cdac.New(cfg.CDACURL, cfg.CDACUsername, cfg.CDACPassword.Reveal(), cfg.CDACSenderID, cfg.CDACSecureKey.Reveal()), nil
	case "twilio":
		return twilio.New(cfg.TwilioURL, cfg.TwilioAccountSID, cfg.TwilioAuthToken.Reveal(), cfg.TwilioFrom, twilioCallbackURL(cfg)), nil
	default:
		return outbox.New(cfg.SMSOutbox, log)
	}
}

func twilioCallbackURL(cfg *config.Config) string {
	return strings.TrimRight(cfg.PublicURL, "/") + twilio.CallbackPath
}

// stopQueue lets running jobs finish within timeout, then cancels the rest;
// River marks cancelled work for retry, so nothing is lost.
func stopQueue(client *queue.Client, timeout time.Duration, log *slog.Logger) error {
	log.Info("stopping workers", "timeout", timeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := client.Stop(sctx)
	if err == nil {
		return nil
	}
	log.Warn("workers did not finish in time; cancelling running jobs", "err", err)
	cctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	return client.StopAndCancel(cctx)
}

func cmdSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demo := fs.Bool("demo", false, "fill a realistic demo district (schools, classes, students, staff)")
	schools := fs.Int("schools", 60, "with --demo: number of schools")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*demo {
		return errors.New("seed: nothing to do (use --demo)")
	}
	pool, _, err := openDB(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer pool.Close()
	res, err := seed.Demo(ctx, pool, seed.Options{Schools: *schools})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seed: district %s: %d schools, %d staff, %d students\n", res.District, res.Schools, res.Staff, res.Students)
	return nil
}
