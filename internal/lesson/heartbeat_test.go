package lesson_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/bbb/bbbtest"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/lesson"
	"github.com/shala-edu/shala/internal/queue"
)

func heartbeat(t *testing.T, hb lesson.Heartbeat) []byte {
	t.Helper()
	if hb.Timestamp == 0 {
		hb.Timestamp = time.Now().Unix()
	}
	body, err := json.Marshal(hb)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func (b *bundle) checkJobs(t *testing.T) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'lesson.server_check'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHostAllowed(t *testing.T) {
	t.Parallel()
	allow := []string{"bbb1.example.org", "*.bbb.example.org", " 127.0.0.1 "}
	for host, want := range map[string]bool{
		"bbb1.example.org": true, "BBB1.example.org:443": true, "n7.bbb.example.org": true, "a.b.bbb.example.org": true,
		"bbb.example.org": false, "evilbbb.example.org": false, "bbb2.example.org": false, "127.0.0.1:4000": true, "": false,
	} {
		if got := lesson.HostAllowed(allow, host); got != want {
			t.Errorf("HostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("a registered server reports", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id, ts := b.server(t, serverOpts{region: "shimla"})
		b.exec(t, `UPDATE bbb_server SET last_heartbeat_at = now() - interval '10 minutes' WHERE id = $1`, id)
		body := heartbeat(t, lesson.Heartbeat{Hostname: ts.Host, Load5: 1.5, CPUs: 8, Users: 42, Meetings: 3, Region: "Kangra"})
		res, err := b.servers.Heartbeat(ctx, body, lesson.Sign(ts.Secret, body))
		if err != nil || res.ServerID != id || !res.Enabled || res.Registered {
			t.Fatalf("heartbeat: %+v, %v", res, err)
		}
		var load float64
		var cpus, users int
		var region string
		var fresh bool
		if err := b.pool.QueryRow(ctx, `SELECT load_5m, cpu_count, users, region, last_heartbeat_at > now() - interval '5 seconds'
			FROM bbb_server WHERE id = $1`, id).Scan(&load, &cpus, &users, &region, &fresh); err != nil {
			t.Fatal(err)
		}
		if load != 1.5 || cpus != 8 || users != 42 || region != "kangra" || !fresh {
			t.Errorf("stored load %v cpus %d users %d region %s fresh %v", load, cpus, users, region, fresh)
		}
	})
	t.Run("refused heartbeats", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, ts := b.server(t, serverOpts{})
		good := heartbeat(t, lesson.Heartbeat{Hostname: ts.Host, CPUs: 4})
		old := heartbeat(t, lesson.Heartbeat{Hostname: ts.Host, CPUs: 4, Timestamp: time.Now().Add(-10 * time.Minute).Unix()})
		cases := []struct {
			name      string
			body      []byte
			signature string
			want      fault.Code
		}{
			{"unsigned", good, "", lesson.CodeBadSignature},
			{"signed with another secret", good, lesson.Sign("not-the-secret", good), lesson.CodeBadSignature},
			{"signature of another body", good, lesson.Sign(ts.Secret, old), lesson.CodeBadSignature},
			{"replayed old body", old, lesson.Sign(ts.Secret, old), fault.CodeInvalidInput},
			{"not JSON", []byte("load=1"), lesson.Sign(ts.Secret, []byte("load=1")), fault.CodeInvalidInput},
			{"unknown host", heartbeat(t, lesson.Heartbeat{Hostname: "evil.example.org", CPUs: 1}), "sha256=00", lesson.CodeHostNotAllowed},
		}
		for _, c := range cases {
			if _, err := b.servers.Heartbeat(ctx, c.body, c.signature); code(err) != c.want {
				t.Errorf("%s: got %v, want %s", c.name, err, c.want)
			}
		}
	})
	t.Run("a replayed or older heartbeat is refused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id, ts := b.server(t, serverOpts{})
		now := time.Now().Unix()
		send := func(at int64, users int) error {
			body := heartbeat(t, lesson.Heartbeat{Hostname: ts.Host, CPUs: 4, Users: users, Timestamp: at})
			_, err := b.servers.Heartbeat(ctx, body, lesson.Sign(ts.Secret, body))
			return err
		}
		if err := send(now, 10); err != nil {
			t.Fatal(err)
		}
		b.exec(t, `UPDATE bbb_server SET last_heartbeat_at = now() - interval '2 minutes' WHERE id = $1`, id)
		for name, at := range map[string]int64{"the same body again": now, "an older body": now - 30} {
			if err := send(at, 99); fault.As(err).Field != "timestamp" {
				t.Errorf("%s: got %v, want refused on timestamp", name, err)
			}
		}
		var users int
		var stale bool
		if err := b.pool.QueryRow(ctx, `SELECT users, last_heartbeat_at < now() - interval '1 minute' FROM bbb_server WHERE id = $1`, id).
			Scan(&users, &stale); err != nil || users != 10 || !stale {
			t.Errorf("after the replays: users %d, heartbeat stale %v (%v); want 10, still stale", users, stale, err)
		}
		if err := send(now+1, 11); err != nil {
			t.Errorf("the next heartbeat: %v", err)
		}
	})
	t.Run("self-registration from the allow-list", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		q, err := queue.New(b.pool, nil, queue.Config{})
		if err != nil {
			t.Fatal(err)
		}
		servers := lesson.NewServers(b.pool, q, b.client, nil, []string{"127.0.0.1"})
		ts := bbbtest.New(t, bbbtest.Options{Algorithms: []string{"sha512"}})
		body := heartbeat(t, lesson.Heartbeat{Hostname: ts.Host, CPUs: 16, Region: "shimla", Users: 0,
			APIURL: ts.URL, Secret: ts.Secret, Capacity: 500})
		res, err := servers.Heartbeat(ctx, body, lesson.Sign(ts.Secret, body))
		if err != nil || !res.Registered || res.Enabled {
			t.Fatalf("registration: %+v, %v", res, err)
		}
		if st := b.state(t, res.ServerID); st.enabled || st.by != lesson.DisabledRegistration || st.capacity != 500 {
			t.Errorf("registered server: %+v; want disabled until checked", st)
		}
		if n := b.checkJobs(t); n != 1 {
			t.Errorf("%d check jobs, want 1", n)
		}
		if err := lesson.Check(servers, ctx, res.ServerID); err != nil {
			t.Fatal(err)
		}
		var alg string
		if err := b.pool.QueryRow(ctx, `SELECT checksum_algorithm FROM bbb_server WHERE id = $1`, res.ServerID).Scan(&alg); err != nil || alg != "sha512" {
			t.Errorf("algorithm %s (%v), want sha512 (the server accepts only it)", alg, err)
		}
		if st := b.state(t, res.ServerID); !st.enabled {
			t.Errorf("after a passing check: %+v", st)
		}
		// Not on the allow-list.
		other := lesson.NewServers(b.pool, q, b.client, nil, []string{"*.bbb.example.org"})
		ts2 := bbbtest.New(t, bbbtest.Options{})
		body2 := heartbeat(t, lesson.Heartbeat{Hostname: ts2.Host, CPUs: 1, Region: "x", APIURL: ts2.URL, Secret: ts2.Secret, Capacity: 5})
		if _, err := other.Heartbeat(ctx, body2, lesson.Sign(ts2.Secret, body2)); code(err) != lesson.CodeHostNotAllowed {
			t.Errorf("registration from outside the allow-list: got %v", err)
		}
	})
	t.Run("an unverified registration does not lock the real node out", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		q, err := queue.New(b.pool, nil, queue.Config{})
		if err != nil {
			t.Fatal(err)
		}
		servers := lesson.NewServers(b.pool, q, b.client, nil, []string{"127.0.0.1"})
		ts := bbbtest.New(t, bbbtest.Options{})
		fake := heartbeat(t, lesson.Heartbeat{Hostname: ts.Host, CPUs: 1, Region: "x", APIURL: ts.URL, Secret: "attacker-secret", Capacity: 5})
		first, err := servers.Heartbeat(ctx, fake, lesson.Sign("attacker-secret", fake))
		if err != nil {
			t.Fatal(err)
		}
		if err := lesson.Check(servers, ctx, first.ServerID); err == nil {
			t.Error("a check with the wrong secret passed")
		}
		real := heartbeat(t, lesson.Heartbeat{Hostname: ts.Host, CPUs: 8, Region: "shimla", APIURL: ts.URL, Secret: ts.Secret, Capacity: 300})
		second, err := servers.Heartbeat(ctx, real, lesson.Sign(ts.Secret, real))
		if err != nil || second.ServerID != first.ServerID || !second.Registered {
			t.Fatalf("the real node's registration: %+v, %v", second, err)
		}
		if err := lesson.Check(servers, ctx, second.ServerID); err != nil {
			t.Fatal(err)
		}
		if st := b.state(t, second.ServerID); !st.enabled || st.capacity != 300 {
			t.Errorf("after the real node's check: %+v", st)
		}
		// Verified now: the other secret is refused.
		if _, err := servers.Heartbeat(ctx, fake, lesson.Sign("attacker-secret", fake)); code(err) != lesson.CodeBadSignature {
			t.Errorf("the other secret after verification: got %v, want BAD_SIGNATURE", err)
		}
	})
	t.Run("never re-enables what an operator or an alert disabled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, by := range []string{"operator:admin-1", lesson.DisabledAlert} {
			id, ts := b.server(t, serverOpts{})
			b.exec(t, `UPDATE bbb_server SET enabled = false, disabled_by = $2, disabled_reason = 'x' WHERE id = $1`, id, by)
			body := heartbeat(t, lesson.Heartbeat{Hostname: ts.Host, CPUs: 2})
			if _, err := b.servers.Heartbeat(ctx, body, lesson.Sign(ts.Secret, body)); err != nil {
				t.Fatal(err)
			}
			if err := lesson.Check(b.servers, ctx, id); err != nil {
				t.Fatal(err)
			}
			if st := b.state(t, id); st.enabled || st.by != by {
				t.Errorf("disabled by %s, after a heartbeat and a check: %+v", by, st)
			}
		}
		if n := b.checkJobs(t); n != 0 {
			t.Errorf("%d check jobs for servers a check may not re-enable", n)
		}
	})
	t.Run("re-enables an unreachable server once it answers", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id, ts := b.server(t, serverOpts{})
		b.exec(t, `UPDATE bbb_server SET enabled = false, disabled_by = 'unreachable', disabled_reason = 'create failed' WHERE id = $1`, id)
		body := heartbeat(t, lesson.Heartbeat{Hostname: ts.Host, CPUs: 2})
		if _, err := b.servers.Heartbeat(ctx, body, lesson.Sign(ts.Secret, body)); err != nil {
			t.Fatal(err)
		}
		if n := b.checkJobs(t); n != 1 {
			t.Fatalf("%d check jobs, want 1", n)
		}
		ts.SetDown(true)
		if err := lesson.Check(b.servers, ctx, id); err == nil {
			t.Error("a check of a server that is still down passed")
		}
		if st := b.state(t, id); st.enabled {
			t.Error("re-enabled while still down")
		}
		ts.SetDown(false)
		if err := lesson.Check(b.servers, ctx, id); err != nil {
			t.Fatal(err)
		}
		if st := b.state(t, id); !st.enabled || st.by != "" || st.reason != "" {
			t.Errorf("after a passing check: %+v", st)
		}
	})
}

// insertServer adds a pool member directly (alerts need no API).
func (b *bundle) insertServer(t *testing.T, host string, enabled bool, by string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	var disabledBy *string
	if by != "" {
		disabledBy = &by
	}
	if err := b.pool.QueryRow(context.Background(), `INSERT INTO bbb_server (hostname, api_url, enabled, disabled_by, region, capacity)
		VALUES ($1, 'https://' || $1 || '/bigbluebutton/api/', $2, $3, 'shimla', 100) RETURNING id`, host, enabled, disabledBy).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func alert(name, state string, labels ...string) v1.Alert {
	ls := model.LabelSet{"alertname": model.LabelValue(name)}
	for i := 0; i+1 < len(labels); i += 2 {
		ls[model.LabelName(labels[i])] = model.LabelValue(labels[i+1])
	}
	return v1.Alert{Labels: ls, State: v1.AlertState(state)}
}

func TestAlerts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	a := b.insertServer(t, "bbb1.example.org", true, "")
	op := b.insertServer(t, "bbb2.example.org", false, "operator:admin-1")
	pending := b.insertServer(t, "bbb3.example.org", true, "")
	down := b.insertServer(t, "bbb4.example.org", false, lesson.DisabledUnreachable)
	quiet := b.insertServer(t, "bbb5.example.org", true, "")

	firing := []v1.Alert{
		alert("HighCPU", "firing", "hostname", "bbb1.example.org"),
		alert("DiskFull", "firing", "instance", "bbb2.example.org:9100"),
		alert("HighCPU", "pending", "hostname", "bbb3.example.org"),
		alert("NodeDown", "firing", "instance", "bbb4.example.org:9100"),
		alert("Other", "firing", "hostname", "elsewhere.example.org"),
	}
	dis, en, err := b.servers.ApplyAlerts(ctx, firing)
	if err != nil || dis != 2 || en != 0 {
		t.Fatalf("apply: disabled %d, enabled %d, %v; want 2, 0", dis, en, err)
	}
	for id, want := range map[uuid.UUID]serverState{
		a:       {enabled: false, by: lesson.DisabledAlert, reason: "alert HighCPU is firing"},
		op:      {enabled: false, by: "operator:admin-1"},
		pending: {enabled: true},
		down:    {enabled: false, by: lesson.DisabledAlert, reason: "alert NodeDown is firing"},
		quiet:   {enabled: true},
	} {
		got := b.state(t, id)
		if got.enabled != want.enabled || got.by != want.by || (want.reason != "" && got.reason != want.reason) {
			t.Errorf("server %s: got %+v, want %+v", id, got, want)
		}
	}

	// Prometheus down: nothing changes.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)
	w := &lesson.AlertsWorker{Pool: b.pool, Source: promAPI(t, broken.URL)}
	if err := w.Work(ctx, &river.Job[lesson.AlertsArgs]{}); err == nil {
		t.Error("a failed Prometheus call passed")
	}
	if st := b.state(t, a); st.enabled {
		t.Error("re-enabled while Prometheus could not be read")
	}

	// The alerts clear and stay clear: only the servers the alerts disabled
	// come back.
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/alerts" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"success","data":{"alerts":[{"labels":{"alertname":"DiskFull","instance":"bbb2.example.org:9100"},
			"annotations":{},"state":"firing","activeAt":"2026-11-25T10:00:00Z","value":"1e+00"}]}}`))
	}))
	t.Cleanup(prom.Close)
	w.Source = promAPI(t, prom.URL)
	if err := w.Work(ctx, &river.Job[lesson.AlertsArgs]{}); err != nil {
		t.Fatal(err)
	}
	if st := b.state(t, a); st.enabled {
		t.Errorf("re-enabled the moment its alert cleared: %+v", st)
	}
	b.exec(t, `UPDATE bbb_server SET alert_seen_at = alert_seen_at - $1::interval`, lesson.AlertClearAfter.String())
	if err := w.Work(ctx, &river.Job[lesson.AlertsArgs]{}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[uuid.UUID]bool{a: true, down: true, op: false, pending: true, quiet: true} {
		if got := b.state(t, id); got.enabled != want {
			t.Errorf("server %s after the alerts cleared: %+v, want enabled %v", id, got, want)
		}
	}
}

func promAPI(t *testing.T, url string) v1.API {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		t.Fatal(err)
	}
	return v1.NewAPI(c)
}

func TestAlertsHysteresis(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("an unverified registration is never enabled by an alert", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id := b.insertServer(t, "new.bbb.example.org", false, lesson.DisabledRegistration)
		if _, _, err := b.servers.ApplyAlerts(ctx, []v1.Alert{alert("NodeDown", "firing", "hostname", "new.bbb.example.org")}); err != nil {
			t.Fatal(err)
		}
		b.exec(t, `UPDATE bbb_server SET alert_seen_at = now() - interval '1 hour' WHERE id = $1`, id)
		if _, _, err := b.servers.ApplyAlerts(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if st := b.state(t, id); st.enabled || st.by != lesson.DisabledRegistration {
			t.Errorf("after an alert fired and cleared: %+v; want still waiting for its connection check", st)
		}
	})
	t.Run("a flapping alert keeps the server out until it stays clear", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id := b.insertServer(t, "bbb1.example.org", true, "")
		fire := []v1.Alert{alert("HighCPU", "firing", "hostname", "bbb1.example.org")}
		for i, alerts := range [][]v1.Alert{fire, nil, fire, nil} {
			if _, _, err := b.servers.ApplyAlerts(ctx, alerts); err != nil {
				t.Fatal(err)
			}
			if st := b.state(t, id); st.enabled || st.by != lesson.DisabledAlert {
				t.Fatalf("run %d (firing %v): %+v; want disabled by the alert", i+1, alerts != nil, st)
			}
		}
		b.exec(t, `UPDATE bbb_server SET alert_seen_at = now() - $2::interval WHERE id = $1`, id, lesson.AlertClearAfter.String())
		if _, en, err := b.servers.ApplyAlerts(ctx, nil); err != nil || en != 1 {
			t.Fatalf("clear for %s: enabled %d, %v", lesson.AlertClearAfter, en, err)
		}
		if st := b.state(t, id); !st.enabled {
			t.Errorf("clear for %s: %+v; want enabled", lesson.AlertClearAfter, st)
		}
	})
}
