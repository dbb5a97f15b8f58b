package certificate

import (
	"bytes"
	"embed"
	"html/template"
	"strings"
	"time"
)

//go:embed templates/*.html
var templates embed.FS

// TemplateFuncs are what pages showing a certificate use: date (a *time.Time
// as DD-MM-YYYY in IST, "—" for none), ptr (a time.Time's address) and
// gender (in English and Hindi).
func TemplateFuncs() template.FuncMap {
	return template.FuncMap{
		"date": func(t *time.Time) string {
			if t == nil {
				return "—"
			}
			return t.In(IST).Format("02-01-2006")
		},
		"ptr":    func(t time.Time) *time.Time { return &t },
		"gender": genderLabel,
	}
}

var document = template.Must(template.New("certificate.html").Funcs(TemplateFuncs()).ParseFS(templates, "templates/certificate.html"))

func genderLabel(g string) string {
	switch g {
	case "MALE":
		return "Male / पुरुष"
	case "FEMALE":
		return "Female / महिला"
	default:
		return "Other / अन्य"
	}
}

// VerifyURL is where a certificate's page is: publicURL/verify/{id}.
func VerifyURL(publicURL, id string) string {
	return strings.TrimRight(publicURL, "/") + "/verify/" + id
}

// Page is a certificate as the PDF renderer takes it: the CSS (A4, fonts
// "Noto Sans" and "Noto Sans Devanagari") and the body's HTML.
type Page struct {
	Style, Body string
}

// Document is the certificate as an A4 page: the snapshot, the QR code
// (vector, 42 mm), the id and the verify URL.
func Document(r *Record, publicURL string) (Page, error) {
	q, err := NewQR(r.Payload)
	if err != nil {
		return Page{}, err
	}
	var style, body bytes.Buffer
	if err := document.ExecuteTemplate(&style, "style", nil); err != nil {
		return Page{}, err
	}
	err = document.ExecuteTemplate(&body, "body", struct {
		*Record
		QR        template.HTML
		VerifyURL string
	}{r, template.HTML(q.SVG()), VerifyURL(publicURL, r.ID.String())})
	return Page{Style: style.String(), Body: body.String()}, err
}
