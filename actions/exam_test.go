package actions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/actions"
	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/app/apptest"
	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type fixture struct {
	pool  *pgxpool.Pool
	clock *apptest.Clock
	url   string
}

func setup(t *testing.T) *fixture {
	t.Helper()
	pool := pgtest.New(t)
	f := &fixture{pool: pool, clock: apptest.NewClock(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))}
	a := apptest.New(t, apptest.Config(t), app.Options{Pool: pool, Now: f.clock.Now})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// call posts action name with input as Hasura does, for user with role.
func (f *fixture) call(t *testing.T, name, role, user string, input any, out any) (int, string) {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"action": map[string]any{"name": name}, "input": input,
		"session_variables": map[string]any{"x-hasura-role": role, "x-hasura-user-id": user},
		"request_query":     "mutation { " + name + " }",
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, f.url+"/actions/"+name, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(hasura.SecretHeader, apptest.WebhookSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		var e hasura.ErrorBody
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, raw)
		}
		code, _ := e.Extensions["code"].(string)
		return resp.StatusCode, code + ": " + e.Message
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: %v: %s", name, err, raw)
		}
	}
	return resp.StatusCode, ""
}

func (f *fixture) createExam(t *testing.T, user string, closes *time.Time) string {
	t.Helper()
	var out actions.CreateExamOutput
	if status, msg := f.call(t, "createExam", "examiner", user, map[string]any{"title": "Chemistry, term 2", "closesAt": closes}, &out); status != http.StatusOK {
		t.Fatalf("createExam: %d %s", status, msg)
	}
	return out.ID.String()
}

func TestCreateExamStudents(t *testing.T) {
	t.Parallel()
	t.Run("a list: all created with upload codes", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		id := f.createExam(t, "ex-1", nil)
		var out actions.CreateExamStudentsOutput
		status, msg := f.call(t, "createExamStudents", "examiner", "ex-1", map[string]any{"examId": id, "students": []map[string]string{
			{"nickname": "asha7", "firstName": "Asha", "lastName": "Verma", "email": "Asha@Example.org"},
			{"nickname": "Ravi", "firstName": "रवि", "lastName": "ठाकुर", "email": "ravi@example.org"},
		}}, &out)
		if status != http.StatusOK || len(out.Students) != 2 || len(out.Errors) != 0 {
			t.Fatalf("createExamStudents: %d %s %+v", status, msg, out)
		}
		for _, s := range out.Students {
			if !exam.ValidUploadCode(s.UploadCode) {
				t.Errorf("upload code %q is not 8 of A–Z0–9", s.UploadCode)
			}
		}
		var email string
		if err := f.pool.QueryRow(context.Background(), `SELECT email FROM exam_student WHERE nickname = 'asha7'`).Scan(&email); err != nil || email != "asha@example.org" {
			t.Errorf("e-mail stored as %q (%v), want it lower-cased", email, err)
		}
	})
	t.Run("CSV with a header, semicolons and a BOM", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		id := f.createExam(t, "ex-1", nil)
		csv := "\ufeffNickname;First name;Last name;E-mail\nasha7;Asha;Verma;asha@example.org\n\nravi;Ravi;Thakur;ravi@example.org\n"
		var out actions.CreateExamStudentsOutput
		if status, msg := f.call(t, "createExamStudents", "examiner", "ex-1", map[string]any{"examId": id, "csv": csv}, &out); status != http.StatusOK || len(out.Students) != 2 {
			t.Fatalf("csv: %d %s %+v", status, msg, out)
		}
	})
	t.Run("any wrong row: nothing created, every error by index and field", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		id := f.createExam(t, "ex-1", nil)
		var first actions.CreateExamStudentsOutput
		f.call(t, "createExamStudents", "examiner", "ex-1", map[string]any{"examId": id, "students": []map[string]string{
			{"nickname": "taken", "firstName": "A", "lastName": "B", "email": "taken@example.org"}}}, &first)
		var out actions.CreateExamStudentsOutput
		status, _ := f.call(t, "createExamStudents", "examiner", "ex-1", map[string]any{"examId": id, "students": []map[string]string{
			{"nickname": "ok1", "firstName": "A", "lastName": "B", "email": "ok1@example.org"},
			{"nickname": "much-too-long-nick", "firstName": "", "lastName": "B", "email": "not-an-email"},
			{"nickname": "dup", "firstName": "A", "lastName": "B", "email": "ok1@example.org"},
			{"nickname": "again", "firstName": "A", "lastName": "B", "email": "TAKEN@example.org"},
		}}, &out)
		if status != http.StatusOK || len(out.Students) != 0 {
			t.Fatalf("status %d, students %v: want none created", status, out.Students)
		}
		want := map[[2]any]bool{{1, "nickname"}: true, {1, "firstName"}: true, {1, "email"}: true, {2, "email"}: true, {3, "email"}: true}
		got := map[[2]any]bool{}
		for _, e := range out.Errors {
			got[[2]any{e.Index, e.Field}] = true
			if !strings.HasPrefix(e.Message, e.Field+":") {
				t.Errorf("message %q does not start with its field", e.Message)
			}
		}
		for k := range want {
			if !got[k] {
				t.Errorf("no error for row %v field %v; got %+v", k[0], k[1], out.Errors)
			}
		}
		var n int
		if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM exam_student`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d students (%v), want only the first call's", n, err)
		}
	})
	t.Run("CSV errors give the line", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		id := f.createExam(t, "ex-1", nil)
		var out actions.CreateExamStudentsOutput
		f.call(t, "createExamStudents", "examiner", "ex-1", map[string]any{"examId": id,
			"csv": "nickname,firstName,lastName,email\nok,A,B,a@example.org\nbad nick,A,B,b@example.org\n"}, &out)
		if len(out.Errors) != 1 || out.Errors[0].Index != 1 || out.Errors[0].Field != "nickname" || !strings.Contains(out.Errors[0].Message, "line 3") {
			t.Errorf("errors %+v, want row 1 nickname on line 3", out.Errors)
		}
		f.call(t, "createExamStudents", "examiner", "ex-1", map[string]any{"examId": id, "csv": "name,mail\nx,y\n"}, &out)
		if len(out.Errors) != 1 || out.Errors[0].Field != "csv" {
			t.Errorf("errors %+v, want the missing columns named", out.Errors)
		}
	})
	t.Run("another examiner's exam is not found; other roles are refused", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		id := f.createExam(t, "ex-1", nil)
		in := map[string]any{"examId": id, "students": []map[string]string{{"nickname": "a", "firstName": "A", "lastName": "B", "email": "a@example.org"}}}
		if status, msg := f.call(t, "createExamStudents", "examiner", "ex-2", in, nil); status != http.StatusNotFound {
			t.Errorf("other examiner: %d %s, want 404", status, msg)
		}
		if status, msg := f.call(t, "createExamStudents", "school", "ex-1", in, nil); status != http.StatusForbidden {
			t.Errorf("school role: %d %s, want 403", status, msg)
		}
		if status, msg := f.call(t, "createExamStudents", "examiner", "ex-1", map[string]any{"examId": id}, nil); status != http.StatusBadRequest {
			t.Errorf("neither students nor csv: %d %s, want 400", status, msg)
		}
	})
}

func TestResetUploadCode(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id := f.createExam(t, "ex-1", nil)
	var out actions.CreateExamStudentsOutput
	f.call(t, "createExamStudents", "examiner", "ex-1", map[string]any{"examId": id, "students": []map[string]string{
		{"nickname": "a", "firstName": "A", "lastName": "B", "email": "a@example.org"}}}, &out)
	old := out.Students[0]
	var reset actions.ExamStudentCode
	if status, msg := f.call(t, "resetUploadCode", "examiner", "ex-1", map[string]any{"studentId": old.ID}, &reset); status != http.StatusOK {
		t.Fatalf("resetUploadCode: %d %s", status, msg)
	}
	if reset.UploadCode == old.UploadCode || !exam.ValidUploadCode(reset.UploadCode) || reset.Nickname != "a" {
		t.Errorf("reset %+v, old %+v", reset, old)
	}
	exams := exam.New(exam.Deps{Pool: f.pool})
	if _, err := exams.StudentByCode(context.Background(), old.UploadCode); !exam.IsUnknownCode(err) {
		t.Errorf("old code after reset: %v, want unknown", err)
	}
	if status, _ := f.call(t, "resetUploadCode", "examiner", "ex-2", map[string]any{"studentId": old.ID}, nil); status != http.StatusNotFound {
		t.Errorf("another examiner reset a code: %d", status)
	}
}

func TestPurgeExam(t *testing.T) {
	t.Parallel()
	f := setup(t)
	closes := f.clock.Now().Add(24 * time.Hour)
	id := f.createExam(t, "ex-1", &closes)
	var out actions.CreateExamStudentsOutput
	f.call(t, "createExamStudents", "examiner", "ex-1", map[string]any{"examId": id, "students": []map[string]string{
		{"nickname": "a", "firstName": "Asha", "lastName": "Verma", "email": "a@example.org"},
		{"nickname": "b", "firstName": "Ravi", "lastName": "Thakur", "email": "b@example.org"}}}, &out)

	f.clock.Add(24*time.Hour + exam.PurgeAfter - time.Minute)
	if status, msg := f.call(t, "purgeExam", "examiner", "ex-1", map[string]any{"examId": id}, nil); status != http.StatusUnprocessableEntity || !strings.HasPrefix(msg, "NOT_PURGEABLE") {
		t.Errorf("purge before 30 days after closing: %d %s, want 422 NOT_PURGEABLE", status, msg)
	}
	f.clock.Add(time.Minute)
	if status, _ := f.call(t, "purgeExam", "examiner", "ex-2", map[string]any{"examId": id}, nil); status != http.StatusNotFound {
		t.Errorf("another examiner purged: %d", status)
	}
	var p actions.PurgeExamOutput
	if status, msg := f.call(t, "purgeExam", "examiner", "ex-1", map[string]any{"examId": id}, &p); status != http.StatusOK || p.Students != 2 {
		t.Fatalf("purge: %d %s %+v", status, msg, p)
	}
	var left int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM exam_student WHERE nickname IS NOT NULL OR first_name IS NOT NULL
		OR last_name IS NOT NULL OR email IS NOT NULL OR upload_code IS NOT NULL`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d students keep personal data (%v)", left, err)
	}
	var again actions.PurgeExamOutput
	if status, _ := f.call(t, "purgeExam", "examiner", "ex-1", map[string]any{"examId": id}, &again); status != http.StatusOK || !again.PurgedAt.Equal(p.PurgedAt) {
		t.Errorf("second purge: %d %+v, want the first's time", status, again)
	}
}
