package forms

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/xform"
)

// Receipt is a data-collection form's receipt SMS (form_receipt): which
// answers hold the respondent's phone and name, which make up the summary,
// and the language of the summary's labels.
type Receipt struct {
	FormID        string
	PhoneField    string
	NameField     string // "" for none
	SummaryFields []string
	Language      string
	// Enabled is whether responses get the receipt; nil on a save keeps
	// the stored value (true for a new receipt).
	Enabled *bool
}

// MaxSummaryFields is how many answers a receipt's summary may name
// (form_receipt.summary_fields).
const MaxSummaryFields = 10

// phoneTypes are the question types a phone number can be answered in: an
// integer question takes at most nine digits in ODK Collect, and a decimal
// may be written with an exponent, so neither holds a 10-digit mobile.
var phoneTypes = []xform.Type{xform.String, xform.Barcode}

// SaveReceipt stores the receipt SMS of a data-collection form, replacing
// the one it had. An enabled receipt is checked against the form's latest
// version: every field it names must be a question outside any repeat (a
// receipt reads one answer per question), the phone one answered as text;
// the language one of the form's translations — empty takes the form's
// default. A receipt naming a field the form does not have would never be
// sent, so it is refused here, naming the field. A disabled receipt is
// stored as given, so one whose questions a new version dropped can be
// switched off.
func (r *Rules) SaveReceipt(ctx context.Context, c *Catalog, in Receipt) (Receipt, error) {
	d, err := c.latestDataCollection(ctx, in.FormID, "receipts")
	if err != nil {
		return Receipt{}, err
	}
	in.PhoneField, in.NameField = strings.TrimSpace(in.PhoneField), strings.TrimSpace(in.NameField)
	in.Language = strings.TrimSpace(in.Language)
	summary := make([]string, 0, len(in.SummaryFields))
	for _, name := range in.SummaryFields {
		summary = append(summary, strings.TrimSpace(name))
	}
	in.SummaryFields = summary
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if in.Enabled == nil {
			enabled := true
			err := tx.QueryRow(ctx, `SELECT enabled FROM form_receipt WHERE form_id = $1 FOR UPDATE`, in.FormID).Scan(&enabled)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			in.Enabled = &enabled
		}
		if *in.Enabled {
			if err := checkReceipt(d.Form, &in); err != nil {
				return err
			}
		} else if in.PhoneField == "" {
			return fault.Invalidf("phoneField", "must not be empty")
		}
		if in.Language == "" {
			in.Language = receiptLanguage(d.Form)
		}
		_, err := tx.Exec(ctx, `INSERT INTO form_receipt (form_id, phone_field, name_field, summary_fields, language, enabled)
			VALUES ($1, $2, nullif($3, ''), $4, $5, $6)
			ON CONFLICT (form_id) DO UPDATE SET phone_field = EXCLUDED.phone_field, name_field = EXCLUDED.name_field,
				summary_fields = EXCLUDED.summary_fields, language = EXCLUDED.language, enabled = EXCLUDED.enabled`,
			in.FormID, in.PhoneField, in.NameField, in.SummaryFields, in.Language, *in.Enabled)
		return err
	})
	r.settings.forget(in.FormID)
	if err != nil {
		return Receipt{}, postgres.Translate(err, "receipt")
	}
	return in, nil
}

// checkReceipt checks that every field in names is a question of f that a
// receipt can read, and the language one of f's.
func checkReceipt(f *xform.Form, in *Receipt) error {
	fields := map[string]*xform.Field{}
	for _, fl := range f.Fields {
		if _, seen := fields[fl.Name]; !seen { // as queueReceipt reads them: the first
			fields[fl.Name] = fl
		}
	}
	question := func(arg, name string) (*xform.Field, error) {
		fl := fields[name]
		switch {
		case fl == nil:
			return nil, fault.Invalidf(arg, "%q is not a question of %s version %s", name, f.ID, f.Version)
		case fl.Repeat != "":
			return nil, fault.Invalidf(arg, "%q is inside the repeat %s: a receipt reads one answer per question", name, fl.Repeat)
		}
		return fl, nil
	}
	phone, err := question("phoneField", in.PhoneField)
	if err != nil {
		return err
	}
	if !slices.Contains(phoneTypes, phone.Type) {
		return fault.Invalidf("phoneField", "%q is a %s question; a 10-digit mobile number is answered as text", in.PhoneField, phone.Type)
	}
	if in.NameField != "" {
		if _, err := question("nameField", in.NameField); err != nil {
			return err
		}
	}
	if len(in.SummaryFields) > MaxSummaryFields {
		return fault.Invalidf("summaryFields", "%d questions; at most %d", len(in.SummaryFields), MaxSummaryFields)
	}
	for i, name := range in.SummaryFields {
		if _, err := question("summaryFields", name); err != nil {
			return err
		}
		if slices.Contains(in.SummaryFields[:i], name) {
			return fault.Invalidf("summaryFields", "%q is named twice", name)
		}
	}
	switch {
	case in.Language == "":
	case len(f.Languages) == 0 && in.Language != "default":
		return fault.Invalidf("language", "%s version %s has no translations: leave it out, or give \"default\"", f.ID, f.Version)
	case len(f.Languages) > 0 && !slices.Contains(f.Languages, in.Language):
		return fault.Invalidf("language", "%q is not a language of %s version %s (%s)", in.Language, f.ID, f.Version, strings.Join(f.Languages, ", "))
	}
	return nil
}

// receiptLanguage is the language of a receipt that names none: the form's
// default translation, or "default" (the labels as written) when it has
// none.
func receiptLanguage(f *xform.Form) string {
	if f.DefaultLanguage != "" {
		return f.DefaultLanguage
	}
	return "default"
}
