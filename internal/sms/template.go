package sms

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Types are the kinds of message, each with its own DLT-registered template.
var Types = []string{"HOLIDAY", "MEETING", "EXAM_ANNOUNCEMENT", "EXAM_RESULT_ANNOUNCEMENT",
	"ANNOUNCEMENT", "HOMEWORK", "SLR", "RECEIPT", "RULE_FLAG", "STUDENT_RESULT"}

// Builtins are placeholders shala fills itself from the recipient and the
// school (and result from the request's assessment, see Summary); every
// other placeholder must come from the request's variables.
var Builtins = []string{"student_name", "class", "school_name", ResultPlaceholder}

// Template is a message template.
type Template struct {
	Type, Language, Body, DLTTemplateID string
}

var placeholder = regexp.MustCompile(`\{([a-z][a-z0-9_]*)\}`)

// Placeholders returns the distinct placeholder names in body, sorted.
func Placeholders(body string) []string {
	var names []string
	for _, m := range placeholder.FindAllStringSubmatch(body, -1) {
		if !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	sort.Strings(names)
	return names
}

// Missing returns the placeholders of t that neither vars nor the builtins
// provide.
func (t Template) Missing(vars map[string]string) []string {
	var missing []string
	for _, p := range Placeholders(t.Body) {
		if slices.Contains(Builtins, p) {
			continue
		}
		if strings.TrimSpace(vars[p]) == "" {
			missing = append(missing, p)
		}
	}
	return missing
}

// Render fills t's placeholders from vars. Values are single-line text:
// newlines and braces are flattened so a value cannot forge another
// placeholder or break the DLT template's shape.
func (t Template) Render(vars map[string]string) (string, error) {
	var missing []string
	out := placeholder.ReplaceAllStringFunc(t.Body, func(m string) string {
		name := m[1 : len(m)-1]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return clean(v)
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("template %s: no value for %s", t.Type, strings.Join(missing, ", "))
	}
	return out, nil
}

// MaxBody is the most characters a message may have (sms_message.body).
const MaxBody = 2000

// MaxListed is how many names (or classes) one message lists; the rest are
// counted ("राम, सीता, गीता और 4 अन्य"). Siblings share a phone, but so do
// students whose records carry a teacher's or a shop's number: listing 150
// names would make a message nobody reads and that no gateway takes.
const MaxListed = 3

// joinListed joins items, at most MaxListed of them, in language lang
// ("hi" or "en").
func joinListed(items []string, lang string) string {
	if len(items) <= MaxListed {
		return strings.Join(items, ", ")
	}
	rest := len(items) - MaxListed
	if lang == "hi" {
		return fmt.Sprintf("%s और %d अन्य", strings.Join(items[:MaxListed], ", "), rest)
	}
	return fmt.Sprintf("%s and %d others", strings.Join(items[:MaxListed], ", "), rest)
}

var flatten = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ", "{", "(", "}", ")")

func clean(v string) string {
	return strings.Join(strings.Fields(flatten.Replace(v)), " ")
}
