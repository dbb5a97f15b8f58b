package student_test

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/aadhaar"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/schema"
	"github.com/shala-edu/shala/internal/student"
	"github.com/shala-edu/shala/migrations"
)

// firstStudentsMigration is the migration that protected Aadhaar numbers
// and added the name rules: rows written before it are "legacy".
const firstStudentsMigration = 1795313000000

// migrationsFrom is the repository's migrations before version (from
// false) or from version on (from true).
func migrationsFrom(t *testing.T, version int64, from bool) fs.FS {
	t.Helper()
	ms, err := schema.Load(migrations.Default())
	if err != nil {
		t.Fatal(err)
	}
	out := fstest.MapFS{}
	for _, m := range ms {
		if (m.Version >= version) == from {
			out[fmt.Sprintf("%d_%s/up.sql", m.Version, m.Name)] = &fstest.MapFile{Data: []byte(m.Up)}
		}
	}
	return out
}

// legacySetup is a database migrated up to just before the students
// migration, with students written then (names the newer rules refuse,
// Aadhaar numbers in plaintext), and then migrated to the end — what a
// deployment that ran the registry before this feature looks like.
func legacySetup(t *testing.T) (pool *pgxpool.Pool, school uuid.UUID, ids []uuid.UUID) {
	t.Helper()
	pool = pgtest.New(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if _, err := schema.Migrate(ctx, pool, migrationsFrom(t, firstStudentsMigration, false), log); err != nil {
		t.Fatal(err)
	}
	school = uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO academic_year (id, starts_on, ends_on, is_current) VALUES
			('2025-26', '2025-04-01', '2026-03-31', false), ('2026-27', '2026-04-01', '2027-03-31', true)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO school (id, udise, name, district, block, session) VALUES ($1, '02110512345', 'GSSS Kotkhai', 'Shimla', 'Kotkhai', 'W')`, school); err != nil {
		t.Fatal(err)
	}
	// The old register: a name in brackets, one of 45 characters, a parent
	// "S/O" style; every Aadhaar in plaintext.
	for i, name := range []string{"Ram Kumar (Junior)", strings.Repeat("अनुष्का ", 5) + "ठाकुर", "प्रिया शर्मा"} {
		id := uuid.New()
		if _, err := pool.Exec(ctx, `INSERT INTO student (id, school_id, name, father_name, gender, grade, section, academic_year, aadhaar)
				VALUES ($1, $2, $3, 'S/O Shyam Lal', 'FEMALE', 5, 'A', '2025-26', $4)`,
			id, school, name, aadhaar.Complete(fmt.Sprintf("2345678901%d", i))); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := schema.Migrate(ctx, pool, migrations.Default(), log); err != nil {
		t.Fatal(err)
	}
	return pool, school, ids
}

// TestLegacyRowsStayWorkable: students written before the name and
// plaintext rules can still be encrypted, promoted and corrected; only what
// a write sets is held to the newer rules.
func TestLegacyRowsStayWorkable(t *testing.T) {
	t.Parallel()
	pool, school, ids := legacySetup(t)
	ctx := context.Background()
	prot := protector(t)

	done, dropped, stuck, err := student.ProtectLegacy(ctx, pool, prot)
	if err != nil || done != 3 || dropped != 0 || stuck != 0 {
		t.Errorf("encrypting old Aadhaar numbers: got %d protected, %d dropped, %d stuck, %v; want 3, 0, 0", done, dropped, stuck, err)
	}

	store := student.NewStore(pool, prot)
	res, err := store.Promote(ctx, school, "principal-1", student.Promotion{FromGrade: 5, AcademicYear: "2025-26", ToAcademicYear: "2026-27"})
	if err != nil || res.Promoted != 3 {
		t.Fatalf("promoting a class with old names: got %+v, %v; want 3 promoted", res, err)
	}

	// A correction through Hasura of something else than the name.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('hasura.user', '{"x-hasura-role":"school","x-hasura-user-id":"principal-1"}', true)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE student SET guardian_phone = '+919816012345' WHERE id = $1`, ids[0])
		return err
	})
	if err != nil {
		t.Errorf("correcting the phone of a student with an old name: %v", err)
	}

	// What a write sets is held to the rules.
	for name, q := range map[string]string{
		"a new bracketed name":    `UPDATE student SET name = 'Ram (Jr)' WHERE id = $1`,
		"an Aadhaar in plaintext": `UPDATE student SET aadhaar_legacy = '234567890124' WHERE id = $1`,
		"a long father's name":    `UPDATE student SET father_name = repeat('क', 37) WHERE id = $1`,
	} {
		if _, err := pool.Exec(ctx, q, ids[0]); err == nil || !strings.Contains(err.Error(), "23514") {
			t.Errorf("%s: got %v, want a check violation", name, err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO student (school_id, name, gender, grade) VALUES ($1, 'Ram (Jr)', 'MALE', 3)`, school); err == nil ||
		!strings.Contains(err.Error(), "student_name_certificate") {
		t.Errorf("inserting a bracketed name: got %v, want student_name_certificate", err)
	}
	// Correcting the name to one a certificate can carry works.
	if _, err := pool.Exec(ctx, `UPDATE student SET name = 'Ram Kumar' WHERE id = $1`, ids[0]); err != nil {
		t.Errorf("correcting an old name: %v", err)
	}
}
