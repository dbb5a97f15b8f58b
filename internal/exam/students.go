package exam

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaxStudentsPerCall caps one createExamStudents call.
const MaxStudentsPerCall = 2000

// StudentInput is one student to create.
type StudentInput struct {
	Nickname  string
	FirstName string
	LastName  string
	Email     string
}

// RowError names what is wrong with one input row: its index (0-based, in
// students or among the CSV's data rows) and field.
type RowError struct {
	Index   int    `json:"index"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

var nicknamePattern = regexp.MustCompile(`^[A-Za-z0-9]{1,12}$`)

// normalize trims the row and lower-cases the e-mail address.
func (s StudentInput) normalize() StudentInput {
	return StudentInput{
		Nickname:  strings.TrimSpace(s.Nickname),
		FirstName: strings.TrimSpace(s.FirstName),
		LastName:  strings.TrimSpace(s.LastName),
		Email:     strings.ToLower(strings.TrimSpace(s.Email)),
	}
}

// validateStudents normalises rows and returns every problem, by index and
// field, including an e-mail address given twice.
func validateStudents(rows []StudentInput) ([]StudentInput, []RowError) {
	var errs []RowError
	out := make([]StudentInput, len(rows))
	seen := map[string]int{}
	add := func(i int, field, format string, args ...any) {
		errs = append(errs, RowError{Index: i, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)})
	}
	for i, r := range rows {
		r = r.normalize()
		out[i] = r
		if !nicknamePattern.MatchString(r.Nickname) {
			add(i, "nickname", "must be 1–12 letters A–Z or digits, got %q", r.Nickname)
		}
		for _, f := range []struct{ name, v string }{{"firstName", r.FirstName}, {"lastName", r.LastName}} {
			if n := utf8.RuneCountInString(f.v); n == 0 || n > 100 || !utf8.ValidString(f.v) {
				add(i, f.name, "must be 1–100 characters")
			}
		}
		if a, err := mail.ParseAddress(r.Email); err != nil || a.Address != r.Email || a.Name != "" || len(r.Email) > 254 {
			add(i, "email", "is not an e-mail address: %q", r.Email)
		} else if j, dup := seen[r.Email]; dup {
			add(i, "email", "%s is also given in row %d", r.Email, j)
		} else {
			seen[r.Email] = i
		}
	}
	return out, errs
}

// csvColumns maps normalised header names to fields.
var csvColumns = map[string]string{
	"nickname": "nickname", "nick": "nickname",
	"firstname": "firstName", "givenname": "firstName",
	"lastname": "lastName", "surname": "lastName", "familyname": "lastName",
	"email": "email", "emailaddress": "email", "mail": "email",
}

// ParseCSV reads students from CSV text with a header row naming the
// columns nickname, firstName, lastName, email (any case; "first_name",
// "First name" and "e-mail" work too), separated by commas or — as
// spreadsheets in many locales write — semicolons. It returns the rows and
// the line each came from (for messages); errors name the data row's index
// and the field.
func ParseCSV(text string) ([]StudentInput, []int, []RowError) {
	text = strings.TrimPrefix(text, "\ufeff")
	if !utf8.ValidString(text) {
		return nil, nil, []RowError{{Index: 0, Field: "csv", Message: "csv: is not UTF-8 text (save the sheet as CSV UTF-8)"}}
	}
	r := csv.NewReader(strings.NewReader(text))
	first, _, _ := strings.Cut(text, "\n")
	if strings.Count(first, ";") > strings.Count(first, ",") {
		r.Comma = ';'
	}
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, nil, []RowError{{Index: 0, Field: "csv", Message: "csv: no header row (nickname, firstName, lastName, email)"}}
	}
	col := map[string]int{}
	for i, h := range header {
		key := strings.Map(func(c rune) rune {
			if c == ' ' || c == '_' || c == '-' {
				return -1
			}
			return c
		}, strings.ToLower(strings.TrimSpace(h)))
		if f, ok := csvColumns[key]; ok {
			col[f] = i
		}
	}
	var missing []string
	for _, f := range []string{"nickname", "firstName", "lastName", "email"} {
		if _, ok := col[f]; !ok {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return nil, nil, []RowError{{Index: 0, Field: "csv", Message: "csv: the header lacks " + strings.Join(missing, ", ")}}
	}
	var rows []StudentInput
	var lines []int
	var errs []RowError
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			errs = append(errs, RowError{Index: len(rows), Field: "csv", Message: fmt.Sprintf("csv: line %d: %v", line, err)})
			break
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		get := func(f string) string {
			if i := col[f]; i < len(rec) {
				return rec[i]
			}
			return ""
		}
		rows = append(rows, StudentInput{Nickname: get("nickname"), FirstName: get("firstName"), LastName: get("lastName"), Email: get("email")})
		lines = append(lines, line)
		if len(rows) > MaxStudentsPerCall {
			return nil, nil, []RowError{{Index: MaxStudentsPerCall, Field: "csv", Message: fmt.Sprintf("csv: more than %d students; split the file", MaxStudentsPerCall)}}
		}
	}
	return rows, lines, errs
}

// onLines adds the CSV line to each row error's message.
func onLines(errs []RowError, lines []int) []RowError {
	for i, e := range errs {
		if e.Index < len(lines) && e.Field != "csv" {
			errs[i].Message = fmt.Sprintf("csv line %d: %s", lines[e.Index], e.Message)
		}
	}
	return errs
}
