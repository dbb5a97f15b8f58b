// Package schema owns the database schema: it applies River's migrations and
// shala's Hasura-layout SQL migrations, in version order, each in its own
// transaction, and records what it applied so that a rerun is a no-op and an
// edited, already-applied migration is reported instead of silently ignored.
package schema

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// Migration is one directory default/<version>_<name>.
type Migration struct {
	Version  int64
	Name     string
	Up       string
	Checksum string
	// NoTransaction is set by a first line `-- shala:no-transaction`, for
	// statements Postgres refuses inside a transaction (CREATE INDEX
	// CONCURRENTLY).
	NoTransaction bool
}

var dirPattern = regexp.MustCompile(`^([0-9]{13})_([a-z0-9_]+)$`)

// lockKey serialises migrations across replicas starting at once.
const lockKey = 0x5A4A_1A00

// Load reads migrations from fsys, which holds version directories at its
// root, sorted by version.
func Load(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []Migration
	seen := map[int64]string{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		m := dirPattern.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration directory %q: want <13-digit version>_<lower_snake_name>", e.Name())
		}
		version, _ := strconv.ParseInt(m[1], 10, 64)
		if prev, ok := seen[version]; ok {
			return nil, fmt.Errorf("migration version %d used twice: %s and %s", version, prev, e.Name())
		}
		seen[version] = e.Name()
		up, err := fs.ReadFile(fsys, path.Join(e.Name(), "up.sql"))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(up)
		out = append(out, Migration{
			Version:       version,
			Name:          m[2],
			Up:            string(up),
			Checksum:      hex.EncodeToString(sum[:]),
			NoTransaction: strings.HasPrefix(string(up), "-- shala:no-transaction"),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Result says what Migrate did.
type Result struct {
	RiverVersions []int
	Applied       []Migration
}

// ErrDrift is returned (wrapped) when an applied migration's file no longer
// matches what was applied.
var ErrDrift = errors.New("applied migration changed")

// Migrate applies River's migrations and then every migration in fsys not yet
// applied. It holds an advisory lock for the duration, so concurrent callers
// wait rather than race. An applied migration whose up.sql changed since is
// an error (ErrDrift): the database and the repository disagree and a person
// must decide.
func Migrate(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS, log *slog.Logger) (*Result, error) {
	migrations, err := Load(fsys)
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return nil, fmt.Errorf("migrate: take lock: %w", err)
	}
	defer func() {
		// A fresh context: the caller's may be cancelled, and the lock must
		// not outlive this connection's return to the pool.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey)
	}()

	res := &Result{}
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("migrate river: %w", err)
	}
	rres, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return nil, fmt.Errorf("migrate river: %w", err)
	}
	for _, v := range rres.Versions {
		res.RiverVersions = append(res.RiverVersions, v.Version)
	}

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS shala_migration (
		version    bigint PRIMARY KEY,
		name       text NOT NULL,
		checksum   text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return nil, fmt.Errorf("migrate: create shala_migration: %w", err)
	}
	applied, err := appliedMigrations(ctx, conn.Conn())
	if err != nil {
		return nil, err
	}
	if err := checkDrift(migrations, applied); err != nil {
		return nil, err
	}
	for _, m := range migrations {
		if _, ok := applied[m.Version]; ok {
			continue
		}
		if err := apply(ctx, conn.Conn(), m); err != nil {
			return res, err
		}
		log.InfoContext(ctx, "migration applied", "version", m.Version, "name", m.Name)
		res.Applied = append(res.Applied, m)
	}
	return res, nil
}

func apply(ctx context.Context, conn *pgx.Conn, m Migration) error {
	if m.NoTransaction {
		if _, err := conn.Exec(ctx, m.Up); err != nil {
			return fmt.Errorf("migration %d_%s: %w", m.Version, m.Name, err)
		}
		_, err := conn.Exec(ctx, `INSERT INTO shala_migration (version, name, checksum) VALUES ($1, $2, $3)`,
			m.Version, m.Name, m.Checksum)
		return err
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// Exec without arguments uses the simple protocol, which runs a file
		// of several statements.
		if _, err := tx.Exec(ctx, m.Up); err != nil {
			return fmt.Errorf("migration %d_%s: %w", m.Version, m.Name, err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO shala_migration (version, name, checksum) VALUES ($1, $2, $3)`,
			m.Version, m.Name, m.Checksum)
		return err
	})
}

type applied struct {
	name, checksum string
}

func appliedMigrations(ctx context.Context, conn *pgx.Conn) (map[int64]applied, error) {
	rows, err := conn.Query(ctx, `SELECT version, name, checksum FROM shala_migration`)
	if err != nil {
		return nil, fmt.Errorf("read shala_migration: %w", err)
	}
	out := map[int64]applied{}
	for rows.Next() {
		var v int64
		var a applied
		if err := rows.Scan(&v, &a.name, &a.checksum); err != nil {
			return nil, err
		}
		out[v] = a
	}
	return out, rows.Err()
}

func checkDrift(migrations []Migration, done map[int64]applied) error {
	var changed []string
	for _, m := range migrations {
		if a, ok := done[m.Version]; ok && a.checksum != m.Checksum {
			changed = append(changed, fmt.Sprintf("%d_%s", m.Version, m.Name))
		}
	}
	if len(changed) > 0 {
		return fmt.Errorf("%w since it was applied: %s (write a new migration instead of editing an applied one)",
			ErrDrift, strings.Join(changed, ", "))
	}
	return nil
}

// Status compares the database with fsys. It returns nil when every
// migration is applied unchanged and River's schema is current; otherwise an
// error saying what is pending or changed. /readyz uses it.
func Status(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) error {
	migrations, err := Load(fsys)
	if err != nil {
		return err
	}
	// The connection goes back before River's check takes one of its own: a
	// caller holding one while asking for a second can starve the pool.
	var done map[int64]applied
	err = pool.AcquireFunc(ctx, func(conn *pgxpool.Conn) error {
		done, err = appliedMigrations(ctx, conn.Conn())
		return err
	})
	if err != nil {
		return err
	}
	if err := checkDrift(migrations, done); err != nil {
		return err
	}
	var pending []string
	for _, m := range migrations {
		if _, ok := done[m.Version]; !ok {
			pending = append(pending, fmt.Sprintf("%d_%s", m.Version, m.Name))
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("migrations not applied: %s", strings.Join(pending, ", "))
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return err
	}
	v, err := migrator.Validate(ctx, nil)
	if err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	if !v.OK {
		return fmt.Errorf("river migrations: %s", strings.Join(v.Messages, "; "))
	}
	return nil
}
