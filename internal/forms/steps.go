package forms

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/assessment"
	"github.com/shala-edu/shala/internal/collector"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
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
	// target is the instanceID of the accepted version this edit replaces
	// (set by checkEdit); "" for an original.
	target string
	// formState is the form's state as read under lockForm; "" when the
	// form is not registered.
	formState string
	// locked are the instanceIDs whose locks the transaction holds, sorted;
	// first are the ones to take before anything else (a relockError of an
	// earlier run: the versions an edit follows back).
	locked, first []string
}

// step decides an outcome, or returns nil to let the next step decide.
type step func(ctx context.Context, tx pgx.Tx) (*outcome, error)

// decide runs the steps in order under the instance locks and returns the
// first outcome. An outcome with no status means another processing of the
// submission decided it first. Locks are taken in one order: the
// instanceIDs' (lockInstances), the form's state lock shared and the
// version's lock shared when the version is not registered (lockForm),
// then the submission's row; SetState and Register take their lock and then the
// rows they put back, so neither waits on a processing in a cycle. A lock
// needed later (checkEdit's walk back) is never waited for: lockMore.
func (r *run) decide(ctx context.Context, tx pgx.Tx) (outcome, error) {
	// One at a time per instanceID, edits with what they edit; then
	// whoever got here first has decided.
	var err error
	r.target = ""
	if r.locked, err = lockInstances(ctx, tx, append([]string{r.sub.InstanceID, r.sub.DeprecatedID}, r.first...)...); err != nil {
		return outcome{}, err
	}
	if err := r.lockForm(ctx, tx); err != nil {
		return outcome{}, err
	}
	if r.p.inDecide != nil {
		r.p.inDecide()
	}
	now, err := load(ctx, tx, r.st.id, true, false)
	if err != nil {
		return outcome{}, err
	}
	if !now.processable() {
		return outcome{}, nil
	}
	if now.held {
		// A waiting copy processed again: a later copy of it stored and
		// not processed yet is processed first, and takes its place.
		if pe, err := r.laterCopy(ctx, tx); err != nil || pe != nil {
			if err == nil {
				err = pe
			}
			return outcome{}, err
		}
	}
	if err := r.replaceWaiting(ctx, tx); err != nil {
		return outcome{}, err
	}
	if err := r.claim(ctx, tx); err != nil {
		return outcome{}, err
	}
	for _, s := range []step{r.checkForm, r.checkOpen, r.checkEdit, r.checkLateOriginal, r.checkValues, r.write} {
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

// replaceWaiting retires the copy holding this submission's instanceID when
// it is an older copy still waiting for its form — put back for processing,
// or rejected as UNKNOWN_FORM or FORM_CLOSED — of the same form and edit
// (deprecatedID), with other content, from the same sender (collector, user
// and role all the same): ODK Collect resends a form saved again under its
// instanceID with changed content (its end time at least), and ODK Central,
// which stores neither refusal, would take the newer copy. The older copy
// is kept as a duplicate of this one (so are the copies that pointed at
// it), and this one claims the instanceID. It runs under the instanceID's
// lock, which every processing of the older copy takes too; "older" is by
// arrival (received_at, then id), so copies processed out of order keep
// the last to arrive. A copy of anything already decided — accepted, or
// refused for its content — is not replaced: the claim then finds it
// (errTaken) and a different copy is a conflict.
func (r *run) replaceWaiting(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `WITH self AS (SELECT received_at, id FROM form_submission WHERE id = $1),
		retired AS (
			UPDATE form_submission h SET status = 'duplicate', duplicate_of = $1, error_code = NULL, errors = NULL, processed_at = now()
			FROM self
			WHERE h.instance_id = $2 AND h.id <> $1 AND h.form_id = $3 AND h.deprecated_id IS NOT DISTINCT FROM nullif($4, '')
			  AND (h.status = 'received' OR (h.status = 'rejected' AND h.error_code IN ('`+string(CodeUnknownForm)+`', '`+string(CodeFormClosed)+`')))
			  AND h.xml_sha256 IS DISTINCT FROM $5
			  AND h.collector_id IS NOT DISTINCT FROM $6 AND h.submitted_by IS NOT DISTINCT FROM $7 AND h.submitted_role IS NOT DISTINCT FROM $8
			  AND (h.received_at, h.id) < (self.received_at, self.id)
			RETURNING h.id)
		UPDATE form_submission d SET duplicate_of = $1 FROM retired WHERE d.duplicate_of = retired.id`,
		r.st.id, r.sub.InstanceID, r.sub.FormID, r.sub.DeprecatedID, r.st.sum, r.st.collectorID, r.st.by, r.st.role)
	return err
}

// laterCopy finds a copy of this submission that replaceWaiting would let
// take its place — the same instanceID, form and edit, other content, the
// same sender, arrived later — stored and not processed yet (a Hasura
// insert whose event is late, a crash before processing): the sweep takes
// the oldest first, and the later copy must win.
func (r *run) laterCopy(ctx context.Context, tx pgx.Tx) (*pendingError, error) {
	rows, err := tx.Query(ctx, `SELECT s.id, s.xml FROM form_submission s, form_submission self
		WHERE self.id = $1 AND s.status = 'received' AND s.instance_id IS NULL AND s.id <> $1 AND strpos(s.xml, $2) > 0
		  AND s.collector_id IS NOT DISTINCT FROM self.collector_id AND s.submitted_by IS NOT DISTINCT FROM self.submitted_by
		  AND s.submitted_role IS NOT DISTINCT FROM self.submitted_role AND s.xml_sha256 IS DISTINCT FROM self.xml_sha256
		  AND (s.received_at, s.id) > (self.received_at, self.id)
		ORDER BY s.received_at DESC, s.id DESC LIMIT 20`, r.st.id, r.sub.InstanceID)
	return firstUnread(rows, err, func(sub *xform.Submission) bool {
		return sub.InstanceID == r.sub.InstanceID && sub.FormID == r.sub.FormID && sub.DeprecatedID == r.sub.DeprecatedID
	})
}

// claim records the header the document carries on the row; the unique
// index on instance_id refuses a second live submission of an instanceID
// (errTaken: the same one again, or a conflict).
func (r *run) claim(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `UPDATE form_submission SET instance_id = $2, deprecated_id = nullif($3, ''),
			form_id = $4, form_version = $5, xml_sha256 = $6 WHERE id = $1`,
		r.st.id, r.sub.InstanceID, r.sub.DeprecatedID, r.sub.FormID, r.sub.Version, r.st.sum)
	if postgres.UniqueViolation(err, "form_submission_instance") {
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

// checkOpen refuses a submission of a CLOSED form (FORM_CLOSED: kept,
// and put back when the form opens). The state was read under the form's
// shared state lock (lockForm), which this transaction holds until the
// refusal commits.
func (r *run) checkOpen(context.Context, pgx.Tx) (*outcome, error) {
	if r.formState != StateClosed {
		return nil, nil
	}
	out := refused(fault.New(fault.Conflict, CodeFormClosed, "form %s is closed: it takes no more submissions", r.sub.FormID), "/"+r.sub.Root)
	return &out, nil
}

// lockForm takes the form's state lock shared (formStateKey) — and, when
// the version is not registered, the version's lock shared, before the
// submission's row as Register takes them (exclusively, then the rows it
// puts back); checkForm asks again under it — and then reads the form's
// state ("" when the form is not registered). One round trip: the
// statements run one after the other, so the read's snapshot sees a
// SetState that committed while the lock was awaited.
func (r *run) lockForm(ctx context.Context, tx pgx.Tx) error {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock_shared(`+formStateKey+`)`, r.sub.FormID)
	if r.def == nil {
		b.Queue(`SELECT pg_advisory_xact_lock_shared(`+versionLockKey+`)`, r.sub.FormID, r.sub.Version)
	}
	r.formState = ""
	b.Queue(`SELECT state FROM form WHERE id = $1`, r.sub.FormID).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&r.formState); !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return nil
	})
	return tx.SendBatch(ctx, b).Close()
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

// version is a stored version of a submission, as an edit's checks read it.
type version struct {
	id           uuid.UUID
	status       string
	deprecatedID *string
	formID       *string
	collectorID  *uuid.UUID
	by, role     *string
}

// findVersion reads the live (not duplicate) submission of instanceID other
// than self; nil when none was received.
func findVersion(ctx context.Context, tx pgx.Tx, instanceID string, self uuid.UUID) (*version, error) {
	v := &version{}
	err := tx.QueryRow(ctx, `SELECT id, status, deprecated_id, form_id, collector_id, submitted_by, submitted_role FROM form_submission
		WHERE instance_id = $1 AND status <> 'duplicate' AND id <> $2`, instanceID, self).
		Scan(&v.id, &v.status, &v.deprecatedID, &v.formID, &v.collectorID, &v.by, &v.role)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return v, err
}

// pendingError asks for a stored, not yet processed submission to be
// processed before the one that needs it (an edit of it, or a waiting copy
// it takes the place of: laterCopy) is decided.
type pendingError struct{ id uuid.UUID }

func (e *pendingError) Error() string { return "submission " + e.id.String() + " is not processed yet" }

// pending finds a stored submission of instanceID that no processing has
// read yet (its header is still only in its XML): a Hasura insert whose job
// has not run, a crash before processing.
func pending(ctx context.Context, tx pgx.Tx, instanceID string, self uuid.UUID) (*pendingError, error) {
	rows, err := tx.Query(ctx, `SELECT id, xml FROM form_submission
		WHERE status = 'received' AND instance_id IS NULL AND id <> $2 AND strpos(xml, $1) > 0 LIMIT 20`, instanceID, self)
	return firstUnread(rows, err, func(sub *xform.Submission) bool { return sub.InstanceID == instanceID })
}

// firstUnread reads (id, xml) rows of stored, unprocessed submissions —
// candidates found by their instanceID's text — and names the first whose
// parsed header matches (nil when none does).
func firstUnread(rows pgx.Rows, err error, match func(*xform.Submission) bool) (*pendingError, error) {
	if err != nil {
		return nil, err
	}
	type raw struct {
		id  uuid.UUID
		xml string
	}
	found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (raw, error) {
		var r raw
		err := row.Scan(&r.id, &r.xml)
		return r, err
	})
	if err != nil {
		return nil, err
	}
	for _, r := range found {
		if sub, err := xform.ParseSubmission([]byte(r.xml)); err == nil && match(sub) {
			return &pendingError{id: r.id}, nil
		}
	}
	return nil, nil
}

// maxEditChain bounds how many refused edits an edit may stand in for.
const maxEditChain = 10

// checkEdit decides an edit (meta/deprecatedID), as ODK Central does: the
// version it names must have been received (else UNKNOWN_EDIT, 404), be a
// submission of the same form and the editor's own (else FORBIDDEN), and be
// the current version (else STALE_EDIT, 409: it was edited since). It sets
// what the edit replaces (run.target): the named version when it is the
// accepted one. shala keeps refused versions, which Central never stores:
// an edit of a refused version stands in for it — it replaces what that
// version would have replaced (following refused edits back), or becomes
// the first version when the refused one was an original. A named version
// not processed yet is processed first (pendingError).
func (r *run) checkEdit(ctx context.Context, tx pgx.Tx) (*outcome, error) {
	dep := r.sub.DeprecatedID
	if dep == "" {
		return nil, nil
	}
	path := "/" + r.sub.Root + "/meta/deprecatedID"
	refuse := func(kind fault.Kind, code fault.Code, format string, args ...any) (*outcome, error) {
		out := refused(&fault.Error{Kind: kind, Code: code, Field: path, Message: fmt.Sprintf(format, args...)}, "")
		return &out, nil
	}
	unknown := func(instanceID string) (*outcome, error) {
		pe, err := pending(ctx, tx, instanceID, r.st.id)
		if err != nil {
			return nil, err
		}
		if pe != nil {
			return nil, pe
		}
		return refuse(fault.NotFound, CodeUnknownEdit, "the submission being edited (%s) was not found: an edit replaces a submission already received", dep)
	}
	named, err := findVersion(ctx, tx, dep, r.st.id)
	if err != nil {
		return nil, err
	}
	if named == nil {
		return unknown(dep)
	}
	if named.formID == nil || *named.formID != r.sub.FormID {
		return refuse(fault.Forbidden, fault.CodeForbidden, "%s is not a submission of form %s: an edit replaces a submission of its own form", dep, r.sub.FormID)
	}
	if ok, err := r.mayEdit(ctx, tx, named); err != nil || !ok {
		if err != nil {
			return nil, err
		}
		return refuse(fault.Forbidden, fault.CodeForbidden, "%s was submitted by someone else: an edit replaces only your own submission", dep)
	}
	v, instance := named, dep
	for range maxEditChain {
		switch v.status {
		case StatusReceived:
			return nil, &pendingError{id: v.id}
		case StatusAccepted:
			r.target = instance
			return nil, nil
		case StatusSuperseded:
			return refuse(fault.Conflict, CodeStaleEdit, "%s was already replaced by a later version: edit the latest version", dep)
		case StatusRejected:
			// Another edit already stood in for this refused version: the
			// copy this one edits is out of date, as an edit of a replaced
			// version is.
			if stoodIn, err := editedSince(ctx, tx, instance, r.st.id); err != nil || stoodIn {
				if err != nil {
					return nil, err
				}
				return refuse(fault.Conflict, CodeStaleEdit, "%s was already replaced by a later version: edit the latest version", dep)
			}
			if v.deprecatedID == nil {
				r.target = "" // the refused version was an original: this one is
				return nil, nil
			}
			instance = *v.deprecatedID
			if r.locked, err = lockMore(ctx, tx, r.locked, instance); err != nil {
				return nil, err
			}
			if v, err = findVersion(ctx, tx, instance, r.st.id); err != nil {
				return nil, err
			}
			if v == nil {
				return unknown(instance)
			}
		default:
			return nil, fmt.Errorf("submission %s: unexpected status %q", v.id, v.status)
		}
	}
	return refuse(fault.Conflict, CodeStaleEdit, "%s is the end of more than %d refused edits: edit the latest accepted version", dep, maxEditChain)
}

// editedSince reports whether a later version of instanceID other than
// self was accepted (live, or replaced since), directly or through refused
// edits of it: a refused version is stood in for once.
func editedSince(ctx context.Context, tx pgx.Tx, instanceID string, self uuid.UUID) (bool, error) {
	var yes bool
	err := tx.QueryRow(ctx, `WITH RECURSIVE later (instance_id, status) AS (
			SELECT instance_id, status FROM form_submission WHERE deprecated_id = $1 AND id <> $2
			UNION
			SELECT s.instance_id, s.status FROM form_submission s JOIN later l ON s.deprecated_id = l.instance_id WHERE s.id <> $2)
		SELECT EXISTS (SELECT 1 FROM later WHERE status IN ('accepted', 'superseded'))`, instanceID, self).Scan(&yes)
	return yes, err
}

// mayEdit reports whether this submission's sender may edit v: the same
// collector, or the same user and role; an admin (assessment.BuilderRoles),
// or anyone writing outside Hasura's permissions; for assessment builders,
// anyone allowed to build (builder collectors are admins in Enketo).
func (r *run) mayEdit(ctx context.Context, tx pgx.Tx, v *version) (bool, error) {
	col, role, by := r.st.collectorID, r.st.role, r.st.by
	switch {
	case role != nil && slices.Contains(assessment.BuilderRoles, *role):
	case role == nil && col == nil && by == nil: // outside Hasura's permissions
	case col != nil && v.collectorID != nil && *col == *v.collectorID:
	case by != nil && v.by != nil && *by == *v.by && role != nil && v.role != nil && *role == *v.role:
	case col != nil && r.def.Purpose == AssessmentBuilder:
		return collector.BuildsAssessments(ctx, tx, *col)
	default:
		return false, nil
	}
	return true, nil
}

// checkLateOriginal keeps a version that an accepted edit already replaced
// as superseded, changing nothing: an original processed after an edit that
// stood in for it while it was refused (its form registered later), or
// versions from before edits of unknown submissions were refused.
func (r *run) checkLateOriginal(ctx context.Context, tx pgx.Tx) (*outcome, error) {
	var newer string
	err := tx.QueryRow(ctx, `SELECT instance_id FROM form_submission WHERE deprecated_id = $1 AND status = 'accepted'`, r.sub.InstanceID).Scan(&newer)
	switch {
	case err == nil:
		return &outcome{status: StatusSuperseded,
			result: &Result{SubmissionID: r.st.id, Status: StatusSuperseded, InstanceID: r.sub.InstanceID, Flags: []string{}}}, nil
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
		res, err := r.p.writeResponse(ctx, tx, r.st.id, r.sub, r.target, r.def, r.answers, r.st.collectorID)
		if err != nil {
			return nil, err
		}
		out := accepted(res, r.target)
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
	b, err := assessment.Read(r.def.Layout, r.sub.Root, r.answers)
	if err == nil {
		origin := assessment.Origin{SubmissionID: r.st.id, InstanceID: r.sub.InstanceID, Replaces: r.target}
		if r.st.by != nil {
			origin.CreatedBy = *r.st.by
		}
		var id uuid.UUID
		if id, _, err = assessment.Save(ctx, tx, origin, b); err == nil {
			out := accepted(&Result{SubmissionID: r.st.id, Status: StatusAccepted, InstanceID: r.sub.InstanceID, AssessmentID: &id, Flags: []string{}},
				r.target)
			return &out, nil
		}
	}
	if fault.KindOf(err) == fault.Unprocessable {
		out := refused(err, "/"+r.sub.Root)
		return &out, nil
	}
	return nil, err
}
