package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/aadhaar"
	"github.com/shala-edu/shala/internal/analytics"
	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/logging"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/schema"
	"github.com/shala-edu/shala/internal/seed"
	"github.com/shala-edu/shala/internal/server"
	"github.com/shala-edu/shala/internal/vault"
	"github.com/shala-edu/shala/migrations"
)

const usage = `usage: shala <command> [flags]

commands:
  serve     serve HTTP (actions, events, cron, probes, metrics) and work jobs
  migrate   apply River's and shala's database migrations, then exit
  dev       local default: start a project-local Postgres under .data/ if
            DATABASE_URL is unset, generate a dev webhook secret, migrate, serve
  seed      fill the database with data (--demo: a realistic district;
            --state [--scale F]: the state-scale data set, with COPY)
  verify-certificate [-keys file|URL] <payload | image file>
            check a School Leaving Certificate offline: its signature against
            the published key set; no database
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
	case "verify-certificate":
		return cmdVerifyCertificate(ctx, rest, getenv, stdout, stderr)
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

// serve is `shala serve`, top to bottom: open and build everything
// (internal/app), listen, start the workers, serve until ctx is cancelled
// or the listener fails, then stop both within cfg.ShutdownTimeout — the
// listener stops accepting and in-flight requests finish while running jobs
// finish (or, past the deadline, are cancelled and retried later by another
// process) — and release what was built.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger) (err error) {
	if err := cfg.ValidateServe(); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log.Info("starting shala", "version", version, "config", cfg, "secret_sources", cfg.Sources)

	a, err := app.New(ctx, cfg, log, app.Options{Version: version})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, a.Close()) }()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("SHALA_ADDR: %w", err)
	}
	if err := a.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "workers", cfg.QueueWorkers)
	if err := analytics.Record(ctx, a.Pool, analytics.System, "server_started", map[string]any{"version": version}); err != nil {
		log.Warn("product event not recorded", "event", "server_started", "err", err)
	}

	// The workers stop when shala is told to stop, at the same time as the
	// HTTP server drains, or when the listener fails (the process then
	// exits with the listener's error once running jobs have finished).
	served, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	workersStopped := make(chan error, 1)
	go func() {
		<-served.Done()
		workersStopped <- a.Stop(cfg.ShutdownTimeout)
	}()
	httpErr := server.Serve(ctx, ln, a.Handler(), log, cfg.ShutdownTimeout)
	stopWorkers()
	err = errors.Join(httpErr, <-workersStopped)
	log.Info("stopped")
	return err
}

func cmdSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demo := fs.Bool("demo", false, "fill a realistic demo district (schools, classes, students, staff)")
	schools := fs.Int("schools", 60, "with --demo: number of schools")
	state := fs.Bool("state", false, "load the state-scale data set with COPY (12 districts, 18,000 schools, 1.5 M students, 20 assessments, ≈30 M results; needs a superuser)")
	scale := fs.Float64("scale", 1, "with --state: fraction of the state's size")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *state {
		if !(*scale > 0) || math.IsInf(*scale, 0) {
			return fmt.Errorf("seed: --scale %v: want a fraction of the state's size above 0 (1: the whole state)", *scale)
		}
		return seedState(ctx, getenv, stdout, stderr, *scale)
	}
	if !*demo {
		return errors.New("seed: nothing to do (use --demo or --state)")
	}
	cfg, log, err := setup(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	protector, err := aadhaar.OpenProtector(cfg.AadhaarKey.Reveal(), cfg.VaultAddr != "", cfg.DataDir, log.Warn)
	if err != nil {
		return err
	}
	pool, _, err := openDB(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer pool.Close()
	res, err := seed.Demo(ctx, pool, seed.Options{Schools: *schools, Aadhaar: protector})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seed: district %s: %d schools, %d staff, %d students\n", res.District, res.Schools, res.Staff, res.Students)
	return nil
}

func seedState(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer, scale float64) error {
	pool, _, err := openDB(ctx, getenv, stderr)
	if err != nil {
		return err
	}
	defer pool.Close()
	res, err := seed.State(ctx, pool, seed.StateOptions{Scale: scale, Progress: func(format string, args ...any) {
		fmt.Fprintf(stderr, format+"\n", args...)
	}})
	if err != nil {
		return err
	}
	if res.AlreadySeeded {
		fmt.Fprintf(stdout, "seed: the state data set is already there (%d schools)\n", res.Schools)
		return nil
	}
	var size string
	if err := pool.QueryRow(ctx, `SELECT pg_size_pretty(pg_database_size(current_database()))`).Scan(&size); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seed: state: %d districts, %d schools, %d students, %d assessments, %d results, %d TSP counts, %d final classes in %s; database %s\n",
		res.Districts, res.Schools, res.Students, res.Assessments, res.Results, res.TSP, res.FinalClasses, res.Elapsed.Round(time.Second), size)
	return nil
}
