package export_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/jobs"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/sheets"
	"github.com/shala-edu/shala/internal/sheets/sheetstest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	formID = "village_survey"
	book   = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"
)

type fixture struct {
	t     *testing.T
	pool  *pgxpool.Pool
	langs *export.Languages
}

func setup(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, pool: pgtest.New(t), langs: export.NewLanguages()}
	f.register("survey_v1.xml")
	return f
}

func (f *fixture) register(file string) {
	f.t.Helper()
	f.registerXML(f.testdata(file))
}

func (f *fixture) testdata(file string) []byte {
	f.t.Helper()
	def, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		f.t.Fatal(err)
	}
	return def
}

func (f *fixture) registerXML(def []byte) {
	f.t.Helper()
	if _, err := forms.NewCatalog(f.pool).Register(context.Background(), def, forms.DataCollection, "test"); err != nil {
		f.t.Fatal(err)
	}
}

// ans is one answer row: the question's name, its repeat position
// ("{1}", "{}"), which choice (n) and the value.
type ans struct {
	name, index string
	n           int16
	text        string
}

func a(name, text string) ans                   { return ans{name: name, index: "{}", text: text} }
func rep(name, i, text string) ans              { return ans{name: name, index: "{" + i + "}", text: text} }
func choice(name string, n int16, v string) ans { return ans{name: name, index: "{}", n: n, text: v} }

// respond stores a response of version with answers, in a transaction of
// its own (so submitted_at is that transaction's start), and returns its id.
func (f *fixture) respond(version string, answers ...ans) uuid.UUID {
	f.t.Helper()
	var id uuid.UUID
	err := pgx.BeginFunc(context.Background(), f.pool, func(tx pgx.Tx) error {
		var err error
		id, err = insertResponse(tx, version, answers)
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

// edit replaces response id's answers, as an ODK edit (deprecatedID)
// does: in place, in a transaction of its own (so edited_at is that
// transaction's start).
func (f *fixture) edit(id uuid.UUID, version string, answers ...ans) {
	f.t.Helper()
	err := pgx.BeginFunc(context.Background(), f.pool, func(tx pgx.Tx) error {
		ctx := context.Background()
		if _, err := tx.Exec(ctx, `DELETE FROM answer WHERE response_id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE response SET form_version = $2, edited_at = now() WHERE id = $1`, id, version); err != nil {
			return err
		}
		return insertAnswers(tx, id, version, answers)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func insertResponse(tx pgx.Tx, version string, answers []ans) (uuid.UUID, error) {
	ctx := context.Background()
	var id uuid.UUID
	err := tx.QueryRow(ctx, `WITH s AS (
			INSERT INTO form_submission (xml, instance_id, form_id, form_version, status)
			VALUES ('<data/>', 'uuid:' || gen_random_uuid(), $1, $2, 'accepted') RETURNING id, instance_id)
		INSERT INTO response (form_id, form_version, submission_id, instance_id)
		SELECT $1, $2, id, instance_id FROM s RETURNING id`, formID, version).Scan(&id)
	if err != nil {
		return id, err
	}
	return id, insertAnswers(tx, id, version, answers)
}

func insertAnswers(tx pgx.Tx, id uuid.UUID, version string, answers []ans) error {
	if len(answers) == 0 {
		return nil
	}
	ctx := context.Background()
	var names, indexes, texts []string
	var ns []int16
	for _, x := range answers {
		names, indexes, ns, texts = append(names, x.name), append(indexes, x.index), append(ns, x.n), append(texts, x.text)
	}
	_, err := tx.Exec(ctx, `INSERT INTO answer (response_id, question_id, repeat_index, n, value_text, value_number)
		SELECT $1, q.id, u.i::int[], u.n, u.t, CASE WHEN q.type IN ('int', 'decimal') THEN u.t::numeric END
		FROM unnest($2::text[], $3::text[], $4::int2[], $5::text[]) u(name, i, n, t)
		JOIN form_question q ON q.form_id = $6 AND q.version = $7 AND q.name = u.name`,
		id, names, indexes, ns, texts, formID, version)
	return err
}

// sheetsFixture is a Sheets server with one spreadsheet, the real client
// pointed at it, an export connected to it and an exporter.
type sheetsFixture struct {
	*fixture
	srv      *sheetstest.Server
	exportID uuid.UUID
	exporter *export.Exporter
}

func setupSheets(t *testing.T, callTimeout time.Duration) *sheetsFixture {
	t.Helper()
	f := setup(t)
	srv := sheetstest.New(t)
	srv.AddSpreadsheet(book)
	client, err := sheets.New(context.Background(), sheets.Config{URL: srv.URL, CredentialsJSON: srv.CredentialsJSON(), CallTimeout: callTimeout})
	if err != nil {
		t.Fatal(err)
	}
	s := &sheetsFixture{fixture: f, srv: srv}
	c, err := export.Connect(context.Background(), f.pool, nil, formID, book, "Responses", "admin-1")
	if err != nil {
		t.Fatal(err)
	}
	s.exportID = c.ID
	s.exporter = &export.Exporter{Pool: f.pool, Sheets: client, Langs: f.langs, BatchRows: 500, BatchBytes: 2 << 20}
	return s
}

// run runs the exporter once and fails the test on an error.
func (s *sheetsFixture) run() export.Outcome {
	s.t.Helper()
	out, err := s.exporter.Run(context.Background(), s.exportID)
	if err != nil {
		s.t.Fatalf("run: %v", err)
	}
	return out
}

// faultOn is a fault hook that answers every call of method with f.
func faultOn(method string, f sheetstest.Fault) func(sheetstest.Call) sheetstest.Fault {
	return func(c sheetstest.Call) sheetstest.Fault {
		if c.Method == method {
			return f
		}
		return sheetstest.None
	}
}

// sweep runs export.Sweep and returns how many runs it queued; the jobs
// are then deleted, so the next sweep queues what is due again.
func (s *sheetsFixture) sweep() int {
	s.t.Helper()
	ctx := context.Background()
	q, err := queue.New(s.pool, jobs.Workers(jobs.Deps{Pool: s.pool, Exporter: s.exporter}), queue.Config{})
	if err != nil {
		s.t.Fatal(err)
	}
	n, err := export.Sweep(ctx, s.pool, q, 0)
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM river_job WHERE kind = $1`, export.ExportArgs{}.Kind()); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// keys are column A of the sheet below the header.
func (s *sheetsFixture) keys() []string {
	rows := s.srv.Rows(book, "Responses")
	var out []string
	for i, r := range rows {
		if i == 0 {
			continue
		}
		out = append(out, r[0].(string))
	}
	return out
}

// ordered are the form's response ids in export order.
func (f *fixture) ordered() []string {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT id::text FROM response WHERE form_id = $1 ORDER BY created_at, id`, formID)
	if err != nil {
		f.t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		f.t.Fatal(err)
	}
	return ids
}

func (f *fixture) state(id uuid.UUID) (rowsWritten int64, enabled bool, lastError string) {
	f.t.Helper()
	var le *string
	if err := f.pool.QueryRow(context.Background(), `SELECT rows_written, enabled, last_error FROM sheet_export WHERE id = $1`, id).
		Scan(&rowsWritten, &enabled, &le); err != nil {
		f.t.Fatal(err)
	}
	if le != nil {
		lastError = *le
	}
	return
}
