package hasura_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/shala-edu/shala/hasura"
)

func TestTimeForms(t *testing.T) {
	ist := time.FixedZone("", 5*3600+1800)
	tests := []struct {
		in   string
		want time.Time // zero: refused
	}{
		{"2026-12-01T21:57:34.123456", time.Date(2026, 12, 1, 21, 57, 34, 123456000, time.UTC)},
		{"2026-12-01 21:57:34.5", time.Date(2026, 12, 1, 21, 57, 34, 500000000, time.UTC)},
		{"2026-12-01T21:57:34", time.Date(2026, 12, 1, 21, 57, 34, 0, time.UTC)},
		{"2026-12-01T21:57:34.120001+00:00", time.Date(2026, 12, 1, 21, 57, 34, 120001000, time.UTC)},
		{"2026-12-01T21:57:34Z", time.Date(2026, 12, 1, 21, 57, 34, 0, time.UTC)},
		{"2026-12-01T21:57:34+05:30", time.Date(2026, 12, 1, 21, 57, 34, 0, ist)},
		{"2026-12-01T21:57:34.1-03:00", time.Date(2026, 12, 2, 0, 57, 34, 100000000, time.UTC)},
		{"2026-12-01T1:57:34Z", time.Date(2026, 12, 1, 1, 57, 34, 0, time.UTC)}, // Go reads a one-digit hour
		{"2026-12-01T1:57:34+05:30", time.Date(2026, 12, 1, 1, 57, 34, 0, ist)}, // so "Z" or the zone sits before index 19
		{"2026-12-01", time.Time{}},
		{"2026-12-01T21:57:34+5", time.Time{}},
		{"2026-12-01T21:57:34 junk", time.Time{}},
		{"yesterday", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got hasura.Time
			err := json.Unmarshal([]byte(`"`+tt.in+`"`), &got)
			if tt.want.IsZero() {
				if err == nil {
					t.Fatalf("got %v, want an error", got.Time)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			if !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got.Time, tt.want)
			}
		})
	}
}
