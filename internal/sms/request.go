package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
)

// Request is an sms_request as the workers read it.
type Request struct {
	ID         uuid.UUID
	SchoolID   *uuid.UUID
	SchoolName string
	Type       string
	Language   string
	Grades     []int32
	Sections   []string
	StudentIDs []uuid.UUID
	Phones     []string
	Variables  map[string]string
	Status     string
	Cursor     string
	Expanded   bool
	// AssessmentID is the assessment whose results {result} gives.
	AssessmentID *uuid.UUID
}

// Enqueuer adds jobs to the caller's transaction, to be inserted before it
// commits (inbox.Work is one).
type Enqueuer interface {
	Enqueue(args river.JobArgs, opts *river.InsertOpts)
}

// Accept starts a QUEUED request: it marks it PROCESSING in tx and enqueues
// its expansion with jobs, in the same transaction. A request already
// started (a redelivered event, the reconciler racing Hasura) is left alone,
// so it is expanded once.
func Accept(ctx context.Context, tx pgx.Tx, jobs Enqueuer, requestID uuid.UUID) (accepted bool, err error) {
	tag, err := tx.Exec(ctx, `UPDATE sms_request SET status = 'PROCESSING' WHERE id = $1 AND status = 'QUEUED'`, requestID)
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	jobs.Enqueue(ExpandArgs{RequestID: requestID}, nil)
	return true, nil
}

// Direct describes a message shala itself sends to known phones (form
// receipts to respondents, rule flags to collectors, result notices).
type Direct struct {
	Type      string
	Phones    []string
	Variables map[string]string
	SchoolID  *uuid.UUID
	Source    string // forms, assessment, system
	Language  string // default "hi"
}

const insertDirect = `INSERT INTO sms_request (id, school_id, type, language, phones, variables, source)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`

func directArgs(d Direct) (uuid.UUID, []any, error) {
	if len(d.Phones) == 0 {
		return uuid.Nil, nil, errors.New("sms: direct message without phones")
	}
	if d.Language == "" {
		d.Language = "hi"
	}
	if d.Variables == nil {
		d.Variables = map[string]string{} // a nil map marshals as JSON null, which the column refuses
	}
	vars, err := json.Marshal(d.Variables)
	if err != nil {
		return uuid.Nil, nil, err
	}
	id := uuid.New()
	return id, []any{id, d.SchoolID, d.Type, d.Language, d.Phones, vars, d.Source}, nil
}

// Enqueue records d as an sms_request in tx and returns its id. The
// reconciler (or the sms_request_created trigger, when Hasura is in front)
// picks it up; the caller's transaction decides whether it exists at all.
func Enqueue(ctx context.Context, tx pgx.Tx, d Direct) (uuid.UUID, error) {
	id, args, err := directArgs(d)
	if err != nil {
		return uuid.Nil, err
	}
	_, err = tx.Exec(ctx, insertDirect, args...)
	return id, postgres.Translate(err, "sms request")
}

// EnqueueBatch adds d's insert to b, for callers that write in one round
// trip; it commits or fails with the rest of the batch.
func EnqueueBatch(b *pgx.Batch, d Direct) (uuid.UUID, error) {
	id, args, err := directArgs(d)
	if err != nil {
		return uuid.Nil, err
	}
	b.Queue(insertDirect, args...)
	return id, nil
}

func loadRequest(ctx context.Context, q pgx.Tx, id uuid.UUID) (*Request, error) {
	r := &Request{ID: id}
	var vars []byte
	var cursor *string
	err := q.QueryRow(ctx, `SELECT r.school_id, coalesce(s.name, ''), r.type, r.language, r.grades, r.sections,
			r.student_ids, r.phones, r.variables, r.status, r.expand_cursor, r.expanded_at IS NOT NULL,
			r.assessment_id
		FROM sms_request r LEFT JOIN school s ON s.id = r.school_id WHERE r.id = $1 FOR UPDATE OF r`, id).
		Scan(&r.SchoolID, &r.SchoolName, &r.Type, &r.Language, &r.Grades, &r.Sections, &r.StudentIDs, &r.Phones,
			&vars, &r.Status, &cursor, &r.Expanded, &r.AssessmentID)
	if err != nil {
		return nil, postgres.Translate(err, "sms request "+id.String())
	}
	if cursor != nil {
		r.Cursor = *cursor
	}
	raw := map[string]any{}
	if err := json.Unmarshal(vars, &raw); err != nil {
		return nil, err
	}
	r.Variables = make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			r.Variables[k] = v
		case nil:
		default:
			r.Variables[k] = fmt.Sprint(v)
		}
	}
	return r, nil
}

func loadTemplate(ctx context.Context, q pgx.Tx, typ, lang string) (Template, error) {
	t := Template{Type: typ, Language: lang}
	err := q.QueryRow(ctx, `SELECT body, dlt_template_id FROM sms_template WHERE type = $1 AND language = $2 AND enabled`,
		typ, lang).Scan(&t.Body, &t.DLTTemplateID)
	return t, err
}

func failRequest(ctx context.Context, q pgx.Tx, id uuid.UUID, remark string) error {
	_, err := q.Exec(ctx, `UPDATE sms_request SET status = 'FAILED', remarks = $2, finished_at = now() WHERE id = $1`, id, remark)
	return err
}

// ExpandArgs asks for the fan-out of one request. Unique by request: one
// expansion however often it is asked for.
type ExpandArgs struct {
	RequestID uuid.UUID `json:"request_id" river:"unique"`
}

// Kind is the River job kind.
func (ExpandArgs) Kind() string { return "sms.expand" }

// InsertOpts makes the expansion unique per request.
func (ExpandArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// PageSize is how many students one expansion transaction takes.
const PageSize = 1000

// ExpandWorker resolves a request's recipients and queues its messages, a
// page at a time: each page's messages and their send jobs commit together
// with the request's cursor, so a killed expansion resumes where it stopped
// and never queues a phone twice (sms_message is unique per request and
// phone).
type ExpandWorker struct {
	river.WorkerDefaults[ExpandArgs]
	Pool    *pgxpool.Pool
	Metrics *Metrics
}

// Timeout bounds one run of the expansion: it commits a page at a time
// and stops taking pages after ExpandBudget, snoozing to go on from its
// cursor, so a run is short whatever the request's size.
func (w *ExpandWorker) Timeout(*river.Job[ExpandArgs]) time.Duration { return queue.MaxTimeout }

// ExpandBudget is how long one run of an expansion keeps taking pages (a
// page of PageSize students takes well under a second).
const ExpandBudget = queue.MaxTimeout / 2

// Work expands job.Args.RequestID.
func (w *ExpandWorker) Work(ctx context.Context, job *river.Job[ExpandArgs]) error {
	start := time.Now()
	for {
		done, err := w.page(ctx, job.Args.RequestID)
		if err != nil && job.Attempt >= job.MaxAttempts {
			gctx, cancel := queue.WithGrace(ctx)
			defer cancel()
			return errors.Join(err, w.giveUp(gctx, job.Args.RequestID, err))
		}
		if err != nil || done {
			return err
		}
		if time.Since(start) > ExpandBudget {
			return river.JobSnooze(0) // go on from the cursor in a new run
		}
	}
}

// giveUp ends a request whose expansion failed on its last attempt, so it
// does not stay PROCESSING forever: what was queued is sent and the request
// finishes as usual; with nothing queued it fails with the error.
func (w *ExpandWorker) giveUp(ctx context.Context, id uuid.UUID, cause error) error {
	return pgx.BeginFunc(ctx, w.Pool, func(tx pgx.Tx) error {
		// Only an expansion still unfinished: the last page may have
		// committed though its commit reported an error.
		var open bool
		if err := tx.QueryRow(ctx, `SELECT status = 'PROCESSING' AND expanded_at IS NULL FROM sms_request WHERE id = $1 FOR UPDATE`, id).
			Scan(&open); err != nil || !open {
			if errors.Is(err, pgx.ErrNoRows) {
				return nil // deleted
			}
			return err
		}
		queued, err := anyQueued(ctx, tx, id)
		if err != nil {
			return err
		}
		if queued {
			_, err := finishExpansion(ctx, tx, river.ClientFromContext[pgx.Tx](ctx), id, true)
			return err
		}
		return failRequest(ctx, tx, id, "recipients could not be resolved: "+truncate(MaskText(cause.Error())))
	})
}

// anyQueued reports whether an expansion of request id queued a message to
// send, so that ending it early still sends what it queued.
func anyQueued(ctx context.Context, tx pgx.Tx, id uuid.UUID) (bool, error) {
	var queued bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sms_message WHERE request_id = $1 AND status <> 'undeliverable')`, id).
		Scan(&queued)
	return queued, err
}

type recipient struct {
	studentID *uuid.UUID
	names     []string
	classes   []string
	raw       string
	result    *Result // the child's {result}, when the template has it
	// The parents' names, and the school's children on the phone, to tell
	// siblings from strangers.
	father, mother string
	household      []child
}

// page expands one page in one transaction and reports whether the
// expansion is complete.
func (w *ExpandWorker) page(ctx context.Context, id uuid.UUID) (done bool, err error) {
	var withheld []string // counted once the page commits
	err = pgx.BeginFunc(ctx, w.Pool, func(tx pgx.Tx) error {
		r, err := loadRequest(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.Expanded || r.Status == "DONE" || r.Status == "FAILED" {
			done = true
			return nil
		}
		tmpl, err := loadTemplate(ctx, tx, r.Type, r.Language)
		if errors.Is(err, pgx.ErrNoRows) {
			done = true
			return failRequest(ctx, tx, id, fmt.Sprintf("no enabled %s template in language %q", r.Type, r.Language))
		}
		if err != nil {
			return err
		}
		if missing := tmpl.Missing(r.Variables); len(missing) > 0 {
			done = true
			return failRequest(ctx, tx, id, "missing template variables: "+strings.Join(missing, ", "))
		}
		withResults := slices.Contains(Placeholders(tmpl.Body), ResultPlaceholder)
		if withResults && (r.AssessmentID == nil || r.Phones != nil) {
			done = true
			return failRequest(ctx, tx, id, fmt.Sprintf("the %s template gives each child's result ({result}): the request must name an assessment (assessment_id) and go to students, not phones", r.Type))
		}

		var recipients []recipient
		var next string
		if r.Phones != nil {
			for _, p := range r.Phones {
				recipients = append(recipients, recipient{raw: p})
			}
			done = true
		} else {
			recipients, next, done, err = students(ctx, tx, r)
			if err != nil {
				return err
			}
		}
		if withResults && len(recipients) > 0 {
			ids := make([]uuid.UUID, len(recipients))
			for i, rc := range recipients {
				ids[i] = *rc.studentID
			}
			summaries, err := results(ctx, tx, r, ids)
			if err != nil {
				return err
			}
			homes, err := households(ctx, tx, *r.SchoolID, recipients)
			if err != nil {
				return err
			}
			for i := range recipients {
				res := summaries[ids[i]]
				recipients[i].result = &res
				recipients[i].household = homes[i]
			}
		}
		noPhone, why, err := w.queue(ctx, tx, r, tmpl, recipients)
		withheld = why
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE sms_request SET expand_cursor = $2, skipped = skipped + $3 WHERE id = $1`,
			id, next, noPhone); err != nil {
			return err
		}
		if done {
			_, err := finishExpansion(ctx, tx, river.ClientFromContext[pgx.Tx](ctx), id, false)
			return err
		}
		return nil
	})
	if err == nil {
		for _, why := range withheld {
			w.Metrics.resultWithheld(why)
		}
	}
	return done, err
}

// students reads the next page of targeted students, ordered by phone so
// siblings sharing one arrive in the same page. A page never ends inside a
// group of the same phone (unless the group alone fills it).
func students(ctx context.Context, tx pgx.Tx, r *Request) (out []recipient, next string, done bool, err error) {
	if r.SchoolID == nil {
		return nil, "", true, nil
	}
	afterPhone, afterID := "", uuid.Nil
	if r.Cursor != "" {
		p, idStr, _ := strings.Cut(r.Cursor, "\x1f")
		afterPhone = p
		if afterID, err = uuid.Parse(idStr); err != nil {
			return nil, "", false, fmt.Errorf("expansion cursor of request %s: %w", r.ID, err)
		}
	}
	// No filter is NULL (an untyped nil: a nil slice would say the same by
	// accident, see postgres.NilArgs).
	var grades, sections, ids any
	if len(r.Grades) > 0 {
		grades = r.Grades
	}
	if len(r.Sections) > 0 {
		sections = r.Sections
	}
	if len(r.StudentIDs) > 0 {
		ids = r.StudentIDs
	}
	rows, err := tx.Query(ctx, `SELECT s.id, s.name, coalesce(s.guardian_phone, ''), s.grade, coalesce(s.section, ''),
			coalesce(s.father_name, ''), coalesce(s.mother_name, '')
		FROM student s
		WHERE s.school_id = $1 AND s.status = 'ACTIVE' AND s.enabled
		  AND ($2::int[] IS NULL OR s.grade = ANY ($2))
		  AND ($3::text[] IS NULL OR coalesce(s.section, 'A') = ANY ($3)) -- no section is section A, as for assessments
		  AND ($4::uuid[] IS NULL OR s.id = ANY ($4))
		  AND (coalesce(s.guardian_phone, ''), s.id) > ($5, $6)
		ORDER BY coalesce(s.guardian_phone, ''), s.id
		LIMIT $7`, *r.SchoolID, grades, sections, ids, afterPhone, afterID, PageSize+1)
	if err != nil {
		return nil, "", false, err
	}
	type st struct {
		id                                   uuid.UUID
		name, phone, section, father, mother string
		grade                                int
	}
	var page []st
	for rows.Next() {
		var s st
		if err := rows.Scan(&s.id, &s.name, &s.phone, &s.grade, &s.section, &s.father, &s.mother); err != nil {
			return nil, "", false, err
		}
		page = append(page, s)
	}
	if err := rows.Err(); err != nil {
		return nil, "", false, err
	}
	done = len(page) <= PageSize
	if !done {
		page = page[:PageSize]
		// Keep the last phone's group whole for the next page, unless the
		// whole page is that one phone.
		last := page[len(page)-1].phone
		cut := len(page)
		for cut > 0 && page[cut-1].phone == last {
			cut--
		}
		if cut > 0 && last != "" {
			page = page[:cut]
		}
	}
	if len(page) > 0 {
		l := page[len(page)-1]
		next = l.phone + "\x1f" + l.id.String()
	}
	for _, s := range page {
		id := s.id
		class := fmt.Sprint(s.grade)
		if s.section != "" {
			class += "-" + s.section
		}
		out = append(out, recipient{studentID: &id, names: []string{s.name}, classes: []string{class}, raw: s.phone,
			father: s.father, mother: s.mother})
	}
	return out, next, done, nil
}

// queue groups recipients by normalised phone, renders one message per
// phone and inserts the messages and their send jobs. It returns how many
// recipients had no phone at all (they get no row).
func (w *ExpandWorker) queue(ctx context.Context, tx pgx.Tx, r *Request, tmpl Template, recipients []recipient) (noPhone int, withheld []string, err error) {
	type msg struct {
		studentID *uuid.UUID
		names     []string
		classes   []string
		reason    string
		// Each child's result, in the order of names, and the school's
		// children on the phone.
		children, household []child
	}
	byPhone := map[string]*msg{}
	var order []string
	for _, rc := range recipients {
		e164, reason := Normalize(rc.raw)
		if reason == ReasonNoPhone {
			noPhone++
			continue
		}
		key := e164
		if reason != "" {
			key = strings.TrimSpace(rc.raw)
		}
		m, ok := byPhone[key]
		if !ok {
			m = &msg{studentID: rc.studentID, reason: reason, household: rc.household}
			byPhone[key] = m
			order = append(order, key)
		}
		m.names = appendNew(m.names, rc.names...)
		m.classes = appendNew(m.classes, rc.classes...)
		if rc.result != nil {
			m.children = append(m.children, child{result: *rc.result, father: rc.father, mother: rc.mother})
		}
	}
	if len(order) == 0 {
		return noPhone, nil, nil
	}
	whyByPhone := map[string]string{} // messages whose {result} asks the school, and why
	var (
		studentIDs []*uuid.UUID
		phones     []string
		bodies     []string
		statuses   []string
		errs       []*string
	)
	for _, phone := range order {
		m := byPhone[phone]
		vars := make(map[string]string, len(r.Variables)+3)
		for k, v := range r.Variables {
			vars[k] = v
		}
		vars["student_name"] = joinListed(m.names, r.Language)
		vars["class"] = joinListed(m.classes, r.Language)
		vars["school_name"] = r.SchoolName
		if len(m.children) > 0 {
			text, why := childResults(m.children, m.household, len(m.names), r.Language)
			vars[ResultPlaceholder] = text
			if why != "" {
				whyByPhone[phone] = why
			}
		}
		body, err := tmpl.Render(vars)
		if err != nil {
			return 0, nil, err
		}
		if n := utf8.RuneCountInString(body); n > MaxBody && m.reason == "" {
			// Long variables: this recipient is skipped with the reason;
			// the rest of the request goes on.
			m.reason = fmt.Sprintf("the message would have %d characters, more than %d", n, MaxBody)
			body = string([]rune(body)[:MaxBody])
		}
		studentIDs = append(studentIDs, m.studentID)
		phones = append(phones, phone)
		bodies = append(bodies, body)
		if m.reason != "" {
			reason := m.reason
			statuses, errs = append(statuses, "undeliverable"), append(errs, &reason)
		} else {
			statuses, errs = append(statuses, "queued"), append(errs, nil)
		}
	}
	rows, err := tx.Query(ctx, `INSERT INTO sms_message (request_id, student_id, phone, body, status, last_error)
		SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[])
		ON CONFLICT (request_id, phone) DO NOTHING
		RETURNING id, status, phone`, r.ID, studentIDs, phones, bodies, statuses, errs)
	if err != nil {
		return 0, nil, err
	}
	var queued []uuid.UUID
	undeliverable := 0
	for rows.Next() {
		var id uuid.UUID
		var status, phone string
		if err := rows.Scan(&id, &status, &phone); err != nil {
			return 0, nil, err
		}
		if status == "queued" {
			queued = append(queued, id)
			if why := whyByPhone[phone]; why != "" {
				withheld = append(withheld, why)
			}
		} else {
			undeliverable++
		}
	}
	if err := rows.Err(); err != nil {
		return 0, nil, err
	}
	var jobs []river.InsertManyParams
	for len(queued) > 0 {
		n := min(BatchSize, len(queued))
		jobs = append(jobs, river.InsertManyParams{Args: SendBatchArgs{RequestID: r.ID, MessageIDs: queued[:n]}})
		queued = queued[n:]
	}
	if undeliverable > 0 {
		w.Metrics.message("none", "undeliverable", undeliverable)
	}
	if len(jobs) > 0 {
		if _, err := river.ClientFromContext[pgx.Tx](ctx).InsertManyTx(ctx, tx, jobs); err != nil {
			return 0, nil, fmt.Errorf("enqueue %d sends: %w", len(jobs), err)
		}
	}
	return noPhone + undeliverable, withheld, nil
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		dup := false
		for _, have := range list {
			if have == it {
				dup = true
				break
			}
		}
		if !dup {
			list = append(list, it)
		}
	}
	return list
}

// finishExpansion records the recipient count and starts following
// progress with q (following: a progress job was added, not found queued
// already); a request with nobody to send to fails with the reasons.
// cutShort marks an expansion given up before it reached every recipient:
// the request's remarks will say so (progress).
func finishExpansion(ctx context.Context, tx pgx.Tx, q queue.Inserter, id uuid.UUID, cutShort bool) (following bool, err error) {
	var total, skipped int
	if err := tx.QueryRow(ctx, `UPDATE sms_request SET expanded_at = now(), expansion_cut_short = $2,
			recipients_total = (SELECT count(*) FROM sms_message WHERE request_id = $1 AND status <> 'undeliverable')
		WHERE id = $1 RETURNING recipients_total, skipped`, id, cutShort).Scan(&total, &skipped); err != nil {
		return false, err
	}
	if total == 0 {
		summary, err := skipSummary(ctx, tx, id, skipped)
		if err != nil {
			return false, err
		}
		return false, failRequest(ctx, tx, id, "nothing to send: no recipient has a valid Indian mobile number"+summary)
	}
	res, err := q.InsertTx(ctx, tx, ProgressArgs{RequestID: id}, nil)
	if err != nil {
		return false, fmt.Errorf("enqueue progress of request %s: %w", id, err)
	}
	return !res.UniqueSkippedAsDuplicate, nil
}

// skipSummary lists why recipients were skipped, for remarks.
func skipSummary(ctx context.Context, tx pgx.Tx, id uuid.UUID, skipped int) (string, error) {
	if skipped == 0 {
		return "", nil
	}
	rows, err := tx.Query(ctx, `SELECT last_error, count(*) FROM sms_message
		WHERE request_id = $1 AND status = 'undeliverable' AND last_error IS NOT NULL GROUP BY last_error`, id)
	if err != nil {
		return "", err
	}
	counts := map[string]int{}
	undeliverable := 0
	for rows.Next() {
		var reason string
		var n int
		if err := rows.Scan(&reason, &n); err != nil {
			rows.Close()
			return "", err
		}
		counts[reason] = n
		undeliverable += n
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if n := skipped - undeliverable; n > 0 {
		counts[ReasonNoPhone] = n
	}
	var parts []string
	for reason, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, reason))
	}
	sort.Strings(parts)
	return " (skipped: " + strings.Join(parts, ", ") + ")", nil
}

// Reconcile sweeps the requests nothing else would move on, each older
// than minAge, and returns how many jobs it added:
//
//   - still QUEUED: their event never reached shala (Hasura down or absent,
//     retries exhausted, rows written by plain SQL or by shala's own
//     producers). They are accepted as the trigger would.
//   - PROCESSING, not expanded, with no expansion job left — discarded by
//     River's rescuer when its process was killed in the last attempt, or
//     deleted by an operator. The expansion is queued again and resumes at
//     its cursor, at most MaxExpandRequeues times while River keeps the
//     discarded jobs (7 days). (An expansion that gives up after its
//     attempts finishes or fails its request, so it is not taken again.)
//   - the same once those requeues are spent (an expansion that kills its
//     process every time): the sweep gives it up as its last attempt would.
//     What was queued is sent and the request finishes; with nothing queued
//     it is FAILED, its remarks saying why. It never stays PROCESSING.
//   - PROCESSING and expanded, with no progress job waiting or running —
//     deleted or cancelled by an operator, or discarded. Its progress job
//     is queued again: only that job finishes the request (DONE or FAILED)
//     and fails its stuck messages after StuckAfter.
//
// Each kind is swept in its own transaction (and each give-up in its own),
// so one that fails holds back none of the others. Requests are taken
// oldest first, at most 500 of a kind per sweep, and only those that need
// a job count towards the 500: a request whose job is waiting, running or
// retrying is not selected, so rows that keep failing do not hold the head
// of the sweep. Replicas sweeping at once add each job once: the kinds are
// unique by request while a job is waiting or running, and the QUEUED,
// give-up and progress sweeps lock the rows they take (SKIP LOCKED).
func Reconcile(ctx context.Context, pool *pgxpool.Pool, q queue.Inserter, minAge time.Duration) (n int, err error) {
	expanding, err := reconcileExpansions(ctx, pool, q, minAge)
	n += expanding
	gaveUp, gerr := giveUpExpansions(ctx, pool, q, minAge)
	n += gaveUp
	following, ferr := reconcileProgress(ctx, pool, q, minAge)
	n += following
	return n, errors.Join(err, gerr, ferr)
}

// reconcileExpansions accepts requests left QUEUED and queues again the
// expansions lost before they finished.
func reconcileExpansions(ctx context.Context, pool *pgxpool.Pool, q queue.Inserter, minAge time.Duration) (n int, err error) {
	expand := func(id uuid.UUID) river.JobArgs { return ExpandArgs{RequestID: id} }
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		queued, err := queue.EnqueueEach(ctx, tx, q, expand,
			`UPDATE sms_request SET status = 'PROCESSING'
			WHERE id IN (SELECT id FROM sms_request WHERE status = 'QUEUED' AND created_at < now() - make_interval(secs => $1)
			             ORDER BY created_at LIMIT 500 FOR UPDATE SKIP LOCKED)
			RETURNING id`, minAge.Seconds())
		if err != nil {
			return err
		}
		// A job in one of River's default unique states blocks a new one
		// (ExpandArgs is unique by request): such a request is not lost.
		lost, err := queue.EnqueueEach(ctx, tx, q, expand,
			`SELECT r.id FROM sms_request r
			WHERE r.status = 'PROCESSING' AND r.expanded_at IS NULL AND r.created_at < now() - make_interval(secs => $1)
			  AND NOT EXISTS (SELECT 1 FROM river_job j WHERE j.kind = $2 AND j.args ->> 'request_id' = r.id::text
			                    AND j.state IN ('available', 'completed', 'pending', 'retryable', 'running', 'scheduled'))
			  AND (SELECT count(*) FROM river_job j WHERE j.kind = $2 AND j.args ->> 'request_id' = r.id::text
			         AND j.state = 'discarded') <= $3
			ORDER BY r.created_at LIMIT 500`, minAge.Seconds(), ExpandArgs{}.Kind(), MaxExpandRequeues)
		n = queued + lost
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep sms requests to expand: %w", err)
	}
	return n, nil
}

// unexpandedGivenUp selects (and with FOR UPDATE, locks) the requests whose
// expansion was lost more than MaxExpandRequeues times and has no job left,
// with how many of its jobs were discarded.
const unexpandedGivenUp = `SELECT r.id, d.n FROM sms_request r,
	  LATERAL (SELECT count(*) AS n FROM river_job j WHERE j.kind = $2 AND j.args ->> 'request_id' = r.id::text
	             AND j.state = 'discarded') d
	WHERE r.status = 'PROCESSING' AND r.expanded_at IS NULL AND r.created_at < now() - make_interval(secs => $1)
	  AND NOT EXISTS (SELECT 1 FROM river_job j WHERE j.kind = $2 AND j.args ->> 'request_id' = r.id::text
	                    AND j.state IN ('available', 'completed', 'pending', 'retryable', 'running', 'scheduled'))
	  AND d.n > $3`

// giveUpExpansions ends the requests whose expansion was lost more times
// than it is queued again, each in its own transaction, as the expansion's
// last attempt would: what was queued is sent and the request finishes;
// with nothing queued it is FAILED with the reason. It returns how many progress jobs it
// added.
func giveUpExpansions(ctx context.Context, pool *pgxpool.Pool, q queue.Inserter, minAge time.Duration) (n int, err error) {
	kind := ExpandArgs{}.Kind()
	rows, err := pool.Query(ctx, unexpandedGivenUp+` ORDER BY r.created_at LIMIT 100`, minAge.Seconds(), kind, MaxExpandRequeues)
	if err != nil {
		return 0, fmt.Errorf("sweep sms requests whose expansion was lost: %w", err)
	}
	ids, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (uuid.UUID, error) {
		var id uuid.UUID
		var discarded int
		return id, row.Scan(&id, &discarded)
	})
	if err != nil {
		return 0, fmt.Errorf("sweep sms requests whose expansion was lost: %w", err)
	}
	var errs []error
	for _, id := range ids {
		var following bool // counted once committed
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			// Again under the row's lock: another replica's sweep may have
			// ended it since.
			var got uuid.UUID
			var discarded int
			err := tx.QueryRow(ctx, unexpandedGivenUp+` AND r.id = $4 FOR UPDATE OF r SKIP LOCKED`,
				minAge.Seconds(), kind, MaxExpandRequeues, id).Scan(&got, &discarded)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			// As the expansion's last attempt would (ExpandWorker.giveUp).
			queued, err := anyQueued(ctx, tx, id)
			if err != nil {
				return err
			}
			if !queued {
				return failRequest(ctx, tx, id, fmt.Sprintf(
					"recipients could not be resolved: the expansion was stopped %d times before it finished (its job was discarded each time)",
					discarded))
			}
			following, err = finishExpansion(ctx, tx, q, id, true)
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("give up the expansion of sms request %s: %w", id, err))
		} else if following {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// reconcileProgress queues again the progress job of the expanded requests
// still PROCESSING that have none waiting or running. The states that count
// are those in which ProgressArgs is unique, so the sweep selects exactly
// the requests for which an insert adds a job.
func reconcileProgress(ctx context.Context, pool *pgxpool.Pool, q queue.Inserter, minAge time.Duration) (n int, err error) {
	var live []string
	for _, s := range (ProgressArgs{}).InsertOpts().UniqueOpts.ByState {
		live = append(live, string(s))
	}
	progress := func(id uuid.UUID) river.JobArgs { return ProgressArgs{RequestID: id} }
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// The request's row is locked (a progress run holds it while it
		// recounts, and is live then) and checked again once locked: a
		// request its progress finished meanwhile is not taken.
		n, err = queue.EnqueueEach(ctx, tx, q, progress,
			`SELECT r.id FROM sms_request r
			WHERE r.status = 'PROCESSING' AND r.expanded_at IS NOT NULL AND r.created_at < now() - make_interval(secs => $1)
			  AND NOT EXISTS (SELECT 1 FROM river_job j WHERE j.kind = $2 AND j.args ->> 'request_id' = r.id::text
			                    AND j.state::text = ANY ($3))
			ORDER BY r.created_at LIMIT 500 FOR UPDATE OF r SKIP LOCKED`, minAge.Seconds(), ProgressArgs{}.Kind(), live)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sweep sms requests without progress: %w", err)
	}
	return n, nil
}

// MaxExpandRequeues is how many times Reconcile queues again an expansion
// whose jobs were discarded.
const MaxExpandRequeues = 3

// ReconcileAfter is how old a request must be before the sweep takes it:
// Hasura normally delivers within seconds, and a live expansion or progress
// job is never missing for long (a request's progress job is added in the
// transaction that marks it expanded).
const ReconcileAfter = 2 * time.Minute

// ReconcileArgs asks for a sweep of requests whose event never arrived or
// whose expansion or progress job was lost (worked by a queue.SweepWorker
// running Reconcile).
type ReconcileArgs struct{ queue.PerMinute }

// Kind is the River job kind.
func (ReconcileArgs) Kind() string { return "sms.reconcile" }

// RecordStatuses applies delivery reports of provider to their messages (a
// message only moves forward: sent → delivered or failed) and adjusts the
// counts of the requests they belong to in the same transaction. Unknown ids
// are ignored: reports may arrive for messages sent by another environment
// or long pruned. It returns how many messages changed.
//
// Locks are taken messages first, then the request row, as ProgressWorker
// does; the worker recounts after taking the request row, so a report and a
// recount never overwrite each other.
func RecordStatuses(ctx context.Context, pool *pgxpool.Pool, provider string, statuses []Status) (int, error) {
	if len(statuses) == 0 {
		return 0, nil
	}
	ids := make([]string, len(statuses))
	outcome := make([]string, len(statuses))
	reasons := make([]*string, len(statuses))
	for i, s := range statuses {
		ids[i] = s.ProviderMessageID
		switch {
		case s.Delivered:
			outcome[i] = "delivered"
		case s.Failed:
			outcome[i] = "failed"
			r := truncate(s.Reason)
			reasons[i] = &r
		default:
			outcome[i] = "sent"
		}
	}
	n := 0
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := lockReports(ctx, tx, provider, ids); err != nil {
			return err
		}
		// A report about a send not recorded yet waits for it (Sender.record
		// applies it).
		if _, err := tx.Exec(ctx, `INSERT INTO sms_report_early (provider, provider_message_id, outcome, reason)
			SELECT $1, u.pid, u.outcome, u.reason FROM unnest($2::text[], $3::text[], $4::text[]) AS u(pid, outcome, reason)
			WHERE u.outcome <> 'sent'
			  AND NOT EXISTS (SELECT 1 FROM sms_message m WHERE m.provider = $1 AND m.provider_message_id = u.pid)
			ON CONFLICT (provider, provider_message_id) DO UPDATE SET outcome = EXCLUDED.outcome, reason = EXCLUDED.reason,
			  received_at = now()`, provider, ids, outcome, reasons); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `WITH changed AS (
				UPDATE sms_message m SET status = u.outcome, updated_at = now(),
					delivered_at = CASE WHEN u.outcome = 'delivered' THEN now() ELSE m.delivered_at END,
					last_error = coalesce(u.reason, m.last_error)
				FROM unnest($2::text[], $3::text[], $4::text[]) AS u(pid, outcome, reason)
				WHERE m.provider = $1 AND m.provider_message_id = u.pid AND u.outcome <> 'sent' AND m.status = 'sent'
				RETURNING m.request_id, m.status),
			per AS (
				SELECT request_id, count(*) FILTER (WHERE status = 'delivered') AS d, count(*) FILTER (WHERE status = 'failed') AS f
				FROM changed GROUP BY request_id)
			UPDATE sms_request r SET delivered = r.delivered + per.d, failed = r.failed + per.f, sent = r.sent - per.f
			FROM per WHERE r.id = per.request_id`, provider, ids, outcome, reasons)
		n = int(tag.RowsAffected())
		return err
	})
	return n, postgres.Translate(err, "sms message")
}
