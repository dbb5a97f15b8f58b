// Package forms turns ODK form definitions and submissions into shala's
// rows: registered, versioned definitions (with questions and choices for
// data-collection forms), business rules evaluated on typed values, and the
// one submission pipeline that the submitForm action, the OpenRosa endpoint
// and rows inserted through Hasura all share — raw XML stored first, then
// parsed into a response with typed answers or an assessment, idempotent on
// the instanceID, edits (deprecatedID) applied atomically.
package forms

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/analytics"
	"github.com/shala-edu/shala/internal/assessment"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/xform"
)

// Purposes of a form.
const (
	AssessmentBuilder = "ASSESSMENT_BUILDER"
	DataCollection    = "DATA_COLLECTION"
)

// Definition is a registered form version, parsed, with the ids of its
// questions and choices.
type Definition struct {
	Form    *xform.Form
	Purpose string
	// Layout reads an assessment builder's submissions (nil for data
	// collection).
	Layout    *assessment.Layout
	questions map[string]uuid.UUID               // path → question id
	choices   map[uuid.UUID]map[string]uuid.UUID // question id → value → choice id
}

// Catalog reads registered definitions. Versions are immutable once
// registered, so a parsed definition is cached for the life of the process.
type Catalog struct {
	pool *pgxpool.Pool
	mu   sync.RWMutex
	defs map[[2]string]*Definition
	// stateWait bounds how long SetState waits for processings of the
	// form in flight (StateLockWait when zero).
	stateWait time.Duration
}

// NewCatalog returns a catalog on pool.
func NewCatalog(pool *pgxpool.Pool) *Catalog {
	return &Catalog{pool: pool, defs: map[[2]string]*Definition{}}
}

// ErrUnknownForm is returned (wrapped in a fault) for a form or version that
// is not registered.
var ErrUnknownForm = errors.New("form not registered")

// Get returns the definition of form id at version.
func (c *Catalog) Get(ctx context.Context, id, version string) (*Definition, error) {
	key := [2]string{id, version}
	c.mu.RLock()
	d := c.defs[key]
	c.mu.RUnlock()
	if d != nil {
		return d, nil
	}
	var xml, purpose string
	var layout *string
	var mapping []byte
	err := c.pool.QueryRow(ctx, `SELECT v.xform, f.purpose, v.builder_layout, v.builder_mapping FROM form_version v JOIN form f ON f.id = v.form_id
		WHERE v.form_id = $1 AND v.version = $2`, id, version).Scan(&xml, &purpose, &layout, &mapping)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.Wrap(ErrUnknownForm, fault.NotFound, CodeUnknownForm, "form %q version %q is not registered", id, version)
	}
	if err != nil {
		return nil, postgres.Translate(err, "form")
	}
	f, err := xform.ParseDefinition([]byte(xml))
	if err != nil {
		return nil, fmt.Errorf("registered form %s version %s no longer parses: %w", id, version, err)
	}
	d = &Definition{Form: f, Purpose: purpose, questions: map[string]uuid.UUID{}, choices: map[uuid.UUID]map[string]uuid.UUID{}}
	if purpose == AssessmentBuilder {
		if d.Layout, err = registeredLayout(f, layout, mapping); err != nil {
			return nil, fmt.Errorf("registered builder %s version %s: %w", id, version, err)
		}
	}
	rows, err := c.pool.Query(ctx, `SELECT q.id, q.path, c.id, c.value FROM form_question q
		LEFT JOIN form_choice c ON c.question_id = q.id WHERE q.form_id = $1 AND q.version = $2`, id, version)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var qid uuid.UUID
		var path string
		var cid *uuid.UUID
		var value *string
		if err := rows.Scan(&qid, &path, &cid, &value); err != nil {
			return nil, err
		}
		d.questions[path] = qid
		if cid != nil {
			if d.choices[qid] == nil {
				d.choices[qid] = map[string]uuid.UUID{}
			}
			d.choices[qid][*value] = *cid
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.defs[key] = d
	c.mu.Unlock()
	return d, nil
}

// Registered describes a registered version.
type Registered struct {
	FormID, Version, Title, Purpose string
	Questions                       int
	Languages                       []string
	// AlreadyRegistered is true when this exact definition was registered
	// before (registering is idempotent).
	AlreadyRegistered bool
	// Waiting is how many submissions had arrived before this version was
	// registered; they are processed by the next reconcile sweep.
	Waiting int
	// BuilderLayout names the mapping that reads an assessment builder's
	// submissions ("" for data collection).
	BuilderLayout string
}

// registeredLayout is the layout a builder version was registered with: the
// mapping stored with it, or (none stored) the built-in one it names.
func registeredLayout(f *xform.Form, layout *string, mapping []byte) (*assessment.Layout, error) {
	var m assessment.Mapping
	switch {
	case mapping != nil:
		// Checked when the version was registered, and kept as it was
		// then: not held to checks added since (Fit below still reads it
		// against the definition).
		if err := json.Unmarshal(mapping, &m); err != nil {
			return nil, err
		}
	case layout != nil:
		var ok bool
		if m, ok = assessment.BuiltInLayout(*layout); !ok {
			return nil, fmt.Errorf("no built-in builder layout %q", *layout)
		}
	default:
		m = assessment.BuiltIn[0]
	}
	l, problems, _ := assessment.Fit(m, f)
	if l == nil {
		return nil, fmt.Errorf("no longer fits its layout %s: %s", m.Layout, strings.Join(problems, "; "))
	}
	return l, nil
}

// candidates are the mappings a builder definition of form id may take, in
// order: the one an admin saved for the form, then the built-in ones.
func (c *Catalog) candidates(ctx context.Context, id string) ([]assessment.Mapping, error) {
	var saved []byte
	err := c.pool.QueryRow(ctx, `SELECT mapping FROM builder_mapping WHERE form_id = $1`, id).Scan(&saved)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return assessment.BuiltIn, nil
	case err != nil:
		return nil, postgres.Translate(err, "builder mapping")
	}
	m, err := assessment.ParseMapping(saved)
	if err != nil {
		return nil, fmt.Errorf("saved builder mapping of %s: %w", id, err)
	}
	return append([]assessment.Mapping{m}, assessment.BuiltIn...), nil
}

// Register parses and stores a form definition. A version is registered
// once: the same definition again is a no-op, a different definition under
// an existing version is refused (bump the version: stored submissions of
// the old one stay readable). Data-collection forms get their questions and
// choices.
func (c *Catalog) Register(ctx context.Context, definition []byte, purpose, by string) (*Registered, error) {
	if purpose != AssessmentBuilder && purpose != DataCollection {
		return nil, fault.Invalidf("purpose", "want ASSESSMENT_BUILDER or DATA_COLLECTION, got %q", purpose)
	}
	f, err := xform.ParseDefinition(definition)
	if err == nil {
		err = f.CheckNames()
	}
	if err != nil {
		return nil, fault.Wrap(err, fault.Invalid, CodeInvalidXForm, "xform: %v", err)
	}
	var layout *assessment.Layout
	if purpose == AssessmentBuilder {
		candidates, err := c.candidates(ctx, f.ID)
		if err != nil {
			return nil, err
		}
		if layout, err = assessment.Choose(candidates, f); err != nil {
			return nil, fault.Wrap(err, fault.Invalid, CodeInvalidXForm, "xform: %v", err)
		}
	}
	res := &Registered{FormID: f.ID, Version: f.Version, Title: f.Title, Purpose: purpose, Languages: f.Languages}
	var layoutName, mappingJSON any // NULL for data collection
	if layout != nil {
		b, err := json.Marshal(layout.Mapping)
		if err != nil {
			return nil, err
		}
		layoutName, mappingJSON, res.BuilderLayout = layout.Mapping.Layout, b, layout.Mapping.Layout
	}
	if purpose == DataCollection {
		res.Questions = len(f.Fields)
	}
	sum := sha256.Sum256(definition)
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		var existing string
		err := tx.QueryRow(ctx, `INSERT INTO form (id, title, purpose) VALUES ($1, $2, $3)
			ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title RETURNING purpose`, f.ID, f.Title, purpose).Scan(&existing)
		if err != nil {
			return err
		}
		if existing != purpose {
			return fault.New(fault.Conflict, CodePurposeConflict, "form %q is registered as %s, not %s", f.ID, existing, purpose)
		}
		// Ordered with processings that found this version unregistered
		// (versionRegistered): each has either recorded its refusal, which
		// the update below puts back, or will see the version.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+versionLockKey+`)`, f.ID, f.Version); err != nil {
			return err
		}
		var stored string
		var storedLayout *string
		err = tx.QueryRow(ctx, `SELECT xform, builder_layout FROM form_version WHERE form_id = $1 AND version = $2`, f.ID, f.Version).
			Scan(&stored, &storedLayout)
		switch {
		case err == nil:
			if storedLayout != nil {
				res.BuilderLayout = *storedLayout
			}
			if sha256.Sum256([]byte(stored)) != sum {
				return fault.New(fault.Conflict, CodeVersionExists,
					"form %q version %q is registered with a different definition: give the changed form a new version", f.ID, f.Version)
			}
			res.AlreadyRegistered = true
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO form_version (form_id, version, title, xform, languages, registered_by, builder_layout, builder_mapping)
			VALUES ($1, $2, $3, $4, $5, nullif($6, ''), $7, $8)`, f.ID, f.Version, f.Title, string(definition), f.Languages, by,
			layoutName, mappingJSON); err != nil {
			return err
		}
		// Submissions that came before their form are processed now: back
		// to "received", where the reconcile sweep (every minute) takes them.
		tag, err := tx.Exec(ctx, `UPDATE form_submission SET status = 'received', error_code = NULL, errors = NULL, processed_at = NULL
			WHERE form_id = $1 AND form_version = $2 AND status = 'rejected' AND error_code = $3`, f.ID, f.Version, CodeUnknownForm)
		if err != nil {
			return err
		}
		res.Waiting = int(tag.RowsAffected())
		if err := analytics.Record(ctx, tx, analytics.System, "form_registered", map[string]any{
			"form_id": f.ID, "version": f.Version, "purpose": purpose, "questions": len(f.Fields),
			"languages": len(f.Languages), "waiting_submissions": res.Waiting,
		}); err != nil {
			return err
		}
		if purpose != DataCollection {
			return nil
		}
		for _, fl := range f.Fields {
			var qid uuid.UUID
			depth := 0 // how many repeats enclose it
			for _, r := range f.Repeats {
				if strings.HasPrefix(fl.Path, r+"/") {
					depth++
				}
			}
			if err := tx.QueryRow(ctx, `INSERT INTO form_question (form_id, version, path, name, type, repeat, repeat_depth, required, labels, position)
				VALUES ($1, $2, $3, $4, $5, nullif($6, ''), $7, $8, $9, $10) RETURNING id`,
				f.ID, f.Version, fl.Path, fl.Name, string(fl.Type), fl.Repeat, depth, fl.Required, fl.Labels, fl.Position).Scan(&qid); err != nil {
				return err
			}
			for i, ch := range fl.Choices {
				if _, err := tx.Exec(ctx, `INSERT INTO form_choice (question_id, value, labels, position) VALUES ($1, $2, $3, $4)
					ON CONFLICT (question_id, value) DO NOTHING`, qid, ch.Value, ch.Labels, i); err != nil {
					return err
				}
			}
		}
		return carryMeta(ctx, tx, f.ID, f.Version)
	})
	if err != nil {
		return nil, postgres.Translate(err, "form "+f.ID)
	}
	return res, nil
}

// versionLockKey is the advisory lock key of form version ($1, $2): taken
// exclusively by Register, shared by a processing that finds the version
// unregistered.
const versionLockKey = `hashtextextended('form_version:' || $1 || ':' || $2, 0)`

// versionRegistered reports, in tx and under the version's shared lock,
// whether form id version is registered now.
func versionRegistered(ctx context.Context, tx pgx.Tx, id, version string) (bool, error) {
	// Two statements: the second's snapshot is taken after the lock is
	// held, so it sees a registration that committed while we waited.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared(`+versionLockKey+`)`, id, version); err != nil {
		return false, err
	}
	var yes bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM form_version WHERE form_id = $1 AND version = $2)`, id, version).Scan(&yes)
	return yes, err
}

// carryMeta gives the questions and choices of a new version of form the
// free metadata of those of the same name (and value) in the version
// registered before it, so an indicator code set on a question survives a
// new version of the form.
func carryMeta(ctx context.Context, tx pgx.Tx, form, version string) error {
	_, err := tx.Exec(ctx, `WITH prev AS (
			SELECT version FROM form_version WHERE form_id = $1 AND version <> $2 ORDER BY registered_at DESC, version DESC LIMIT 1),
		questions AS (
			UPDATE form_question n SET meta = p.meta FROM form_question p, prev
			WHERE n.form_id = $1 AND n.version = $2 AND p.form_id = $1 AND p.version = prev.version AND p.name = n.name AND p.meta <> '{}'
			RETURNING n.id)
		UPDATE form_choice nc SET meta = pc.meta
		FROM form_question n, form_question p, form_choice pc, prev
		WHERE n.form_id = $1 AND n.version = $2 AND nc.question_id = n.id
		  AND p.form_id = $1 AND p.version = prev.version AND p.name = n.name
		  AND pc.question_id = p.id AND pc.value = nc.value AND pc.meta <> '{}'`, form, version)
	return err
}
