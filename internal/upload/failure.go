package upload

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Execer runs a statement: a pool, a connection or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// RecordFailure records in storage_failure that op on key failed with
// cause: a new row, or one more attempt on the open row of (op, key). The
// job retrying the operation calls ResolveFailures when it succeeds, so the
// table holds what is failing now and what failed before.
func RecordFailure(ctx context.Context, db Execer, op, key string, cause error) error {
	// Postgres text holds valid UTF-8 without NUL: a message cut inside a
	// character, or carrying a NUL, would lose the record itself.
	msg := strings.ReplaceAll(cause.Error(), "\x00", "")
	if len(msg) > 2000 {
		msg = msg[:2000]
	}
	msg = strings.ToValidUTF8(msg, "")
	_, err := db.Exec(ctx, `INSERT INTO storage_failure (operation, key, error) VALUES ($1, $2, $3)
		ON CONFLICT (operation, key) WHERE resolved_at IS NULL
		DO UPDATE SET attempts = storage_failure.attempts + 1, error = EXCLUDED.error, last_failed_at = now()`,
		op, key, msg)
	if err != nil {
		return fmt.Errorf("record storage failure %s %s: %w", op, key, err)
	}
	return nil
}

// ResolveFailures marks every open failure on key resolved: the key is now
// known to be in the state the failed operations wanted (gone).
func ResolveFailures(ctx context.Context, db Execer, key string) error {
	if _, err := db.Exec(ctx, `UPDATE storage_failure SET resolved_at = now() WHERE key = $1 AND resolved_at IS NULL`, key); err != nil {
		return fmt.Errorf("resolve storage failures of %s: %w", key, err)
	}
	return nil
}
