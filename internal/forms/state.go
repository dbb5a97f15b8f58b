package forms

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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

// CodeFormClosed: a submission of a CLOSED form. It is kept, rejected, and
// processed again when the form opens (OPEN or CLOSING) again.
const CodeFormClosed fault.Code = "FORM_CLOSED"

// StateChange is what SetState did.
type StateChange struct {
	FormID, State, Previous string
	// Waiting is how many submissions refused while the form was closed
	// were put back for processing (the reconcile sweep takes them within
	// a minute).
	Waiting int
}

// SetState sets form id's state. Opening a CLOSED form (OPEN or CLOSING)
// puts the submissions it refused back for processing, in the same
// transaction. A processing that read the form CLOSED holds the form row
// (checkOpen) until its refusal commits, so the change waits for it and
// then puts it back: no refusal outlives the closing.
func (c *Catalog) SetState(ctx context.Context, id, state string) (*StateChange, error) {
	switch {
	case id == "":
		return nil, fault.Invalidf("formId", "must not be empty")
	case state != StateOpen && state != StateClosing && state != StateClosed:
		return nil, fault.Invalidf("state", "want OPEN, CLOSING or CLOSED, got %q", state)
	}
	ch := &StateChange{FormID: id, State: state}
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT state FROM form WHERE id = $1 FOR UPDATE`, id).Scan(&ch.Previous)
		if errors.Is(err, pgx.ErrNoRows) {
			return &fault.Error{Kind: fault.NotFound, Code: CodeUnknownForm, Field: "formId",
				Message: fmt.Sprintf("formId: form %q is not registered", id)}
		}
		if err != nil || ch.Previous == state {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE form SET state = $2 WHERE id = $1`, id, state); err != nil {
			return err
		}
		if ch.Previous == StateClosed {
			tag, err := tx.Exec(ctx, `UPDATE form_submission SET status = 'received', error_code = NULL, errors = NULL, processed_at = NULL
				WHERE form_id = $1 AND status = 'rejected' AND error_code = $2`, id, CodeFormClosed)
			if err != nil {
				return err
			}
			ch.Waiting = int(tag.RowsAffected())
		}
		return analytics.Record(ctx, tx, analytics.System, "form_state_changed", map[string]any{
			"form_id": id, "state": state, "previous": ch.Previous, "waiting_submissions": ch.Waiting,
		})
	})
	if err != nil {
		return nil, postgres.Translate(err, "form "+id)
	}
	return ch, nil
}

// checkOpen refuses a submission of a CLOSED form (FORM_CLOSED). The form
// row was read under a shared lock at the start of the transaction
// (lockForm), so a SetState that opens the form waits for this refusal
// to commit and puts it back.
func (r *run) checkOpen(context.Context, pgx.Tx) (*outcome, error) {
	if r.formState != StateClosed {
		return nil, nil
	}
	out := refused(fault.New(fault.Conflict, CodeFormClosed, "form %s is closed: it takes no more submissions", r.sub.FormID), "/"+r.sub.Root)
	return &out, nil
}

// lockForm reads the submission's form state under a shared lock on the
// form row, taken before the submission's own row: SetState takes the form
// row first too, then the submissions it puts back. No row (a form not
// registered) reads as "".
func (r *run) lockForm(ctx context.Context, tx pgx.Tx) error {
	err := tx.QueryRow(ctx, `SELECT state FROM form WHERE id = $1 FOR SHARE`, r.sub.FormID).Scan(&r.formState)
	if errors.Is(err, pgx.ErrNoRows) {
		r.formState = ""
		return nil
	}
	return err
}
