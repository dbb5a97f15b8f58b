// Package postgres opens shala's connection pool and translates driver
// errors at the boundary: no rows → fault.NotFound, unique violation →
// fault.Conflict, check/not-null violation → fault.Invalid, and anything that
// means "the database is not reachable right now" → fault.Unavailable (which
// the webhook edge answers with 503 + Retry-After so Hasura retries).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/fault"
)

// Open returns a pool for url after checking that the database answers.
func Open(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "shala"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to %s: %w", redact(cfg), err)
	}
	return pool, nil
}

func redact(cfg *pgxpool.Config) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
}

// Unavailable reports whether err means the database could not be reached or
// could not do the work right now, so that retrying later may succeed.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"),          // insufficient resources
			strings.HasPrefix(pgErr.Code, "57P"),         // admin shutdown, crash shutdown, cannot connect now
			pgErr.Code == "40001", pgErr.Code == "40P01", // serialization failure, deadlock
			pgErr.Code == "55P03": // lock not available
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "closed pool")
}

// UniqueViolation reports whether err is a unique violation of the
// constraint (or unique index) named constraint.
func UniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == uniqueViolation && pgErr.ConstraintName == constraint
}

// uniqueViolation is the SQLSTATE of unique_violation.
const uniqueViolation = "23505"

// Translate maps a driver error to a fault where one applies; what names the
// thing being read or written ("ping", "student 7f3c…").
func Translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fault.Wrap(err, fault.NotFound, "", "%s not found", what)
	}
	if Unavailable(err) {
		return fault.Wrap(err, fault.Unavailable, "", "database unavailable")
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case uniqueViolation:
			return fault.Wrap(err, fault.Conflict, "", "%s already exists (%s)", what, pgErr.ConstraintName)
		case "22021", "22P05": // NUL or another byte text cannot hold; \u0000 in jsonb
			return fault.Wrap(err, fault.Invalid, "", "%s: contains a character that cannot be stored (NUL)", what)
		case "23514", "23502", "22001", "22P02", "23503": // check, not null, too long, bad text repr, foreign key
			field := pgErr.ColumnName
			if field == "" {
				field = pgErr.ConstraintName
			}
			return fault.Wrap(err, fault.Invalid, "", "%s: %s", what, constraintMessage(pgErr, field))
		}
	}
	return err
}

func constraintMessage(e *pgconn.PgError, field string) string {
	switch e.Code {
	case "23503":
		return "refers to a row that does not exist (" + e.ConstraintName + ")"
	case "23502":
		return field + " is required"
	default:
		if field == "" {
			return e.Message
		}
		return field + ": " + e.Message
	}
}
