package postgres

import (
	"context"
	"reflect"
	"strings"

	"github.com/jackc/pgx/v5"
)

// NilArgs is a pgx tracer that finds statement arguments which are nil Go
// slices or maps. pgx writes those as SQL NULL, so a slice that happens to
// be empty-but-nil (a form without translations has no languages; a message
// without variables) fails a NOT NULL column, or silently means "none" where
// the code meant "empty". shala's rule: SQL NULL is written as an untyped
// nil or a nil pointer, never as a nil slice or map — so every nil slice or
// map reaching Postgres is a bug. The test harness (internal/pgtest)
// installs NilArgs on every test pool, so each test that drives a write
// path checks it; Report receives the statement, the 1-based parameter
// number and the argument's Go type.
type NilArgs struct {
	Report func(sql string, param int, goType string)
}

func (g NilArgs) check(sql string, args []any) {
	if strings.HasPrefix(sql, "-- name: ") {
		return // sqlc-generated statements of libraries (River's), which mean NULL by nil
	}
	for i, a := range args {
		if a == nil {
			continue
		}
		v := reflect.ValueOf(a)
		if (v.Kind() == reflect.Slice || v.Kind() == reflect.Map) && v.IsNil() {
			g.Report(sql, i+1, v.Type().String())
		}
	}
}

// TraceQueryStart checks a statement's arguments.
func (g NilArgs) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	g.check(data.SQL, data.Args)
	return ctx
}

// TraceQueryEnd does nothing.
func (NilArgs) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceBatchStart does nothing: each query of the batch is checked.
func (NilArgs) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

// TraceBatchQuery checks a batched statement's arguments.
func (g NilArgs) TraceBatchQuery(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	g.check(data.SQL, data.Args)
}

// TraceBatchEnd does nothing.
func (NilArgs) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
