package assessment

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// AnnounceResults queues, in tx, the result SMS of an assessment to the
// parents of a class that was just finalised: an sms_request for the class
// with the assessment's SMS template, variables assessment and results_date
// (today in India). An assessment without an SMS template sends nothing.
func AnnounceResults(ctx context.Context, tx pgx.Tx, assessmentID, schoolID uuid.UUID, grade int, section, by string) (bool, error) {
	var name string
	var template *string
	err := tx.QueryRow(ctx, `SELECT name, sms_template FROM assessment WHERE id = $1`, assessmentID).Scan(&name, &template)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && template == nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	vars := map[string]string{"assessment": name, "results_date": time.Now().In(IST).Format("02-01-2006")}
	_, err = tx.Exec(ctx, `INSERT INTO sms_request (school_id, type, grades, sections, variables, source, requested_by)
		VALUES ($1, $2, $3, $4, $5, 'assessment', nullif($6, ''))`, schoolID, *template, []int32{int32(grade)}, []string{section}, vars, by)
	return err == nil, err
}
