// Package collector holds field collectors: the people who submit forms from
// ODK Collect or Enketo with a token in the server URL, the way ODK
// Central's app users do. It creates them (the token is shown once and only
// its SHA-256 kept), revokes them and authenticates their tokens.
package collector

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/sms"
)

// CodeTokenRevoked is the refusal of a revoked collector's token.
const CodeTokenRevoked fault.Code = "TOKEN_REVOKED"

// Collector is a field collector who submits from ODK Collect or Enketo.
type Collector struct {
	ID        uuid.UUID
	Name      string
	Phone     string
	RevokedAt *time.Time
	// BuildsAssessments: may submit assessment-builder forms.
	BuildsAssessments bool
}

// Store manages collectors and their tokens. A token is 32 bytes from
// crypto/rand (43 URL-safe characters), shown once at creation; only its
// SHA-256 is stored, so a leaked database does not leak tokens.
type Store struct{ pool *pgxpool.Pool }

// NewStore returns collectors on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// Create adds a collector and returns it with its token.
func (s *Store) Create(ctx context.Context, name, phone, by string) (Collector, string, error) {
	return s.create(ctx, name, phone, by, false)
}

// CreateBuilder adds a collector that may also submit assessment-builder
// forms: for admins who fill the builder in Enketo or Collect.
func (s *Store) CreateBuilder(ctx context.Context, name, phone, by string) (Collector, string, error) {
	return s.create(ctx, name, phone, by, true)
}

func (s *Store) create(ctx context.Context, name, phone, by string, builds bool) (Collector, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len([]rune(name)) > 200 {
		return Collector{}, "", fault.Invalidf("name", "must be 1–200 characters")
	}
	e164, reason := sms.Normalize(phone)
	if reason != "" {
		return Collector{}, "", fault.Invalidf("phone", "%s: rule flags are sent to this number by SMS, so it must be an Indian mobile", reason)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Collector{}, "", err
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	col := Collector{Name: name, Phone: e164, BuildsAssessments: builds}
	err := s.pool.QueryRow(ctx, `INSERT INTO collector (name, phone, token_hash, token_hint, created_by, builds_assessments)
		VALUES ($1, $2, $3, $4, nullif($5, ''), $6) RETURNING id`, name, e164, hashToken(token), token[:6], by, builds).Scan(&col.ID)
	if err != nil {
		return Collector{}, "", postgres.Translate(err, "collector")
	}
	return col, token, nil
}

// Revoke disables a collector's token; its past submissions stay.
func (s *Store) Revoke(ctx context.Context, id uuid.UUID) (time.Time, error) {
	var at time.Time
	err := s.pool.QueryRow(ctx, `UPDATE collector SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING revoked_at`, id).Scan(&at)
	return at, postgres.Translate(err, "collector "+id.String())
}

// Authenticate finds the collector of token: Unauthorized for an unknown
// token, Forbidden (TOKEN_REVOKED) for a revoked one.
func (s *Store) Authenticate(ctx context.Context, token string) (Collector, error) {
	var col Collector
	if len(token) < 20 || len(token) > 100 {
		return col, fault.New(fault.Unauthorized, "", "unknown collector token")
	}
	err := s.pool.QueryRow(ctx, `SELECT id, name, phone, revoked_at, builds_assessments FROM collector WHERE token_hash = $1`, hashToken(token)).
		Scan(&col.ID, &col.Name, &col.Phone, &col.RevokedAt, &col.BuildsAssessments)
	if errors.Is(err, pgx.ErrNoRows) {
		return col, fault.New(fault.Unauthorized, "", "unknown collector token")
	}
	if err != nil {
		return col, postgres.Translate(err, "collector")
	}
	if col.RevokedAt != nil {
		return col, fault.New(fault.Forbidden, CodeTokenRevoked, "this collector's token was revoked")
	}
	return col, nil
}

// Querier is a pool or a transaction: what collectors are read through
// when the caller is already inside one.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// BuildsAssessments reports, through q, whether collector id may submit
// assessment builders.
func BuildsAssessments(ctx context.Context, q Querier, id uuid.UUID) (bool, error) {
	var builds bool
	err := q.QueryRow(ctx, `SELECT builds_assessments FROM collector WHERE id = $1`, id).Scan(&builds)
	return builds, err
}

// Phone reads, through q, the E.164 number of collector id (rule flags are
// sent to it).
func Phone(ctx context.Context, q Querier, id uuid.UUID) (string, error) {
	var phone string
	err := q.QueryRow(ctx, `SELECT phone FROM collector WHERE id = $1`, id).Scan(&phone)
	return phone, err
}
