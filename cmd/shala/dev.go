package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/pgcluster"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/server"
)

// defaultDevPGPort is the local cluster's port: unusual, so it does not clash
// with a system Postgres on 5432.
const defaultDevPGPort = 54329

// cmdDev is the local default: everything shala needs on a fresh machine
// with Go and the Postgres binaries, kept under the project's .data/. It
// owns what it starts: one shala dev per data directory (a lock, and a pid
// file that names the holder), its Postgres in a process group of its own
// that dies with it, and shala dev itself stops (and stops its Postgres)
// when whatever started it exits.
func cmdDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", ".data", "directory for the local cluster, blobs, tus uploads, the SMS outbox and dev secrets")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := pgcluster.PrepareDir(*dataDir); err != nil {
		return err
	}
	port, err := pgPort(getenv)
	if err != nil {
		return err
	}
	addr := devAddr(getenv)
	lock, err := lockDev(*dataDir, addr, port)
	if err != nil {
		return err
	}
	defer lock.release()
	if err := dieWithParent(); err != nil {
		return err
	}
	vars := map[string]string{"SHALA_ADDR": addr}

	if getenv("DATABASE_URL") == "" {
		logFile, err := os.OpenFile(filepath.Join(*dataDir, "postgres.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer logFile.Close()
		pgDir := filepath.Join(*dataDir, "postgres")
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: pgDir, Port: port, Durable: true, Log: logFile})
		var running *pgcluster.RunningError
		switch {
		case errors.As(err, &running):
			return fmt.Errorf("a Postgres (pid %d) is still running on %s, left by an earlier shala dev; stop it first: kill %d",
				running.PID, pgDir, running.PID)
		case err != nil:
			return fmt.Errorf("local postgres on 127.0.0.1:%d (SHALA_DEV_PG_PORT): %w", port, err)
		}
		defer cluster.Stop()
		fmt.Fprintf(stdout, "dev: Postgres running in %s on 127.0.0.1:%d (log: %s)\n", pgDir, port, logFile.Name())
		if err := ensureDatabase(ctx, cluster.URL("postgres"), "shala"); err != nil {
			return err
		}
		vars["DATABASE_URL"] = cluster.URL("shala")
		fmt.Fprintf(stdout, "dev: DATABASE_URL=%s\n", vars["DATABASE_URL"])
	}

	for _, s := range []struct{ name, file, what string }{
		{"SHALA_WEBHOOK_SECRET", "dev-webhook-secret", "webhook secret"},
		{"SHALA_OPERATOR_PASSWORD", "dev-operator-password", "River UI password (user " + server.OperatorUser + ", /riverui/)"},
	} {
		if getenv(s.name) != "" {
			continue
		}
		file := filepath.Join(*dataDir, s.file)
		secret, created, err := devSecret(file)
		if err != nil {
			return err
		}
		vars[s.name] = secret
		if created {
			fmt.Fprintf(stdout, "dev: generated %s (shown once; kept in %s):\n\n    %s=%s\n\n", s.what, file, s.name, secret)
		} else {
			fmt.Fprintf(stdout, "dev: using the %s in %s\n", s.what, file)
		}
	}
	// Everything dev keeps goes under -data, not under the working
	// directory's .data/ whatever -data says.
	for name, path := range map[string]string{
		"SHALA_DATA_DIR":   *dataDir, // development signing and Aadhaar keys
		"SHALA_TUS_DIR":    filepath.Join(*dataDir, "tus"),
		"SHALA_SMS_OUTBOX": filepath.Join(*dataDir, "sms-outbox.log"),
	} {
		if getenv(name) == "" {
			vars[name] = path
		}
	}
	if getenv("SHALA_BLOB_URL") == "" {
		abs, err := filepath.Abs(filepath.Join(*dataDir, "blobs"))
		if err != nil {
			return err
		}
		vars["SHALA_BLOB_URL"] = "file://" + abs + "?create_dir=true"
	}

	env := func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		return getenv(k)
	}
	cfg, log, err := setup(ctx, env, stderr)
	if err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL.Reveal(), 4)
	if err != nil {
		return err
	}
	err = migrate(ctx, pool, log, stdout)
	pool.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "dev: starting shala on %s (Ctrl-C, or stopping what started it, stops shala and its Postgres)\n", cfg.Addr)
	return serve(ctx, cfg, log)
}

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

// devSecret reads the dev webhook secret from path, creating it on first
// use; created says whether it was just made (and so should be shown).
func devSecret(path string) (secret string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), false, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, err
	}
	secret = hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", false, err
	}
	return secret, true, nil
}
