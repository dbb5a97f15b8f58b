package forms

import (
	"context"
	"slices"
	"strings"

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
	Enabled       bool
}

// MaxSummaryFields is how many answers a receipt's summary may name
// (form_receipt.summary_fields).
const MaxSummaryFields = 10

// phoneTypes are the question types a phone number can be answered in.
var phoneTypes = []xform.Type{xform.String, xform.Int, xform.Decimal, xform.Barcode}

// SaveReceipt stores the receipt SMS of a data-collection form, replacing
// the one it had. Every field it names must be a question of the form's
// latest version outside any repeat (a receipt reads one answer per
// question), the phone a question answered in text or digits; the
// language one of the form's translations — empty takes the form's
// default. A receipt naming a field the form does not have would never be
// sent, so it is refused here, naming the field.
func (r *Rules) SaveReceipt(ctx context.Context, c *Catalog, in Receipt) (Receipt, error) {
	d, err := c.latestDataCollection(ctx, in.FormID, "receipts")
	if err != nil {
		return Receipt{}, err
	}
	f := d.Form
	fields := map[string]*xform.Field{}
	for _, fl := range f.Fields {
		fields[fl.Name] = fl
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
	in.PhoneField, in.NameField = strings.TrimSpace(in.PhoneField), strings.TrimSpace(in.NameField)
	phone, err := question("phoneField", in.PhoneField)
	if err != nil {
		return Receipt{}, err
	}
	if !slices.Contains(phoneTypes, phone.Type) {
		return Receipt{}, fault.Invalidf("phoneField", "%q is a %s question; a phone number is answered as text or digits", in.PhoneField, phone.Type)
	}
	if in.NameField != "" {
		if _, err := question("nameField", in.NameField); err != nil {
			return Receipt{}, err
		}
	}
	if len(in.SummaryFields) > MaxSummaryFields {
		return Receipt{}, fault.Invalidf("summaryFields", "%d questions; at most %d", len(in.SummaryFields), MaxSummaryFields)
	}
	summary := make([]string, 0, len(in.SummaryFields))
	for _, name := range in.SummaryFields {
		name = strings.TrimSpace(name)
		if _, err := question("summaryFields", name); err != nil {
			return Receipt{}, err
		}
		if slices.Contains(summary, name) {
			return Receipt{}, fault.Invalidf("summaryFields", "%q is named twice", name)
		}
		summary = append(summary, name)
	}
	in.SummaryFields = summary
	switch lang := strings.TrimSpace(in.Language); {
	case lang == "" && f.DefaultLanguage != "":
		in.Language = f.DefaultLanguage
	case lang == "" && len(f.Languages) > 0:
		in.Language = f.Languages[0]
	case lang == "":
		in.Language = "default" // no translations: the labels as written
	case len(f.Languages) > 0 && !slices.Contains(f.Languages, lang):
		return Receipt{}, fault.Invalidf("language", "%q is not a language of %s version %s (%s)", lang, f.ID, f.Version, strings.Join(f.Languages, ", "))
	default:
		in.Language = lang
	}
	_, err = c.pool.Exec(ctx, `INSERT INTO form_receipt (form_id, phone_field, name_field, summary_fields, language, enabled)
		VALUES ($1, $2, nullif($3, ''), $4, $5, $6)
		ON CONFLICT (form_id) DO UPDATE SET phone_field = EXCLUDED.phone_field, name_field = EXCLUDED.name_field,
			summary_fields = EXCLUDED.summary_fields, language = EXCLUDED.language, enabled = EXCLUDED.enabled`,
		in.FormID, in.PhoneField, in.NameField, in.SummaryFields, in.Language, in.Enabled)
	r.settings.forget(in.FormID)
	if err != nil {
		return Receipt{}, postgres.Translate(err, "receipt")
	}
	return in, nil
}
