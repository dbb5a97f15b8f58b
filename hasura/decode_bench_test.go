package hasura_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shala-edu/shala/hasura"
)

// BenchmarkDecodeEvent decodes an INSERT event as Hasura v2 sends it (the
// fixture), the work every event delivery does before it reaches the inbox.
func BenchmarkDecodeEvent(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "event_insert_latest.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hasura.DecodeEvent[orderRow](body); err != nil {
			b.Fatal(err)
		}
	}
}
