// Command listing benchmarks the school's assessment home page at state
// scale. It loads the state data set (shala seed --state: 12 districts,
// 18,000 schools, 1.5 M students, 20 assessments, ≈ 30 M results) into a
// durable cluster and reports its load time and size, then measures, in the
// same run:
//
//   - the listing (GET /schools/me/assessments with a school's Hasura JWT,
//     through the real router) for random schools at 64 concurrent readers;
//   - the notModified path (the same with If-None-Match: the current ETag);
//   - the write path: one result per transaction with its counter
//     maintenance, 30 teachers in 30 schools, 30 teachers of one school at
//     once, and the same without the counter triggers;
//   - EXPLAIN ANALYZE of the listing's queries (to stderr), checked for
//     sequential scans of the big tables.
//
// It prints one result line.
//
//	go run ./bench/listing [-scale 1] [-readers 64] [-writers 30] [-duration 10s]
//
// BENCH_DATABASE_URL reuses a database (a loaded one is not loaded again).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/bench/benchdb"
	"github.com/shala-edu/shala/bench/wrk"
	"github.com/shala-edu/shala/internal/auth"
	"github.com/shala-edu/shala/internal/progress"
	"github.com/shala-edu/shala/internal/seed"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/listing:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	scale := flag.Float64("scale", 1, "fraction of the state's size to load (1: 18,000 schools, ≈30 M results)")
	readers := flag.Int("readers", 64, "concurrent listing readers")
	writers := flag.Int("writers", 30, "concurrent teachers writing results")
	writes := flag.Int("writes", 150, "results each teacher writes (one per transaction)")
	duration := flag.Duration("duration", 10*time.Second, "duration of each read measurement")
	sample := flag.Int("schools", 2000, "random schools the readers ask for")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the listing measurement to this file")
	flag.Parse()
	if !(*scale > 0) || math.IsInf(*scale, 0) {
		return fmt.Errorf("-scale %v: want a fraction of the state's size above 0 (1: the whole state)", *scale)
	}
	if !wrk.Installed() {
		return errors.New("needs wrk (make tools, or apt-get install wrk)")
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := enoughDisk(*scale); err != nil {
		return err
	}
	pool, cleanup, err := benchdb.Open(ctx, int32(*readers+*writers+16))
	if err != nil {
		return err
	}
	defer cleanup()

	// Load.
	res, err := seed.State(ctx, pool, seed.StateOptions{Scale: *scale, Progress: func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	}})
	if err != nil {
		return err
	}
	var dbSize int64
	var schools, students, results int64
	if err := pool.QueryRow(ctx, `SELECT pg_database_size(current_database()), (SELECT count(*) FROM school),
		(SELECT count(*) FROM student), (SELECT reltuples::bigint FROM pg_class WHERE relname = 'assessment_result')`).
		Scan(&dbSize, &schools, &students, &results); err != nil {
		return err
	}
	load := "reused"
	if !res.AlreadySeeded {
		load = res.Elapsed.Round(time.Second).String()
	}

	// shala, with the apps' JWT configuration.
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	secret := fmt.Sprintf(`{"type": "HS256", "key": %q}`, hex.EncodeToString(key))
	a, closeApp, err := benchdb.NewApp(ctx, pool, map[string]string{
		"HASURA_GRAPHQL_JWT_SECRET": secret,
		"SHALA_QUEUE_WORKERS":       "0",
		"SHALA_PUBLIC_RATE":         "1e9", // one load generator, one IP
		"SHALA_PUBLIC_BURST":        fmt.Sprint(1 << 30),
	}, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeApp()) }()
	base, stop, err := benchdb.Serve(ctx, a.Handler(), log)
	if err != nil {
		return err
	}
	defer stop()
	jc, err := auth.ParseConfig(secret)
	if err != nil {
		return err
	}
	issuer, err := auth.NewIssuer(jc, nil, "", nil)
	if err != nil {
		return err
	}
	ids, err := randomSchools(ctx, pool, *sample)
	if err != nil {
		return err
	}
	tokens, etags := make([]string, len(ids)), make([]string, len(ids))
	for i, id := range ids {
		if tokens[i], err = issuer.Mint("bench-teacher", []string{"school"}, "school",
			map[string]string{"x-hasura-school-id": id.String()}, 2*time.Hour); err != nil {
			return err
		}
		if etags[i], err = a.Listings.Version(ctx, id); err != nil {
			return err
		}
	}
	size, err := checkEndpoint(base, tokens[0], etags[0])
	if err != nil {
		return err
	}

	// Reads.
	url := base + "/schools/me/assessments"
	if _, err := wrk.Run(url, readScript(tokens, nil), nil, *readers, 2*time.Second); err != nil { // warm up
		return err
	}
	stopProfile, err := benchdb.Profile(*cpuProfile)
	if err != nil {
		return err
	}
	listing, err := wrk.Run(url, readScript(tokens, nil), nil, *readers, *duration)
	stopProfile()
	if err != nil {
		return err
	}
	notModified, err := wrk.Run(url, readScript(tokens, etags), nil, *readers, *duration)
	if err != nil {
		return err
	}
	indexed, err := explain(ctx, pool, ids[0])
	if err != nil {
		return err
	}

	// Writes.
	w := &writeBench{pool: pool, perTeacher: *writes, used: []uuid.UUID{}}
	spread, err := w.teachersInSchools(ctx, *writers)
	if err != nil {
		return err
	}
	oneSchool, err := w.teachersOfOneSchool(ctx, *writers)
	if err != nil {
		return err
	}
	unmaintained, err := w.teachersInSchools(ctx, *writers)
	if err != nil {
		return err
	}
	wSpread, err := w.run(ctx, spread)
	if err != nil {
		return err
	}
	wOne, err := w.run(ctx, oneSchool)
	if err != nil {
		return err
	}
	// The counters' triggers on an insert: the BEFORE statement one that
	// counts the query's statements and the AFTER one that applies them.
	if _, err := pool.Exec(ctx, `ALTER TABLE assessment_result DISABLE TRIGGER assessment_result_progress_start;
		ALTER TABLE assessment_result DISABLE TRIGGER assessment_result_progress_insert`); err != nil {
		return err
	}
	wOff, err := w.run(ctx, unmaintained)
	if _, e := pool.Exec(ctx, `ALTER TABLE assessment_result ENABLE TRIGGER assessment_result_progress_start;
		ALTER TABLE assessment_result ENABLE TRIGGER assessment_result_progress_insert`); e != nil {
		err = errors.Join(err, e)
	}
	if err != nil {
		return err
	}
	if err := w.recount(ctx, unmaintained); err != nil { // their counters were not kept: count them
		return err
	}
	if err := w.checkCounters(ctx, spread, oneSchool); err != nil {
		return err
	}

	fmt.Printf("bench/listing: scale=%g schools=%d students=%d results=%.1fM load=%s db=%.1fGB | "+
		"listing p50=%.2fms p99=%.2fms %.0f/s (%d readers, %d random schools, %.1f kB) failures=%d | "+
		"notModified p50=%.2fms p99=%.2fms %.0f/s failures=%d | index scans only: %v | "+
		"writes (1 result/tx, %d teachers): 30 schools %.0f tx/s p50=%.2fms p99=%.2fms; one school %.0f tx/s p50=%.2fms p99=%.2fms (ratio %.2f); "+
		"counters off %.0f tx/s p99=%.2fms (counters cost %.0f%%) | cpus=%d\n",
		*scale, schools, students, float64(results)/1e6, load, float64(dbSize)/(1<<30),
		ms(listing.P50), ms(listing.P99), listing.PerSecond, *readers, len(ids), float64(size)/1000, listing.Failures,
		ms(notModified.P50), ms(notModified.P99), notModified.PerSecond, notModified.Failures, indexed,
		*writers, wSpread.perSecond, ms(wSpread.p50), ms(wSpread.p99), wOne.perSecond, ms(wOne.p50), ms(wOne.p99), wOne.perSecond/wSpread.perSecond,
		wOff.perSecond, ms(wOff.p99), 100*(wOff.perSecond/wSpread.perSecond-1), runtime.NumCPU())
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// enoughDisk refuses to start a load that would not fit: about 20 GB per
// unit of scale (the database ≈ 10 GB, WAL and temp files).
func enoughDisk(scale float64) error {
	if os.Getenv("BENCH_DATABASE_URL") != "" {
		return nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(os.TempDir(), &st); err != nil {
		return err
	}
	free := float64(st.Bavail) * float64(st.Bsize)
	if need := 20e9 * scale; free < need {
		return fmt.Errorf("%s has %.0f GB free, the load at scale %g needs about %.0f GB", os.TempDir(), free/1e9, scale, need/1e9)
	}
	return nil
}

func randomSchools(ctx context.Context, pool *pgxpool.Pool, n int) ([]uuid.UUID, error) {
	rows, err := pool.Query(ctx, `SELECT id FROM school ORDER BY random() LIMIT $1`, n)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// checkEndpoint makes sure the endpoint answers 200 with the listing and
// 304 to its ETag before measuring, and returns the listing's size.
func checkEndpoint(base, token, etag string) (int, error) {
	get := func(inm string) (*http.Response, []byte, error) {
		req, _ := http.NewRequest(http.MethodGet, base+"/schools/me/assessments", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if inm != "" {
			req.Header.Set("If-None-Match", `"`+inm+`"`)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	resp, body, err := get("")
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"assessments":[{`) {
		return 0, fmt.Errorf("listing: %d %.200s", resp.StatusCode, body)
	}
	if resp, _, err = get(etag); err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusNotModified {
		return 0, fmt.Errorf("If-None-Match with the current ETag: %d, want 304", resp.StatusCode)
	}
	return len(body), nil
}

// readScript asks for a random school's listing on every request (with
// its ETag as If-None-Match when etags are given).
func readScript(tokens, etags []string) []byte {
	var b strings.Builder
	b.WriteString("thread_no = 0\nlocal threads = {}\nfunction setup(thread)\n  thread:set(\"thread_no\", #threads + 1)\n  table.insert(threads, thread)\nend\n")
	b.WriteString("function init(args)\n  math.randomseed(os.time() * 100 + thread_no)\nend\n")
	b.WriteString("local tokens = {\"" + strings.Join(tokens, "\", \"") + "\"}\n")
	if etags != nil {
		b.WriteString("local etags = {\"" + strings.Join(etags, "\", \"") + "\"}\n")
	} else {
		b.WriteString("local etags = nil\n")
	}
	b.WriteString(`request = function()
  local i = math.random(#tokens)
  local h = {["Authorization"] = "Bearer " .. tokens[i]}
  if etags then h["If-None-Match"] = '"' .. etags[i] .. '"' end
  return wrk.format("GET", "/schools/me/assessments", h)
end
`)
	return []byte(b.String())
}

var bigTables = regexp.MustCompile(`Seq Scan on (assessment_progress|school_class|assessment_class|assessment_result|assessment_tsp|student|school)\b`)

// explain prints the plans of the listing's queries for school and says
// whether every big table was read through an index.
func explain(ctx context.Context, pool *pgxpool.Pool, school uuid.UUID) (bool, error) {
	queries := progress.ListingQueries()
	names := make([]string, 0, len(queries))
	for n := range queries {
		names = append(names, n)
	}
	slices.Sort(names)
	ok := true
	for _, n := range names {
		rows, err := pool.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF, SUMMARY OFF) "+queries[n], school)
		if err != nil {
			return false, fmt.Errorf("explain %s: %w", n, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return false, err
		}
		plan := strings.Join(lines, "\n")
		fmt.Fprintf(os.Stderr, "-- listing query %q\n%s\n", n, plan)
		if bigTables.MatchString(plan) {
			ok = false
		}
	}
	return ok, nil
}

// A teacher writes results of their class, one per transaction.
type teacher struct {
	school  uuid.UUID
	targets []target
}

type target struct {
	assessment, student uuid.UUID
	component           *uuid.UUID
	subject             string
}

type writeResult struct {
	perSecond float64
	p50, p99  time.Duration
}

type writeBench struct {
	pool       *pgxpool.Pool
	perTeacher int
	used       []uuid.UUID // schools already given teachers
}

// targets are every result a school can still write (open assessments in
// marks, no result yet, class not final), grouped by (class, subject): a
// teacher's work, ordered as they enter it — assessment, then student.
func (w *writeBench) targets(ctx context.Context, school uuid.UUID) ([][]target, error) {
	rows, err := w.pool.Query(ctx, `SELECT a.id, s.id, c.id, x.subject, s.grade, coalesce(s.section, 'A')
		FROM student s
		JOIN school sc ON sc.id = s.school_id
		JOIN assessment_subject x ON x.grade = s.grade
		JOIN assessment a ON a.id = x.assessment_id AND a.enabled AND a.evaluation = 'MARKS'
		JOIN assessment_deadline d ON d.assessment_id = a.id AND d.district = sc.district AND d.session = sc.session AND d.due_at > now()
		LEFT JOIN assessment_component c ON c.assessment_id = a.id
		WHERE s.school_id = $1 AND s.status = 'ACTIVE' AND s.enabled
			AND NOT EXISTS (SELECT 1 FROM assessment_result r WHERE r.assessment_id = a.id AND r.student_id = s.id
				AND r.subject = x.subject AND r.component_id IS NOT DISTINCT FROM c.id)
			AND NOT EXISTS (SELECT 1 FROM assessment_class f WHERE f.assessment_id = a.id AND f.school_id = s.school_id
				AND f.grade = s.grade AND f.section = coalesce(s.section, 'A') AND f.final)
		ORDER BY s.grade, s.section, x.subject, a.id, s.id, c.id`, school)
	if err != nil {
		return nil, err
	}
	groups := map[string][]target{}
	var keys []string
	for rows.Next() {
		var t target
		var comp *uuid.UUID
		var grade int
		var section string
		if err := rows.Scan(&t.assessment, &t.student, &comp, &t.subject, &grade, &section); err != nil {
			return nil, err
		}
		t.component = comp
		k := fmt.Sprintf("%02d-%s %s", grade, section, t.subject)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([][]target, 0, len(keys))
	for _, k := range keys {
		out = append(out, groups[k])
	}
	return out, nil
}

// teachersInSchools is n teachers, each in a school of their own with a
// class's work of at least perTeacher results.
func (w *writeBench) teachersInSchools(ctx context.Context, n int) ([]teacher, error) {
	rows, err := w.pool.Query(ctx, `SELECT id FROM school WHERE id <> ALL ($1) ORDER BY random() LIMIT $2`, w.used, 20*n)
	if err != nil {
		return nil, err
	}
	candidates, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, err
	}
	var out []teacher
	for _, s := range candidates {
		groups, err := w.targets(ctx, s)
		if err != nil {
			return nil, err
		}
		slices.SortFunc(groups, func(a, b []target) int { return len(b) - len(a) })
		if len(groups) == 0 || len(groups[0]) < w.perTeacher {
			continue
		}
		out = append(out, teacher{school: s, targets: groups[0][:w.perTeacher]})
		w.used = append(w.used, s)
		if len(out) == n {
			return out, nil
		}
	}
	return nil, fmt.Errorf("only %d schools have a class with %d results to write; lower -writes", len(out), w.perTeacher)
}

// teachersOfOneSchool is n teachers of the school with the most students,
// each with their own classes and subjects (a class's subject split
// between two teachers when there are more teachers than that).
func (w *writeBench) teachersOfOneSchool(ctx context.Context, n int) ([]teacher, error) {
	var school uuid.UUID
	if err := w.pool.QueryRow(ctx, `SELECT school_id FROM student WHERE school_id <> ALL ($1) GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`,
		w.used).Scan(&school); err != nil {
		return nil, err
	}
	w.used = append(w.used, school)
	groups, err := w.targets(ctx, school)
	if err != nil {
		return nil, err
	}
	for len(groups) < n {
		slices.SortFunc(groups, func(a, b []target) int { return len(b) - len(a) })
		if len(groups[0]) < 2 {
			return nil, fmt.Errorf("the largest school has too little to write for %d teachers", n)
		}
		half := len(groups[0]) / 2
		groups = append(groups[1:], groups[0][:half], groups[0][half:])
	}
	out := make([]teacher, n)
	for i, g := range groups {
		out[i%n].school = school
		out[i%n].targets = append(out[i%n].targets, g...)
	}
	for _, t := range out {
		if len(t.targets) < w.perTeacher {
			return nil, fmt.Errorf("a teacher of the largest school has %d results to write, fewer than %d; lower -writes", len(t.targets), w.perTeacher)
		}
	}
	for i := range out {
		out[i].targets = out[i].targets[:w.perTeacher]
	}
	return out, nil
}

// run lets every teacher write their results at once, one result per
// transaction as the app's mutation does, and measures them.
func (w *writeBench) run(ctx context.Context, teachers []teacher) (writeResult, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	start := time.Now()
	var wg sync.WaitGroup
	for _, t := range teachers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(t.school[15]), 1))
			mine := make([]time.Duration, 0, len(t.targets))
			for _, x := range t.targets {
				marks := rng.IntN(21)
				if x.component == nil {
					marks = rng.IntN(101)
				}
				began := time.Now()
				_, err := w.pool.Exec(ctx, `INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, component_id, present, marks, submitted_by)
					VALUES ($1, $2, $3, $4, $5, true, $6, 'bench-teacher')`, x.assessment, t.school, x.student, x.subject, x.component, marks)
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(began))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return writeResult{}, firstErr
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(math.Ceil(p*float64(len(lat))))-1] }
	return writeResult{perSecond: float64(len(lat)) / elapsed.Seconds(), p50: pct(0.5), p99: pct(0.99)}, nil
}

// recount rebuilds the counters of the assessments the teachers wrote.
func (w *writeBench) recount(ctx context.Context, teachers []teacher) error {
	for _, a := range assessmentsOf(teachers) {
		if _, err := w.pool.Exec(ctx, `SELECT assessment_progress_rebuild($1)`, a); err != nil {
			return err
		}
	}
	return nil
}

func assessmentsOf(groups ...[]teacher) []uuid.UUID {
	var out []uuid.UUID
	for _, g := range groups {
		for _, t := range g {
			for _, x := range t.targets {
				if !slices.Contains(out, x.assessment) {
					out = append(out, x.assessment)
				}
			}
		}
	}
	return out
}

// checkCounters compares the counters of the assessments the teachers wrote
// (with their triggers on) with a count from scratch.
func (w *writeBench) checkCounters(ctx context.Context, groups ...[]teacher) error {
	written := assessmentsOf(groups...)
	var schools []uuid.UUID
	for _, g := range groups {
		for _, t := range g {
			schools = append(schools, t.school)
		}
	}
	diffs, err := progress.DriftOf(ctx, w.pool, written, schools)
	if err != nil {
		return err
	}
	if len(diffs) > 0 {
		return fmt.Errorf("counters differ from a recount after the writes: %q", diffs)
	}
	return nil
}
