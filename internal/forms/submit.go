package forms

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/xform"
)

// Submission statuses.
const (
	StatusReceived   = "received"
	StatusAccepted   = "accepted"
	StatusRejected   = "rejected"
	StatusDuplicate  = "duplicate"
	StatusSuperseded = "superseded"
)

// Pipeline is the one way submissions become rows.
type Pipeline struct {
	Pool    *pgxpool.Pool
	Catalog *Catalog
	Rules   *Rules
	Log     *slog.Logger
	Metrics *Metrics // nil counts nothing
}

// Input is a submission as it arrived.
type Input struct {
	XML         []byte
	Source      string // action, openrosa (hasura rows are inserted by apps)
	CollectorID *uuid.UUID
	SubmittedBy string
	// Role is the submitter's Hasura role (actions); empty elsewhere.
	Role string
}

// Result is what became of a submission.
type Result struct {
	SubmissionID uuid.UUID
	Status       string
	InstanceID   string
	AssessmentID *uuid.UUID
	ResponseID   *uuid.UUID
	Flags        []string
	Errors       []xform.FieldError
	// Duplicate is true when the same XML had been received before and
	// this result is the first one's.
	Duplicate bool
}

// Receive records a submission and what it describes. The common case — a
// new submission of a registered data-collection form — is written in one
// round trip (receiveFast); everything else takes the general way, which
// commits the raw XML before anything else, so it is never lost, and then
// processes it. When a stored submission is refused (unknown form, conflict)
// the error comes with a result naming the stored submission, so what came
// with it (OpenRosa attachments) can be kept too.
func (p *Pipeline) Receive(ctx context.Context, in Input) (*Result, error) {
	if !utf8.Valid(in.XML) || strings.ContainsRune(string(in.XML), 0) {
		return nil, fault.New(fault.Invalid, "INVALID_SUBMISSION", "xml: not UTF-8 text")
	}
	if res, done, err := p.receiveFast(ctx, in); done {
		return res, err
	}
	var id uuid.UUID
	sum := sha256.Sum256(in.XML)
	err := p.Pool.QueryRow(ctx, `INSERT INTO form_submission (xml, xml_sha256, source, collector_id, submitted_by, submitted_role)
		VALUES ($1, $2, $3, $4, nullif($5, ''), nullif($6, '')) RETURNING id`,
		string(in.XML), sum[:], in.Source, in.CollectorID, in.SubmittedBy, in.Role).Scan(&id)
	if err != nil {
		return nil, postgres.Translate(err, "submission")
	}
	res, err := p.Process(ctx, id)
	if err != nil && res == nil {
		if k := fault.KindOf(err); k != fault.Internal && k != fault.Unavailable {
			res = &Result{SubmissionID: id, Status: StatusRejected, Flags: []string{}}
		}
	}
	return res, err
}

// receiveFast writes a new data-collection submission in one implicit
// transaction (a pgx batch: one round trip, one commit): the raw XML with its
// final status, the response, its answers and flags. It declines (done is
// false) whatever needs the general path — XML that does not parse, an
// unknown form, an edit, an assessment builder, an instanceID already used or
// already replaced by an edit, anything the database refuses — and nothing is
// written then: the general path stores the raw XML first and sorts it out.
// On the benchmark this is what the 34-answer survey needs to keep up (one
// round trip instead of nine).
func (p *Pipeline) receiveFast(ctx context.Context, in Input) (res *Result, done bool, err error) {
	sub, err := xform.ParseSubmission(in.XML)
	if err != nil || sub.DeprecatedID != "" {
		return nil, false, nil
	}
	def, err := p.Catalog.Get(ctx, sub.FormID, sub.Version)
	if err != nil || def.Purpose != DataCollection || sub.Root != def.Form.Root {
		return nil, false, nil
	}
	answers, errs := def.Form.Answers(sub)
	id := uuid.New()
	sum := sha256.Sum256(in.XML)
	res = &Result{SubmissionID: id, InstanceID: sub.InstanceID, Flags: []string{}}
	b := &pgx.Batch{}
	// Serialises with edits of this instanceID and refuses when one was
	// already accepted (this is then an older version).
	b.Queue(`SELECT form_submission_claim($1)`, sub.InstanceID)
	const insert = `INSERT INTO form_submission (id, xml, xml_sha256, instance_id, form_id, form_version, status, errors,
		source, collector_id, submitted_by, submitted_role, processed_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, nullif($11, ''), nullif($12, ''), now())`
	if len(errs) > 0 {
		b.Queue(insert, id, string(in.XML), sum[:], sub.InstanceID, sub.FormID, sub.Version, StatusRejected, errs,
			in.Source, in.CollectorID, in.SubmittedBy, in.Role)
		res.Status, res.Errors = StatusRejected, errs
	} else {
		b.Queue(insert, id, string(in.XML), sum[:], sub.InstanceID, sub.FormID, sub.Version, StatusAccepted, nil,
			in.Source, in.CollectorID, in.SubmittedBy, in.Role)
		responseID := uuid.New()
		flags, err := p.queueResponse(ctx, p.Pool, b, responseID, id, sub, def, answers, in.CollectorID, false)
		if err != nil {
			return nil, false, nil
		}
		res.Status, res.ResponseID, res.Flags = StatusAccepted, &responseID, flags
	}
	if err := runBatch(ctx, p.Pool.SendBatch(ctx, b), b.Len()); err != nil {
		// The instanceID is taken (a duplicate or a conflict), an edit
		// replaced it, a value the database refuses, or the database is
		// unreachable: the general path stores the XML or says why it cannot.
		p.Log.DebugContext(ctx, "submission takes the general path", "instance_id", sub.InstanceID, "reason", err)
		return nil, false, nil
	}
	return res, true, nil
}

// BuilderRoles are the Hasura roles that may submit assessment builders
// (through the submitForm action or Hasura inserts); OpenRosa submissions
// come from collectors, whom an admin created.
var BuilderRoles = []string{"admin", "state_admin"}

// errConflict marks a lost race for an instanceID.
var errConflict = errors.New("instanceID taken")

// Process parses a stored submission and writes what it describes. It is
// idempotent: a submission already processed returns its result.
func (p *Pipeline) Process(ctx context.Context, id uuid.UUID) (*Result, error) {
	return p.process(ctx, id, 0)
}

func (p *Pipeline) process(ctx context.Context, id uuid.UUID, depth int) (*Result, error) {
	var (
		xmlText, status string
		sum             []byte
		collectorID     *uuid.UUID
		role, by        *string
	)
	if err := p.Pool.QueryRow(ctx, `SELECT xml, xml_sha256, status, collector_id, submitted_role, submitted_by
		FROM form_submission WHERE id = $1`, id).Scan(&xmlText, &sum, &status, &collectorID, &role, &by); err != nil {
		return nil, postgres.Translate(err, "submission "+id.String())
	}
	if sum == nil {
		s := sha256.Sum256([]byte(xmlText))
		sum = s[:]
	}
	if !processable(ctx, p.Pool, id, status) {
		return p.result(ctx, id)
	}
	sub, err := xform.ParseSubmission([]byte(xmlText))
	if err != nil {
		if rerr := p.reject(ctx, id, nil, []xform.FieldError{{Path: "/", Reason: err.Error()}}); rerr != nil {
			return nil, rerr
		}
		f := fault.Wrap(err, fault.Invalid, "INVALID_SUBMISSION", "xml: %v", err)
		return nil, f
	}
	// Read before the transaction: a definition not yet cached is loaded on
	// another connection, and a transaction waiting for a second connection
	// from the pool it holds one of can deadlock the pool.
	def, defErr := p.Catalog.Get(ctx, sub.FormID, sub.Version)
	if defErr != nil && fault.KindOf(defErr) != fault.NotFound {
		return nil, defErr
	}

	var (
		res     *Result
		refusal error
		settled bool // processed by someone else meanwhile
	)
	err = pgx.BeginFunc(ctx, p.Pool, func(tx pgx.Tx) error {
		res, refusal, settled = nil, nil, false
		// One at a time per instanceID, edits with what they edit; then
		// whoever got here first has decided.
		if err := lockInstances(ctx, tx, sub.InstanceID, sub.DeprecatedID); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT status FROM form_submission WHERE id = $1 FOR UPDATE`, id).Scan(&status); err != nil {
			return err
		}
		if !processable(ctx, tx, id, status) {
			settled = true
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE form_submission SET instance_id = $2, deprecated_id = nullif($3, ''),
				form_id = $4, form_version = nullif($5, ''), xml_sha256 = $6 WHERE id = $1`,
			id, sub.InstanceID, sub.DeprecatedID, sub.FormID, sub.Version, sum); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "form_submission_instance" {
				return errConflict
			}
			return err
		}
		if defErr != nil {
			refusal = defErr
			return markRejected(ctx, tx, id, []xform.FieldError{{Path: "/" + sub.Root, Reason: fault.As(defErr).Message}})
		}
		if sub.Root != def.Form.Root {
			refusal = fault.New(fault.Invalid, "INVALID_SUBMISSION", "root element <%s> does not match <%s> of form %s version %s",
				sub.Root, def.Form.Root, sub.FormID, sub.Version)
			return markRejected(ctx, tx, id, []xform.FieldError{{Path: "/" + sub.Root, Reason: fault.As(refusal).Message}})
		}
		answers, errs := def.Form.Answers(sub)
		if len(errs) > 0 {
			res = &Result{SubmissionID: id, Status: StatusRejected, InstanceID: sub.InstanceID, Errors: errs}
			return markRejected(ctx, tx, id, errs)
		}
		if err := checkEditOwner(ctx, tx, sub, collectorID, role, by); err != nil {
			refusal = err
			if f := fault.As(err); f.Kind == fault.Forbidden {
				return markRejected(ctx, tx, id, []xform.FieldError{{Path: f.Field, Reason: f.Message}})
			}
			return err
		}
		if r, err := p.checkEditOrder(ctx, tx, id, sub); r != nil || err != nil {
			res, refusal = r, err
			if f := fault.As(err); err != nil && f.Kind == fault.Conflict {
				return markRejected(ctx, tx, id, []xform.FieldError{{Path: f.Field, Reason: f.Message}})
			}
			return err
		}
		var err error
		switch def.Purpose {
		case DataCollection:
			res, err = p.writeResponse(ctx, tx, id, sub, def, answers, collectorID)
		case AssessmentBuilder:
			if err := mayBuild(ctx, tx, collectorID, role); err != nil {
				refusal = err
				return markRejected(ctx, tx, id, []xform.FieldError{{Path: "/" + sub.Root, Reason: fault.As(err).Message}})
			}
			res, err = p.writeAssessment(ctx, tx, id, sub, def, answers)
			if f := fault.As(err); err != nil && f.Kind == fault.Unprocessable {
				refusal = err
				return markRejected(ctx, tx, id, []xform.FieldError{{Path: f.Field, Reason: f.Message}})
			}
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE form_submission SET status = 'accepted', errors = NULL, processed_at = now() WHERE id = $1`, id)
		return err
	})
	if errors.Is(err, errConflict) {
		return p.duplicate(ctx, id, sub, sum, depth)
	}
	if err != nil {
		err = postgres.Translate(err, "submission")
		if k := fault.KindOf(err); k == fault.Invalid || k == fault.Conflict {
			// A constraint the data broke: it will break it again, so the
			// submission is rejected rather than retried.
			if rerr := p.reject(ctx, id, nil, []xform.FieldError{{Path: "/" + sub.Root, Reason: fault.As(err).Message}}); rerr != nil {
				return nil, rerr
			}
		}
		return nil, err
	}
	if settled {
		return p.result(ctx, id)
	}
	if refusal != nil {
		return nil, refusal
	}
	return res, nil
}

// lockInstances takes the transaction-long locks that make processing of an
// instanceID, and of edits with the version they edit, one at a time (the
// fast path takes the same lock in form_submission_claim). Keys are taken in
// sorted order so two edits cannot deadlock.
func lockInstances(ctx context.Context, tx pgx.Tx, keys ...string) error {
	keys = slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == "" })
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('form_submission:' || $1, 0))`, k); err != nil {
			return err
		}
	}
	return nil
}

// checkEditOrder handles versions that arrive out of order, under the
// instance locks. A submission an accepted edit already replaced is an older
// version: it is kept as superseded (its result says so) and changes
// nothing. An edit of a version another edit already replaced is a stale
// branch: refused with STALE_EDIT (409), as ODK Central does, so two edits
// never both stay live. nil, nil means go on.
func (p *Pipeline) checkEditOrder(ctx context.Context, tx pgx.Tx, id uuid.UUID, sub *xform.Submission) (*Result, error) {
	var newer string
	err := tx.QueryRow(ctx, `SELECT instance_id FROM form_submission WHERE deprecated_id = $1 AND status = 'accepted'`, sub.InstanceID).Scan(&newer)
	switch {
	case err == nil:
		if _, err := tx.Exec(ctx, `UPDATE form_submission SET status = 'superseded', errors = NULL, processed_at = now() WHERE id = $1`, id); err != nil {
			return nil, err
		}
		return &Result{SubmissionID: id, Status: StatusSuperseded, InstanceID: sub.InstanceID, Flags: []string{}}, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return nil, err
	}
	if sub.DeprecatedID == "" {
		return nil, nil
	}
	err = tx.QueryRow(ctx, `SELECT instance_id FROM form_submission WHERE deprecated_id = $1 AND status = 'accepted' AND id <> $2`,
		sub.DeprecatedID, id).Scan(&newer)
	switch {
	case err == nil:
		return nil, &fault.Error{Kind: fault.Conflict, Code: "STALE_EDIT", Field: "/" + sub.Root + "/meta/deprecatedID",
			Message: fmt.Sprintf("%s was already replaced by %s: edit the latest version", sub.DeprecatedID, newer)}
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	default:
		return nil, err
	}
}

// mayBuild refuses an assessment builder from a Hasura role other than
// BuilderRoles, or from a collector not marked builds_assessments. Rows
// written outside Hasura's permissions (no role, no collector) are trusted.
func mayBuild(ctx context.Context, tx pgx.Tx, collectorID *uuid.UUID, role *string) error {
	if role != nil && !slices.Contains(BuilderRoles, *role) {
		return fault.New(fault.Forbidden, "FORBIDDEN", "assessment builders are submitted by %s, not %s", strings.Join(BuilderRoles, " or "), *role)
	}
	if collectorID == nil {
		return nil
	}
	var builds bool
	if err := tx.QueryRow(ctx, `SELECT builds_assessments FROM collector WHERE id = $1`, *collectorID).Scan(&builds); err != nil {
		return err
	}
	if !builds {
		return fault.New(fault.Forbidden, "FORBIDDEN", "this collector may not submit assessment builders (an admin creates builder collectors with buildsAssessments)")
	}
	return nil
}

// checkEditOwner refuses an edit (meta/deprecatedID) of a submission of
// another form, or of someone else's: the version it replaces must have come
// from the same collector or the same user, unless the editor is an admin
// (BuilderRoles) or wrote outside Hasura's permissions. An edit of a
// version never received is not checked here: the original, if it comes,
// is then the older version.
func checkEditOwner(ctx context.Context, tx pgx.Tx, sub *xform.Submission, collectorID *uuid.UUID, role, by *string) error {
	if sub.DeprecatedID == "" {
		return nil
	}
	var (
		formID           *string
		origCol          *uuid.UUID
		origBy, origRole *string
	)
	err := tx.QueryRow(ctx, `SELECT form_id, collector_id, submitted_by, submitted_role FROM form_submission
		WHERE instance_id = $1 AND status <> 'duplicate'`, sub.DeprecatedID).Scan(&formID, &origCol, &origBy, &origRole)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	path := "/" + sub.Root + "/meta/deprecatedID"
	if formID == nil || *formID != sub.FormID {
		return &fault.Error{Kind: fault.Forbidden, Code: "FORBIDDEN", Field: path,
			Message: fmt.Sprintf("%s is not a submission of form %s: an edit replaces a submission of its own form", sub.DeprecatedID, sub.FormID)}
	}
	switch {
	case role != nil && slices.Contains(BuilderRoles, *role):
	case role == nil && collectorID == nil && by == nil: // outside Hasura's permissions
	case collectorID != nil && origCol != nil && *collectorID == *origCol:
	case by != nil && origBy != nil && *by == *origBy && role != nil && origRole != nil && *role == *origRole:
	default:
		return &fault.Error{Kind: fault.Forbidden, Code: "FORBIDDEN", Field: path,
			Message: fmt.Sprintf("%s was submitted by someone else: an edit replaces only your own submission", sub.DeprecatedID)}
	}
	return nil
}

// processable reports whether a submission in status may be processed: one
// never processed, or one rejected only because its form was not registered
// then.
func processable(ctx context.Context, q querier, id uuid.UUID, status string) bool {
	return status == StatusReceived || (status == StatusRejected && unknownForm(ctx, q, id))
}

// duplicate handles a submission whose instanceID is already used: the same
// XML is the same submission (answered with the first one's result, the
// first one processed now if it never was); different XML is a conflict.
func (p *Pipeline) duplicate(ctx context.Context, id uuid.UUID, sub *xform.Submission, sum []byte, depth int) (*Result, error) {
	var first uuid.UUID
	var firstSum []byte
	if err := p.Pool.QueryRow(ctx, `SELECT id, xml_sha256 FROM form_submission WHERE instance_id = $1 AND status <> 'duplicate'`,
		sub.InstanceID).Scan(&first, &firstSum); err != nil {
		return nil, postgres.Translate(err, "submission")
	}
	if string(firstSum) != string(sum) {
		errs := []xform.FieldError{{Path: "/" + sub.Root + "/meta/instanceID",
			Reason: fmt.Sprintf("%s was already received (submission %s) with different content", sub.InstanceID, first)}}
		if err := p.reject(ctx, id, &first, errs); err != nil {
			return nil, err
		}
		return nil, fault.New(fault.Conflict, "DUPLICATE_INSTANCE",
			"instanceID %s was already received with different content: an edit must carry a new instanceID and meta/deprecatedID", sub.InstanceID)
	}
	if _, err := p.Pool.Exec(ctx, `UPDATE form_submission SET status = 'duplicate', duplicate_of = $2, processed_at = now()
		WHERE id = $1`, id, first); err != nil {
		return nil, postgres.Translate(err, "submission")
	}
	if depth > 0 {
		return nil, fmt.Errorf("submission %s: duplicate of a duplicate", id)
	}
	res, err := p.process(ctx, first, depth+1)
	if res != nil {
		res.Duplicate = true
	}
	return res, err
}

func markRejected(ctx context.Context, tx pgx.Tx, id uuid.UUID, errs []xform.FieldError) error {
	b, _ := json.Marshal(errs)
	_, err := tx.Exec(ctx, `UPDATE form_submission SET status = 'rejected', errors = $2, processed_at = now() WHERE id = $1`, id, b)
	return err
}

// reject records a refusal outside the processing transaction; dupOf, when
// set, points at the submission that holds the instanceID. It never
// overrides an outcome another processing of the submission recorded
// meanwhile (accepted, superseded, duplicate).
func (p *Pipeline) reject(ctx context.Context, id uuid.UUID, dupOf *uuid.UUID, errs []xform.FieldError) error {
	b, _ := json.Marshal(errs)
	_, err := p.Pool.Exec(ctx, `UPDATE form_submission SET status = 'rejected', errors = $2, duplicate_of = $3, processed_at = now()
		WHERE id = $1 AND status IN ('received', 'rejected')`, id, b, dupOf)
	return postgres.Translate(err, "submission")
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// unknownForm reports whether a rejected submission was rejected only
// because its form was not registered: it is worth processing again.
func unknownForm(ctx context.Context, q querier, id uuid.UUID) bool {
	var yes bool
	_ = q.QueryRow(ctx, `SELECT coalesce(errors -> 0 ->> 'reason', '') LIKE 'form % is not registered'
		FROM form_submission WHERE id = $1`, id).Scan(&yes)
	return yes
}

// result reads what became of a processed submission.
func (p *Pipeline) result(ctx context.Context, id uuid.UUID) (*Result, error) {
	res := &Result{SubmissionID: id}
	var errs []byte
	var dupOf *uuid.UUID
	var instance *string
	if err := p.Pool.QueryRow(ctx, `SELECT status, errors, duplicate_of, instance_id FROM form_submission WHERE id = $1`, id).
		Scan(&res.Status, &errs, &dupOf, &instance); err != nil {
		return nil, postgres.Translate(err, "submission")
	}
	if instance != nil {
		res.InstanceID = *instance
	}
	if res.Status == StatusDuplicate && dupOf != nil {
		r, err := p.result(ctx, *dupOf)
		if r != nil {
			r.Duplicate = true
		}
		return r, err
	}
	if errs != nil {
		_ = json.Unmarshal(errs, &res.Errors)
	}
	var rid, aid *uuid.UUID
	if err := p.Pool.QueryRow(ctx, `SELECT (SELECT id FROM response WHERE submission_id = $1),
		(SELECT id FROM assessment WHERE submission_id = $1)`, id).Scan(&rid, &aid); err != nil {
		return nil, postgres.Translate(err, "submission")
	}
	res.ResponseID, res.AssessmentID = rid, aid
	if rid != nil {
		rows, err := p.Pool.Query(ctx, `SELECT message FROM response_flag WHERE response_id = $1 ORDER BY rule_name`, *rid)
		if err != nil {
			return nil, err
		}
		res.Flags, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
	}
	if res.Flags == nil {
		res.Flags = []string{}
	}
	return res, nil
}

// ProcessArgs asks for a stored submission to be processed: rows inserted
// into form_submission through Hasura, and submissions whose processing
// never finished or whose form was registered after them (the reconciler).
// Unique per submission while queued or running; a finished job does not
// block processing the submission again (processing is idempotent).
type ProcessArgs struct {
	SubmissionID uuid.UUID `json:"submission_id" river:"unique"`
}

// Kind is the River job kind.
func (ProcessArgs) Kind() string { return "forms.process" }

// InsertOpts makes processing unique per submission.
func (ProcessArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
		rivertype.JobStateRunning, rivertype.JobStateScheduled}}}
}

// ProcessWorker processes one submission. Refusals (unknown form, invalid
// XML, conflicts) are recorded on the submission and end the job; only
// failures to reach the database are retried.
type ProcessWorker struct {
	river.WorkerDefaults[ProcessArgs]
	Pipeline *Pipeline
}

// Work processes job.Args.SubmissionID.
func (w *ProcessWorker) Work(ctx context.Context, job *river.Job[ProcessArgs]) error {
	_, err := w.Pipeline.Process(ctx, job.Args.SubmissionID)
	if err != nil && fault.KindOf(err) != fault.Internal && fault.KindOf(err) != fault.Unavailable {
		return nil // recorded on the submission
	}
	return err
}

// ReconcileAfter is how long a submission may stay "received" before the
// sweep processes it.
const ReconcileAfter = time.Minute

// Reconcile enqueues processing for submissions left "received" (a crash
// between storing and processing, Hasura inserts whose event never came).
func Reconcile(ctx context.Context, pool *pgxpool.Pool, q queue.Inserter, minAge time.Duration) (n int, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		n, err = queue.EnqueueEach(ctx, tx, q, func(id uuid.UUID) river.JobArgs { return ProcessArgs{SubmissionID: id} },
			`SELECT id FROM form_submission WHERE status = 'received'
			AND received_at < now() - make_interval(secs => $1) ORDER BY received_at LIMIT 1000`, minAge.Seconds())
		return err
	})
	return n, err
}

// ReconcileArgs asks for a sweep of unprocessed submissions (worked by a
// queue.SweepWorker running Reconcile).
type ReconcileArgs struct{ queue.PerMinute }

// Kind is the River job kind.
func (ReconcileArgs) Kind() string { return "forms.reconcile" }
