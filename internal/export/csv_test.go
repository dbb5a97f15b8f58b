package export_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/fault"
)

func TestNeutralise(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"=1+1", "'=1+1"},
		{"+91 98765 43210", "'+91 98765 43210"},
		{"-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"},
		{"-5", "'-5"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=1", "'\t=1"},
		{"\rx", "'\rx"},
		{"  =1+1", "'  =1+1"},
		{"\n@x", "'\n@x"},
		{"", ""},
		{"आरव", "आरव"},
		{"a=b", "a=b"},
		{"'=1", "'=1"},
		{"  plain", "  plain"},
		// Blanks and invisible characters some programs skip, then a
		// trigger; and the full-width forms of the triggers.
		{"\u00a0=1+1", "'\u00a0=1+1"},
		{"\u3000@SUM(A1)", "'\u3000@SUM(A1)"},
		{"\u200b=1+1", "'\u200b=1+1"},
		{"\ufeff=1+1", "'\ufeff=1+1"},
		{"\u2028+1", "'\u2028+1"},
		{"＝1+1", "'＝1+1"},
		{"＋91", "'＋91"},
		{"－5", "'－5"},
		{"＠SUM(A1)", "'＠SUM(A1)"},
		{"\u00a0plain", "\u00a0plain"},
		{"\u200b", "\u200b"},
	}
	for _, tt := range tests {
		if got := export.Neutralise(tt.in); got != tt.want {
			t.Errorf("Neutralise(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// splitOutsideQuotes splits line at sep where it is not inside a
// double-quoted field, as a spreadsheet program importing with sep does.
func splitOutsideQuotes(line string, sep rune) []string {
	var out []string
	quoted, from := false, 0
	for i, r := range line {
		switch {
		case r == '"':
			quoted = !quoted
		case r == sep && !quoted:
			out = append(out, line[from:i])
			from = i + 1
		}
	}
	return append(out, line[from:])
}

// readCSV checks the BOM and parses the rest.
func readCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	rest, ok := bytes.CutPrefix(b, []byte("\xEF\xBB\xBF"))
	if !ok {
		t.Fatalf("no UTF-8 BOM at the start: %q", b[:min(len(b), 10)])
	}
	if !bytes.Contains(rest, []byte("\r\n")) {
		t.Errorf("want CRLF line ends")
	}
	recs, err := csv.NewReader(bytes.NewReader(rest)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestCSV(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("one row per response, every cell and the header neutralised, columns never collide", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		r1 := f.respond("1", a("name", "=cmd|' /C calc'!A0"), a("age", "-5"), a("income", "1500.50"), a("water", "tap"),
			choice("sources", 0, "farm"), choice("sources", 1, "wages"), a("formula", "@SUM(A1)"),
			rep("member_name", "1", "+Asha"), rep("member_name", "2", "Ravi"))
		r2 := f.respond("1", a("name", "आरव"), a("formula", "\tx"))
		var buf bytes.Buffer
		n, err := export.WriteCSV(ctx, f.pool, f.langs, &buf, formID, export.CSVOptions{PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		recs := readCSV(t, buf.Bytes())
		if n != 2 || len(recs) != 3 {
			t.Fatalf("rows: got %d (%d records), want 2 and a header", n, len(recs))
		}
		wantHeader := []string{"KEY", "SubmissionDate", "FormVersion", "Name", "Age", "Monthly income", "Water source",
			"Income sources", `'=HYPERLINK("x")`, "Name (member_name)", "Member age", "instanceID"}
		if !slices.Equal(recs[0], wantHeader) {
			t.Errorf("header:\n got %q\nwant %q", recs[0], wantHeader)
		}
		want1 := []string{r1.String(), recs[1][1], "1", "'=cmd|' /C calc'!A0", "'-5", "1500.50", "tap", "farm wages",
			"'@SUM(A1)", "1: +Asha\n2: Ravi", "", ""}
		if !slices.Equal(recs[1], want1) {
			t.Errorf("row 1:\n got %q\nwant %q", recs[1], want1)
		}
		if recs[2][0] != r2.String() || recs[2][3] != "आरव" || recs[2][8] != "'\tx" {
			t.Errorf("row 2: got %q", recs[2])
		}
	})

	t.Run("every field is quoted, so a program splitting on ';' finds no formula either", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.respond("1", a("name", "Asha;=1+2"), a("formula", "x;@SUM(A1)"), a("water", "tap"),
			choice("sources", 0, "farm"), choice("sources", 1, "wages"))
		var buf bytes.Buffer
		if _, err := export.WriteCSV(ctx, f.pool, f.langs, &buf, formID, export.CSVOptions{ChoiceLabels: true}); err != nil {
			t.Fatal(err)
		}
		recs := readCSV(t, buf.Bytes())
		if len(recs) != 2 || recs[1][3] != "Asha;=1+2" || recs[1][7] != "Farming; Daily wages" {
			t.Fatalf("read as CSV: got %q", recs)
		}
		// Excel where the list separator is ';' (most of Europe) splits
		// lines on ';' outside double quotes.
		for i, line := range strings.Split(strings.TrimPrefix(buf.String(), "\uFEFF"), "\r\n") {
			for _, cell := range splitOutsideQuotes(line, ';') {
				if c := strings.TrimPrefix(cell, `"`); c != "" && strings.ContainsRune("=+-@", rune(c[0])) {
					t.Errorf("line %d split on ';': cell %q starts a formula", i+1, cell)
				}
			}
		}
	})

	t.Run("choice labels, and since", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.respond("1", a("water", "spring"))
		var cut time.Time
		if err := f.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&cut); err != nil {
			t.Fatal(err)
		}
		r2 := f.respond("1", a("water", "tap"), choice("sources", 0, "farm"), choice("sources", 1, "wages"))
		var buf bytes.Buffer
		if _, err := export.WriteCSV(ctx, f.pool, f.langs, &buf, formID, export.CSVOptions{Since: &cut, ChoiceLabels: true}); err != nil {
			t.Fatal(err)
		}
		recs := readCSV(t, buf.Bytes())
		if len(recs) != 2 || recs[1][0] != r2.String() || recs[1][6] != "Tap" || recs[1][7] != "Farming; Daily wages" {
			t.Errorf("got %q, want only the later response, choices by label", recs)
		}
	})

	t.Run("an unknown form is NOT_FOUND and nothing is written", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		var buf bytes.Buffer
		_, err := export.WriteCSV(ctx, f.pool, f.langs, &buf, "no_such_form", export.CSVOptions{})
		if fault.KindOf(err) != fault.NotFound || buf.Len() != 0 {
			t.Errorf("got %v and %d bytes, want NOT_FOUND and nothing", err, buf.Len())
		}
	})
}

func TestLinks(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	l := export.NewLinks(export.DeriveKey("a webhook secret of some length"), "https://shala.example/")
	since := time.Date(2026, 11, 1, 0, 0, 0, 0, time.FixedZone("IST", 19800))
	link, exp := l.Sign("village_survey", &since, now)
	if !exp.Equal(now.Add(export.LinkTTL)) {
		t.Errorf("expires: got %v, want %v", exp, now.Add(export.LinkTTL))
	}
	u, err := url.Parse(link)
	if err != nil || u.Path != "/exports/village_survey.csv" || u.Host != "shala.example" {
		t.Fatalf("link %q: %v", link, err)
	}
	got, err := l.Verify("village_survey", u.Query(), now.Add(time.Minute))
	if err != nil || got == nil || !got.Equal(since) {
		t.Errorf("verify: got %v, %v; want since %v", got, err, since)
	}
	tamper := func(k, v string) url.Values {
		q := u.Query()
		q.Set(k, v)
		return q
	}
	for name, tt := range map[string]struct {
		form string
		q    url.Values
		at   time.Time
		code fault.Code
	}{
		"other form":      {"other_form", u.Query(), now, export.CodeBadSignature},
		"earlier since":   {"village_survey", tamper("since", "2020-01-01T00:00:00Z"), now, export.CodeBadSignature},
		"later expiry":    {"village_survey", tamper("expires", "9999999999"), now, export.CodeBadSignature},
		"no signature":    {"village_survey", tamper("sig", ""), now, export.CodeBadSignature},
		"expired":         {"village_survey", u.Query(), exp, export.CodeLinkExpired},
		"another key":     {"village_survey", u.Query(), now, export.CodeBadSignature},
		"since dropped":   {"village_survey", func() url.Values { q := u.Query(); q.Del("since"); return q }(), now, export.CodeBadSignature},
		"garbage expires": {"village_survey", tamper("expires", "soon"), now, export.CodeBadSignature},
	} {
		v := l
		if name == "another key" {
			v = export.NewLinks(export.DeriveKey("another secret"), "https://shala.example")
		}
		if _, err := v.Verify(tt.form, tt.q, tt.at); fault.As(err).Code != tt.code {
			t.Errorf("%s: got %v, want %s", name, err, tt.code)
		}
	}
	if link, _ := l.Sign("village_survey", nil, now); strings.Contains(link, "since=") {
		t.Errorf("link without since: got %q", link)
	}
}
