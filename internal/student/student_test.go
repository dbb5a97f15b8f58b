package student_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/aadhaar"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/student"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type bundle struct {
	pool    *pgxpool.Pool
	prot    *aadhaar.Protector
	school  uuid.UUID
	student uuid.UUID
}

func setup(t *testing.T) bundle {
	t.Helper()
	pool := pgtest.New(t)
	b := bundle{pool: pool, prot: protector(t), school: uuid.New(), student: uuid.New()}
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO school (id, udise, name, district, block, session) VALUES ($1, '02110512345', 'GSSS Kotkhai', 'Shimla', 'Kotkhai', 'W')`, b.school); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO student (id, school_id, name, gender, grade) VALUES ($1, $2, 'अनुष्का ठाकुर', 'FEMALE', 8)`, b.student, b.school); err != nil {
		t.Fatal(err)
	}
	return b
}

func protector(t *testing.T) *aadhaar.Protector {
	t.Helper()
	key := make([]byte, aadhaar.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	prot, err := aadhaar.NewProtector(key)
	if err != nil {
		t.Fatal(err)
	}
	return prot
}

func TestDatabaseRules(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	for name, q := range map[string]string{
		"no plaintext Aadhaar":            `UPDATE student SET aadhaar_legacy = '234567890124' WHERE id = $1`,
		"a name a certificate can't hold": `UPDATE student SET name = repeat('अ', 41) WHERE id = $1`,
		"another script":                  `UPDATE student SET name = 'Анна' WHERE id = $1`,
		"hash without ciphertext":         `UPDATE student SET aadhaar_hash = decode(repeat('ab', 32), 'hex') WHERE id = $1`,
	} {
		if _, err := b.pool.Exec(ctx, q, b.student); err == nil || !strings.Contains(err.Error(), "23514") {
			t.Errorf("%s: got %v, want a check violation", name, err)
		}
	}
}

func TestHasuraCorrectionsAreInTheTrail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		// What Hasura sets for a mutation's transaction.
		if _, err := tx.Exec(ctx, `SELECT set_config('hasura.user', '{"x-hasura-role":"school","x-hasura-user-id":"principal-1"}', true)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE student SET name = 'अनुष्का ठाकुर', father_name = 'राजेश ठाकुर', section = 'B' WHERE id = $1`, b.student)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var fields, actor string
	if err := b.pool.QueryRow(ctx, `SELECT details->>'fields', actor FROM student_event WHERE student_id = $1 AND kind = 'CORRECTED'`,
		b.student).Scan(&fields, &actor); err != nil {
		t.Fatal(err)
	}
	if fields != `["father_name", "section"]` || actor != "principal-1" {
		t.Errorf("got fields %s by %q, want father_name and section by principal-1 (values never)", fields, actor)
	}
}

func TestProtectLegacy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	valid := aadhaar.Complete("23456789012")
	// Rows written before the migration: let this throwaway database take
	// plaintext again.
	if _, err := b.pool.Exec(ctx, `ALTER TABLE student DISABLE TRIGGER student_rules`); err != nil {
		t.Fatal(err)
	}
	bad := uuid.New()
	if _, err := b.pool.Exec(ctx, `UPDATE student SET aadhaar_legacy = $2 WHERE id = $1`, b.student, valid); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `INSERT INTO student (id, school_id, name, gender, grade, aadhaar_legacy) VALUES ($1, $2, 'प्रिया', 'FEMALE', 5, '234567890120')`, bad, b.school); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `ALTER TABLE student ENABLE TRIGGER student_rules`); err != nil {
		t.Fatal(err)
	}
	done, dropped, stuck, err := student.ProtectLegacy(ctx, b.pool, b.prot)
	if err != nil || done != 1 || dropped != 1 || stuck != 0 {
		t.Fatalf("got %d protected, %d dropped, %d stuck, %v; want 1, 1, 0", done, dropped, stuck, err)
	}
	var note string
	if err := b.pool.QueryRow(ctx, `SELECT details->>'note' FROM student_event WHERE student_id = $1 AND kind = 'CORRECTED'
		AND details->'fields' = '["aadhaar"]'`, bad).Scan(&note); err != nil || strings.Contains(note, "234567890120") {
		t.Errorf("the cleared number's trail row: %q, %v; want one saying to enter it again, without the number", note, err)
	}
	store := student.NewStore(b.pool, b.prot)
	if got, err := store.RevealAadhaar(ctx, b.student); err != nil || got != valid {
		t.Errorf("revealed %q, %v; want the number back", got, err)
	}
	var left int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM student WHERE aadhaar_legacy IS NOT NULL`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d plaintext numbers left (%v)", left, err)
	}
	if done, dropped, stuck, err := student.ProtectLegacy(ctx, b.pool, b.prot); err != nil || done+dropped+stuck != 0 {
		t.Errorf("second run: %d %d %d %v, want nothing to do", done, dropped, stuck, err)
	}
}
