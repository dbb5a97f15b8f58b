package export

import "testing"

// firstChange is where row 1 must be written from: the first label that
// differs from what was written, the first new column, or the start when
// what was written is not known.
func TestFirstChange(t *testing.T) {
	t.Parallel()
	header := []string{"KEY", "SubmissionDate", "FormVersion", "Name", "Income per month", "Remarks"}
	for _, tt := range []struct {
		name    string
		written []string
		n       int
		want    int
	}{
		{"nothing written yet", nil, 0, 0},
		{"written and unchanged", header, 6, 6},
		{"new columns after the written ones", header[:4], 4, 4},
		{"a renamed label", []string{"KEY", "SubmissionDate", "FormVersion", "Name", "Monthly income", "Remarks"}, 6, 4},
		{"a rename and a new column", []string{"KEY", "SubmissionDate", "FormVersion", "Name", "Monthly income"}, 5, 4},
		{"written before the labels were kept", nil, 6, 0},
		{"labels kept for fewer cells than written", header[:3], 6, 0},
	} {
		if got := firstChange(header, tt.written, tt.n); got != tt.want {
			t.Errorf("%s: firstChange = %d, want %d", tt.name, got, tt.want)
		}
	}
}
