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

var document = template.Must(template.New("certificate.html").Funcs(template.FuncMap{
	"date": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.In(IST).Format("02-01-2006")
	},
	"ptr":    func(t time.Time) *time.Time { return &t },
	"gender": genderLabel,
}).ParseFS(templates, "templates/certificate.html"))

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

// Document is the certificate as an A4 HTML page (for the PDF renderer):
// the snapshot, the QR code (vector, 42 mm), the id and the verify URL.
// fonts is the CSS that declares the fonts it uses (pdf.FontFaces).
func Document(r *Record, publicURL string, fonts template.CSS) (string, error) {
	q, err := NewQR(r.Payload)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	err = document.Execute(&b, struct {
		*Record
		Fonts     template.CSS
		QR        template.HTML
		VerifyURL string
	}{r, fonts, template.HTML(q.SVG()), VerifyURL(publicURL, r.ID.String())})
	return b.String(), err
}
