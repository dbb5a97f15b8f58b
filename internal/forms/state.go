package forms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shala-edu/shala/internal/analytics"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
)

// Form states (form.state), as ODK Central has them.
const (
	// StateOpen: offered to collectors (formList), takes submissions.
	StateOpen = "OPEN"
	// StateClosing: no longer offered, still takes submissions (what
	// collectors have on their devices comes in).
	StateClosing = "CLOSING"
	// StateClosed: not offered, refuses submissions (CodeFormClosed).
	StateClosed = "CLOSED"
)

// StateChange is what SetState did.
type StateChange struct {
	FormID, State, Previous string
	// Waiting is how many submissions refused while the form was closed
	// were put back for processing (the reconcile sweep takes them, 1,000
	// a minute).
	Waiting int
}

// SetState sets form id's state. Any state but CLOSED puts the submissions
// refused as FORM_CLOSED back for processing, in the same transaction. It
// holds the form's state lock (formStateKey) exclusively: a processing that
// read the form CLOSED holds it shared until its refusal commits, so the
// change waits for it and then puts it back — no refusal outlives the
// closing — and the processings after it read the new state.
func (c *Catalog) SetState(ctx context.Context, id, state string) (*StateChange, error) {
	switch {
	case id == "":
		return nil, fault.Invalidf("formId", "must not be empty")
	case state != StateOpen && state != StateClosing && state != StateClosed:
		return nil, fault.Invalidf("state", "want OPEN, CLOSING or CLOSED, got %q", state)
	}
	ch := &StateChange{FormID: id, State: state}
	wait := c.stateWait
	if wait == 0 {
		wait = StateLockWait
	}
	busy := false
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		// Two statements: the second's snapshot is taken once the lock is
		// held, after the refusals it waited for committed.
		if err := lockState(ctx, tx, id, wait); err != nil {
			var pgErr *pgconn.PgError
			busy = errors.As(err, &pgErr) && pgErr.Code == "55P03"
			return err
		}
		err := tx.QueryRow(ctx, `SELECT state FROM form WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&ch.Previous)
		if errors.Is(err, pgx.ErrNoRows) {
			return &fault.Error{Kind: fault.NotFound, Code: CodeUnknownForm, Field: "formId",
				Message: fmt.Sprintf("formId: form %q is not registered", id)}
		}
		if err != nil {
			return err
		}
		if ch.Previous != state {
			if _, err := tx.Exec(ctx, `UPDATE form SET state = $2 WHERE id = $1`, id, state); err != nil {
				return err
			}
		}
		if state != StateClosed {
			// Not only after CLOSED: a refusal left while the form was open
			// (written by SQL, or across a migration) goes back too. The
			// code is in the text so that the partial index
			// form_submission_form_closed serves every plan.
			tag, err := tx.Exec(ctx, `UPDATE form_submission SET status = 'received', error_code = NULL, errors = NULL, processed_at = NULL
				WHERE form_id = $1 AND status = 'rejected' AND error_code = '`+string(CodeFormClosed)+`'`, id)
			if err != nil {
				return err
			}
			ch.Waiting = int(tag.RowsAffected())
		}
		if ch.Previous == state && ch.Waiting == 0 {
			return nil
		}
		return analytics.Record(ctx, tx, analytics.System, "form_state_changed", map[string]any{
			"form_id": id, "state": state, "previous": ch.Previous, "waiting_submissions": ch.Waiting,
		})
	})
	if busy {
		return nil, &fault.Error{Kind: fault.Unavailable, Code: fault.CodeUnavailable, Field: "formId", Err: err,
			Message: fmt.Sprintf("formId: submissions of form %q were still being processed after %v", id, wait)}
	}
	if err != nil {
		return nil, postgres.Translate(err, "form "+id)
	}
	return ch, nil
}

// lockState takes form id's state lock exclusively in tx, waiting at most
// wait: processings of the form that come meanwhile queue behind it. The
// bound is on this lock only (lock_timeout set around it, then put back).
func lockState(ctx context.Context, tx pgx.Tx, id string, wait time.Duration) error {
	var was string
	if err := tx.QueryRow(ctx, `SELECT current_setting('lock_timeout')`).Scan(&was); err != nil {
		return err
	}
	// Whole milliseconds, at least one: 0 would mean no bound.
	if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, fmt.Sprintf("%dms", max(wait.Milliseconds(), 1))); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+formStateKey+`)`, id); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, was)
	return err
}

// StateLockWait is how long SetState waits for the processings of the form
// in flight (each well under a second) before it answers "try again".
const StateLockWait = 5 * time.Second

// formStateKey is the advisory lock key of form $1's state: taken
// exclusively by SetState, shared by a processing (lockForm). An advisory
// lock, not the form row's: row share locks would write the busy form row
// (multixacts), make registrations and metadata edits of the form wait for
// every processing, and let a stream of processings starve SetState, where
// a waiting advisory lock is served before later shared requests.
const formStateKey = `hashtextextended('form_state:' || $1, 0)`
