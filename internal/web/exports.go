// Package web serves shala's public HTTP endpoints that are not Hasura's —
// one file per endpoint group, each a maker taking exactly the
// dependencies it uses. Errors are answered by writeError in this
// package's one JSON format.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/auth"
	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/fault"
)

// formIDPattern is what form ids look like (form.id's CHECK).
var formIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

// ExportRoles may download any form's responses with their Hasura JWT.
var ExportRoles = []string{"admin", "state_admin"}

// ExportDeps are what the CSV export needs.
type ExportDeps struct {
	Log   *slog.Logger
	Pool  *pgxpool.Pool
	Langs *export.Languages
	// Verifier checks Hasura JWTs (nil: only signed links work).
	Verifier *auth.Verifier
	// Links checks signed links.
	Links *export.Links
	// Slots bounds the exports streaming at once in this process (a full
	// channel answers 429); nil: no bound.
	Slots chan struct{}
	Now   func() time.Time
}

// ExportCSV serves GET /exports/{file}, file being "<formId>.csv": every
// response of the form as CSV (export.WriteCSV), streamed. Allowed with a
// Hasura JWT of role admin or state_admin (Authorization: Bearer; the role
// is X-Hasura-Role or the token's default), or with a signed link from the
// exportLink action (its since and expiry are part of the signature).
// Query: since (RFC 3339; JWT only — a link carries its own), choices=names
// (default) or labels.
func ExportCSV(d ExportDeps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		formID, ok := strings.CutSuffix(chi.URLParam(r, "file"), ".csv")
		if !ok || !formIDPattern.MatchString(formID) {
			writeError(ctx, w, d.Log, fault.New(fault.NotFound, "", "want /exports/<formId>.csv"))
			return
		}
		since, err := authorize(ctx, d, r, formID)
		if err != nil {
			writeError(ctx, w, d.Log, err)
			return
		}
		o := export.CSVOptions{Since: since}
		switch r.URL.Query().Get("choices") {
		case "", "names":
		case "labels":
			o.ChoiceLabels = true
		default:
			writeError(ctx, w, d.Log, fault.Invalidf("choices", "want names or labels, got %q", r.URL.Query().Get("choices")))
			return
		}
		if d.Slots != nil {
			select {
			case d.Slots <- struct{}{}:
				defer func() { <-d.Slots }()
			default:
				w.Header().Set("Retry-After", "30")
				writeError(ctx, w, d.Log, fault.New(fault.RateLimited, "", "too many exports are running; try again in a minute"))
				return
			}
		}
		h := w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="`+formID+`.csv"`)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		cw := &countingWriter{w: w, rc: http.NewResponseController(w)}
		n, err := export.WriteCSV(ctx, d.Pool, d.Langs, cw, formID, o)
		if err == nil {
			d.Log.InfoContext(ctx, "csv export", "form_id", formID, "rows", n, "bytes", cw.n, "signed_link", r.URL.Query().Has("sig"))
			return
		}
		if cw.n == 0 {
			writeError(ctx, w, d.Log, err)
			return
		}
		// Part of the file is out: a status can no longer say it failed,
		// so the connection is cut and the download shows as failed
		// instead of looking complete.
		d.Log.ErrorContext(ctx, "csv export failed while streaming", "form_id", formID, "rows", n, "err", err)
		panic(http.ErrAbortHandler)
	})
}

// authorize accepts a signed link (query sig) or a Hasura JWT of an export
// role, and returns the since bound to use.
func authorize(ctx context.Context, d ExportDeps, r *http.Request, formID string) (*time.Time, error) {
	q := r.URL.Query()
	if q.Has("sig") {
		return d.Links.Verify(formID, q, d.Now())
	}
	session, err := hasuraSession(ctx, d.Verifier, r, "sign in (Hasura JWT) or use a link from exportLink")
	if err != nil {
		return nil, err
	}
	role := session.Role()
	allowed := false
	for _, r := range ExportRoles {
		allowed = allowed || r == role
	}
	if !allowed {
		return nil, fault.New(fault.Forbidden, "", "role %s may not export responses (admin, state_admin)", role)
	}
	s := q.Get("since")
	if s == "" {
		return nil, nil
	}
	// An offset's '+' typed into the address bar unencoded (…+05:30)
	// arrives as a space; RFC 3339 has no spaces.
	t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(s, " ", "+"))
	if err != nil {
		return nil, fault.Invalidf("since", "want an RFC 3339 time such as 2026-11-01T00:00:00+05:30, got %q", s)
	}
	return &t, nil
}

// countingWriter counts what was sent and keeps the connection's write
// deadline a minute ahead while the file streams: a million-row export
// takes longer than the server's WriteTimeout, and a client that stops
// reading for a minute is cut off.
type countingWriter struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	n        int64
	extended time.Time
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if now := time.Now(); now.Sub(c.extended) > 5*time.Second {
		if err := c.rc.SetWriteDeadline(now.Add(time.Minute)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return 0, err
		}
		c.extended = now
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
