package metadata

import "testing"

func TestCheckCron(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"0 3 * * *", "*/5 * * * *", "0,30 8-17/2 1-15 1,6,12 0-6", "59 23 31 12 6"} {
		if err := checkCron(s); err != nil {
			t.Errorf("checkCron(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", "* * * *", "* * * * * *", "@daily", "60 * * * *", "* 24 * * *", "* * 0 * *",
		"* * * 13 *", "* * * * 7", "*/0 * * * *", "5/2 * * * *", "3-1 * * * *", "a * * * *", "* * * JAN *"} {
		if err := checkCron(s); err == nil {
			t.Errorf("checkCron(%q) = nil, want an error", s)
		}
	}
}

// Every shape a key refers to exists: the table in shape.go is the check's
// schema, and a kind misspelt there would check nothing.
func TestShapesReferToShapes(t *testing.T) {
	t.Parallel()
	for name, spec := range shapes {
		for key, f := range parseShape(spec) {
			kind := f.kind
			if len(kind) > 2 && kind[:2] == "[]" {
				kind = kind[2:]
			}
			if _, ok := shapes[kind]; kind != "" && !ok {
				t.Errorf("shape %s: key %s refers to shape %q, which does not exist", name, key, kind)
			}
		}
	}
}
