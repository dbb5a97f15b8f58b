// Command certificates benchmarks School Leaving Certificates: how many
// certificates per second this machine makes end to end (sign + QR + PDF in
// a warm Chromium pool) and the split between the three, next to the same
// pool printing a blank A4 page (the renderer's floor) in the same run; and
// the latency of the issueLeavingCertificate action (without the PDF, which
// is a job) at 16 concurrent callers, through the real router and a durable
// database, next to the ping action at the same concurrency. One line.
//
//	go run ./bench/certificates [-n 40] [-tabs 2] [-issues 800] [-callers 16]
//
// Signing here uses the development key (ed25519 in process); with Vault
// each signature adds one round trip to the transit engine.
package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/bench/benchdb"
	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/certificate"
	"github.com/shala-edu/shala/internal/pdf"
)

const secret = "bench-webhook-secret-0123456789"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/certificates:", err)
		os.Exit(1)
	}
}

func run() error {
	n := flag.Int("n", 40, "certificates rendered end to end (and blank pages for the reference)")
	tabs := flag.Int("tabs", 2, "Chromium tabs (renders at once)")
	issues := flag.Int("issues", 800, "issueLeavingCertificate calls")
	callers := flag.Int("callers", 16, "concurrent callers of the action")
	flag.Parse()
	ctx := context.Background()

	pipe, err := pipeline(ctx, *n, *tabs)
	if err != nil {
		return err
	}
	issue, ping, err := issueLatency(ctx, *issues, *callers)
	if err != nil {
		return err
	}
	fmt.Printf("certificates: %.1f/s end to end with %d tabs (sign %.0f µs, QR %.1f ms, PDF %.0f ms each); blank A4 %.1f/s (ratio %.2f) | issueLeavingCertificate at %d callers: p50 %.1f ms p99 %.1f ms (ping p50 %.1f ms p99 %.1f ms)\n",
		pipe.certsPerSec, *tabs, pipe.sign.Seconds()*1e6, pipe.qr.Seconds()*1e3, pipe.pdf.Seconds()*1e3,
		pipe.blankPerSec, pipe.certsPerSec/pipe.blankPerSec, *callers,
		ms(issue, 50), ms(issue, 99), ms(ping, 50), ms(ping, 99))
	return nil
}

type pipelineResult struct {
	certsPerSec, blankPerSec float64
	sign, qr, pdf            time.Duration // mean per certificate
}

func snapshot() *certificate.Snapshot {
	dob := time.Date(2012, 3, 4, 0, 0, 0, 0, time.UTC)
	return &certificate.Snapshot{ID: uuid.New(), IssuerUDISE: "02110512345", IssuerName: "राजकीय वरिष्ठ माध्यमिक पाठशाला कोटखाई",
		Name: "अनुष्का ठाकुर", FatherName: "राजेश ठाकुर", MotherName: "सुनीता देवी", DateOfBirth: &dob, Gender: "FEMALE",
		Category: "OBC", Grade: 8, Section: "B", AdmissionNumber: "12345/0042", LeavingDate: time.Now().UTC().Truncate(24 * time.Hour),
		Reason: certificate.ReasonTransferInState, IssuedAt: time.Now()}
}

// pipeline measures sign, QR and PDF separately (means), then the whole
// pipeline with tabs workers, then blank pages through the same pool.
func pipeline(ctx context.Context, n, tabs int) (pipelineResult, error) {
	var res pipelineResult
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return res, err
	}
	signer := certificate.NewDevSigner(priv)
	pool, err := pdf.New(ctx, pdf.Options{Tabs: tabs})
	if err != nil {
		return res, err
	}
	defer pool.Close()
	one := func(timed bool) error {
		s := snapshot()
		t0 := time.Now()
		payload, err := certificate.Seal(ctx, signer, s)
		if err != nil {
			return err
		}
		t1 := time.Now()
		if _, err := certificate.NewQR(payload); err != nil {
			return err
		}
		t2 := time.Now()
		page, err := certificate.Document(&certificate.Record{Snapshot: *s, Payload: payload}, "https://shala.example")
		if err != nil {
			return err
		}
		if _, err := pool.Render(ctx, page.Style, page.Body); err != nil {
			return err
		}
		if timed {
			res.sign += t1.Sub(t0)
			res.qr += t2.Sub(t1)
			res.pdf += time.Since(t2)
		}
		return nil
	}
	for range tabs { // warm every tab
		if err := one(false); err != nil {
			return res, err
		}
	}
	for range n { // the split, one at a time
		if err := one(true); err != nil {
			return res, err
		}
	}
	res.sign, res.qr, res.pdf = res.sign/time.Duration(n), res.qr/time.Duration(n), res.pdf/time.Duration(n)

	// Document() draws the QR again inside: the end-to-end figure counts
	// that too, as the render job does.
	perSec := func(work func() error) (float64, error) {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, tabs)
		start := time.Now()
		for range tabs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(n) {
					if err := work(); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		return float64(n) / time.Since(start).Seconds(), <-errs
	}
	if res.certsPerSec, err = perSec(func() error { return one(false) }); err != nil {
		return res, err
	}
	res.blankPerSec, err = perSec(func() error { _, err := pool.Render(ctx, "@page{size:A4;margin:0}", ""); return err })
	return res, err
}

// issueLatency issues certificates for `issues` seeded students through
// POST /actions/issueLeavingCertificate with `callers` concurrent callers,
// then calls ping as many times the same way.
func issueLatency(ctx context.Context, issues, callers int) (issue, ping []time.Duration, err error) {
	log := slog.New(slog.DiscardHandler)
	db, closeDB, err := benchdb.Open(ctx, int32(callers+8))
	if err != nil {
		return nil, nil, err
	}
	defer closeDB()
	a, closeApp, err := benchdb.NewApp(ctx, db, map[string]string{"SHALA_QUEUE_WORKERS": "0"}, log)
	if err != nil {
		return nil, nil, err
	}
	defer func() { err = errors.Join(err, closeApp()) }()
	url, stop, err := benchdb.Serve(ctx, a.Handler(), log)
	if err != nil {
		return nil, nil, err
	}
	defer stop()

	school := uuid.New()
	if _, err := db.Exec(ctx, `INSERT INTO school (id, udise, name, district, block, session)
		VALUES ($1, '02110512345', 'राजकीय वरिष्ठ माध्यमिक पाठशाला कोटखाई', 'Shimla', 'Kotkhai', 'W')`, school); err != nil {
		return nil, nil, err
	}
	ids := make([]uuid.UUID, issues)
	for i := range ids {
		ids[i] = uuid.New()
	}
	if _, err := db.Exec(ctx, `INSERT INTO student (id, school_id, name, father_name, mother_name, gender, category,
			date_of_birth, admission_number, admission_date, grade, section)
		SELECT id, $2, 'अनुष्का ठाकुर', 'राजेश ठाकुर', 'सुनीता देवी', 'FEMALE', 'OBC', '2012-03-04',
			'A/' || ord, '2019-04-01', 8, 'B'
		FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, ord)`, ids, school); err != nil {
		return nil, nil, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: callers}}
	session := map[string]any{"x-hasura-role": "school", "x-hasura-user-id": "bench", "x-hasura-school-id": school.String()}
	call := func(name string, input map[string]any) (time.Duration, error) {
		body, _ := json.Marshal(map[string]any{"action": map[string]any{"name": name}, "input": input,
			"session_variables": session, "request_query": "mutation"})
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/actions/"+name, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(hasura.SecretHeader, secret)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("%s: status %d", name, resp.StatusCode)
		}
		return time.Since(t0), nil
	}
	measure := func(k int, input func(i int) (string, map[string]any)) ([]time.Duration, error) {
		lat := make([]time.Duration, k)
		var next atomic.Int64
		var wg sync.WaitGroup
		var firstErr atomic.Value
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= k {
						return
					}
					name, in := input(i)
					d, err := call(name, in)
					if err != nil {
						firstErr.CompareAndSwap(nil, err)
						return
					}
					lat[i] = d
				}
			}()
		}
		wg.Wait()
		if e, ok := firstErr.Load().(error); ok {
			return nil, e
		}
		return lat, nil
	}
	leaving := time.Now().In(certificate.IST).Format(time.DateOnly)
	if issue, err = measure(issues, func(i int) (string, map[string]any) {
		return "issueLeavingCertificate", map[string]any{"studentId": ids[i], "reason": "TRANSFER_IN_STATE", "leavingDate": leaving}
	}); err != nil {
		return nil, nil, err
	}
	ping, err = measure(issues, func(int) (string, map[string]any) { return "ping", map[string]any{"message": "नमस्ते"} })
	return issue, ping, err
}

func ms(lat []time.Duration, p int) float64 {
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i].Seconds() * 1e3
}
