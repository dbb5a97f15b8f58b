// Package server is shala's HTTP server: NewServer builds the handler with
// its middleware and routes (routes.go lists every route), and Serve runs it
// with graceful shutdown.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/auth"
	"github.com/shala-edu/shala/internal/blob"
	"github.com/shala-edu/shala/internal/certificate"
	"github.com/shala-edu/shala/internal/collector"
	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/httperr"
	"github.com/shala-edu/shala/internal/inbox"
	"github.com/shala-edu/shala/internal/lesson"
	"github.com/shala-edu/shala/internal/ping"
	"github.com/shala-edu/shala/internal/progress"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/slowread"
	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/student"
	"github.com/shala-edu/shala/internal/upload"
	"github.com/shala-edu/shala/internal/web"
)

// Deps are everything the routes need, built once by internal/app.
type Deps struct {
	Log *slog.Logger
	// Pool is for the handlers that still take one (exports); new handlers
	// take the store of their domain package instead.
	Pool     *pgxpool.Pool
	Gatherer prometheus.Gatherer
	Metrics  *Metrics
	// Inbox records Hasura's event and cron deliveries.
	Inbox *inbox.Inbox
	// Stores and services of the capabilities.
	Pings       *ping.Store
	Catalog     *forms.Catalog
	Rules       *forms.Rules
	Pipeline    *forms.Pipeline
	Collectors  *collector.Store
	Attachments *forms.Attachments
	SMSReports  *sms.Reports
	Listings    *progress.Store
	// Online lessons: groups and tokens, the BBB server pool, lessons, and
	// what signs moderators' quick-link JWTs (nil: those links answer 503)
	// with the app they redirect to.
	LessonGroups      *lesson.Groups
	BBBServers        *lesson.Servers
	Lessons           *lesson.Rooms
	ModeratorMinter   web.Minter
	ModeratorAppURL   string
	ModeratorTokenTTL time.Duration
	// Exams are exam answer files; their public endpoints are served when
	// Blobs is set too.
	Exams *exam.Store
	// WebhookSecret is the value Hasura sends in X-Shala-Webhook-Secret.
	WebhookSecret string
	// MaxBodyBytes caps event, cron and most action bodies (413 beyond);
	// actions carrying documents have the limit of their column.
	MaxBodyBytes int64
	// Blobs stores files (OpenRosa attachments, exam answer files). Without
	// it the exam file endpoints are not served.
	Blobs *blob.Bucket
	// TusDir holds resumable exam uploads in progress (SHALA_TUS_DIR).
	TusDir string
	// PublicURL is how people reach shala (collector URLs).
	PublicURL string
	// PublicRate and PublicBurst limit requests per client IP on the public,
	// token- or code-authenticated endpoints (OpenRosa).
	PublicRate  float64
	PublicBurst int
	// TrustedProxies are the load balancers in front of shala whose
	// X-Forwarded-For names the client (clientAddr); none: the peer is
	// the client.
	TrustedProxies []netip.Prefix
	// OpenRosaMaxBytes caps one OpenRosa submission with its attachments.
	OpenRosaMaxBytes int64
	// Upload is the floor of upload routes' bodies (slowread): any speed
	// above it is served, a stalled connection is dropped.
	Upload slowread.Options
	// TwilioAuthToken verifies Twilio's status callbacks, which Twilio
	// signs for TwilioCallbackURL (the URL it was given).
	TwilioAuthToken, TwilioCallbackURL string
	// Operator is River's UI (NewOperatorUI), served under OperatorPath to
	// user OperatorUser with OperatorPassword; without both it is not
	// served.
	Operator         http.Handler
	OperatorPassword string
	// Students and Certificates serve the student and leaving-certificate
	// actions and the public verification endpoints.
	Students     *student.Store
	Certificates *certificate.Store
	// Documents stores transfer documents (students from other states).
	Documents *upload.Store
	// Ready reports whether this instance can serve: database reachable,
	// migrations current. nil means always ready.
	Ready func(context.Context) error
	// Exports: Queue enqueues sheet exports (connectSheet); Langs caches
	// forms' default languages; Links signs and checks CSV links; JWT
	// verifies apps' Hasura tokens (nil: none configured); SheetsAccount is
	// the Google service account ("" when Sheets is not configured).
	Queue         queue.Inserter
	Langs         *export.Languages
	Links         *export.Links
	JWT           *auth.Verifier
	SheetsAccount string
}

// NewServer returns shala's HTTP handler.
func NewServer(d Deps) http.Handler {
	if d.PublicRate <= 0 {
		d.PublicRate, d.PublicBurst = 20, 100
	}
	r := chi.NewRouter()
	r.Use(clientAddr(d.TrustedProxies), httperr.Track, requestID, d.Metrics.observeHTTP, recoverer(d.Log))
	r.NotFound(notFound("route"))
	addRoutes(r, d)
	return r
}

// webhook is the middleware of the Hasura-facing groups: outcome counting,
// Hasura's error format for what middleware answer, then the shared secret
// (so unknown names answer 401 to callers without the secret and 404 to
// Hasura). Each route's body cap comes after, in routes.go.
func (d Deps) webhook(kind string) []func(http.Handler) http.Handler {
	return []func(http.Handler) http.Handler{
		d.Metrics.countWebhook(kind),
		httperr.Use(hasura.WriteError),
		hasura.RequireSecret(d.WebhookSecret),
	}
}

// Serve serves h on ln until ctx is cancelled, then stops accepting
// connections and waits up to shutdownTimeout for in-flight requests.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, shutdownTimeout time.Duration) error {
	// Requests keep running through a shutdown (not cancelled when ctx is),
	// until shutdownTimeout: then they are cancelled and their connections
	// closed, so stopping never takes longer than that.
	base, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second, // above Hasura's 30 s action timeout
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down http server", "timeout", shutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		log.Warn("requests still running at the shutdown timeout: cancelling them", "err", err)
		abort()
		_ = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
