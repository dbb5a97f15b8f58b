package assessment

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/analytics"
	"github.com/shala-edu/shala/internal/queue"
)

// Class names one class's submission for an assessment (an
// assessment_class row).
type Class struct {
	AssessmentID uuid.UUID
	SchoolID     uuid.UUID
	Grade        int
	Section      string
}

// Announcement is what announcing a class's results did.
type Announcement struct {
	// Queued is the sms_request queued now; nil when nothing was queued.
	Queued *uuid.UUID
	// Skipped says why nothing was queued: the class is not final, it was
	// announced before, or its assessment has no SMS template.
	Skipped string
}

// Announce queues, in tx, the result SMS of a final class to its parents —
// once per (assessment, school, grade, section), whoever asks and however
// often: the assessment_class_finalized event, a console re-invoke, a
// redelivery, the sweep. The request carries the assessment's SMS template
// and the variables assessment and results_date (the day in India, by the
// database's clock), requested by whoever finalised the class, and names
// the assessment: a template with {result} (STUDENT_RESULT) gives each
// parent their own child's result. The claim
// (assessment_announcement) is written first, so a concurrent announcer of
// the same class waits for this transaction and then finds it taken.
func Announce(ctx context.Context, tx pgx.Tx, c Class) (Announcement, error) {
	var claimed bool
	err := tx.QueryRow(ctx, `WITH claim AS (
			INSERT INTO assessment_announcement (assessment_id, school_id, grade, section)
			SELECT assessment_id, school_id, grade, section FROM assessment_class
			WHERE assessment_id = $1 AND school_id = $2 AND grade = $3 AND section = $4 AND final
			ON CONFLICT DO NOTHING RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM claim)`, c.AssessmentID, c.SchoolID, c.Grade, c.Section).Scan(&claimed)
	if err != nil {
		return Announcement{}, err
	}
	if !claimed {
		return Announcement{Skipped: "not final, or announced before"}, nil
	}
	var template *string
	if err := tx.QueryRow(ctx, `SELECT sms_template FROM assessment WHERE id = $1`, c.AssessmentID).Scan(&template); err != nil {
		return Announcement{}, err
	}
	if template == nil {
		const why = "the assessment has no SMS template"
		_, err := tx.Exec(ctx, `UPDATE assessment_announcement SET skipped = $5
			WHERE assessment_id = $1 AND school_id = $2 AND grade = $3 AND section = $4`,
			c.AssessmentID, c.SchoolID, c.Grade, c.Section, why)
		return Announcement{Skipped: why}, err
	}
	var id uuid.UUID
	err = tx.QueryRow(ctx, `WITH req AS (
			INSERT INTO sms_request (school_id, type, grades, sections, variables, source, requested_by, assessment_id)
			SELECT c.school_id, a.sms_template, ARRAY[c.grade::int], ARRAY[c.section],
			       jsonb_build_object('assessment', a.name, 'results_date', to_char(now() AT TIME ZONE 'Asia/Kolkata', 'DD-MM-YYYY')),
			       'assessment', c.finalized_by, a.id
			FROM assessment_class c JOIN assessment a ON a.id = c.assessment_id
			WHERE c.assessment_id = $1 AND c.school_id = $2 AND c.grade = $3 AND c.section = $4
			RETURNING id)
		UPDATE assessment_announcement n SET sms_request_id = req.id FROM req
		WHERE n.assessment_id = $1 AND n.school_id = $2 AND n.grade = $3 AND n.section = $4
		RETURNING req.id`, c.AssessmentID, c.SchoolID, c.Grade, c.Section).Scan(&id)
	if err != nil {
		return Announcement{}, err
	}
	if err := analytics.Record(ctx, tx, c.SchoolID.String(), "results_announced", map[string]any{
		"assessment_id": c.AssessmentID, "grade": c.Grade, "section": c.Section, "sms_request_id": id,
	}); err != nil {
		return Announcement{}, err
	}
	return Announcement{Queued: &id}, nil
}

// AnnounceAfter is how long a final class may wait for its event before
// the sweep announces it.
const AnnounceAfter = time.Minute

// AnnounceWithin bounds the sweep to classes finalised in the last three
// days: a class finalised earlier whose announcement was never recorded
// (historical results loaded by SQL) is not announced days late. Events
// announce whatever their age.
const AnnounceWithin = 72 * time.Hour

// SweepAnnouncements announces final classes whose results were never
// announced — finalised while Hasura was down or its retries ran out, or by
// plain SQL — finalised more than minAge and less than AnnounceWithin ago,
// up to 500 per run, in one transaction. It returns how many it queued SMS
// for. (q is unused: each announcement is an sms_request row, whose own
// event and sweep take it from there.)
func SweepAnnouncements(ctx context.Context, pool *pgxpool.Pool, _ queue.Inserter, minAge time.Duration) (n int, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		n = 0
		rows, err := tx.Query(ctx, `SELECT c.assessment_id, c.school_id, c.grade, c.section FROM assessment_class c
			WHERE c.final AND c.finalized_at < now() - make_interval(secs => $1) AND c.finalized_at > now() - make_interval(secs => $2)
			  AND NOT EXISTS (SELECT 1 FROM assessment_announcement n WHERE (n.assessment_id, n.school_id, n.grade, n.section) =
			                  (c.assessment_id, c.school_id, c.grade, c.section))
			ORDER BY c.finalized_at LIMIT 500`, minAge.Seconds(), AnnounceWithin.Seconds())
		if err != nil {
			return err
		}
		classes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Class, error) {
			var c Class
			err := row.Scan(&c.AssessmentID, &c.SchoolID, &c.Grade, &c.Section)
			return c, err
		})
		if err != nil {
			return err
		}
		for _, c := range classes {
			a, err := Announce(ctx, tx, c)
			if err != nil {
				return err
			}
			if a.Queued != nil {
				n++
			}
		}
		return nil
	})
	return n, err
}

// SweepArgs asks for a sweep of unannounced final classes (worked by a
// queue.SweepWorker running SweepAnnouncements).
type SweepArgs struct{ queue.PerMinute }

// Kind is the River job kind.
func (SweepArgs) Kind() string { return "assessment.announce_sweep" }
