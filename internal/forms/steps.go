package forms

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shala-edu/shala/internal/assessment"
	"github.com/shala-edu/shala/internal/collector"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/xform"
)

// run is one processing of a stored submission: what was read before the
// transaction (the row, the parsed document, its definition and typed
// answers) and the steps that decide its outcome inside it.
type run struct {
	p       *Pipeline
	st      *stored
	sub     *xform.Submission
	def     *Definition // nil: the form version was not registered when read
	answers []xform.Answer
	errs    []xform.FieldError
}

// step decides an outcome, or returns nil to let the next step decide.
type step func(ctx context.Context, tx pgx.Tx) (*outcome, error)

// decide runs the steps in order under the instance locks and returns the
// first outcome. An outcome with no status means another processing of the
// submission decided it first.
func (r *run) decide(ctx context.Context, tx pgx.Tx) (outcome, error) {
	// One at a time per instanceID, edits with what they edit; then
	// whoever got here first has decided.
	if err := lockInstances(ctx, tx, r.sub.InstanceID, r.sub.DeprecatedID); err != nil {
		return outcome{}, err
	}
	now, err := load(ctx, tx, r.st.id, true)
	if err != nil {
		return outcome{}, err
	}
	if !now.processable() {
		return outcome{}, nil
	}
	if err := r.claim(ctx, tx); err != nil {
		return outcome{}, err
	}
	for _, s := range []step{r.checkForm, r.checkValues, r.checkEditOwner, r.checkEditOrder, r.write} {
		out, err := s(ctx, tx)
		if err != nil || out != nil {
			if out == nil {
				out = &outcome{}
			}
			return *out, err
		}
	}
	return outcome{}, fmt.Errorf("submission %s: no step decided", r.st.id)
}

// claim records the header the document carries on the row; the unique
// index on instance_id refuses a second live submission of an instanceID
// (errTaken: the same one again, or a conflict).
func (r *run) claim(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `UPDATE form_submission SET instance_id = $2, deprecated_id = nullif($3, ''),
			form_id = $4, form_version = nullif($5, ''), xml_sha256 = $6 WHERE id = $1`,
		r.st.id, r.sub.InstanceID, r.sub.DeprecatedID, r.sub.FormID, r.sub.Version, r.st.sum)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "form_submission_instance" {
		return errTaken
	}
	return err
}

// checkForm refuses a submission of a form version that is not registered
// (UNKNOWN_FORM, processed again once it is) or whose root element is not
// the form's. The registration check is made again under the version's
// lock, which registering takes too: a version registered while this
// submission was read is seen now (errRegistered: process again), and a
// registration after this refusal commits puts the submission back.
func (r *run) checkForm(ctx context.Context, tx pgx.Tx) (*outcome, error) {
	root := "/" + r.sub.Root
	if r.def == nil {
		registered, err := versionRegistered(ctx, tx, r.sub.FormID, r.sub.Version)
		if err != nil {
			return nil, err
		}
		if registered {
			return nil, errRegistered
		}
		out := refused(fault.Wrap(ErrUnknownForm, fault.NotFound, CodeUnknownForm, "form %q version %q is not registered",
			r.sub.FormID, r.sub.Version), root)
		return &out, nil
	}
	if r.sub.Root != r.def.Form.Root {
		out := refused(fault.New(fault.Invalid, CodeInvalidSubmission, "root element <%s> does not match <%s> of form %s version %s",
			r.sub.Root, r.def.Form.Root, r.sub.FormID, r.sub.Version), root)
		return &out, nil
	}
	return nil, nil
}

// checkValues rejects values that do not fit their fields, with every
// path and reason.
func (r *run) checkValues(context.Context, pgx.Tx) (*outcome, error) {
	if len(r.errs) == 0 {
		return nil, nil
	}
	out := invalidValues(r.st.id, r.sub.InstanceID, r.errs)
	return &out, nil
}

// checkEditOwner refuses an edit (meta/deprecatedID) of a submission of
// another form, or of someone else's: the version it replaces must have come
// from the same collector or the same user, unless the editor is an admin
// (assessment.BuilderRoles) or wrote outside Hasura's permissions. An edit
// of a version never received is not checked here.
func (r *run) checkEditOwner(ctx context.Context, tx pgx.Tx) (*outcome, error) {
	if r.sub.DeprecatedID == "" {
		return nil, nil
	}
	var (
		formID           *string
		origCol          *uuid.UUID
		origBy, origRole *string
	)
	err := tx.QueryRow(ctx, `SELECT form_id, collector_id, submitted_by, submitted_role FROM form_submission
		WHERE instance_id = $1 AND status <> 'duplicate'`, r.sub.DeprecatedID).Scan(&formID, &origCol, &origBy, &origRole)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	path := "/" + r.sub.Root + "/meta/deprecatedID"
	if formID == nil || *formID != r.sub.FormID {
		out := refused(&fault.Error{Kind: fault.Forbidden, Code: fault.CodeForbidden, Field: path,
			Message: fmt.Sprintf("%s is not a submission of form %s: an edit replaces a submission of its own form", r.sub.DeprecatedID, r.sub.FormID)}, "")
		return &out, nil
	}
	col, role, by := r.st.collectorID, r.st.role, r.st.by
	switch {
	case role != nil && slices.Contains(assessment.BuilderRoles, *role):
	case role == nil && col == nil && by == nil: // outside Hasura's permissions
	case col != nil && origCol != nil && *col == *origCol:
	case by != nil && origBy != nil && *by == *origBy && role != nil && origRole != nil && *role == *origRole:
	default:
		out := refused(&fault.Error{Kind: fault.Forbidden, Code: fault.CodeForbidden, Field: path,
			Message: fmt.Sprintf("%s was submitted by someone else: an edit replaces only your own submission", r.sub.DeprecatedID)}, "")
		return &out, nil
	}
	return nil, nil
}

// checkEditOrder handles versions that arrive out of order, under the
// instance locks. A submission an accepted edit already replaced is an older
// version: it is kept as superseded (its result says so) and changes
// nothing. An edit of a version another edit already replaced is a stale
// branch: refused with STALE_EDIT (409), as ODK Central does, so two edits
// never both stay live.
func (r *run) checkEditOrder(ctx context.Context, tx pgx.Tx) (*outcome, error) {
	var newer string
	err := tx.QueryRow(ctx, `SELECT instance_id FROM form_submission WHERE deprecated_id = $1 AND status = 'accepted'`, r.sub.InstanceID).Scan(&newer)
	switch {
	case err == nil:
		return &outcome{status: StatusSuperseded,
			result: &Result{SubmissionID: r.st.id, Status: StatusSuperseded, InstanceID: r.sub.InstanceID, Flags: []string{}}}, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, err
	}
	if r.sub.DeprecatedID == "" {
		return nil, nil
	}
	err = tx.QueryRow(ctx, `SELECT instance_id FROM form_submission WHERE deprecated_id = $1 AND status = 'accepted' AND id <> $2`,
		r.sub.DeprecatedID, r.st.id).Scan(&newer)
	switch {
	case err == nil:
		out := refused(&fault.Error{Kind: fault.Conflict, Code: CodeStaleEdit, Field: "/" + r.sub.Root + "/meta/deprecatedID",
			Message: fmt.Sprintf("%s was already replaced by %s: edit the latest version", r.sub.DeprecatedID, newer)}, "")
		return &out, nil
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	default:
		return nil, err
	}
}

// write stores what the submission describes: a response (data collection)
// or an assessment (builder). Rules an assessment builder breaks reject it,
// recorded in this transaction with nothing else written.
func (r *run) write(ctx context.Context, tx pgx.Tx) (*outcome, error) {
	switch r.def.Purpose {
	case DataCollection:
		res, err := r.p.writeResponse(ctx, tx, r.st.id, r.sub, r.def, r.answers, r.st.collectorID)
		if err != nil {
			return nil, err
		}
		out := accepted(res, r.sub.DeprecatedID)
		return &out, nil
	case AssessmentBuilder:
		return r.writeAssessment(ctx, tx)
	}
	return nil, fmt.Errorf("form %s: unknown purpose %q", r.sub.FormID, r.def.Purpose)
}

func (r *run) writeAssessment(ctx context.Context, tx pgx.Tx) (*outcome, error) {
	var builds *bool
	if r.st.collectorID != nil {
		b, err := collector.BuildsAssessments(ctx, tx, *r.st.collectorID)
		if err != nil {
			return nil, err
		}
		builds = &b
	}
	if err := assessment.MayBuild(r.st.role, builds); err != nil {
		out := refused(err, "/"+r.sub.Root)
		return &out, nil
	}
	b, err := assessment.Read(r.sub.Root, r.answers)
	if err == nil {
		origin := assessment.Origin{SubmissionID: r.st.id, Root: r.sub.Root, InstanceID: r.sub.InstanceID, DeprecatedID: r.sub.DeprecatedID}
		if r.st.by != nil {
			origin.CreatedBy = *r.st.by
		}
		var id uuid.UUID
		if id, _, err = assessment.Save(ctx, tx, origin, b); err == nil {
			out := accepted(&Result{SubmissionID: r.st.id, Status: StatusAccepted, InstanceID: r.sub.InstanceID, AssessmentID: &id, Flags: []string{}},
				r.sub.DeprecatedID)
			return &out, nil
		}
	}
	if fault.KindOf(err) == fault.Unprocessable {
		out := refused(err, "/"+r.sub.Root)
		return &out, nil
	}
	return nil, err
}
