package forms

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

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

// Refusal codes of submissions and definitions. A rejected submission
// stores its code (form_submission.error_code); what happens to it later
// (processing again once its form is registered) is decided on the code,
// never on the wording of a message.
const (
	// CodeInvalidSubmission: not an instance document shala can read (not
	// XML, a DTD, no instanceID, a root that is not the form's).
	CodeInvalidSubmission fault.Code = "INVALID_SUBMISSION"
	// CodeInvalidValue: values that do not fit their fields (stored with
	// every path and reason; the submission is answered, not refused).
	CodeInvalidValue fault.Code = "INVALID_VALUE"
	// CodeUnknownForm: the form version is not registered (yet); the
	// submission is processed again when it is.
	CodeUnknownForm fault.Code = "UNKNOWN_FORM"
	// CodeDuplicateInstance: the instanceID was received with different
	// content.
	CodeDuplicateInstance fault.Code = "DUPLICATE_INSTANCE"
	// CodeStaleEdit: an edit of a version another edit already replaced.
	CodeStaleEdit fault.Code = "STALE_EDIT"
	// CodeUnknownEdit: an edit whose deprecatedID names a submission never
	// received (ODK Central's 404).
	CodeUnknownEdit fault.Code = "UNKNOWN_EDIT"
	// CodeInvalidXForm: a definition that cannot be registered.
	CodeInvalidXForm fault.Code = "INVALID_XFORM"
	// CodeVersionExists: a different definition under a registered version.
	CodeVersionExists fault.Code = "VERSION_EXISTS"
	// CodePurposeConflict: the form id is registered with another purpose.
	CodePurposeConflict fault.Code = "FORM_PURPOSE_CONFLICT"
	// CodeFormClosed: a submission of a CLOSED form (SetState); processed
	// again once the form opens.
	CodeFormClosed fault.Code = "FORM_CLOSED"
)

// Pipeline is the one way submissions become rows.
type Pipeline struct {
	Pool    *pgxpool.Pool
	Catalog *Catalog
	Rules   *Rules
	Log     *slog.Logger
	Metrics *Metrics // nil counts nothing

	// afterRead, when set (tests), runs after a processing read the
	// definition and before its transaction.
	afterRead func()
	// onParse, when set (tests), runs whenever a submission's XML is parsed.
	onParse func()
	// inDecide, when set (tests), runs inside a processing transaction once
	// it holds the instanceIDs' locks and the form's state lock.
	inDecide func()
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
	// Code says why a rejected submission was rejected.
	Code         fault.Code
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
		return nil, fault.New(fault.Invalid, CodeInvalidSubmission, "xml: not UTF-8 text")
	}
	pre := p.parse(in.XML)
	if res, done, err := p.receiveFast(ctx, in, pre); done {
		return res, err
	}
	var id uuid.UUID
	err := p.Pool.QueryRow(ctx, `INSERT INTO form_submission (xml, xml_sha256, source, collector_id, submitted_by, submitted_role)
		VALUES ($1, $2, $3, $4, nullif($5, ''), nullif($6, '')) RETURNING id`,
		string(in.XML), pre.sum, in.Source, in.CollectorID, in.SubmittedBy, in.Role).Scan(&id)
	if err != nil {
		return nil, postgres.Translate(err, "submission")
	}
	res, err := p.process(ctx, id, 0, &pre)
	if err != nil && res == nil {
		if k := fault.KindOf(err); k != fault.Internal && k != fault.Unavailable {
			res = &Result{SubmissionID: id, Status: StatusRejected, Code: fault.As(err).Code, Flags: []string{}}
		}
	}
	return res, err
}

// receiveFast writes a new data-collection submission in one implicit
// transaction (a pgx batch: one round trip, one commit): the raw XML with its
// final status, the response, its answers and flags. It declines (done is
// false) whatever needs the general path — XML that does not parse, an
// unknown form, an edit, an assessment builder, an instanceID already used or
// already replaced by an edit, a closed form, anything the database refuses
// — and nothing is written then: the general path stores the raw XML first
// and sorts it out.
// On the benchmark this is what the 34-answer survey needs to keep up (one
// round trip instead of nine).
func (p *Pipeline) receiveFast(ctx context.Context, in Input, pre parsed) (res *Result, done bool, err error) {
	if pre.err != nil || pre.sub.DeprecatedID != "" {
		return nil, false, nil
	}
	sub := pre.sub
	def, err := p.Catalog.Get(ctx, sub.FormID, sub.Version)
	if err != nil || def.Purpose != DataCollection || sub.Root != def.Form.Root {
		return nil, false, nil
	}
	answers, errs := def.Form.Answers(sub)
	id := uuid.New()
	res = &Result{SubmissionID: id, InstanceID: sub.InstanceID, Flags: []string{}}
	b := &pgx.Batch{}
	// Not when an accepted edit already replaced this instanceID (it is
	// then an older version, which the general path records as
	// superseded): the row is not written, the response's reference to it
	// fails the batch. No lock is needed against a concurrent edit: an
	// edit is accepted only once the version it names is committed
	// (UNKNOWN_EDIT otherwise), and the instanceID's unique index settles
	// a concurrent copy. Nor when the form is closed: the general path
	// records the refusal (under the form's state lock, see checkOpen).
	const insert = `INSERT INTO form_submission (id, xml, xml_sha256, instance_id, form_id, form_version, status, error_code, errors,
		source, collector_id, submitted_by, submitted_role, processed_at)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, nullif($12, ''), nullif($13, ''), now()
		WHERE NOT EXISTS (SELECT 1 FROM form_submission WHERE deprecated_id = $4 AND status = 'accepted')
		  AND NOT EXISTS (SELECT 1 FROM form WHERE id = $5 AND state = 'CLOSED')`
	if len(errs) > 0 {
		b.Queue(insert, id, string(in.XML), pre.sum, sub.InstanceID, sub.FormID, sub.Version, StatusRejected, CodeInvalidValue, errs,
			in.Source, in.CollectorID, in.SubmittedBy, in.Role)
		res.Status, res.Code, res.Errors = StatusRejected, CodeInvalidValue, errs
	} else {
		b.Queue(insert, id, string(in.XML), pre.sum, sub.InstanceID, sub.FormID, sub.Version, StatusAccepted, nil, nil,
			in.Source, in.CollectorID, in.SubmittedBy, in.Role)
		set, err := p.Rules.settings.get(ctx, p.Pool, sub.FormID)
		if err != nil {
			return nil, false, nil
		}
		responseID := uuid.New()
		flags, err := p.queueResponse(ctx, p.Pool, set, b, responseID, id, sub, "", def, answers, in.CollectorID, false)
		if err != nil {
			return nil, false, nil
		}
		res.Status, res.ResponseID, res.Flags = StatusAccepted, &responseID, flags
	}
	if err := runBatch(ctx, p.Pool.SendBatch(ctx, b), b.Len(), true); err != nil {
		// The instanceID is taken (a duplicate or a conflict), an edit
		// replaced it, a value the database refuses, or the database is
		// unreachable: the general path stores the XML or says why it cannot.
		p.Log.DebugContext(ctx, "submission takes the general path", "instance_id", sub.InstanceID, "reason", err)
		return nil, false, nil
	}
	return res, true, nil
}

// Process parses a stored submission and writes what it describes. It is
// idempotent: a submission already processed returns its result.
func (p *Pipeline) Process(ctx context.Context, id uuid.UUID) (*Result, error) {
	return p.process(ctx, id, 0, nil)
}

// parsed is a submission's XML parsed once, on arrival: its processing
// takes it instead of reading the XML back and parsing it again.
type parsed struct {
	sub *xform.Submission
	err error
	sum []byte // the XML's SHA-256
}

func (p *Pipeline) parse(xml []byte) parsed {
	if p.onParse != nil {
		p.onParse()
	}
	sub, err := xform.ParseSubmission(xml)
	sum := sha256.Sum256(xml)
	return parsed{sub: sub, err: err, sum: sum[:]}
}

// maxDepth bounds how often one processing starts another (the first
// version of a duplicate, what an edit names, a registration seen late).
const maxDepth = 4

// Sentinels that end a processing transaction without recording anything.
var (
	// errTaken: the instanceID is held by another submission (the same
	// submission again, or a conflict).
	errTaken = errors.New("instanceID taken")
	// errRegistered: the form version was registered while this
	// submission was being processed; process again with its definition.
	errRegistered = errors.New("form registered meanwhile")
)

// process reads the stored submission, decides what becomes of it in one
// transaction (run.decide: named steps, each returning an outcome or
// passing) and records that outcome in the same transaction (apply).
// Outcomes that need the pool — the instanceID held by another submission,
// a constraint the data broke — are recorded after it.
//
// pre is the submission's XML as Receive parsed it (nil: read it back from
// the row and parse it).
func (p *Pipeline) process(ctx context.Context, id uuid.UUID, depth int, pre *parsed) (*Result, error) {
	st, err := load(ctx, p.Pool, id, false, pre == nil)
	if err != nil {
		return nil, postgres.Translate(err, "submission "+id.String())
	}
	if !st.processable() {
		return p.result(ctx, id)
	}
	if pre == nil {
		pp := p.parse([]byte(st.xml))
		pre = &pp
	}
	if st.sum == nil {
		st.sum = pre.sum
	}
	sub, err := pre.sub, pre.err
	if err != nil {
		out := refused(fault.Wrap(err, fault.Invalid, CodeInvalidSubmission, "xml: %v", err), "/")
		if err := apply(ctx, p.Pool, id, out); err != nil {
			return nil, postgres.Translate(err, "submission")
		}
		return nil, out.refusal
	}
	// Read before the transaction: a definition not yet cached is loaded on
	// another connection, and a transaction waiting for a second connection
	// from the pool it holds one of can deadlock the pool.
	def, err := p.Catalog.Get(ctx, sub.FormID, sub.Version)
	switch {
	case fault.KindOf(err) == fault.NotFound:
		def = nil
	case err != nil:
		return nil, err
	}
	if p.afterRead != nil {
		p.afterRead()
	}
	r := &run{p: p, st: st, sub: sub, def: def}
	if def != nil && sub.Root == def.Form.Root {
		r.answers, r.errs = def.Form.Answers(sub) // parsing only: outside the transaction
	}
	var out outcome
	for attempt := 0; ; attempt++ {
		err = pgx.BeginFunc(ctx, p.Pool, func(tx pgx.Tx) error {
			var err error
			if out, err = r.decide(ctx, tx); err != nil {
				return err
			}
			return apply(ctx, tx, id, out)
		})
		// Each run again holds at least one more key, and a chain of
		// edits is at most maxEditChain long.
		var rl *relockError
		if !errors.As(err, &rl) {
			break
		}
		if attempt > maxEditChain {
			return nil, fault.Wrap(err, fault.Unavailable, "", "the versions this edit follows back are being processed")
		}
		r.first = rl.keys
	}
	var pe *pendingError
	switch {
	case errors.Is(err, errTaken):
		return p.duplicate(ctx, st, sub, depth)
	case errors.Is(err, errRegistered) && depth < maxDepth:
		return p.process(ctx, id, depth+1, pre)
	case errors.As(err, &pe) && depth < maxDepth:
		// What this one waits for — what an edit names, a later copy that
		// takes a waiting copy's place — is stored but not processed yet:
		// process it first (outside this transaction, which held its
		// lock), then this.
		if _, err := p.process(ctx, pe.id, depth+1, nil); err != nil {
			if k := fault.KindOf(err); k == fault.Internal || k == fault.Unavailable {
				return nil, err
			}
		}
		return p.process(ctx, id, depth+1, pre)
	case err != nil:
		err = postgres.Translate(err, "submission")
		if k := fault.KindOf(err); k == fault.Invalid || k == fault.Conflict {
			// A constraint the data broke: it will break it again, so the
			// submission is rejected rather than retried.
			if rerr := apply(ctx, p.Pool, id, refused(err, "/"+sub.Root)); rerr != nil {
				return nil, postgres.Translate(rerr, "submission")
			}
		}
		return nil, err
	case out.status == "":
		return p.result(ctx, id) // decided by another processing meanwhile
	}
	return out.result, out.refusal
}

// stored is a submission row as processing reads it.
type stored struct {
	id          uuid.UUID
	xml         string
	sum         []byte
	status      string
	code        *string
	collectorID *uuid.UUID
	role, by    *string
	// held: the row holds its instanceID (claimed by an earlier
	// processing: a copy waiting for its form, or put back).
	held bool
}

// processable reports whether the submission may be processed: one never
// processed, or one rejected only because its form was not registered, or
// was closed, then.
func (s *stored) processable() bool {
	return s.status == StatusReceived || (s.status == StatusRejected && waits(s.code))
}

// waits reports whether a rejected submission's code keeps it waiting to be
// processed again: its form not registered, or closed.
func waits(code *string) bool {
	return code != nil && (*code == string(CodeUnknownForm) || *code == string(CodeFormClosed))
}

// load reads submission id through q; lock locks the row (in a
// transaction) so that the status read is the one processing decides on;
// withXML reads the XML too (not when it was parsed on arrival).
func load(ctx context.Context, q querier, id uuid.UUID, lock, withXML bool) (*stored, error) {
	query := `SELECT xml, xml_sha256, status, error_code, collector_id, submitted_role, submitted_by, instance_id IS NOT NULL
		FROM form_submission WHERE id = $1`
	if !withXML {
		query = `SELECT '', xml_sha256, status, error_code, collector_id, submitted_role, submitted_by, instance_id IS NOT NULL
		FROM form_submission WHERE id = $1`
	}
	if lock {
		query += ` FOR UPDATE`
	}
	s := &stored{id: id}
	if err := q.QueryRow(ctx, query, id).Scan(&s.xml, &s.sum, &s.status, &s.code, &s.collectorID, &s.role, &s.by, &s.held); err != nil {
		return nil, err
	}
	return s, nil
}

// outcome is what processing decided for a submission; apply records it.
type outcome struct {
	// status is the submission's new status; "" means nothing is recorded
	// (another processing decided it meanwhile).
	status string
	code   fault.Code         // why it was rejected
	errors []xform.FieldError // what was wrong, by path (rejected)
	dupOf  *uuid.UUID         // the submission holding its instanceID
	// replaces is the instanceID an accepted edit supersedes.
	replaces string
	result   *Result // what the caller is answered
	refusal  error   // what the caller is answered instead of a result
}

func accepted(res *Result, replaces string) outcome {
	return outcome{status: StatusAccepted, replaces: replaces, result: res}
}

// invalidValues rejects a submission whose values do not fit their fields:
// recorded with every reason, and answered with them (not refused: the
// sender cannot change what was collected).
func invalidValues(id uuid.UUID, instance string, errs []xform.FieldError) outcome {
	return outcome{status: StatusRejected, code: CodeInvalidValue, errors: errs,
		result: &Result{SubmissionID: id, Status: StatusRejected, Code: CodeInvalidValue, InstanceID: instance, Errors: errs, Flags: []string{}}}
}

// refused rejects a submission with err (a fault) recorded at the fault's
// field, or at path when it names none.
func refused(err error, path string) outcome {
	f := fault.As(err)
	if f.Field != "" {
		path = f.Field
	}
	return outcome{status: StatusRejected, code: f.Code, errors: []xform.FieldError{{Path: path, Reason: f.Message}}, refusal: err}
}

// execer is a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// apply records out on submission id — the one place a processing outcome
// is written. It never overrides an outcome recorded meanwhile by another
// processing of the submission (accepted, superseded, duplicate, or a
// rejection that does not wait for its form): inside the processing
// transaction the row is locked and still undecided; outside it (refusals
// recorded after a failed transaction, a processing given up) the status
// guard keeps the first decision.
func apply(ctx context.Context, q execer, id uuid.UUID, out outcome) error {
	if out.status == "" {
		return nil
	}
	var code, errs any // NULL unless set
	if out.status == StatusRejected {
		c := string(out.code)
		if c == "" {
			c = string(fault.CodeInternal)
		}
		code = c
	}
	if len(out.errors) > 0 {
		b, err := json.Marshal(out.errors)
		if err != nil {
			return err
		}
		errs = b
	}
	// A refusal of the sender (FORBIDDEN: not theirs to build or edit) or of
	// an edit of a submission not received (UNKNOWN_EDIT) does not keep the
	// instanceID: the same document from someone allowed to send it, or sent
	// again once the edited submission arrived, is processed afresh, as ODK
	// Central (which stores neither) does.
	release := out.code == fault.CodeForbidden || out.code == CodeUnknownEdit
	if _, err := q.Exec(ctx, `UPDATE form_submission SET status = $2, error_code = $3, errors = $4, duplicate_of = $5, processed_at = now(),
			instance_id = CASE WHEN $6 THEN NULL ELSE instance_id END
		WHERE id = $1 AND (status = 'received' OR status = 'rejected' AND error_code IN ($7, $8))`,
		id, out.status, code, errs, out.dupOf, release, CodeUnknownForm, CodeFormClosed); err != nil {
		return err
	}
	if out.status == StatusAccepted && out.replaces != "" {
		if _, err := q.Exec(ctx, `UPDATE form_submission SET status = 'superseded' WHERE instance_id = $1 AND status = 'accepted'`,
			out.replaces); err != nil {
			return err
		}
	}
	return nil
}

// lockInstances takes the transaction-long locks that make processing of an
// instanceID, and of edits with the version they edit, one at a time (the
// fast path takes none: see receiveFast). Keys are taken in
// sorted order so two edits cannot deadlock.
func lockInstances(ctx context.Context, tx pgx.Tx, keys ...string) ([]string, error) {
	keys = slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == "" })
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for _, k := range keys {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('form_submission:' || $1, 0))`, k); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// relockError: a processing needs another instanceID's lock after it took
// its first ones (checkEdit following refused edits back), and another
// processing holds it. Waiting for it there could close a cycle — that one
// may be waiting for a lock this one holds — so the transaction is rolled
// back and run again taking keys, in order, before anything else.
type relockError struct{ keys []string }

func (e *relockError) Error() string {
	return fmt.Sprintf("instanceIDs %v are being processed: run again taking their locks first", e.keys)
}

// lockMore takes instance's lock in a transaction that holds the locks of
// held (sorted) and maybe others (the form's), without waiting: when another
// processing holds it, a relockError names every key this one needs.
func lockMore(ctx context.Context, tx pgx.Tx, held []string, instance string) ([]string, error) {
	if _, ok := slices.BinarySearch(held, instance); ok {
		return held, nil
	}
	var got bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtextextended('form_submission:' || $1, 0))`, instance).Scan(&got); err != nil {
		return nil, err
	}
	keys := append(slices.Clone(held), instance)
	slices.Sort(keys)
	if !got {
		return nil, &relockError{keys: keys}
	}
	return keys, nil
}

// duplicate handles a submission whose instanceID is already used: the same
// XML is the same submission (answered with the first one's result, the
// first one processed now if it never was); different XML is a conflict
// (a newer copy of one still waiting for its form took its place before
// claiming: run.replaceWaiting).
func (p *Pipeline) duplicate(ctx context.Context, st *stored, sub *xform.Submission, depth int) (*Result, error) {
	var first uuid.UUID
	var firstSum []byte
	if err := p.Pool.QueryRow(ctx, `SELECT id, xml_sha256 FROM form_submission WHERE instance_id = $1 AND status <> 'duplicate'`,
		sub.InstanceID).Scan(&first, &firstSum); err != nil {
		return nil, postgres.Translate(err, "submission")
	}
	if string(firstSum) != string(st.sum) {
		out := refused(fault.New(fault.Conflict, CodeDuplicateInstance,
			"instanceID %s was already received with different content: an edit must carry a new instanceID and meta/deprecatedID", sub.InstanceID), "")
		out.errors = []xform.FieldError{{Path: "/" + sub.Root + "/meta/instanceID",
			Reason: fmt.Sprintf("%s was already received (submission %s) with different content", sub.InstanceID, first)}}
		out.dupOf = &first
		if err := apply(ctx, p.Pool, st.id, out); err != nil {
			return nil, postgres.Translate(err, "submission")
		}
		return nil, out.refusal
	}
	if err := apply(ctx, p.Pool, st.id, outcome{status: StatusDuplicate, dupOf: &first}); err != nil {
		return nil, postgres.Translate(err, "submission")
	}
	if depth >= maxDepth {
		return nil, fmt.Errorf("submission %s: duplicate of %s, processed too deep", st.id, first)
	}
	res, err := p.process(ctx, first, depth+1, nil)
	if res != nil {
		res.Duplicate = true
	}
	return res, err
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// result reads what became of a processed submission.
func (p *Pipeline) result(ctx context.Context, id uuid.UUID) (*Result, error) {
	res := &Result{SubmissionID: id}
	var errs []byte
	var dupOf *uuid.UUID
	var instance, code *string
	if err := p.Pool.QueryRow(ctx, `SELECT status, error_code, errors, duplicate_of, instance_id FROM form_submission WHERE id = $1`, id).
		Scan(&res.Status, &code, &errs, &dupOf, &instance); err != nil {
		return nil, postgres.Translate(err, "submission")
	}
	if instance != nil {
		res.InstanceID = *instance
	}
	if code != nil {
		res.Code = fault.Code(*code)
	}
	if res.Status == StatusDuplicate && dupOf != nil {
		r, err := p.result(ctx, *dupOf)
		if r != nil {
			r.Duplicate = true
		}
		return r, err
	}
	if errs != nil {
		if err := json.Unmarshal(errs, &res.Errors); err != nil {
			return nil, fmt.Errorf("submission %s: stored errors: %w", id, err)
		}
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

// ProcessAttempts is how many times one job tries a processing. River's 25
// (about three weeks of backoff) would leave the submitter without an
// answer for weeks when processing fails for a reason no retry mends (a
// bug, a panic); ten cover what does mend (a restart, a deploy, a lock held
// by a migration: attempt⁴ seconds apart, the tenth about four hours after
// the first). A database that stays down longer loses nothing: the job is
// discarded, the row stays received and the sweep queues it again.
// The job keeps one attempt spare (queue.WithSpare), so a process killed
// during the tenth is rescued and its retry still gives up.
const ProcessAttempts = 10

// InsertOpts makes processing unique per submission and tried
// ProcessAttempts times, and once more after a kill in the last.
func (ProcessArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: queue.WithSpare(ProcessAttempts), UniqueOpts: queue.UniqueUntilFinished()}
}

// ProcessWorker processes one submission. Refusals (unknown form, invalid
// XML, conflicts) are recorded on the submission and end the job; failures
// are retried, and on the job's last attempt an unexpected one is recorded
// too (see Work).
type ProcessWorker struct {
	river.WorkerDefaults[ProcessArgs]
	Pipeline *Pipeline
}

// Timeout bounds one processing: a 10 MiB submission parses and writes in
// well under a second; the rest is room for lock waits behind other
// versions of the same instanceID (a longer wait fails the attempt, and
// River retries it).
func (w *ProcessWorker) Timeout(*river.Job[ProcessArgs]) time.Duration { return queue.MaxTimeout }

// processFailed is the reason recorded on a submission whose processing
// failed unexpectedly on every attempt: the submitters read it, so it says
// nothing of the cause (which is logged).
const processFailed = "could not be processed: it failed unexpectedly on every attempt; it is kept, and can be processed again once the fault is mended"

// Work processes job.Args.SubmissionID. A failure is retried; on the job's
// last attempt one that is not an unreachable or busy database is taken as
// permanent — it would fail every retry, and every sweep after them, while
// the submitter never hears — and recorded (giveUp): the submission
// rejected with INTERNAL and a generic reason, the details logged; a
// processing deciding it meanwhile decides first. A
// panic counts as such a failure. An unreachable database does not give
// up: the job is discarded, the row stays received, the sweep queues it
// again. An operator puts a given-up submission back for processing with
// UPDATE form_submission SET status = 'received', error_code = NULL,
// errors = NULL, processed_at = NULL, swept_at = NULL WHERE id = … AND
// error_code = 'INTERNAL'; the sweep takes it within a minute.
func (w *ProcessWorker) Work(ctx context.Context, job *river.Job[ProcessArgs]) error {
	err := w.process(ctx, job.Args.SubmissionID)
	if err == nil {
		return nil
	}
	if k := fault.KindOf(err); k != fault.Internal && k != fault.Unavailable {
		return nil // recorded on the submission
	}
	if !queue.LastAttempt(job.JobRow, ProcessAttempts) {
		return err
	}
	if fault.KindOf(err) == fault.Unavailable || postgres.Unavailable(err) {
		// Ended (cancelled, its error kept), not retried hours later by
		// the spare attempt: the row stays received, and the sweep queues
		// it again within minutes of the database's return.
		return river.JobCancel(err)
	}
	w.Pipeline.Log.ErrorContext(ctx, "submission processing failed for good", "submission_id", job.Args.SubmissionID,
		"attempt", job.Attempt, "error", err)
	if rerr := w.Pipeline.giveUp(ctx, job.Args.SubmissionID); rerr != nil {
		return errors.Join(err, postgres.Translate(rerr, "submission"))
	}
	return nil
}

// giveUp records submission id as rejected with INTERNAL (processFailed)
// under the locks a processing takes — its instanceIDs', then its row — so
// a processing deciding it meanwhile decides first, and only a submission
// still waiting to be processed is given up.
func (p *Pipeline) giveUp(ctx context.Context, id uuid.UUID) error {
	st, err := load(ctx, p.Pool, id, false, true)
	if err != nil || !st.processable() {
		return err
	}
	keys := instanceKeys(st.xml)
	return pgx.BeginFunc(ctx, p.Pool, func(tx pgx.Tx) error {
		if _, err := lockInstances(ctx, tx, keys...); err != nil {
			return err
		}
		now, err := load(ctx, tx, id, true, false)
		if err != nil || !now.processable() {
			return err
		}
		return apply(ctx, tx, id, outcome{status: StatusRejected, code: fault.CodeInternal,
			errors: []xform.FieldError{{Path: "", Reason: processFailed}}})
	})
}

func (w *ProcessWorker) process(ctx context.Context, id uuid.UUID) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic processing submission %s: %v\n%s", id, p, debug.Stack())
		}
	}()
	_, err = w.Pipeline.Process(ctx, id)
	return err
}

// instanceKeys are the instanceIDs a processing of xml locks (its own and
// the one it edits), none when it does not parse — or when parsing it
// panics, which may be why its processing is given up.
func instanceKeys(xml string) (keys []string) {
	defer func() {
		if recover() != nil {
			keys = nil
		}
	}()
	if sub, err := xform.ParseSubmission([]byte(xml)); err == nil {
		keys = []string{sub.InstanceID, sub.DeprecatedID}
	}
	return keys
}

// ReconcileAfter is how long a submission may stay "received" before the
// sweep processes it.
const ReconcileAfter = time.Minute

// Reconcile enqueues processing for submissions left "received" (a crash
// between storing and processing, Hasura inserts whose event never came),
// and the check of responses inserted through Hasura left unchecked: each
// in a transaction of its own, so neither holds its rows while the other's
// jobs are inserted.
func Reconcile(ctx context.Context, pool *pgxpool.Pool, q queue.Inserter, minAge time.Duration) (n int, err error) {
	sweeps := []struct {
		where string
		job   func(uuid.UUID) river.JobArgs
	}{
		{`status = 'received'`, func(id uuid.UUID) river.JobArgs { return ProcessArgs{SubmissionID: id} }},
		// The source is in the text, not a parameter, so that every plan
		// uses the partial index form_submission_graphql_unchecked.
		{`source = '` + SourceGraphQL + `' AND processed_at IS NULL`, func(id uuid.UUID) river.JobArgs { return CheckArgs{SubmissionID: id} }},
	}
	for _, s := range sweeps {
		err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			// The rows due swept least recently first: one whose job is
			// queued or failing never holds the head of every sweep.
			added, err := queue.EnqueueEach(ctx, tx, q, s.job, queue.LeastRecentlySwept("form_submission",
				s.where+` AND received_at < now() - make_interval(secs => $1)`, "received_at", 1000), minAge.Seconds())
			n += added
			return err
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// ReconcileArgs asks for a sweep of unprocessed submissions (worked by a
// queue.SweepWorker running Reconcile).
type ReconcileArgs struct{ queue.PerMinute }

// Kind is the River job kind.
func (ReconcileArgs) Kind() string { return "forms.reconcile" }
