package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
)

// connectError is what pgx returns when no database listens.
func connectError(t *testing.T) error {
	t.Helper()
	_, err := pgconn.Connect(t.Context(), "postgres://postgres@127.0.0.1:1/shala?sslmode=disable&connect_timeout=2")
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("connect to a closed port: %v, want a *pgconn.ConnectError", err)
	}
	return err
}

// closedPoolError is what a query on a closed pool returns.
func closedPoolError(t *testing.T) error {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), "postgres://postgres@127.0.0.1:1/shala?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	_, err = pool.Exec(t.Context(), "SELECT 1")
	if err == nil {
		t.Fatal("query on a closed pool: nil error")
	}
	return err
}

func TestUniqueViolation(t *testing.T) {
	t.Parallel()
	pg := func(code, constraint string) error {
		return fmt.Errorf("insert: %w", &pgconn.PgError{Code: code, ConstraintName: constraint})
	}
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"that key", pg("23505", "webhook_inbox_pkey"), true},
		{"another key", pg("23505", "form_submission_instance"), false},
		{"another error on that constraint", pg("23514", "webhook_inbox_pkey"), false},
		{"not from Postgres", errors.New("webhook_inbox_pkey"), false},
		{"nil", nil, false},
	} {
		if got := postgres.UniqueViolation(tt.err, "webhook_inbox_pkey"); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestTranslate(t *testing.T) {
	t.Parallel()
	pg := func(code, column, constraint, msg string) error {
		return fmt.Errorf("insert: %w", &pgconn.PgError{Code: code, ColumnName: column, ConstraintName: constraint, Message: msg})
	}
	for _, tt := range []struct {
		name        string
		err         error
		wantKind    fault.Kind
		wantMessage string // the fault's message; "" for errors left as they are
	}{
		{"no rows", pgx.ErrNoRows, fault.NotFound, "student 7 not found"},
		{"unique violation", pg("23505", "", "student_admission_number_key", "duplicate key"), fault.Conflict, "student 7 already exists (student_admission_number_key)"},
		{"check violation", pg("23514", "", "student_name_check", "new row violates check constraint"), fault.Invalid, "student 7: student_name_check: new row violates check constraint"},
		{"not null", pg("23502", "name", "", "null value"), fault.Invalid, "student 7: name is required"},
		{"too long", pg("22001", "name", "", "value too long for type character varying(200)"), fault.Invalid, "student 7: name: value too long for type character varying(200)"},
		{"bad text representation", pg("22P02", "", "", "invalid input syntax for type uuid"), fault.Invalid, "student 7: invalid input syntax for type uuid"},
		{"foreign key", pg("23503", "", "student_school_id_fkey", "violates foreign key"), fault.Invalid, "student 7: refers to a row that does not exist (student_school_id_fkey)"},
		{"connection exception", pg("08006", "", "", "connection failure"), fault.Unavailable, "database unavailable"},
		{"too many connections", pg("53300", "", "", "too many clients"), fault.Unavailable, "database unavailable"},
		{"admin shutdown", pg("57P01", "", "", "terminating connection"), fault.Unavailable, "database unavailable"},
		{"serialization failure", pg("40001", "", "", "could not serialize"), fault.Unavailable, "database unavailable"},
		{"deadlock", pg("40P01", "", "", "deadlock detected"), fault.Unavailable, "database unavailable"},
		{"lock not available", pg("55P03", "", "", "could not obtain lock"), fault.Unavailable, "database unavailable"},
		{"no database listening", connectError(t), fault.Unavailable, "database unavailable"},
		{"closed pool", closedPoolError(t), fault.Unavailable, "database unavailable"},
		{"network error", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset")}, fault.Unavailable, "database unavailable"},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), fault.Unavailable, "database unavailable"},
		{"connection closed mid-answer", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), fault.Unavailable, "database unavailable"},
		{"other database error", pg("42P01", "", "", "relation does not exist"), fault.Internal, ""},
		{"other error", errors.New("boom"), fault.Internal, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := postgres.Translate(tt.err, "student 7")
			if !errors.Is(got, tt.err) {
				t.Errorf("Translate(%v) = %v: the cause is lost", tt.err, got)
			}
			f := fault.As(got)
			if f.Kind != tt.wantKind {
				t.Errorf("kind %d, want %d", f.Kind, tt.wantKind)
			}
			if tt.wantMessage != "" && f.Message != tt.wantMessage {
				t.Errorf("message %q, want %q", f.Message, tt.wantMessage)
			}
			if tt.wantMessage == "" && got != tt.err {
				t.Errorf("Translate(%v) = %v, want the error unchanged", tt.err, got)
			}
			if got, want := postgres.Unavailable(tt.err), tt.wantKind == fault.Unavailable; got != want {
				t.Errorf("Unavailable = %v, want %v", got, want)
			}
		})
	}
	if postgres.Translate(nil, "x") != nil || postgres.Unavailable(nil) {
		t.Error("nil: want nil, not unavailable")
	}
}

// A message shown to an app never carries the driver's details.
func TestTranslateUnavailableHidesTheCause(t *testing.T) {
	t.Parallel()
	err := postgres.Translate(connectError(t), "ping")
	if f := fault.As(err); strings.Contains(f.Message, "127.0.0.1") || f.Code != fault.CodeUnavailable {
		t.Errorf("message %q code %s, want no address and code UNAVAILABLE", f.Message, f.Code)
	}
}
