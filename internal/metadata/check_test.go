package metadata_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/app/apptest"
	"github.com/shala-edu/shala/internal/metadata"
	"github.com/shala-edu/shala/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var sessionVars = []string{"X-Hasura-Role", "X-Hasura-User-Id", "X-Hasura-School-Id", "X-Hasura-Udise", "X-Hasura-District"}

type bundle struct {
	cat    *metadata.Catalog
	router chi.Routes
}

func setup(t *testing.T) bundle {
	t.Helper()
	pool := pgtest.New(t)
	cat, err := metadata.ReadCatalog(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	h := apptest.New(t, apptest.Config(t), app.Options{Pool: pool}).Handler()
	return bundle{cat: cat, router: h.(chi.Routes)}
}

func check(b bundle, m *metadata.Metadata) []string {
	c := &metadata.Check{Meta: m, Catalog: b.cat, Router: b.router, Roles: hasura.Roles, SessionVars: sessionVars}
	return c.Run()
}

// TestMetadataMatchesSchemaRouterAndTypes is the metadata check: it fails
// when metadata/ names a table, column, relationship, permission column,
// session variable, route or action field that does not exist, or when a
// Hasura-facing route has no metadata.
func TestMetadataMatchesSchemaRouterAndTypes(t *testing.T) {
	t.Parallel()
	m, err := metadata.Load("../../metadata")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Sources) != 1 || len(m.Sources[0].Tables) < 10 || len(m.Actions) == 0 || len(m.CronTriggers) == 0 {
		t.Fatalf("loaded too little: %d sources, actions %d, crons %d", len(m.Sources), len(m.Actions), len(m.CronTriggers))
	}
	for _, p := range check(setup(t), m) {
		t.Error(p)
	}
}

// TestCheckCatchesDrift edits a copy of the metadata in the ways people get
// it wrong and expects each to be reported: a check that cannot fail proves
// nothing.
func TestCheckCatchesDrift(t *testing.T) {
	t.Parallel()
	b := setup(t)
	edits := []struct {
		file, old, new, want string
	}{
		{"databases/default/tables/public_student.yaml", "guardian_phone, gender, category, date_of_birth, admission_number, admission_date, grade, section, stream, academic_year, is_cwsn", "guardian_mobile, gender, category, date_of_birth, admission_number, admission_date, grade, section, stream, academic_year, is_cwsn", "column guardian_mobile does not exist"},
		{"databases/default/tables/public_student.yaml", "X-Hasura-District", "X-Hasura-Distrct", "unknown session variable X-Hasura-Distrct"},
		{"databases/default/tables/public_student.yaml", "- role: district_admin", "- role: headmaster", "unknown role"},
		{"databases/default/tables/public_student.yaml", "foreign_key_constraint_on: school_id", "foreign_key_constraint_on: name", "no foreign key on public.student.name"},
		{"databases/default/tables/public_school.yaml", "district:\n          _eq: X-Hasura-District", "region:\n          _eq: X-Hasura-District", "region is neither a column nor a relationship"},
		{"databases/default/tables/public_ping.yaml", "/events/ping_created", "/events/ping_made", "shala has no route POST /events/ping_made"},
		{"databases/default/tables/public_ping.yaml", "value_from_env: SHALA_WEBHOOK_SECRET", "value: hunter2", "never a literal"},
		{"actions.graphql", "message: String!\n  ): PingResult!", "text: String!\n  ): PingResult!", "argument text has no field"},
		{"actions.graphql", "receivedAt: timestamptz!", "receivedAt: timestamptz!\n  pongAt: timestamptz", "field PingResult.pongAt has no Go field"},
		{"actions.graphql", "id: uuid!", "id: Int!", "GraphQL Int does not fit Go uuid.UUID"},
		{"actions.yaml", "- role: moderator", "- role: admin", `role "admin"`},
		{"cron_triggers.yaml", "/cron/reconcile", "/cron/reconcile_all", "shala has no route POST /cron/reconcile_all"},
		{"databases/default/tables/tables.yaml", "- \"!include public_ping.yaml\"\n", "", "route POST /events/ping_created is not referenced"},
		// Typos Hasura would silently ignore, and keys it needs.
		{"databases/default/tables/public_student.yaml", "allow_aggregations: true", "allow_aggregation: true", `public_student.yaml:2`},
		{"databases/default/tables/public_student.yaml", "allow_aggregations: true", "allow_aggregation: true", `unknown key "allow_aggregation" in select`},
		{"databases/default/tables/public_ping.yaml", "enable_manual: true", "enable_manaul: true", `unknown key "enable_manaul" in event definition`},
		{"databases/default/tables/public_ping.yaml", "    retry_conf:\n      interval_sec: 10\n      num_retries: 5\n      timeout_sec: 30\n", "", `event trigger lacks the required key "retry_conf"`},
		{"databases/default/tables/public_sms_request.yaml", "      check:\n        school_id:\n          _eq: X-Hasura-School-Id\n      set:", "      set:", `insert lacks the required key "check"`},
		{"cron_triggers.yaml", "  include_in_metadata: true\n", "", `cron trigger lacks the required key "include_in_metadata"`},
		{"actions.yaml", "forward_client_headers: false", "forward_client_header: false", `unknown key "forward_client_header" in action definition`},
		// Cron syntax.
		{"cron_triggers.yaml", "schedule: '*/5 * * * *'", "schedule: '*/5 * * *'", "has 4 fields, want 5"},
		{"cron_triggers.yaml", "schedule: '*/5 * * * *'", "schedule: '*/5 25 * * *'", `hour field "25"`},
		{"databases/default/tables/public_ping.yaml", "schedule: 0 3 * * *", "schedule: 0 3 * * MON-FRI", `cleanup_config: schedule "0 3 * * MON-FRI": day of week field`},
		// Malformed column lists.
		{"databases/default/tables/public_ping.yaml", "columns: '*'", "columns: {id: true}", "want a list of column names or '*'"},
		{"databases/default/tables/public_ping.yaml", "columns: '*'", "columns: [id, [message]]", "want a list of column names"},
		// Functions.
		{"databases/default/functions/public_search_answers.yaml", "name: search_answers", "name: search_answer", "function public.search_answer: tracked in metadata but not in the database"},
		{"databases/default/functions/public_search_answers.yaml", "- role: state_admin", "- role: principal", "function public.search_answers: permission of unknown role principal"},
	}
	for _, e := range edits {
		t.Run(e.want, func(t *testing.T) {
			t.Parallel()
			dir := copyDir(t, "../../metadata")
			path := filepath.Join(dir, e.file)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(src), e.old) {
				t.Fatalf("%s does not contain %q: update the test", e.file, e.old)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(src), e.old, e.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := metadata.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			got := check(b, m)
			for _, p := range got {
				if strings.Contains(p, e.want) {
					return
				}
			}
			t.Errorf("no problem mentions %q; got %q", e.want, got)
		})
	}
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestWhatNoRoleReads: Aadhaar numbers are never readable or writable in
// any form but their last four digits, through any role, and no event
// trigger ships a student row (Hasura's event payload carries every column,
// whatever the permissions); the school that issued a certificate learns
// that it was used, not where the child is enrolled now.
func TestWhatNoRoleReads(t *testing.T) {
	t.Parallel()
	m, err := metadata.Load("../../metadata")
	if err != nil {
		t.Fatal(err)
	}
	hidden := []struct {
		table, role string // role "": every role
		columns     []string
	}{
		{"student", "", []string{"aadhaar_hash", "aadhaar_ciphertext", "aadhaar_legacy"}},
		{"leaving_certificate", "school", []string{"admitted_school_id", "admitted_student_id", "pdf_error"}},
	}
	tables := map[string]metadata.Table{}
	for _, tb := range m.Sources[0].Tables {
		tables[tb.Table.Name] = tb
	}
	for _, h := range hidden {
		tb, ok := tables[h.table]
		if !ok {
			t.Fatalf("no table %s in the metadata", h.table)
		}
		for kind, perms := range map[string][]metadata.Permission{"select": tb.SelectPermissions, "insert": tb.InsertPermissions, "update": tb.UpdatePermissions} {
			for _, p := range perms {
				if h.role != "" && p.Role != h.role {
					continue
				}
				cols, all, err := p.ColumnList()
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range h.columns {
					if all || slices.Contains(cols, c) {
						t.Errorf("%s may %s %s.%s", p.Role, kind, h.table, c)
					}
				}
			}
		}
	}
	if n := len(tables["student"].EventTriggers); n != 0 {
		t.Errorf("%d event triggers on student: their payloads would carry the Aadhaar hash and ciphertext", n)
	}
}

// TestSchoolCorrectsLeaversNames: a school can correct the record of a
// student who left, passed out or dropped out, not only of one enrolled:
// a leaving certificate is issued to them, or replaces one revoked for a
// wrong name, and carries the names of the record (issueLeavingCertificate
// refuses names it cannot carry: "correct the student's record first").
func TestSchoolCorrectsLeaversNames(t *testing.T) {
	t.Parallel()
	m, err := metadata.Load("../../metadata")
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range m.Sources[0].Tables {
		if tb.Table.Name != "student" {
			continue
		}
		for _, p := range tb.UpdatePermissions {
			if p.Role != "school" {
				continue
			}
			b, err := json.Marshal(p.Permission.Filter)
			if err != nil {
				t.Fatal(err)
			}
			for _, status := range []string{"LEFT", "PASSED_OUT", "DROPPED_OUT"} {
				if strings.Contains(string(b), `"status"`) && !strings.Contains(string(b), `"`+status+`"`) {
					t.Errorf("the school role cannot correct a %s student's names (update filter %s)", status, b)
				}
			}
			return
		}
	}
	t.Fatal("no update permission of the school role on student")
}

// TestRolesCanDoTheirWork: what each role needs to do its work through
// Hasura is granted — the state admin keeps the learning objectives,
// questions and bundles and the forms' free metadata, a school reads what
// it counts, TeleKlasa's
// administrator manages moderators, groups, servers and preferences.
func TestRolesCanDoTheirWork(t *testing.T) {
	t.Parallel()
	m, err := metadata.Load("../../metadata")
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]metadata.Table{}
	for _, tb := range m.Sources[0].Tables {
		tables[tb.Table.Name] = tb
	}
	need := []struct {
		role, kind, table string
		columns           []string // for select, insert and update
		only              []string // when set: the permission grants no other column
	}{
		{"school", "select", "assessment_unit", []string{"assessment_id", "grade", "subject", "unit", "description", "cut_off_marks", "max_marks", "position"}, nil},
		{"school", "select", "learning_objective", []string{"code", "description", "is_unit"}, nil},
		{"school", "select", "assessment_question", []string{"code", "text", "max_marks", "cut_off_marks"}, nil},
		{"school", "insert", "assessment_tsp", []string{"assessment_id", "grade", "section", "subject", "unit", "students_cleared", "students_present"}, nil},
		{"school", "update", "assessment_tsp", []string{"students_cleared", "students_present"}, []string{"students_cleared", "students_present"}},
		{"state_admin", "insert", "learning_objective", []string{"grade", "subject", "code", "description", "is_unit", "position", "active"}, nil},
		{"state_admin", "update", "learning_objective", []string{"description", "is_unit", "position", "active"}, nil},
		{"state_admin", "delete", "learning_objective", nil, nil},
		{"state_admin", "insert", "assessment_question", []string{"grade", "subject", "code", "text", "max_marks", "cut_off_marks", "position", "active"}, nil},
		{"state_admin", "update", "assessment_question", []string{"text", "max_marks", "cut_off_marks", "position", "active"}, nil},
		{"state_admin", "delete", "assessment_question", nil, nil},
		{"state_admin", "insert", "unit_bundle", []string{"name", "unit_type", "grade", "subject"}, nil},
		{"state_admin", "delete", "unit_bundle", nil, nil},
		{"state_admin", "insert", "unit_bundle_item", []string{"bundle_id", "learning_objective_id", "question_id", "position"}, nil},
		{"state_admin", "delete", "unit_bundle_item", nil, nil},
		{"state_admin", "insert", "assessment_bundle", []string{"assessment_id", "grade", "subject", "bundle_id"}, nil},
		{"state_admin", "update", "assessment_bundle", []string{"bundle_id"}, nil},
		{"state_admin", "delete", "assessment_bundle", nil, nil},
		{"state_admin", "update", "form", []string{"meta"}, nil},
		{"state_admin", "update", "form_question", []string{"meta"}, nil},
		{"state_admin", "update", "form_choice", []string{"meta"}, nil},
		{"state_admin", "update", "answer", []string{"meta"}, nil},
		{"school", "select", "form_question", []string{"name", "type", "labels", "meta", "repeat", "repeat_depth"}, nil},
		{"district_admin", "select", "form_question", []string{"id", "name", "type", "repeat", "repeat_depth"}, nil},
		{"state_admin", "select", "form_question", []string{"id", "name", "type", "repeat", "repeat_depth"}, nil},
		{"state_admin", "select", "answer", []string{"value_text", "meta"}, nil},
		{"state_admin", "select", "response", []string{"meta"}, nil},
		{"school", "insert", "response", []string{"form_id", "form_version", "instance_id", "meta"}, []string{"form_id", "form_version", "instance_id", "meta"}},
		{"school", "insert", "answer", []string{"question_id", "repeat_index", "n", "value_text", "meta"}, []string{"question_id", "repeat_index", "n", "value_text", "meta"}},
		{"district_admin", "insert", "response", []string{"form_id", "form_version", "instance_id", "meta"}, []string{"form_id", "form_version", "instance_id", "meta"}},
		{"district_admin", "insert", "answer", []string{"question_id", "repeat_index", "n", "value_text", "meta"}, []string{"question_id", "repeat_index", "n", "value_text", "meta"}},
		{"state_admin", "insert", "response", []string{"form_id", "form_version", "instance_id", "meta"}, []string{"form_id", "form_version", "instance_id", "meta"}},
		{"state_admin", "insert", "answer", []string{"question_id", "repeat_index", "n", "value_text", "meta"}, []string{"question_id", "repeat_index", "n", "value_text", "meta"}},
		{"school", "select", "response", []string{"id", "flagged", "rule_errors"}, nil},
		{"school", "select", "answer", []string{"value_text", "value_number"}, nil},
		{"school", "select", "response_flag", []string{"rule_name", "message"}, nil},
		{"lesson_admin", "insert", "moderator", []string{"user_id", "display_name"}, []string{"user_id", "display_name"}},
		{"lesson_admin", "update", "moderator", []string{"display_name"}, []string{"display_name"}},
		{"lesson_admin", "delete", "moderator", nil, nil},
		{"lesson_admin", "insert", "lesson_group", []string{"name", "region", "school_id"}, []string{"name", "region", "school_id"}},
		{"lesson_admin", "update", "lesson_group", []string{"name", "region", "school_id"}, []string{"name", "region", "school_id"}},
		{"lesson_admin", "select", "lesson_group", []string{"id", "name", "region", "school_id"}, nil},
		{"lesson_admin", "select", "moderator", []string{"id", "user_id", "display_name"}, nil},
		{"lesson_admin", "select", "school", []string{"id", "udise", "name"}, nil},
		{"lesson_admin", "update", "group_student", []string{"display_name"}, []string{"display_name"}},
		{"lesson_admin", "insert", "group_moderator", []string{"group_id", "moderator_id"}, nil},
		{"lesson_admin", "delete", "group_moderator", nil, nil},
		{"lesson_admin", "select", "group_student", []string{"display_name", "access_token"}, nil},
		{"lesson_admin", "select", "lesson", []string{"status", "started_at", "ended_at"}, nil},
		{"lesson_admin", "select", "bbb_server", []string{"hostname", "enabled", "disabled_reason", "load_5m", "capacity", "booked"}, nil},
		{"lesson_admin", "update", "bbb_server", []string{"enabled", "capacity", "region"}, []string{"enabled", "capacity", "region"}},
		{"lesson_admin", "insert", "group_preferred_server", []string{"group_id", "server_id", "priority"}, nil},
		{"lesson_admin", "delete", "group_preferred_server", nil, nil},
	}
	for _, n := range need {
		tb, ok := tables[n.table]
		if !ok {
			t.Errorf("no table %s in the metadata", n.table)
			continue
		}
		perms := map[string][]metadata.Permission{"select": tb.SelectPermissions, "insert": tb.InsertPermissions,
			"update": tb.UpdatePermissions, "delete": tb.DeletePermissions}[n.kind]
		i := slices.IndexFunc(perms, func(p metadata.Permission) bool { return p.Role == n.role })
		if i < 0 {
			t.Errorf("%s cannot %s %s", n.role, n.kind, n.table)
			continue
		}
		cols, all, err := perms[i].ColumnList()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range n.columns {
			if !all && !slices.Contains(cols, c) {
				t.Errorf("%s cannot %s %s.%s", n.role, n.kind, n.table, c)
			}
		}
		for _, c := range cols {
			if n.only != nil && !slices.Contains(n.only, c) {
				t.Errorf("%s may %s %s.%s, want only %v", n.role, n.kind, n.table, c, n.only)
			}
		}
		if all && n.only != nil {
			t.Errorf("%s may %s every column of %s, want only %v", n.role, n.kind, n.table, n.only)
		}
	}
	// A response's answers come only with it (the answer trigger takes a
	// response written in the same transaction): no role may update one.
	if p := tables["response"].UpdatePermissions; len(p) > 0 {
		t.Errorf("%d roles may update response, want none", len(p))
	}
	actions := map[string][]string{
		"addBBBServer": {"lesson_admin"}, "disableBBBServer": {"lesson_admin"},
		"addStudents": {"moderator", "lesson_admin"}, "removeStudent": {"moderator", "lesson_admin"},
		"resetAccessToken": {"moderator", "lesson_admin"}, "createModeratorLink": {"moderator", "lesson_admin"},
		"resetModeratorLink": {"moderator", "lesson_admin"}, "endLesson": {"moderator", "lesson_admin"},
		"startLesson": {"moderator"}, "createGroup": {"moderator"},
	}
	for _, a := range m.Actions {
		want, ok := actions[a.Name]
		if !ok {
			continue
		}
		delete(actions, a.Name)
		var got []string
		for _, p := range a.Permissions {
			got = append(got, p.Role)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("action %s: roles %v, want %v", a.Name, got, want)
		}
	}
	for name := range actions {
		t.Errorf("no action %s in the metadata", name)
	}
	// Filters that keep an administrator from harm, exactly: a server
	// switched back on only after an operator switched it off, no moderator
	// of a live lesson deleted or unassigned, no moderator profile for
	// oneself. A school or district reads the responses it submitted, no
	// others.
	mine := `{"submission":{"submitted_by":{"_eq":"X-Hasura-User-Id"}}}`
	for _, f := range []struct{ role, table, kind, want string }{
		{"lesson_admin", "bbb_server", "update", `{"check":{},"filter":{"_or":[{"enabled":{"_eq":true}},{"disabled_by":{"_like":"operator%"}}]}}`},
		{"lesson_admin", "moderator", "delete", `{"check":null,"filter":{"_not":{"groups":{"group":{"lessons":{"ended_at":{"_is_null":true}}}}}}}`},
		{"lesson_admin", "group_moderator", "delete", `{"check":null,"filter":{"_not":{"group":{"lessons":{"ended_at":{"_is_null":true}}}}}}`},
		{"lesson_admin", "moderator", "insert", `{"check":{"user_id":{"_neq":"X-Hasura-User-Id"}},"filter":null}`},
		{"school", "response", "select", `{"check":null,"filter":` + mine + `}`},
		{"district_admin", "response", "select", `{"check":null,"filter":` + mine + `}`},
		{"school", "answer", "select", `{"check":null,"filter":{"response":` + mine + `}}`},
		{"district_admin", "answer", "select", `{"check":null,"filter":{"response":` + mine + `}}`},
		{"school", "response_flag", "select", `{"check":null,"filter":{"response":` + mine + `}}`},
		{"district_admin", "response_flag", "select", `{"check":null,"filter":{"response":` + mine + `}}`},
	} {
		tb := tables[f.table]
		perms := map[string][]metadata.Permission{"select": tb.SelectPermissions, "insert": tb.InsertPermissions,
			"update": tb.UpdatePermissions, "delete": tb.DeletePermissions}[f.kind]
		i := slices.IndexFunc(perms, func(p metadata.Permission) bool { return p.Role == f.role })
		if i < 0 {
			t.Errorf("%s cannot %s %s", f.role, f.kind, f.table)
			continue
		}
		b, err := json.Marshal(map[string]any{"filter": perms[i].Permission.Filter, "check": perms[i].Permission.Check})
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != f.want {
			t.Errorf("%s's %s of %s: %s, want %s", f.role, f.kind, f.table, b, f.want)
		}
	}
}
