package forms

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/assessment"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/xform"
)

// formIDPattern is what a form id may be (the form table's check).
var formIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

// SavedMapping is what saveBuilderMapping stored.
type SavedMapping struct {
	FormID, Layout string
	// CheckedAgainst is the registered version the mapping was checked
	// against ("" when the form is not registered yet: it is checked when
	// it is).
	CheckedAgainst *string
}

// SaveMapping stores mapping (JSON, the README's builder mapping format)
// as form formID's builder layout: registering a version of the form tries
// it before the built-in layouts. Versions already registered keep the
// mapping they were registered with. The mapping must be well formed, not
// take a built-in layout's name, and — when the form is registered — fit
// its latest version; each problem is named.
func (c *Catalog) SaveMapping(ctx context.Context, formID string, mapping []byte, by string) (*SavedMapping, error) {
	if !formIDPattern.MatchString(formID) {
		return nil, fault.Invalidf("formId", "%q is not a form id", formID)
	}
	m, err := assessment.ParseMapping(mapping)
	if err != nil {
		return nil, fault.Invalidf("mapping", "%v", err)
	}
	if _, builtIn := assessment.BuiltInLayout(m.Layout); builtIn {
		return nil, fault.Invalidf("mapping", "layout %q is built in: give yours another name", m.Layout)
	}
	canonical, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out := &SavedMapping{FormID: formID, Layout: m.Layout}
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var purpose, version, definition string
		err := tx.QueryRow(ctx, `SELECT f.purpose, v.version, v.xform FROM form f JOIN form_version v ON v.form_id = f.id
			WHERE f.id = $1 ORDER BY v.registered_at DESC LIMIT 1 FOR SHARE OF f`, formID).Scan(&purpose, &version, &definition)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// Not registered yet: checked against the definition when it is.
		case err != nil:
			return err
		case purpose != AssessmentBuilder:
			return fault.Invalidf("formId", "%s is a %s form, not an assessment builder", formID, purpose)
		default:
			f, err := xform.ParseDefinition([]byte(definition))
			if err != nil {
				return err
			}
			if _, problems, _ := assessment.Fit(m, f); len(problems) > 0 {
				return fault.Invalidf("mapping", "does not fit %s version %s: %s", formID, version, strings.Join(problems, "; "))
			}
			out.CheckedAgainst = &version
		}
		_, err = tx.Exec(ctx, `INSERT INTO builder_mapping (form_id, layout, mapping, saved_by) VALUES ($1, $2, $3, nullif($4, ''))
			ON CONFLICT (form_id) DO UPDATE SET layout = EXCLUDED.layout, mapping = EXCLUDED.mapping, saved_by = EXCLUDED.saved_by`,
			formID, m.Layout, canonical, by)
		return err
	})
	if err != nil {
		return nil, postgres.Translate(err, "builder mapping")
	}
	return out, nil
}
