// Package seed fills a database with a realistic demo district — Shimla,
// Himachal Pradesh: its blocks, government schools of every level with
// real-looking UDISE codes, classes and sections, a few thousand students
// with Hindi (Devanagari) names and Indian mobile numbers (shared by
// siblings, a few missing or landlines, as in real registers), principals,
// a district admin, a state admin, an examiner and a moderator. It is
// deterministic (the same options give the same rows and ids), so the local
// default, benchmarks and manual tries all see the same district, and
// running it twice changes nothing.
package seed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/aadhaar"
)

// Options size the district.
type Options struct {
	Schools int // default 60
	Seed    uint64
	// Aadhaar protects the demo Aadhaar numbers (hash, ciphertext, last
	// four digits); without it students get none.
	Aadhaar *aadhaar.Protector
}

// Result counts what the district holds.
type Result struct {
	District                 string
	Schools, Staff, Students int
	AlreadySeeded            bool
}

// Namespace derives the demo rows' ids (uuid v5), so they are stable.
var Namespace = uuid.MustParse("6f1d9f2e-3c55-4b8a-9d0e-5a7c2b1e4f60")

const district = "Shimla"

var blocks = []string{"Basantpur", "Chauhara", "Chopal", "Jubbal", "Kotkhai", "Mashobra", "Narkanda", "Rampur", "Rohru", "Theog", "Totu"}

var villages = []string{"Dhalli", "Kufri", "Naldehra", "Matiana", "Kotkhai", "Chirgaon", "Tikkar", "Sarahan", "Jhakri",
	"Nankhari", "Kumarsain", "Nerwa", "Cheog", "Fagu", "Baldeyan", "Ghanahatti", "Shoghi", "Jutogh", "Sunni",
	"Tattapani", "Kiarkoti", "Dharampur", "Mehli", "Kasumpti", "Bhattakufer", "Mashobra", "Sainj", "Deha",
	"Kharapathar", "Hatkoti", "Jubbal", "Sawra", "Tikri", "Dodra", "Kwar", "Chanshal", "Nogli", "Dutt Nagar",
	"Khaneti", "Durgapur", "Kotgarh", "Thanedar", "Mandhol", "Pujarli", "Rajhana", "Kelvi", "Baghi", "Shilaru"}

var boys = []string{"आरव", "विवेक", "राहुल", "अमित", "रोहित", "अंकित", "सौरभ", "विशाल", "अजय", "मनीष",
	"नितिन", "प्रवीण", "संजय", "दीपक", "अभिषेक", "हर्ष", "यश", "कुणाल", "आदित्य", "अर्जुन", "कार्तिक", "तरुण", "ऋषभ", "गौरव"}

var girls = []string{"प्रिया", "अंजलि", "नेहा", "पूजा", "सीमा", "ज्योति", "रितिका", "कविता", "स्नेहा", "दिव्या",
	"आरती", "मीनाक्षी", "सोनिया", "तनु", "शिवानी", "पल्लवी", "काजल", "ईशा", "साक्षी", "अनुष्का", "कृतिका", "भारती"}

var surnames = []string{"ठाकुर", "शर्मा", "वर्मा", "चौहान", "नेगी", "कंवर", "राणा", "कश्यप", "मेहता", "भारद्वाज",
	"पठानिया", "सूद", "डोगरा", "चंदेल", "कटोच", "जसवाल", "रांटा", "झिंटा", "खाची", "मेहता"}

// Mobile series common in Himachal (Airtel, BSNL, Jio, Vi).
var mobilePrefixes = []string{"94180", "98160", "98050", "70180", "82190", "88940", "62300", "78071", "97360", "80910"}

type level struct {
	prefix   string
	from, to int
	sections int
}

var levels = []level{
	{"GPS", 1, 5, 1},  // Government Primary School
	{"GMS", 6, 8, 1},  // Government Middle School
	{"GHS", 6, 10, 1}, // Government High School
	{"GSSS", 6, 12, 2},
}

// Demo seeds the district. If it is already there it reports the counts and
// changes nothing.
func Demo(ctx context.Context, pool *pgxpool.Pool, opts Options) (Result, error) {
	if opts.Schools <= 0 {
		opts.Schools = 60
	}
	res := Result{District: district}
	g := &gen{rng: rand.New(rand.NewPCG(opts.Seed, 0x5a1a)), now: time.Now(), protect: opts.Aadhaar}
	rng := g.rng

	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM school WHERE district = $1", district).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			res.AlreadySeeded = true
			return tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM school WHERE district = $1),
				(SELECT count(*) FROM staff s JOIN school sc ON sc.id = s.school_id WHERE sc.district = $1),
				(SELECT count(*) FROM student s JOIN school sc ON sc.id = s.school_id WHERE sc.district = $1)`,
				district).Scan(&res.Schools, &res.Staff, &res.Students)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO academic_year (id, starts_on, ends_on, is_current) VALUES
			('2025-26', '2025-04-01', '2026-03-31', false), ('2026-27', '2026-04-01', '2027-03-31', true)
			ON CONFLICT (id) DO NOTHING`); err != nil {
			return err
		}

		var schoolRows, staffRows, studentRows [][]any
		for i := range opts.Schools {
			blockNo := i % len(blocks)
			lv := levels[rng.IntN(len(levels))]
			village := villages[rng.IntN(len(villages))]
			udise := fmt.Sprintf("0211%02d%03d%02d", blockNo+1, 100+rng.IntN(800), i%100)
			schoolID := uuid.NewSHA1(Namespace, []byte("school:"+udise))
			session := "W"
			if rng.IntN(5) == 0 {
				session = "S"
			}
			schoolRows = append(schoolRows, []any{schoolID, udise, lv.prefix + " " + village, district, blocks[blockNo], session, true})
			staffRows = append(staffRows, []any{"school-" + udise, "प्रधानाचार्य " + village, mobile(rng), "school", schoolID, district})

			admission := 0
			for grade := lv.from; grade <= lv.to; grade++ {
				for s := range lv.sections {
					section := string(rune('A' + s))
					for range 6 + rng.IntN(18) {
						admission++
						studentRows = append(studentRows, g.student(schoolID, udise, admission, grade, section))
					}
				}
			}
		}
		staffRows = append(staffRows,
			[]any{"district-shimla", "जिला शिक्षा अधिकारी शिमला", mobile(rng), "district_admin", nil, district},
			[]any{"state-admin", "राज्य परियोजना निदेशक", mobile(rng), "state_admin", nil, nil},
			[]any{"examiner-demo", "परीक्षक डेमो", mobile(rng), "examiner", nil, nil},
			[]any{"moderator-demo", "शिक्षक मॉडरेटर", mobile(rng), "moderator", nil, nil},
		)

		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"school"},
			[]string{"id", "udise", "name", "district", "block", "session", "active"}, pgx.CopyFromRows(schoolRows)); err != nil {
			return fmt.Errorf("seed schools: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staff"},
			[]string{"user_id", "name", "phone", "role", "school_id", "district"}, pgx.CopyFromRows(staffRows)); err != nil {
			return fmt.Errorf("seed staff: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"student"},
			[]string{"id", "school_id", "name", "father_name", "mother_name", "guardian_phone", "gender", "category",
				"date_of_birth", "admission_number", "admission_date", "grade", "section", "stream", "academic_year",
				"aadhaar_hash", "aadhaar_ciphertext", "aadhaar_last4", "is_cwsn", "status", "enabled"}, pgx.CopyFromRows(studentRows)); err != nil {
			return fmt.Errorf("seed students: %w", err)
		}
		res.Schools, res.Staff, res.Students = len(schoolRows), len(staffRows), len(studentRows)
		return nil
	})
	return res, err
}

var categories = []string{"GENERAL", "GENERAL", "GENERAL", "SC", "SC", "ST", "OBC", "OBC", "EWS"}

var streams = []string{"SCIENCE_MEDICAL", "SCIENCE_NON_MEDICAL", "COMMERCE", "ARTS", "ARTS"}

// gen generates rows from one random stream.
type gen struct {
	rng *rand.Rand
	now time.Time
	// lastPhone lets siblings share a guardian's phone, as they do.
	lastPhone string
	protect   *aadhaar.Protector
}

func (g *gen) student(schoolID uuid.UUID, udise string, admission, grade int, section string) []any {
	rng, now := g.rng, g.now
	gender, first := "MALE", boys[rng.IntN(len(boys))]
	if rng.IntN(2) == 0 {
		gender, first = "FEMALE", girls[rng.IntN(len(girls))]
	}
	surname := surnames[rng.IntN(len(surnames))]
	father := boys[rng.IntN(len(boys))] + " " + surname
	mother := girls[rng.IntN(len(girls))] + " देवी"

	var phone any
	switch r := rng.IntN(100); {
	case r < 2: // no phone in the register
	case r < 3:
		phone = fmt.Sprintf("0177-26%05d", rng.IntN(100000)) // a Shimla landline
	case r < 5:
		phone = "0" + mobile(rng)[3:] // trunk prefix, as often written
	case r < 12 && g.lastPhone != "":
		phone = g.lastPhone // a sibling
	default:
		phone = mobile(rng)
	}
	if s, ok := phone.(string); ok {
		g.lastPhone = s
	}

	var stream any
	if grade >= 11 {
		stream = streams[rng.IntN(len(streams))]
	}
	var hash, ciphertext, last4 any
	if rng.IntN(10) < 8 {
		number := aadhaar.Complete(fmt.Sprintf("%d%010d", 2+rng.IntN(8), rng.Int64N(1e10)))
		if g.protect != nil {
			p, err := g.protect.Protect(number)
			if err == nil {
				hash, ciphertext, last4 = p.Hash, p.Ciphertext, p.Last4
			}
		}
	}
	age := 5 + grade
	dob := time.Date(now.Year()-age, time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
	admitted := time.Date(now.Year()-rng.IntN(grade), 4, 1, 0, 0, 0, 0, time.UTC)
	number := fmt.Sprintf("%s/%04d", udise[7:], admission)
	return []any{
		uuid.NewSHA1(Namespace, []byte("student:"+udise+":"+number)), schoolID,
		first + " " + surname, father, mother, phone, gender, categories[rng.IntN(len(categories))],
		dob, number, admitted, grade, section, stream, "2026-27", hash, ciphertext, last4, rng.IntN(40) == 0, "ACTIVE", true,
	}
}

func mobile(rng *rand.Rand) string {
	return fmt.Sprintf("+91%s%05d", mobilePrefixes[rng.IntN(len(mobilePrefixes))], rng.IntN(100000))
}
