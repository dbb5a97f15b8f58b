package metadata

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// shapes lists, for each kind of object in metadata/, the keys Hasura v2
// reads from it. Hasura ignores any other key without a word, so a typo
// (allow_aggregation, enable_manaul) silently does nothing: here it is an
// error. "!key" is a key Hasura requires; "key=kind" checks the value as an
// object of that kind, "key=[]kind" as a list of them; other values are
// checked elsewhere or not at all. Names follow Hasura's own (v2.4x,
// metadata v3).
var shapes = map[string]string{
	"version":             "!version",
	"source":              "!name !kind !configuration tables=[]table functions=[]function customization logical_models native_queries stored_procedures health_check query_tags",
	"table":               "!table configuration is_enum logical_model apollo_federation_config computed_fields remote_relationships object_relationships=[]relationship array_relationships=[]relationship insert_permissions=[]insert_permission select_permissions=[]select_permission update_permissions=[]update_permission delete_permissions=[]delete_permission event_triggers=[]event_trigger",
	"relationship":        "!name !using=relationship_using comment",
	"relationship_using":  "foreign_key_constraint_on manual_configuration=manual_relationship",
	"manual_relationship": "!remote_table !column_mapping insertion_order",

	"insert_permission": "!role !permission=insert comment",
	"select_permission": "!role !permission=select comment",
	"update_permission": "!role !permission=update comment",
	"delete_permission": "!role !permission=delete comment",
	"insert":            "!check set columns backend_only validate_input",
	"select":            "!columns !filter limit allow_aggregations computed_fields query_root_fields subscription_root_fields",
	"update":            "!columns !filter check set backend_only validate_input",
	"delete":            "!filter backend_only validate_input",

	"event_trigger":       "!name !definition=event_definition !retry_conf=event_retry webhook webhook_from_env headers=[]header request_transform response_transform cleanup_config=cleanup_config trigger_on_replication",
	"event_definition":    "enable_manual insert=event_operation update=event_operation delete=event_operation",
	"event_operation":     "!columns payload",
	"event_retry":         "!num_retries !interval_sec timeout_sec",
	"cleanup_config":      "!schedule !clear_older_than batch_size timeout clean_invocation_logs paused",
	"header":              "!name value value_from_env",
	"function":            "!function configuration permissions=[]function_permission comment",
	"function_permission": "!role comment",
	"actions_file":        "actions=[]action custom_types",
	"action":              "!name !definition=action_definition permissions=[]action_permission comment",
	"action_definition":   "!handler kind type headers=[]header forward_client_headers timeout output_type arguments request_transform response_transform",
	"action_permission":   "!role comment",
	"cron_trigger":        "!name !webhook !schedule !include_in_metadata payload retry_conf=cron_retry headers=[]header comment request_transform response_transform",
	"cron_retry":          "num_retries retry_interval_seconds timeout_seconds tolerance_seconds",
}

// field is one key of a shape.
type field struct {
	required bool
	kind     string // shape of the value; "[]x" a list of x; "" unchecked
}

func parseShape(spec string) map[string]field {
	fields := map[string]field{}
	for _, word := range strings.Fields(spec) {
		name, kind, _ := strings.Cut(word, "=")
		name, required := strings.CutPrefix(name, "!")
		fields[name] = field{required: required, kind: kind}
	}
	return fields
}

// shapeChecker reports keys Hasura does not read and required keys that
// are missing, by file and line.
type shapeChecker struct {
	dir      string                // the metadata directory: files are named relative to it
	files    map[*yaml.Node]string // the file each included node came from
	problems []string
}

func (s *shapeChecker) add(file string, n *yaml.Node, format string, args ...any) {
	if rel, err := filepath.Rel(s.dir, file); err == nil && !strings.HasPrefix(rel, "..") {
		file = rel
	}
	s.problems = append(s.problems, fmt.Sprintf("%s:%d: %s", file, n.Line, fmt.Sprintf(format, args...)))
}

// check checks n, read from file, as an object of shape kind ("[]kind" for
// a list of them).
func (s *shapeChecker) check(n *yaml.Node, kind, file string) {
	if f, ok := s.files[n]; ok {
		file = f
	}
	if elem, ok := strings.CutPrefix(kind, "[]"); ok {
		switch {
		case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		case n.Kind != yaml.SequenceNode:
			s.add(file, n, "want a list of %s", strings.ReplaceAll(elem, "_", " "))
		default:
			for _, item := range n.Content {
				s.check(item, elem, file)
			}
		}
		return
	}
	spec, ok := shapes[kind]
	if !ok {
		s.add(file, n, "the check knows no shape %q (a bug in internal/metadata)", kind)
		return
	}
	fields := parseShape(spec)
	if n.Kind != yaml.MappingNode {
		s.add(file, n, "want an object (%s)", strings.ReplaceAll(kind, "_", " "))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		seen[key.Value] = true
		f, known := fields[key.Value]
		if !known {
			var keys []string
			for k := range fields {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			s.add(file, key, "unknown key %q in %s (Hasura ignores it; it reads %s)", key.Value,
				strings.ReplaceAll(kind, "_", " "), strings.Join(keys, ", "))
			continue
		}
		if f.kind != "" {
			s.check(value, f.kind, file)
		}
	}
	var missing []string
	for name, f := range fields {
		if f.required && !seen[name] {
			missing = append(missing, name)
		}
	}
	slices.Sort(missing)
	for _, name := range missing {
		s.add(file, n, "%s lacks the required key %q", strings.ReplaceAll(kind, "_", " "), name)
	}
}

// cronFields are the five fields of a cron schedule with their ranges.
var cronFields = []struct {
	name     string
	min, max int
}{{"minute", 0, 59}, {"hour", 0, 23}, {"day of month", 1, 31}, {"month", 1, 12}, {"day of week", 0, 6}}

// checkCron reports what is wrong with a five-field cron schedule (minute
// hour day-of-month month day-of-week; each field *, a number, a range a-b,
// any of them with /step, or a comma-separated list of those), the syntax
// Hasura's cron triggers and cleanup schedules take.
func checkCron(schedule string) error {
	fields := strings.Fields(schedule)
	if len(fields) != len(cronFields) {
		return fmt.Errorf("schedule %q has %d fields, want 5 (minute hour day-of-month month day-of-week)", schedule, len(fields))
	}
	for i, f := range fields {
		spec := cronFields[i]
		for _, part := range strings.Split(f, ",") {
			if err := checkCronPart(part, spec.min, spec.max); err != nil {
				return fmt.Errorf("schedule %q: %s field %q: %w", schedule, spec.name, f, err)
			}
		}
	}
	return nil
}

func checkCronPart(part string, lo, hi int) error {
	base, step, hasStep := strings.Cut(part, "/")
	if hasStep {
		n, err := strconv.Atoi(step)
		if err != nil || n < 1 || n > hi {
			return fmt.Errorf("step %q: want 1–%d", step, hi)
		}
	}
	if base == "*" {
		return nil
	}
	from, to, isRange := strings.Cut(base, "-")
	a, err := strconv.Atoi(from)
	if err != nil || a < lo || a > hi {
		return fmt.Errorf("%q: want a number %d–%d", from, lo, hi)
	}
	if !isRange {
		if hasStep {
			return fmt.Errorf("a step needs * or a range, not %q", base)
		}
		return nil
	}
	b, err := strconv.Atoi(to)
	if err != nil || b < lo || b > hi || b < a {
		return fmt.Errorf("range %q: want %d–%d, low to high", base, lo, hi)
	}
	return nil
}
