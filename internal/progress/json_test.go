package progress_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/progress"
)

// plain is Listing without its MarshalJSON: what encoding/json makes of it.
type plain progress.Listing

func TestAppendJSONIsWhatEncodingJSONWrites(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.mustResult(w.x, w.a, w.s1, "MATHEMATICS", &w.theory, true, 40, nil)
	w.exec(`INSERT INTO assessment_class (assessment_id, school_id, grade, section, final) VALUES ($1, $2, 6, 'B', true)`, w.x, w.a)
	real, err := w.store.Listing(w.ctx, w.a)
	if err != nil {
		t.Fatal(err)
	}
	ist := time.FixedZone("IST", 5*3600+1800)
	odd := progress.Listing{ETag: `a"b\c`, Assessments: []progress.Assessment{
		{ID: uuid.New(), Name: "SA-1 <गणित> & \"हिंदी\"\n\u2028 – ₹", TotalMarks: ptr(33.5), PassPercent: ptr(1e-7),
			DueAt: time.Date(2026, 12, 15, 17, 30, 0, 123456789, ist), Subjects: []progress.Subject{{Subject: "HINDI", Enrolled: 3}},
			Classes: []progress.Class{{Grade: 6, Section: "A", Subjects: nil}, {Grade: 7, Section: "B", Final: true,
				Subjects: []progress.Counted{{Subject: "EVS", Counts: progress.Counts{Students: 1, Present: 1, TSPCleared: 2}}}}}},
		{Name: "nothing", TotalMarks: ptr(1e22), PassPercent: ptr(0.0)},
	}}
	for name, l := range map[string]*progress.Listing{"a school's listing": real, "odd values": &odd,
		"not modified": {ETag: "x", NotModified: true, Assessments: []progress.Assessment{}}, "nil lists": {}} {
		want, err := json.Marshal(plain(*l))
		if err != nil {
			t.Fatal(err)
		}
		if got := l.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
		if got, err := json.Marshal(l); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s through MarshalJSON: %v\n got %s\nwant %s", name, err, got, want)
		}
	}
}
