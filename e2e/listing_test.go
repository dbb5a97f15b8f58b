//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestSchoolSeesOnlyItsOwnProgress: two schools of one district write
// results for the same assessment; through Hasura each school's listing and
// progress (tables, the totals view, the relationships from assessment and
// from its classes, and the schoolAssessments action) show its own rows
// only, and the action's etag answers notModified.
func TestSchoolSeesOnlyItsOwnProgress(t *testing.T) {
	ctx := context.Background()
	var schools struct {
		School []struct {
			ID       string `json:"id"`
			District string `json:"district"`
			Session  string `json:"session"`
		} `json:"school"`
	}
	if err := exec(ctx, admin(), `query { school(limit: 2, order_by: {udise: asc}, where: {district: {_eq: "Shimla"}, session: {_eq: "W"}}) { id district session } }`,
		&schools, nil); err != nil {
		t.Fatal(err)
	}
	if len(schools.School) < 2 {
		t.Skip("needs two Shimla winter schools: run `docker compose exec shala /shala seed --demo` first")
	}
	a, b := schools.School[0].ID, schools.School[1].ID
	tag := fmt.Sprint(time.Now().UnixNano())
	var made struct {
		Sub struct {
			ID string `json:"id"`
		} `json:"insert_form_submission_one"`
	}
	if err := exec(ctx, admin(), `mutation($i: String!) { insert_form_submission_one(object: {xml: "<assessment/>", instance_id: $i,
		status: "accepted", source: "action"}) { id } }`, &made, map[string]any{"i": "uuid:e2e-" + tag}); err != nil {
		t.Fatal(err)
	}
	var asmt struct {
		A struct {
			ID string `json:"id"`
		} `json:"insert_assessment_one"`
	}
	err := exec(ctx, admin(), `mutation($s: uuid!, $i: String!, $due: timestamptz!) { insert_assessment_one(object: {submission_id: $s,
		builder_instance_id: $i, name: "e2e listing", type: "FA1", academic_year: "2026-27", unit_type: "NONE", evaluation: "MARKS",
		outcome: "TSP", total_marks: 100, pass_percent: 33,
		deadlines: {data: [{district: "Shimla", session: "W", due_at: $due}]}, subjects: {data: [{grade: 6, subject: "MATHEMATICS"}]}}) { id } }`,
		&asmt, map[string]any{"s": made.Sub.ID, "i": "uuid:e2e-" + tag, "due": time.Now().Add(30 * 24 * time.Hour).Format(time.RFC3339)})
	if err != nil {
		t.Fatal(err)
	}
	for i, school := range []string{a, b} {
		var st struct {
			S struct {
				ID string `json:"id"`
			} `json:"insert_student_one"`
		}
		if err := exec(ctx, admin(), `mutation($school: uuid!) { insert_student_one(object: {school_id: $school, name: "ई२ई", gender: "FEMALE",
			grade: 6, section: "A"}) { id } }`, &st, map[string]any{"school": school}); err != nil {
			t.Fatal(err)
		}
		var res struct {
			R struct {
				ID string `json:"id"`
			} `json:"insert_assessment_result_one"`
		}
		c := as(t, "school", map[string]string{"x-hasura-user-id": "e2e-teacher", "x-hasura-school-id": school})
		if err := exec(ctx, c, `mutation($a: uuid!, $s: uuid!, $m: numeric!) { insert_assessment_result_one(object: {assessment_id: $a,
			student_id: $s, subject: "MATHEMATICS", present: true, marks: $m}) { id } }`, &res,
			map[string]any{"a": asmt.A.ID, "s": st.S.ID, "m": 50 + i}); err != nil {
			t.Fatal(err)
		}
	}

	c := as(t, "school", map[string]string{"x-hasura-user-id": "e2e-teacher", "x-hasura-school-id": a})
	var seen struct {
		Assessment []struct {
			Progress []struct {
				SchoolID string `json:"school_id"`
			} `json:"progress"`
			SchoolProgress []struct {
				SchoolID string `json:"school_id"`
				Students int    `json:"students"`
			} `json:"school_progress"`
		} `json:"assessment"`
		AssessmentProgress []struct {
			SchoolID string `json:"school_id"`
		} `json:"assessment_progress"`
		SchoolClass []struct {
			SchoolID string `json:"school_id"`
			Results  []struct {
				SchoolID string `json:"school_id"`
			} `json:"results"`
		} `json:"school_class"`
	}
	if err := exec(ctx, c, `query($a: uuid!) {
		assessment(where: {id: {_eq: $a}}) { progress { school_id } school_progress { school_id students } }
		assessment_progress(where: {assessment_id: {_eq: $a}}) { school_id }
		school_class { school_id results(where: {assessment_id: {_eq: $a}}) { school_id } }
	}`, &seen, map[string]any{"a": asmt.A.ID}); err != nil {
		t.Fatal(err)
	}
	if len(seen.Assessment) != 1 || len(seen.AssessmentProgress) == 0 || len(seen.SchoolClass) == 0 {
		t.Fatalf("school A sees %+v, want its assessment, progress and classes", seen)
	}
	ids := []string{}
	for _, p := range seen.Assessment[0].Progress {
		ids = append(ids, p.SchoolID)
	}
	for _, p := range seen.Assessment[0].SchoolProgress {
		ids = append(ids, p.SchoolID)
	}
	for _, p := range seen.AssessmentProgress {
		ids = append(ids, p.SchoolID)
	}
	for _, sc := range seen.SchoolClass {
		ids = append(ids, sc.SchoolID)
		for _, r := range sc.Results {
			ids = append(ids, r.SchoolID)
		}
	}
	for _, id := range ids {
		if id != a {
			t.Fatalf("school A saw a row of school %s", id)
		}
	}

	var listing struct {
		L struct {
			Etag        string `json:"etag"`
			NotModified bool   `json:"notModified"`
			Assessments []struct {
				ID string `json:"id"`
			} `json:"assessments"`
		} `json:"schoolAssessments"`
	}
	if err := exec(ctx, c, `query { schoolAssessments { etag notModified assessments { id totals { students } } } }`, &listing, nil); err != nil {
		t.Fatal(err)
	}
	if listing.L.Etag == "" || listing.L.NotModified || len(listing.L.Assessments) == 0 {
		t.Fatalf("listing %+v", listing.L)
	}
	etag := listing.L.Etag
	if err := exec(ctx, c, `query($e: String) { schoolAssessments(ifNoneMatch: $e) { etag notModified assessments { id } } }`, &listing,
		map[string]any{"e": etag}); err != nil {
		t.Fatal(err)
	}
	if !listing.L.NotModified || listing.L.Etag != etag || len(listing.L.Assessments) != 0 {
		t.Errorf("with its etag: %+v, want notModified", listing.L)
	}
}
