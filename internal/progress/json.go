package progress

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// AppendJSON appends l as JSON: byte for byte what encoding/json makes of
// it (a test holds it to that), without reflection — the listing is the
// hot path and its encoding was most of its cost.
func (l *Listing) AppendJSON(b []byte) []byte {
	b = append(b, `{"etag":`...)
	b = appendString(b, l.ETag)
	b = append(b, `,"notModified":`...)
	b = strconv.AppendBool(b, l.NotModified)
	b = append(b, `,"assessments":`...)
	if l.Assessments == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i := range l.Assessments {
		if i > 0 {
			b = append(b, ',')
		}
		b = l.Assessments[i].appendJSON(b)
	}
	return append(b, "]}"...)
}

// MarshalJSON is AppendJSON for encoding/json (the action's answer).
func (l Listing) MarshalJSON() ([]byte, error) { return l.AppendJSON(make([]byte, 0, 4096)), nil }

func (a *Assessment) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendUUID(b, a.ID)
	b = append(b, `,"name":`...)
	b = appendString(b, a.Name)
	b = append(b, `,"type":`...)
	b = appendString(b, a.Type)
	b = append(b, `,"academicYear":`...)
	b = appendString(b, a.AcademicYear)
	b = append(b, `,"unitType":`...)
	b = appendString(b, a.UnitType)
	b = append(b, `,"evaluation":`...)
	b = appendString(b, a.Evaluation)
	b = append(b, `,"outcome":`...)
	b = appendString(b, a.Outcome)
	b = append(b, `,"totalMarks":`...)
	b = appendFloat(b, a.TotalMarks)
	b = append(b, `,"passPercent":`...)
	b = appendFloat(b, a.PassPercent)
	b = append(b, `,"dueAt":`...)
	b = appendTime(b, a.DueAt)
	b = append(b, `,"totals":{"classes":`...)
	b = strconv.AppendInt(b, int64(a.Totals.Classes), 10)
	b = append(b, `,"finalClasses":`...)
	b = strconv.AppendInt(b, int64(a.Totals.FinalClasses), 10)
	b = append(b, `,"enrolled":`...)
	b = strconv.AppendInt(b, int64(a.Totals.Enrolled), 10)
	b = a.Totals.Counts.appendFields(b)
	b = append(b, `},"subjects":`...)
	if a.Subjects == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, s := range a.Subjects {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"subject":`...)
			b = appendString(b, s.Subject)
			b = append(b, `,"enrolled":`...)
			b = strconv.AppendInt(b, int64(s.Enrolled), 10)
			b = append(b, `,"students":`...)
			b = strconv.AppendInt(b, int64(s.Students), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"classes":`...)
	if a.Classes == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i := range a.Classes {
		c := &a.Classes[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"grade":`...)
		b = strconv.AppendInt(b, int64(c.Grade), 10)
		b = append(b, `,"section":`...)
		b = appendString(b, c.Section)
		b = append(b, `,"enrolled":`...)
		b = strconv.AppendInt(b, int64(c.Enrolled), 10)
		b = append(b, `,"final":`...)
		b = strconv.AppendBool(b, c.Final)
		b = append(b, `,"subjects":`...)
		if c.Subjects == nil {
			b = append(b, "null}"...)
			continue
		}
		b = append(b, '[')
		for j := range c.Subjects {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"subject":`...)
			b = appendString(b, c.Subjects[j].Subject)
			b = c.Subjects[j].Counts.appendFields(b)
			b = append(b, `,"tspUnitsExpected":`...)
			if n := c.Subjects[j].TSPUnitsExpected; n == nil {
				b = append(b, "null"...)
			} else {
				b = strconv.AppendInt(b, int64(*n), 10)
			}
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}"...)
}

// appendFields appends the counts as fields of an object already open.
func (c *Counts) appendFields(b []byte) []byte {
	b = append(b, `,"students":`...)
	b = strconv.AppendInt(b, int64(c.Students), 10)
	b = append(b, `,"present":`...)
	b = strconv.AppendInt(b, int64(c.Present), 10)
	b = append(b, `,"absent":`...)
	b = strconv.AppendInt(b, int64(c.Absent), 10)
	b = append(b, `,"scored":`...)
	b = strconv.AppendInt(b, int64(c.Scored), 10)
	b = append(b, `,"passed":`...)
	b = strconv.AppendInt(b, int64(c.Passed), 10)
	b = append(b, `,"tspUnits":`...)
	b = strconv.AppendInt(b, int64(c.TSPUnits), 10)
	b = append(b, `,"tspPresent":`...)
	b = strconv.AppendInt(b, int64(c.TSPPresent), 10)
	b = append(b, `,"tspCleared":`...)
	return strconv.AppendInt(b, int64(c.TSPCleared), 10)
}

func appendUUID(b []byte, u uuid.UUID) []byte {
	var s [38]byte
	s[0], s[37] = '"', '"'
	hex.Encode(s[1:9], u[0:4])
	s[9] = '-'
	hex.Encode(s[10:14], u[4:6])
	s[14] = '-'
	hex.Encode(s[15:19], u[6:8])
	s[19] = '-'
	hex.Encode(s[20:24], u[8:10])
	s[24] = '-'
	hex.Encode(s[25:37], u[10:16])
	return append(b, s[:]...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendFloat writes f as encoding/json does for the values listings hold
// (ordinary magnitudes); anything else goes through encoding/json.
func appendFloat(b []byte, f *float64) []byte {
	if f == nil {
		return append(b, "null"...)
	}
	if math.IsNaN(*f) || math.IsInf(*f, 0) {
		return append(b, "null"...) // numeric 'NaN' in the database: no number to show
	}
	if abs := math.Abs(*f); abs == 0 || (abs >= 1e-6 && abs < 1e21) {
		return strconv.AppendFloat(b, *f, 'f', -1, 64)
	}
	return appendMarshalled(b, *f)
}

// appendString writes s as a JSON string. Text needing no escape (the
// listings' names, Devanagari included) is copied; the rest goes through
// encoding/json, so escapes stay exactly its own.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c == 0xE2 {
			return appendMarshalled(b, s) // 0xE2 starts U+2028/U+2029, which encoding/json escapes
		}
	}
	if !utf8.ValidString(s) {
		return appendMarshalled(b, s)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendMarshalled(b []byte, v any) []byte {
	m, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings and finite floats always marshal
	}
	return append(b, m...)
}
