package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/xform"
)

// ans is one answer of a nested insert, with its question by name (an app
// reads the ids from form_question).
type ans struct {
	question string
	index    []int
	n        int
	value    string
}

// nested inserts a response of form with its answers as
// Hasura's nested insert does (insert_response_one(object: {form_id, …,
// answers: {data: […]}})): one transaction carrying the caller's session
// (hasura.user), the response first, then its answers with its id, only
// the columns the role may insert. version and instance "" are left out.
func (b *bundle) nested(t *testing.T, form, user, version, instance string, answers []ans) (responseID, submissionID uuid.UUID, err error) {
	t.Helper()
	ctx := context.Background()
	ids := map[string]uuid.UUID{}
	rows, qerr := b.pool.Query(ctx, `SELECT name, id FROM form_question WHERE form_id = $1 AND version = coalesce(nullif($2, ''),
		(SELECT version FROM form_version WHERE form_id = $1 ORDER BY registered_at DESC LIMIT 1))`, form, version)
	if qerr != nil {
		t.Fatal(qerr)
	}
	for rows.Next() {
		var name string
		var id uuid.UUID
		if err := rows.Scan(&name, &id); err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	session, _ := json.Marshal(map[string]string{"x-hasura-role": "school", "x-hasura-user-id": user})
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('hasura.user', $1, true)`, string(session)); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO response (form_id, form_version, instance_id, meta)
			VALUES ($1, nullif($2, ''), nullif($3, ''), '{"app": "survey-web 1.4"}') RETURNING id, submission_id`,
			form, version, instance).Scan(&responseID, &submissionID); err != nil {
			return err
		}
		if len(answers) == 0 {
			return nil
		}
		// One multi-row statement, as Hasura inserts an array relationship.
		var qids []uuid.UUID
		var indexes, values []string
		var ns []int
		for _, a := range answers {
			qid, ok := ids[a.question]
			if !ok {
				qid = uuid.New()
			}
			qids, ns, values = append(qids, qid), append(ns, a.n), append(values, a.value)
			index := "{}"
			if a.index != nil {
				index = strings.ReplaceAll(strings.Trim(fmt.Sprint(a.index), "[]"), " ", ",")
				index = "{" + index + "}"
			}
			indexes = append(indexes, index)
		}
		_, err := tx.Exec(ctx, `INSERT INTO answer (response_id, question_id, repeat_index, n, value_text)
			SELECT $1, q, i::int[], n, v FROM unnest($2::uuid[], $3::text[], $4::int[], $5::text[]) WITH ORDINALITY AS u(q, i, n, v, o) ORDER BY o`,
			responseID, qids, indexes, ns, values)
		return err
	})
	return responseID, submissionID, err
}

const householdVersion = "2026111501"

// asTeacher runs fn in a transaction as Hasura runs a mutation of the
// school user teacher-1 (hasura.user set).
func (b *bundle) asTeacher(fn func(tx pgx.Tx) error) error {
	ctx := context.Background()
	return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('hasura.user', '{"x-hasura-role":"school","x-hasura-user-id":"teacher-1"}', true)`); err != nil {
			return err
		}
		return fn(tx)
	})
}

// household is a full household's answers; the savings (20000) break the
// rule monthly_savings <= monthly_income (18000).
var household = []ans{
	{"start", nil, 0, "2026-11-30T10:02:11.318+05:30"},
	{"consent", nil, 0, "yes"},
	{"survey_date", nil, 0, "2026-11-30"},
	{"name", nil, 0, "सुनीता ठाकुर"},
	{"phone", nil, 0, "9816012345"},
	{"district", nil, 0, "Shimla"},
	{"gps", nil, 0, "31.1561 77.3592 2205.4 4.8"},
	{"monthly_income", nil, 0, "18000"},
	{"monthly_savings", nil, 0, "20000"},
	{"income_sources", nil, 0, "horticulture"},
	{"income_sources", nil, 1, "wages"},
	{"has_toilet", nil, 0, "yes"},
	{"household_size", nil, 0, "2"},
	{"member_name", []int{1}, 0, "सुनीता ठाकुर"},
	{"member_age", []int{1}, 0, "38"},
	{"member_name", []int{2}, 0, "आरव ठाकुर"},
	{"member_age", []int{2}, 0, "11"},
}

// TestNestedInsertOfAResponse: an app without ODK inserts a response with
// its answers in one Hasura nested insert. The database types every answer
// as the pipeline would (or refuses the whole insert naming the question),
// records a submission row for it (the instanceID, the submitter), and
// form_submission_created then runs the form's rules and queues its
// receipt, once; the sweep does it when the event never came.
func TestNestedInsertOfAResponse(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.registerHousehold(t)
	if status, out := b.action(t, "saveFormRule", "admin", map[string]any{"formId": "household_survey", "name": "savings",
		"expression": "monthly_savings <= monthly_income && all(member, .member_age <= 120)", "message": "बचत आय से अधिक"}); status != 200 {
		t.Fatalf("saveFormRule: %d %v", status, out)
	}
	if status, out := b.action(t, "saveFormReceipt", "admin", map[string]any{"formId": "household_survey", "phoneField": "phone", "nameField": "name",
		"summaryFields": []string{"household_size", "monthly_income"}, "language": "Hindi (hi)"}); status != 200 {
		t.Fatalf("saveFormReceipt: %d %v", status, out)
	}

	responseID, submissionID, err := b.nested(t, "household_survey", "teacher-1", "", "", household)
	if err != nil {
		t.Fatalf("nested insert: %v", err)
	}
	t.Run("the submission row", func(t *testing.T) {
		var source, status, by, role, version, instance string
		var hasXML, processed bool
		if err := b.pool.QueryRow(ctx, `SELECT s.source, s.status, s.submitted_by, s.submitted_role, s.xml IS NOT NULL, s.processed_at IS NOT NULL,
				r.form_version, r.instance_id
			FROM form_submission s JOIN response r ON r.submission_id = s.id WHERE s.id = $1 AND r.id = $2`, submissionID, responseID).
			Scan(&source, &status, &by, &role, &hasXML, &processed, &version, &instance); err != nil {
			t.Fatal(err)
		}
		if source != "graphql" || status != "accepted" || by != "teacher-1" || role != "school" || hasXML || processed {
			t.Errorf("got source %s, status %s, by %s as %s, xml %v, processed %v; want graphql, accepted, teacher-1 as school, no xml, not yet",
				source, status, by, role, hasXML, processed)
		}
		if version != householdVersion || !strings.HasPrefix(instance, "uuid:") {
			t.Errorf("got version %s and instance %s, want the latest version and a generated uuid: instanceID", version, instance)
		}
	})
	t.Run("typed as the pipeline types them", func(t *testing.T) {
		for _, c := range []struct{ what, query string }{
			{"income as a number", `value_number = 18000 AND q.name = 'monthly_income'`},
			{"the date at UTC midnight", `value_time = '2026-11-30T00:00:00Z' AND q.name = 'survey_date'`},
			{"the start with its zone", `value_time = '2026-11-30T04:32:11.318Z' AND q.name = 'start'`},
			{"a single choice", `choice_id IS NOT NULL AND q.name = 'has_toilet'`},
			{"each choice of a multiple choice", `choice_id IS NOT NULL AND q.name = 'income_sources' AND n = 1`},
			{"a member's age", `value_number = 11 AND q.name = 'member_age' AND repeat_index = '{2}'`},
		} {
			if n := b.count(t, `SELECT count(*) FROM answer a JOIN form_question q ON q.id = a.question_id WHERE a.response_id = $1 AND `+c.query, responseID); n != 1 {
				t.Errorf("%s: %d rows, want 1", c.what, n)
			}
		}
	})

	event := func(id uuid.UUID) []byte {
		return fmt.Appendf(nil, `{"created_at":"2026-11-30T10:15:30.123456","delivery_info":{"current_retry":0,"max_retries":10},
		"event":{"data":{"new":{"id":"%s","status":"accepted","source":"graphql","submitted_by":"teacher-1"},"old":null},"op":"INSERT",
		"session_variables":{"x-hasura-role":"school","x-hasura-user-id":"teacher-1"},"trace_context":null},
		"id":"%s","table":{"name":"form_submission","schema":"public"},"trigger":{"name":"form_submission_created"}}`, id, uuid.New())
	}
	for range 2 {
		if resp := b.post(t, "/events/form_submission_created", event(submissionID), nil); resp.StatusCode != 200 {
			t.Fatalf("event: %d", resp.StatusCode)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'forms.check_response'`); n != 1 {
		t.Errorf("%d check jobs for one response delivered twice, want 1", n)
	}
	if n := b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'forms.process'`); n != 0 {
		t.Errorf("%d process jobs for a response with no XML, want 0", n)
	}
	b.startWorkers(t)
	b.waitFor(t, "the response to be checked", func() bool {
		return b.count(t, `SELECT count(*) FROM form_submission WHERE id = $1 AND processed_at IS NOT NULL`, submissionID) == 1
	})
	t.Run("rules and receipt", func(t *testing.T) {
		if n := b.count(t, `SELECT count(*) FROM response_flag f JOIN response r ON r.id = f.response_id
			WHERE r.id = $1 AND r.flagged AND r.rule_errors IS NULL AND f.rule_name = 'savings' AND f.message = 'बचत आय से अधिक'`, responseID); n != 1 {
			t.Errorf("%d savings flags on a flagged response, want 1", n)
		}
		if n := b.count(t, `SELECT count(*) FROM sms_request WHERE type = 'RECEIPT' AND variables ->> 'name' = 'सुनीता ठाकुर'
			AND variables ->> 'summary' LIKE 'सदस्यों की संख्या: 2, %18000'`); n != 1 {
			t.Errorf("%d receipts, want 1 built from the inserted answers", n)
		}
	})

	deliver := func(t *testing.T, submission uuid.UUID) {
		t.Helper()
		if resp := b.post(t, "/events/form_submission_created", event(submission), nil); resp.StatusCode != 200 {
			t.Fatalf("event: %d", resp.StatusCode)
		}
		b.waitFor(t, "the response to be checked", func() bool {
			return b.count(t, `SELECT count(*) FROM form_submission WHERE id = $1 AND processed_at IS NOT NULL`, submission) == 1
		})
	}
	receipts := func() int { return b.count(t, `SELECT count(*) FROM sms_request WHERE type = 'RECEIPT'`) }

	t.Run("a long answer is cut in the receipt", func(t *testing.T) {
		long := append([]ans(nil), household...)
		long[3] = ans{"name", nil, 0, strings.Repeat("क", 3000)}
		_, sub, err := b.nested(t, "household_survey", "teacher-1", householdVersion, "uuid:long-name", long)
		if err != nil {
			t.Fatal(err)
		}
		deliver(t, sub)
		if n := b.count(t, `SELECT count(*) FROM form_submission WHERE id = $1 AND errors IS NULL`, sub); n != 1 {
			t.Error("the check recorded an error")
		}
		if n := b.count(t, `SELECT count(*) FROM sms_request WHERE type = 'RECEIPT' AND char_length(variables ->> 'name') = 101`); n != 1 {
			t.Errorf("%d receipts with the name cut to 100 characters and an ellipsis, want 1", n)
		}
	})

	t.Run("a long name is cut in an XForm's receipt too", func(t *testing.T) {
		long := strings.Repeat("क", 3000)
		doc := strings.NewReplacer("uuid:6f1c2d8e-3b4a-4e5f-9a7b-2c1d0e9f8a7b", "uuid:long-xform-name",
			"<name>सुनीता ठाकुर</name>", "<name>"+long+"</name>", "<instanceName>सुनीता ठाकुर - Matiana</instanceName>",
			"<instanceName>"+long+" - Matiana</instanceName>").Replace(xformFile(t, "household_submission.xml"))
		before := receipts()
		if status, out := b.action(t, "submitForm", "school", map[string]any{"xml": doc}); status != 200 || out["status"] != "accepted" {
			t.Fatalf("submitForm: %d %v", status, out)
		}
		if got := receipts(); got != before+1 {
			t.Errorf("%d receipts queued, want 1", got-before)
		}
	})

	t.Run("an ODK edit before the check takes the response over", func(t *testing.T) {
		// The submitter's own edit (submitForm answers as user-school).
		responseID, sub, err := b.nested(t, "household_survey", "user-school", householdVersion, "uuid:to-edit", household)
		if err != nil {
			t.Fatal(err)
		}
		before := receipts()
		edit := strings.Replace(xformFile(t, "household_submission.xml"), "<instanceID>uuid:6f1c2d8e-3b4a-4e5f-9a7b-2c1d0e9f8a7b</instanceID>",
			"<instanceID>uuid:the-edit</instanceID><deprecatedID>uuid:to-edit</deprecatedID>", 1)
		if status, out := b.action(t, "submitForm", "school", map[string]any{"xml": edit}); status != 200 || out["status"] != "accepted" ||
			out["responseId"] != responseID.String() {
			t.Fatalf("the edit: %d %v, want accepted with response %s", status, out, responseID)
		}
		deliver(t, sub)
		if got := receipts(); got != before {
			t.Errorf("%d receipts queued for an edited response, want none", got-before)
		}
		if n := b.count(t, `SELECT count(*) FROM form_submission WHERE id = $1 AND status = 'superseded' AND errors IS NULL`, sub); n != 1 {
			t.Error("the nested insert's submission is not superseded, or its check recorded an error")
		}
	})

	t.Run("the sweep checks what the event never reached", func(t *testing.T) {
		fine := append([]ans(nil), household...)
		fine[8] = ans{"monthly_savings", nil, 0, "500"}
		_, lost, err := b.nested(t, "household_survey", "teacher-1", householdVersion, "uuid:lost-event-1", fine)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(ctx, `UPDATE form_submission SET received_at = now() - interval '2 minutes' WHERE id = $1`, lost); err != nil {
			t.Fatal(err)
		}
		// The periodic sweep may take it first: then this one finds none.
		if n, err := forms.Reconcile(ctx, b.pool, b.queue, forms.ReconcileAfter); err != nil || n > 1 {
			t.Fatalf("sweep: %d jobs, %v; want 1 at most", n, err)
		}
		b.waitFor(t, "the swept response to be checked", func() bool {
			return b.count(t, `SELECT count(*) FROM form_submission WHERE id = $1 AND processed_at IS NOT NULL`, lost) == 1
		})
		if n := b.count(t, `SELECT count(*) FROM response r JOIN form_submission s ON s.id = r.submission_id WHERE s.id = $1 AND NOT r.flagged`, lost); n != 1 {
			t.Error("the swept response was flagged, or not kept")
		}
	})

	t.Run("its instanceID is held against XForm submissions", func(t *testing.T) {
		doc := strings.Replace(xformFile(t, "household_submission.xml"), "uuid:6f1c2d8e-3b4a-4e5f-9a7b-2c1d0e9f8a7b", "uuid:lost-event-1", 1)
		if status, out := b.action(t, "submitForm", "school", map[string]any{"xml": doc}); status != 409 || code(out) != "DUPLICATE_INSTANCE" {
			t.Errorf("an XForm reusing the instanceID: %d %v, want 409 DUPLICATE_INSTANCE", status, out)
		}
		if _, _, err := b.nested(t, "household_survey", "teacher-1", "", "uuid:lost-event-1", household[:3]); err == nil ||
			!strings.Contains(err.Error(), `instance_id: "uuid:lost-event-1" was already received`) {
			t.Errorf("an insert retried with its instanceID: %v", err)
		}
	})

	t.Run("bad input is refused whole, naming the question", func(t *testing.T) {
		with := func(a ...ans) []ans { return append([]ans{household[1]}, a...) }
		for _, c := range []struct {
			what, version string
			answers       []ans
			want          string
		}{
			{"a word for a number", "", with(ans{"monthly_income", nil, 0, "eighteen"}), `monthly_income: "eighteen" is not a number`},
			{"a fraction for a whole number", "", with(ans{"household_size", nil, 0, "2.5"}), `household_size: "2.5" is not a whole number`},
			{"an impossible date", "", with(ans{"survey_date", nil, 0, "2026-02-30"}), `survey_date: "2026-02-30" is not a date (YYYY-MM-DD)`},
			{"a time without its zone", "", with(ans{"start", nil, 0, "2026-11-30T10:02:11"}), `start: "2026-11-30T10:02:11" is not a date and time`},
			{"a choice the form lacks", "", with(ans{"has_toilet", nil, 0, "maybe"}), `has_toilet: "maybe" is not one of the choices`},
			{"two choices in one answer", "", with(ans{"income_sources", nil, 0, "horticulture wages"}), `income_sources: one selected choice per answer`},
			{"a second value of a single choice", "", with(ans{"has_toilet", nil, 1, "no"}), `has_toilet: n is 0 but for the choices of a multiple choice`},
			{"a point off the globe", "", with(ans{"gps", nil, 0, "91 77"}), `gps: "91 77": latitude must be within ±90`},
			{"a repeat without its position", "", with(ans{"member_age", nil, 0, "38"}), `member_age: repeat_index is its position`},
			{"a position outside repeats", "", with(ans{"household_size", []int{1}, 0, "2"}), `household_size: repeat_index`},
			{"a position of 0", "", with(ans{"member_age", []int{0}, 0, "38"}), `member_age: repeat_index`},
			{"an empty answer", "", with(ans{"district", nil, 0, ""}), `district: value_text is empty`},
			{"a photo without its file", "", with(ans{"photo", nil, 0, "1700463587123.jpg"}), `photo: a file is sent with its submission`},
			{"a question of no form", "", with(ans{"no_such_question", nil, 0, "x"}), `is not a question of form "household_survey" version "2026111501"`},
			{"a version never registered", "1999", nil, `form_version: form "household_survey" has no version "1999"`},
			{"an answer in the meta block", "", with(ans{"instanceID", nil, 0, "uuid:other"}), `instanceID: the meta block is the submission's header`},
			{"a choice selected twice", "", with(ans{"income_sources", nil, 0, "wages"}, ans{"income_sources", nil, 1, "wages"}), `income_sources: "wages" is selected twice`},
			{"a position in a group, not a repeat", "", with(ans{"monthly_income", []int{1}, 0, "5"}), `monthly_income: repeat_index`},
			{"two positions in one repeat", "", with(ans{"member_age", []int{1, 1}, 0, "38"}), `member_age: repeat_index`},
			{"two choices both at n 0", "", with(ans{"income_sources", nil, 0, "wages"}, ans{"income_sources", nil, 0, "horticulture"}), `income_sources: answered twice (n 0 twice`},
			{"a question answered twice", "", with(ans{"district", nil, 0, "Shimla"}, ans{"district", nil, 0, "Kullu"}), `district: answered twice`},
			{"an answer too long", "", with(ans{"remarks", nil, 0, strings.Repeat("क", 10001)}), `remarks: 10001 characters, more than the 10000 an answer may have`},
			{"a negative n", "", with(ans{"income_sources", nil, -1, "wages"}), `income_sources: n is 0, or the place`},
		} {
			t.Run(c.what, func(t *testing.T) {
				before := b.count(t, `SELECT count(*) FROM form_submission`)
				_, _, err := b.nested(t, "household_survey", "teacher-1", c.version, "", c.answers)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("got %v, want an error with %q", err, c.want)
				}
				// invalid_parameter_value: Hasura answers a data-exception
				// with the message as written.
				if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code != "22023" {
					t.Errorf("SQLSTATE %s, want 22023", pgErr.Code)
				}
				if after := b.count(t, `SELECT count(*) FROM form_submission`); after != before {
					t.Errorf("%d submission rows left by a refused insert", after-before)
				}
			})
		}
	})

	t.Run("answers come only with their response", func(t *testing.T) {
		q := b.count(t, `SELECT count(*) FROM answer WHERE response_id = $1`, responseID)
		err := b.asTeacher(func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO answer (response_id, question_id, value_text)
				SELECT $1, id, 'Theog' FROM form_question WHERE form_id = 'household_survey' AND name = 'block'`, responseID)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "answers: inserted with their response") {
			t.Errorf("an answer added later: %v", err)
		}
		if n := b.count(t, `SELECT count(*) FROM answer WHERE response_id = $1`, responseID); n != q {
			t.Errorf("%d answers, want %d", n, q)
		}
	})

	t.Run("repeat positions as a plain array", func(t *testing.T) {
		for _, index := range []string{"{{2,3}}", "[0:0]={1}"} {
			err := b.asTeacher(func(tx pgx.Tx) error {
				var id uuid.UUID
				if err := tx.QueryRow(ctx, `INSERT INTO response (form_id) VALUES ('household_survey') RETURNING id`).Scan(&id); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO answer (response_id, question_id, repeat_index, value_text)
					SELECT $1, id, $2::int[], '38' FROM form_question WHERE form_id = 'household_survey' AND name = 'member_age'`, id, index)
				return err
			})
			if err == nil || !strings.Contains(err.Error(), "member_age: repeat_index is its position") {
				t.Errorf("repeat_index %s: %v", index, err)
			}
		}
	})

	t.Run("an answer's meta is an object", func(t *testing.T) {
		err := b.asTeacher(func(tx pgx.Tx) error {
			var id uuid.UUID
			if err := tx.QueryRow(ctx, `INSERT INTO response (form_id) VALUES ('household_survey') RETURNING id`).Scan(&id); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO answer (response_id, question_id, value_text, meta)
				SELECT $1, id, 'Shimla', '[1]' FROM form_question WHERE form_id = 'household_survey' AND name = 'district'`, id)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "district: meta is a JSON object of at most 16 KiB") {
			t.Errorf("meta [1]: %v", err)
		}
	})

	t.Run("at most 10000 answers a response", func(t *testing.T) {
		err := b.asTeacher(func(tx pgx.Tx) error {
			var id uuid.UUID
			if err := tx.QueryRow(ctx, `INSERT INTO response (form_id) VALUES ('household_survey') RETURNING id`).Scan(&id); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO answer (response_id, question_id, repeat_index, value_text)
				SELECT $1, q.id, ARRAY[i], '30' FROM form_question q, generate_series(1, 10001) i
				WHERE q.form_id = 'household_survey' AND q.name = 'member_age'`, id)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "answers: at most 10000 a response") {
			t.Errorf("10,001 answers: %v", err)
		}
	})

	t.Run("a submission of its own is refused", func(t *testing.T) {
		// Hasura inserts a nested object relationship first and fills in
		// the key: insert_response_one(object: {…, submission: {data:
		// {xml: …}}}) would bring a submission the trigger did not make.
		err := b.asTeacher(func(tx pgx.Tx) error {
			var sub uuid.UUID
			if err := tx.QueryRow(ctx, `INSERT INTO form_submission (xml, source, submitted_by, submitted_role)
				VALUES ('<junk/>', 'hasura', 'teacher-1', 'school') RETURNING id`).Scan(&sub); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO response (form_id, form_version, instance_id, meta, submission_id)
				VALUES ('household_survey', $1, 'uuid:own-submission', '[1, 2, 3]', $2)`, householdVersion, sub)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "submission: a response inserted through Hasura gets its submission row from shala") {
			t.Errorf("a response with a submission of its own: %v", err)
		}
	})

	t.Run("only through Hasura", func(t *testing.T) {
		_, err := b.pool.Exec(ctx, `INSERT INTO response (form_id, form_version, instance_id) VALUES ('household_survey', $1, 'uuid:no-session')`, householdVersion)
		if err == nil || !strings.Contains(err.Error(), "submission_id: a response is written by the forms pipeline or inserted through Hasura") {
			t.Errorf("a response with no submission outside Hasura: %v", err)
		}
	})
}

// TestNestedInsertTypesAsThePipeline holds the database's typing of nested
// inserts (migration 1795318100000) to the pipeline's (xform's Field.Value):
// for every type, the same values are accepted, with the same typed value,
// and the same are refused, for the same reason.
func TestNestedInsertTypesAsThePipeline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	b.registerHousehold(t)
	def := xformFile(t, "shapes/school_visit.xml")
	if status, out := b.action(t, "registerForm", "admin", map[string]any{"xform": def, "purpose": "DATA_COLLECTION"}); status != 200 {
		t.Fatalf("registerForm: %d %v", status, out)
	}
	// Values by form and question. Those marked stricter the database
	// refuses though the pipeline takes them (README: where they differ).
	values := map[string]map[string][]string{
		"school_visit": {
			"teachers": {"0", "-5", "+7", "007", "12", "1e3", "1.0", "9223372036854775807", "9223372036854775808", " 5", "5 ", "٣", "0x10"},
			"location": {"31.1 77.2", "31.1 77.2 2205.4 4.8", "-90 180", "90.5 77", "31 181", "31", "31 77 1 2 3", "a b", "31,77", "1e1 2E-1",
				"\t31 77\n", "31 77 1e308 1e308", "31 77 1e400"},
			"today": {"2026-11-30", "2026-2-3", "2024-02-29", "2026-02-29", "2026-13-01", "26-02-03", "2026-11-30T00:00:00Z", "2026/11/30"},
			"start": {"2026-11-30T10:02:11Z", "2026-11-30T10:02:11.318+05:30", "2026-11-30T10:02:11-07:00", "2026-11-30T10:02:11",
				"2026-11-30 10:02:11Z", "2026-11-30T10:02:11+0530", "2026-11-30T25:02:11Z", "2026-02-30T10:02:11Z",
				"2026-11-30T24:00:00Z", "2026-11-30T23:59:60Z", "2026-11-30T10:02:11+99:99", "2026-11-30T10:02:11.123456789012Z"},
			"visit_time": {"10:15", "10:15:30", "10:15:30.250", "10:15:30+05:30", "10:15:30.5Z", "9:05", "9:05:07", "24:00", "10:60", "10:15:61",
				"10", "10:15:30 +05:30", "10:15:30+99:99", "23:59:60", "10:15+05:30", "10:15:30."},
			"water_ok":   {"true", "false", "1", "0", "yes", "TRUE", ""},
			"district":   {"Shimla", "शिमला", " spaced "}, // choices from an external itemset
			"facilities": {"toilet", "library", "pool"},
		},
		"household_survey": {
			"monthly_income": {"18000", "2500.50", "-3", ".5", "5.", "1.0E7", "1e400", "NaN", "Infinity", "1_000", "0x10", "1,000", "₹500"},
			"has_toilet":     {"yes", "no", "Yes", "maybe"},
		},
	}
	stricter := map[string]bool{
		"start=2026-11-30T9:02:11+05:30": true, "start=2026-11-30T10:02:11+24:00": true, "start=0000-11-30T10:02:11Z": true,
		"visit_time=10:15:30,5": true, "visit_time=10:15:30+24:00": true,
		"today=0000-01-01": true, "monthly_income=1e-400": true,
		"location=31 1e-400": true, "location=31\u00a077": true, "location=31\u008577": true,
		"facilities=   ": true,
	}
	values["school_visit"]["start"] = append(values["school_visit"]["start"], "2026-11-30T9:02:11+05:30", "2026-11-30T10:02:11+24:00", "0000-11-30T10:02:11Z")
	values["school_visit"]["visit_time"] = append(values["school_visit"]["visit_time"], "10:15:30,5", "10:15:30+24:00")
	values["school_visit"]["today"] = append(values["school_visit"]["today"], "0000-01-01")
	values["school_visit"]["location"] = append(values["school_visit"]["location"], "31 1e-400", "31\u00a077", "31\u008577")
	values["school_visit"]["facilities"] = append(values["school_visit"]["facilities"], "   ")
	values["household_survey"]["monthly_income"] = append(values["household_survey"]["monthly_income"], "1e-400")
	for formID, file := range map[string]string{"school_visit": "shapes/school_visit.xml", "household_survey": "household_survey.xml"} {
		form, err := xform.ParseDefinition([]byte(xformFile(t, file)))
		if err != nil {
			t.Fatal(err)
		}
		var fields []*xform.Field
		for _, fl := range form.Fields {
			if _, ok := values[formID][fl.Name]; ok {
				fields = append(fields, fl)
			}
		}
		if len(fields) != len(values[formID]) {
			t.Fatalf("%s has %d of the %d questions the test types", formID, len(fields), len(values[formID]))
		}
		for _, fl := range fields {
			for _, raw := range values[formID][fl.Name] {
				t.Run(formID+"/"+fl.Name+"="+raw, func(t *testing.T) {
					want, reason := fl.Value(raw)
					if raw == "" {
						reason = "value_text is empty" // the pipeline skips an empty element
					}
					responseID, _, err := b.nested(t, formID, "teacher-1", "", "", []ans{{fl.Name, nil, 0, raw}})
					switch {
					case stricter[fl.Name+"="+raw]:
						if reason != "" || err == nil {
							t.Errorf("listed as refused by the database only; the pipeline: %q, the database: %v", reason, err)
						}
						return
					case reason != "":
						if err == nil || !strings.Contains(err.Error(), fl.Name+": "+reason) {
							t.Errorf("the pipeline refuses it (%s); the database: %v", reason, err)
						}
						return
					case err != nil:
						t.Fatalf("the pipeline takes it; the database refuses it: %v", err)
					}
					var number *float64
					var at *time.Time // Postgres keeps microseconds
					var truth *bool
					if err := b.pool.QueryRow(ctx, `SELECT value_number::float8, value_time, value_bool FROM answer WHERE response_id = $1`, responseID).
						Scan(&number, &at, &truth); err != nil {
						t.Fatal(err)
					}
					if !sameValue(number, want.Number) || !sameValue(truth, want.Bool) || (at == nil) != (want.Time == nil) || at != nil && at.Sub(*want.Time).Abs() >= time.Microsecond {
						t.Errorf("got number %v, time %v, bool %v; the pipeline has %v, %v, %v", deref(number), deref(at), deref(truth),
							deref(want.Number), deref(want.Time), deref(want.Bool))
					}
				})
			}
		}
	}
	t.Run("nested repeats", func(t *testing.T) {
		// desk_condition is in the repeat desk, in the repeat room: two
		// positions, outermost first.
		if _, _, err := b.nested(t, "school_visit", "teacher-1", "", "", []ans{{"desk_condition", []int{2, 3}, 0, "broken"}}); err != nil {
			t.Errorf("two positions: %v", err)
		}
		if n := b.count(t, `SELECT count(*) FROM form_question WHERE form_id = 'school_visit' AND name IN ('desk_condition', 'room_use', 'district')
			AND repeat_depth = CASE name WHEN 'desk_condition' THEN 2 WHEN 'room_use' THEN 1 ELSE 0 END`); n != 3 {
			t.Errorf("%d of 3 repeat depths right", n)
		}
		for _, index := range [][]int{{2}, {2, 3, 1}} {
			if _, _, err := b.nested(t, "school_visit", "teacher-1", "", "", []ans{{"desk_condition", index, 0, "broken"}}); err == nil ||
				!strings.Contains(err.Error(), "repeat_index is its position in each enclosing repeat") {
				t.Errorf("positions %v: %v", index, err)
			}
		}
		// Questions registered before repeat_depth have it NULL: checked
		// within bounds (the repeats with questions of their own on the
		// way, the groups on the path).
		if _, err := b.pool.Exec(ctx, `UPDATE form_question SET repeat_depth = NULL WHERE form_id = 'school_visit' AND repeat IS NOT NULL`); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			question, value string
			index           []int
			ok              bool
		}{
			{"desk_condition", "broken", []int{2, 3}, true}, {"desk_condition", "broken", []int{2}, false},
			{"desk_condition", "broken", []int{2, 3, 1}, false}, {"room_use", "class", []int{1}, true}, {"room_use", "class", []int{1, 1}, false},
		} {
			_, _, err := b.nested(t, "school_visit", "teacher-1", "", "", []ans{{c.question, c.index, 0, c.value}})
			if (err == nil) != c.ok {
				t.Errorf("depth unknown, %s at %v: %v, want accepted %v", c.question, c.index, err, c.ok)
			}
		}
	})
}

func sameValue[T comparable](a, b *T) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
