package app_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/app/apptest"
	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/sms"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestNew(t *testing.T) {
	t.Parallel()

	t.Run("builds everything once and serves the routes", func(t *testing.T) {
		t.Parallel()
		a := apptest.New(t, apptest.Config(t), app.Options{})
		srv := httptest.NewServer(a.Handler())
		t.Cleanup(srv.Close)
		resp, err := srv.Client().Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got, want := resp.StatusCode, http.StatusOK; got != want {
			t.Errorf("GET /readyz: got %d, want %d", got, want)
		}
		if a.Pipeline.Catalog != a.Catalog || a.Pipeline.Rules != a.Rules {
			t.Error("the pipeline got its own catalog or rules: want the App's, built once")
		}
	})

	t.Run("opens DATABASE_URL and refuses an unmigrated database", func(t *testing.T) {
		t.Parallel()
		url := pgtest.URL(t)
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		if _, err := conn.Exec(t.Context(), `DELETE FROM shala_migration WHERE version = (SELECT max(version) FROM shala_migration)`); err != nil {
			t.Fatal(err)
		}
		cfg := apptest.Config(t)
		cfg.DatabaseURL = config.Secret(url)
		_, err = app.New(context.Background(), cfg, apptest.Discard, app.Options{})
		if err == nil || !strings.Contains(err.Error(), "shala migrate") {
			t.Errorf("New on an unmigrated database: got %v, want an error telling to run shala migrate", err)
		}
	})

	t.Run("Close closes the SMS outbox file", func(t *testing.T) {
		t.Parallel()
		a, err := app.New(context.Background(), apptest.Config(t), apptest.Discard, app.Options{Pool: pgtest.New(t)})
		if err != nil {
			t.Fatal(err)
		}
		msg := sms.Message{To: "+919816012345", Body: "नमस्ते"}
		if _, err := a.SMS.Send(t.Context(), msg); err != nil {
			t.Fatalf("send before Close: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := a.SMS.Send(t.Context(), msg); err == nil {
			t.Error("send after Close: got nil error, want the outbox file closed")
		}
	})
}
