package seed_test

import (
	"context"
	"testing"
	"unicode"

	"github.com/shala-edu/shala/internal/aadhaar"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/seed"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestDemoDistrictIsRealisticAndIdempotent(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	ctx := context.Background()
	key := make([]byte, aadhaar.KeySize)
	protector, err := aadhaar.NewProtector(key)
	if err != nil {
		t.Fatal(err)
	}
	res, err := seed.Demo(ctx, pool, seed.Options{Aadhaar: protector})
	if err != nil {
		t.Fatal(err)
	}
	if res.Schools != 60 || res.Students < 2000 {
		t.Errorf("got %+v, want 60 schools and a few thousand students", res)
	}
	again, err := seed.Demo(ctx, pool, seed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !again.AlreadySeeded || again.Students != res.Students || again.Schools != res.Schools {
		t.Errorf("second run: %+v, want the same counts, already seeded", again)
	}

	var name, udise, phone string
	if err := pool.QueryRow(ctx, `SELECT s.name, sc.udise, s.guardian_phone FROM student s JOIN school sc ON sc.id = s.school_id
		WHERE s.guardian_phone LIKE '+91%' LIMIT 1`).Scan(&name, &udise, &phone); err != nil {
		t.Fatal(err)
	}
	if !hasDevanagari(name) {
		t.Errorf("student name %q is not Devanagari", name)
	}
	if len(udise) != 11 || len(phone) != 13 || phone[3] < '6' {
		t.Errorf("udise %q phone %q: want 11 digits and +91 followed by a mobile number", udise, phone)
	}
	rows, err := pool.Query(ctx, `SELECT aadhaar_ciphertext, aadhaar_last4 FROM student WHERE aadhaar_hash IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for rows.Next() {
		var ct []byte
		var last4 string
		if err := rows.Scan(&ct, &last4); err != nil {
			t.Fatal(err)
		}
		a, err := protector.Reveal(ct)
		if err != nil || !aadhaar.Valid(a) || a[8:] != last4 {
			t.Fatalf("seeded Aadhaar (last four %s) does not decrypt to a Verhoeff-valid number ending so: %v", last4, err)
		}
		seen++
	}
	if seen < res.Students/2 {
		t.Errorf("got %d students with Aadhaar, want most of %d", seen, res.Students)
	}
	var shared int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT guardian_phone FROM student
		WHERE guardian_phone IS NOT NULL GROUP BY 1 HAVING count(*) > 1) x`).Scan(&shared); err != nil {
		t.Fatal(err)
	}
	if shared == 0 {
		t.Error("no siblings share a phone: the SMS de-duplication would go untested on demo data")
	}
}

func hasDevanagari(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Devanagari, r) {
			return true
		}
	}
	return false
}
