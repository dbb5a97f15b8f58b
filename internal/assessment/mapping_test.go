package assessment_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/shala-edu/shala/internal/assessment"
)

// The README documents the mapping format with the Samarth mapping: the
// example must be the built-in one, and both built-ins well formed.
func TestREADMEMappingIsTheBuiltInOne(t *testing.T) {
	t.Parallel()
	for _, m := range assessment.BuiltIn {
		if err := m.Validate(); err != nil {
			t.Errorf("built-in %s: %v", m.Layout, err)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "The Samarth mapping, as JSON")
	if !ok {
		t.Fatal("README: the Samarth mapping example is gone")
	}
	_, block, _ := strings.Cut(after, "```json\n")
	block, _, _ = strings.Cut(block, "```")
	got, err := assessment.ParseMapping([]byte(block))
	if err != nil {
		t.Fatalf("README example: %v", err)
	}
	want, _ := assessment.BuiltInLayout("samarth")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("README example %+v\nbuilt-in %+v", got, want)
	}
}
