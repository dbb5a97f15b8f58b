package metadata

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"gopkg.in/yaml.v3"
)

// Catalog is what the database holds, read from the system catalogs.
type Catalog struct {
	Columns map[string]map[string]bool // "schema.table" → columns
	// FKs maps "schema.table.column" (a single-column foreign key) to the
	// "schema.table" it references.
	FKs map[string]string
	// Functions are the "schema.name" of the functions.
	Functions map[string]bool
}

// ReadCatalog reads tables, columns and single-column foreign keys of
// the non-system schemas.
func ReadCatalog(ctx context.Context, pool *pgxpool.Pool) (*Catalog, error) {
	c := &Catalog{Columns: map[string]map[string]bool{}, FKs: map[string]string{}, Functions: map[string]bool{}}
	rows, err := pool.Query(ctx, `SELECT table_schema, table_name, column_name FROM information_schema.columns
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var s, t, col string
		if err := rows.Scan(&s, &t, &col); err != nil {
			return nil, err
		}
		key := s + "." + t
		if c.Columns[key] == nil {
			c.Columns[key] = map[string]bool{}
		}
		c.Columns[key][col] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = pool.Query(ctx, `SELECT n.nspname, cl.relname, a.attname, rn.nspname, rcl.relname
		FROM pg_constraint con
		JOIN pg_class cl ON cl.oid = con.conrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
		JOIN pg_class rcl ON rcl.oid = con.confrelid JOIN pg_namespace rn ON rn.oid = rcl.relnamespace
		JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
		WHERE con.contype = 'f' AND array_length(con.conkey, 1) = 1`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var s, t, col, rs, rt string
		if err := rows.Scan(&s, &t, &col, &rs, &rt); err != nil {
			return nil, err
		}
		c.FKs[s+"."+t+"."+col] = rs + "." + rt
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = pool.Query(ctx, `SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, name := range names {
		c.Functions[name] = true
	}
	return c, err
}

// Check compares metadata with the database, the router and the handlers'
// Go types.
type Check struct {
	Meta    *Metadata
	Catalog *Catalog
	Router  chi.Routes
	// Roles allowed in permissions (admin is implicit and must not appear).
	Roles []string
	// SessionVars are the session variables permissions may use (any case).
	SessionVars []string
}

// Run returns every problem found, each naming the file-level object.
func (c *Check) Run() []string {
	p := problems(slices.Clone(c.Meta.Problems))
	handlers := map[string]http.Handler{}
	if err := chi.Walk(c.Router, func(method, route string, h http.Handler, _ ...func(http.Handler) http.Handler) error {
		if method == http.MethodPost {
			if ch, ok := h.(*chi.ChainHandler); ok {
				h = ch.Endpoint
			}
			handlers[route] = h
		}
		return nil
	}); err != nil {
		p.add("router: %v", err)
	}
	used := map[string]bool{}

	if c.Meta.Version != 3 {
		p.add("version.yaml: version %d, want 3", c.Meta.Version)
	}
	tables := map[string]*Table{}
	for si := range c.Meta.Sources {
		src := &c.Meta.Sources[si]
		if src.Configuration.ConnectionInfo.DatabaseURL.FromEnv == "" {
			p.add("databases.yaml: source %s: database_url must come from_env", src.Name)
		}
		for ti := range src.Tables {
			t := &src.Tables[ti]
			tables[t.Table.String()] = t
		}
	}
	for _, t := range tables {
		c.checkTable(&p, t, tables, handlers, used)
	}
	c.checkActions(&p, handlers, used)
	for _, ct := range c.Meta.CronTriggers {
		where := "cron_triggers.yaml: " + ct.Name
		route := c.webhookRoute(&p, where, ct.Webhook, "/cron/", ct.Name, handlers)
		used[route] = true
		checkSecretHeader(&p, where, ct.Headers)
		if err := checkCron(ct.Schedule); err != nil {
			p.add("%s: %v", where, err)
		}
	}
	for _, src := range c.Meta.Sources {
		for _, f := range src.Functions {
			where := "function " + f.Function.String()
			if !c.Catalog.Functions[f.Function.String()] {
				p.add("%s: tracked in metadata but not in the database", where)
			}
			for _, perm := range f.Permissions {
				if !slices.Contains(c.Roles, perm.Role) {
					p.add("%s: permission of unknown role %s (known: %s)", where, perm.Role, strings.Join(c.Roles, ", "))
				}
			}
		}
	}
	for route := range handlers {
		if (strings.HasPrefix(route, "/actions/") || strings.HasPrefix(route, "/events/") || strings.HasPrefix(route, "/cron/")) && !used[route] {
			p.add("route POST %s is not referenced by any action, event trigger or cron trigger in metadata", route)
		}
	}
	sort.Strings(p)
	return p
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func (c *Check) checkTable(p *problems, t *Table, tables map[string]*Table, handlers map[string]http.Handler, used map[string]bool) {
	name := t.Table.String()
	where := "table " + name
	cols, ok := c.Catalog.Columns[name]
	if !ok {
		p.add("%s: tracked in metadata but not in the database", where)
		return
	}
	rels := map[string]string{} // relationship → remote table
	for _, r := range t.ObjectRelationships {
		remote := c.checkRelationship(p, where, name, r, false)
		rels[r.Name] = remote
	}
	for _, r := range t.ArrayRelationships {
		rels[r.Name] = c.checkRelationship(p, where, name, r, true)
	}
	for rel := range rels {
		if cols[rel] {
			p.add("%s: relationship %s has the name of a column", where, rel)
		}
	}
	kinds := []struct {
		kind  string
		perms []Permission
	}{{"insert", t.InsertPermissions}, {"select", t.SelectPermissions}, {"update", t.UpdatePermissions}, {"delete", t.DeletePermissions}}
	for _, k := range kinds {
		seen := map[string]bool{}
		for _, perm := range k.perms {
			pw := fmt.Sprintf("%s: %s permission of role %s", where, k.kind, perm.Role)
			if perm.Role == "admin" {
				p.add("%s: admin has full access; remove this permission", pw)
			} else if !slices.Contains(c.Roles, perm.Role) {
				p.add("%s: unknown role (known: %s)", pw, strings.Join(c.Roles, ", "))
			}
			if seen[perm.Role] {
				p.add("%s: declared twice", pw)
			}
			seen[perm.Role] = true
			list, _, err := perm.ColumnList()
			if err != nil {
				p.add("%s: %v", pw, err)
			}
			for _, col := range list {
				if !cols[col] {
					p.add("%s: column %s does not exist", pw, col)
				}
			}
			c.checkExpr(p, pw+": filter", name, perm.Permission.Filter, tables)
			c.checkExpr(p, pw+": check", name, perm.Permission.Check, tables)
			for col, v := range perm.Permission.Set {
				if !cols[col] {
					p.add("%s: preset column %s does not exist", pw, col)
				}
				c.checkValue(p, pw+": preset "+col, v)
			}
		}
	}
	for _, et := range t.EventTriggers {
		ew := fmt.Sprintf("%s: event trigger %s", where, et.Name)
		if cc := et.CleanupConfig; cc != nil {
			if err := checkCron(cc.Schedule); err != nil {
				p.add("%s: cleanup_config: %v", ew, err)
			}
		}
		route := c.webhookRoute(p, ew, et.Webhook, "/events/", et.Name, handlers)
		used[route] = true
		checkSecretHeader(p, ew, et.Headers)
		sent := cols // columns in the event payload
		for op, oc := range map[string]*opColumns{"insert": et.Definition.Insert, "update": et.Definition.Update, "delete": et.Definition.Delete} {
			if oc == nil {
				continue
			}
			for what, node := range map[string]yaml.Node{"column": oc.Columns, "payload column": oc.Payload} {
				list, all, err := columnList(op+" "+what+"s", node)
				if err != nil {
					p.add("%s: %v", ew, err)
				}
				if all || node.Kind == 0 {
					continue
				}
				for _, col := range list {
					if !cols[col] {
						p.add("%s: %s %s %s does not exist", ew, op, what, col)
					}
				}
				if what == "payload column" {
					sent = map[string]bool{}
					for _, col := range list {
						sent[col] = true
					}
				}
			}
		}
		if h, ok := handlers[route].(interface{ RowType() reflect.Type }); ok {
			for _, f := range jsonFields(h.RowType()) {
				if !cols[f.name] {
					p.add("%s: the handler's row type %s reads column %q, which %s does not have", ew, h.RowType(), f.name, name)
				} else if !sent[f.name] {
					p.add("%s: the handler's row type %s reads column %q, which the trigger's payload leaves out", ew, h.RowType(), f.name)
				}
			}
		} else if handlers[route] != nil {
			p.add("%s: handler of %s is not a hasura.EventHandler", ew, route)
		}
	}
}

func (c *Check) checkRelationship(p *problems, where, table string, r Relationship, array bool) string {
	rw := fmt.Sprintf("%s: relationship %s", where, r.Name)
	if mc := r.Using.ManualConfiguration; mc != nil {
		remote := mc.RemoteTable.String()
		rcols, ok := c.Catalog.Columns[remote]
		if !ok {
			p.add("%s: remote table %s does not exist", rw, remote)
			return remote
		}
		for from, to := range mc.ColumnMapping {
			if !c.Catalog.Columns[table][from] {
				p.add("%s: column %s does not exist", rw, from)
			}
			if !rcols[to] {
				p.add("%s: remote column %s.%s does not exist", rw, remote, to)
			}
		}
		return remote
	}
	n := r.Using.ForeignKeyConstraintOn
	switch n.Kind {
	case yaml.ScalarNode: // FK on this table
		if array {
			p.add("%s: an array relationship needs {column, table}", rw)
			return ""
		}
		remote, ok := c.Catalog.FKs[table+"."+n.Value]
		if !ok {
			p.add("%s: no foreign key on %s.%s", rw, table, n.Value)
		}
		return remote
	case yaml.MappingNode: // FK on the remote table pointing here
		var fk struct {
			Column string         `yaml:"column"`
			Table  QualifiedTable `yaml:"table"`
		}
		if err := n.Decode(&fk); err != nil {
			p.add("%s: %v", rw, err)
			return ""
		}
		remote := fk.Table.String()
		if got := c.Catalog.FKs[remote+"."+fk.Column]; got != table {
			p.add("%s: no foreign key %s.%s → %s", rw, remote, fk.Column, table)
		}
		return remote
	default:
		p.add("%s: neither foreign_key_constraint_on nor manual_configuration", rw)
		return ""
	}
}

// checkExpr walks a boolean expression: _and/_or lists, _not, _exists,
// column comparisons and relationship traversals.
func (c *Check) checkExpr(p *problems, where, table string, expr map[string]any, tables map[string]*Table) {
	for k, v := range expr {
		switch k {
		case "_and", "_or":
			list, _ := v.([]any)
			for _, e := range list {
				m, _ := e.(map[string]any)
				c.checkExpr(p, where, table, m, tables)
			}
		case "_not":
			m, _ := v.(map[string]any)
			c.checkExpr(p, where, table, m, tables)
		case "_exists":
			m, _ := v.(map[string]any)
			tm, _ := m["_table"].(map[string]any)
			other := fmt.Sprintf("%v.%v", tm["schema"], tm["name"])
			if _, ok := c.Catalog.Columns[other]; !ok {
				p.add("%s: _exists table %s does not exist", where, other)
			}
			w, _ := m["_where"].(map[string]any)
			c.checkExpr(p, where, other, w, tables)
		default:
			if strings.HasPrefix(k, "_") {
				p.add("%s: unknown operator %s at the top of an expression", where, k)
				continue
			}
			if c.Catalog.Columns[table][k] {
				ops, _ := v.(map[string]any)
				for op, val := range ops {
					if !strings.HasPrefix(op, "_") {
						p.add("%s: column %s: %s is not an operator", where, k, op)
					}
					c.checkValue(p, where+": "+k+" "+op, val)
				}
				continue
			}
			remote := c.relationshipTarget(table, k, tables)
			if remote == "" {
				p.add("%s: %s is neither a column nor a relationship of %s", where, k, table)
				continue
			}
			m, _ := v.(map[string]any)
			c.checkExpr(p, where+": "+k, remote, m, tables)
		}
	}
}

func (c *Check) relationshipTarget(table, rel string, tables map[string]*Table) string {
	t := tables[table]
	if t == nil {
		return ""
	}
	for _, rs := range [][]Relationship{t.ObjectRelationships, t.ArrayRelationships} {
		for _, r := range rs {
			if r.Name != rel {
				continue
			}
			if mc := r.Using.ManualConfiguration; mc != nil {
				return mc.RemoteTable.String()
			}
			n := r.Using.ForeignKeyConstraintOn
			if n.Kind == yaml.ScalarNode {
				return c.Catalog.FKs[table+"."+n.Value]
			}
			var fk struct {
				Table QualifiedTable `yaml:"table"`
			}
			if err := n.Decode(&fk); err != nil || fk.Table.Name == "" {
				return "" // reported where the relationship is checked
			}
			return fk.Table.String()
		}
	}
	return ""
}

// checkValue checks that session variables used as values are known.
func (c *Check) checkValue(p *problems, where string, v any) {
	s, ok := v.(string)
	if !ok || !strings.HasPrefix(strings.ToLower(s), "x-hasura-") {
		return
	}
	for _, known := range c.SessionVars {
		if strings.EqualFold(s, known) {
			return
		}
	}
	p.add("%s: unknown session variable %s (known: %s)", where, s, strings.Join(c.SessionVars, ", "))
}

func (c *Check) webhookRoute(p *problems, where, webhook, prefix, name string, handlers map[string]http.Handler) string {
	want := "{{SHALA_URL}}" + prefix + name
	route, ok := strings.CutPrefix(webhook, "{{SHALA_URL}}")
	if !ok {
		p.add("%s: webhook %q must start with {{SHALA_URL}} (shala's URL comes from the environment)", where, webhook)
	} else if webhook != want {
		p.add("%s: webhook %q, want %q (the route is named after the %s)", where, webhook, want, strings.Trim(prefix, "/"))
	}
	if _, ok := handlers[route]; !ok {
		p.add("%s: shala has no route POST %s", where, route)
	}
	return route
}

func checkSecretHeader(p *problems, where string, headers []Header) {
	for _, h := range headers {
		if strings.EqualFold(h.Name, "X-Shala-Webhook-Secret") {
			if h.ValueFromEnv != "SHALA_WEBHOOK_SECRET" || h.Value != "" {
				p.add("%s: X-Shala-Webhook-Secret must be value_from_env: SHALA_WEBHOOK_SECRET, never a literal", where)
			}
			return
		}
	}
	p.add("%s: no X-Shala-Webhook-Secret header (shala answers 401 without it)", where)
}

func (c *Check) checkActions(p *problems, handlers map[string]http.Handler, used map[string]bool) {
	doc, err := parser.ParseSchema(&ast.Source{Name: "actions.graphql", Input: c.Meta.ActionsSDL})
	if err != nil {
		p.add("actions.graphql: %v", err)
		return
	}
	defs := map[string]*ast.Definition{}
	fields := map[string]*ast.FieldDefinition{}
	for _, d := range append(doc.Definitions, doc.Extensions...) {
		if d.Name == "Mutation" || d.Name == "Query" {
			for _, f := range d.Fields {
				fields[f.Name] = f
			}
			continue
		}
		defs[d.Name] = d
	}
	declared := map[string]bool{}
	for _, list := range [][]named{c.Meta.CustomTypes.Enums, c.Meta.CustomTypes.InputObjects, c.Meta.CustomTypes.Objects, c.Meta.CustomTypes.Scalars} {
		for _, n := range list {
			declared[n.Name] = true
			if defs[n.Name] == nil {
				p.add("actions.yaml: custom type %s is not defined in actions.graphql", n.Name)
			}
		}
	}
	for name := range defs {
		if !declared[name] {
			p.add("actions.graphql: type %s is not listed in actions.yaml custom_types", name)
		}
	}
	for _, a := range c.Meta.Actions {
		where := "action " + a.Name
		route := c.webhookRoute(p, where, a.Definition.Handler, "/actions/", a.Name, handlers)
		used[route] = true
		checkSecretHeader(p, where, a.Definition.Headers)
		if a.Definition.Kind != "synchronous" && a.Definition.Kind != "asynchronous" {
			p.add("%s: kind %q, want synchronous or asynchronous", where, a.Definition.Kind)
		}
		for _, perm := range a.Permissions {
			if perm.Role == "admin" || !slices.Contains(c.Roles, perm.Role) {
				p.add("%s: permission for role %q: not a known non-admin role", where, perm.Role)
			}
		}
		f := fields[a.Name]
		if f == nil {
			p.add("%s: not declared in actions.graphql", where)
			continue
		}
		h, ok := handlers[route].(interface {
			Types() (reflect.Type, reflect.Type)
		})
		if !ok {
			if handlers[route] != nil {
				p.add("%s: handler of %s is not a hasura.ActionHandler", where, route)
			}
			continue
		}
		in, out := h.Types()
		goArgs := map[string]jsonField{}
		for _, jf := range jsonFields(in) {
			goArgs[jf.name] = jf
		}
		for _, arg := range f.Arguments {
			jf, ok := goArgs[arg.Name]
			if !ok {
				p.add("%s: argument %s has no field in %s", where, arg.Name, in)
				continue
			}
			delete(goArgs, arg.Name)
			checkType(p, fmt.Sprintf("%s: argument %s", where, arg.Name), arg.Type, jf, defs, true)
		}
		for name := range goArgs {
			p.add("%s: %s field %q is not an argument in actions.graphql", where, in, name)
		}
		checkType(p, where+": output", f.Type, jsonField{name: "output", typ: out}, defs, false)
	}
}

type jsonField struct {
	name      string
	typ       reflect.Type
	omitEmpty bool
}

// jsonFields lists the JSON object keys t encodes to, following embedded
// structs as encoding/json does.
func jsonFields(t reflect.Type) []jsonField {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && name == "" {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name: name, typ: f.Type, omitEmpty: strings.Contains(opts, "omitempty")})
	}
	return out
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	uuidType    = reflect.TypeFor[uuid.UUID]()
	rawJSONType = reflect.TypeFor[json.RawMessage]()
	unmarshaler = reflect.TypeFor[json.Unmarshaler]()
)

// checkType compares a GraphQL type with the Go type behind it. input says
// which direction: a nullable input must be a pointer (absent ≠ zero); a
// non-null output must not be a pointer or omitempty (Hasura rejects null).
func checkType(p *problems, where string, gt *ast.Type, f jsonField, defs map[string]*ast.Definition, input bool) {
	t := f.typ
	isPtr := t.Kind() == reflect.Pointer
	if gt.NonNull {
		if !input && (isPtr || f.omitEmpty) {
			p.add("%s: non-null in GraphQL but %s can be null/absent in Go", where, describe(f))
		}
	} else if input && !isPtr && t.Kind() != reflect.Slice && t.Kind() != reflect.Map && t.Kind() != reflect.Interface {
		p.add("%s: nullable in GraphQL, so Go needs a pointer to tell absent from zero (got %s)", where, t)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if gt.Elem != nil { // list
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			p.add("%s: a list in GraphQL, %s in Go", where, t)
			return
		}
		checkType(p, where+"[]", gt.Elem, jsonField{name: f.name, typ: t.Elem()}, defs, input)
		return
	}
	if def := defs[gt.NamedType]; def != nil {
		switch def.Kind {
		case ast.Enum:
			if t.Kind() != reflect.String {
				p.add("%s: enum %s needs a string type, got %s", where, def.Name, t)
			}
		case ast.InputObject, ast.Object:
			goFields := map[string]jsonField{}
			for _, jf := range jsonFields(t) {
				goFields[jf.name] = jf
			}
			if t.Kind() != reflect.Struct {
				p.add("%s: object %s needs a struct, got %s", where, def.Name, t)
				return
			}
			for _, fd := range def.Fields {
				jf, ok := goFields[fd.Name]
				if !ok {
					p.add("%s: field %s.%s has no Go field in %s", where, def.Name, fd.Name, t)
					continue
				}
				delete(goFields, fd.Name)
				checkType(p, where+"."+fd.Name, fd.Type, jf, defs, input)
			}
			for name := range goFields {
				p.add("%s: %s has field %q that %s in actions.graphql lacks", where, t, name, def.Name)
			}
		case ast.Scalar:
			// custom scalar: any JSON value
		}
		return
	}
	if !scalarFits(gt.NamedType, t) {
		p.add("%s: GraphQL %s does not fit Go %s", where, gt.NamedType, t)
	}
}

func scalarFits(name string, t reflect.Type) bool {
	k := t.Kind()
	isInt := k >= reflect.Int && k <= reflect.Uint64
	switch name {
	case "String", "ID":
		return k == reflect.String || (name == "ID" && isInt)
	case "Int", "smallint", "bigint", "Int64":
		return isInt || (name == "bigint" && reflect.PointerTo(t).Implements(unmarshaler))
	case "Float", "numeric", "float8":
		return k == reflect.Float64 || k == reflect.Float32 || isInt
	case "Boolean":
		return k == reflect.Bool
	case "uuid":
		return t == uuidType || k == reflect.String
	case "timestamptz", "timestamp", "date", "time", "timetz":
		return t == timeType || k == reflect.String || (t.Kind() == reflect.Struct && t.Field(0).Type == timeType)
	case "jsonb", "json":
		return t == rawJSONType || k == reflect.Map || k == reflect.Interface || k == reflect.Struct || k == reflect.Slice
	}
	return false
}

func describe(f jsonField) string {
	if f.omitEmpty {
		return fmt.Sprintf("%s (omitempty)", f.typ)
	}
	return f.typ.String()
}
