package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/httperr"
	"github.com/shala-edu/shala/internal/logging"
)

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID takes X-Request-Id from the caller (Hasura sends one) or makes
// one, echoes it, and puts it on every log record of the request.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(logging.With(r.Context(), "request_id", id)))
	})
}

// recoverer turns a panic into a logged 500, answered in the wire format of
// the route (httperr.Write): one bad request must never take the process
// down.
func recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(r.Context(), "handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				httperr.Write(w, r, fault.New(fault.Internal, "", "internal error"))
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// capBody limits request bodies to n bytes: a declared length over it is
// answered 413 at once (in the route's wire format), and handlers reading
// more than n get an *http.MaxBytesError and answer 413 themselves.
func capBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				httperr.Write(w, r, fault.New(fault.TooLarge, fault.CodeBodyTooLarge, "request body is larger than %d bytes", n))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}

// notFound answers an unknown route, or an unknown action, trigger or cron
// name within Hasura's routes.
func notFound(what string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		httperr.Write(w, r, fault.New(fault.NotFound, "", "%s %s not found", what, strconv.Quote(path.Base(r.URL.Path))))
		hasura.SetOutcome(r.Context(), "not_found")
	}
}

func healthz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	}
}

// readiness runs the readiness check for every /readyz at once: one check
// at a time, its answer reused for a second. /readyz is unauthenticated and
// a check takes pool connections, so a burst of probes must not take the
// pool from the requests the service is for.
type readiness struct {
	ready func(context.Context) error
	now   func() time.Time

	mu  sync.Mutex
	at  time.Time
	err error
}

func (c *readiness) check(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && c.now().Sub(c.at) < time.Second {
		return c.err
	}
	// Not the prober's context: a prober that hangs up must not make
	// the answer the others get a cancellation.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	c.err, c.at = c.ready(ctx), c.now()
	return c.err
}

func readyz(log *slog.Logger, ready func(context.Context) error) http.HandlerFunc {
	c := &readiness{ready: ready, now: time.Now}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready != nil {
			if err := c.check(r.Context()); err != nil {
				// The reason goes to the log: probes are unauthenticated and
				// database errors name users and hosts.
				log.WarnContext(r.Context(), "not ready", "err", err)
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("not ready (the reason is in shala's log)\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ready\n"))
	}
}

// slogPrinter adapts a slog.Logger to promhttp's Println logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("metrics: " + fmt.Sprint(v...)) }

// Metrics are the HTTP server's Prometheus metrics.
type Metrics struct {
	duration *prometheus.HistogramVec
	webhooks *prometheus.CounterVec
}

// NewMetrics registers the HTTP metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shala_http_request_duration_seconds",
			Help:    "HTTP request duration by route pattern, method and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method", "status"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shala_webhook_requests_total",
			Help: "Hasura action, event and cron calls by kind, name and outcome (ok, duplicate, invalid, unauthorized, not_found, too_large, unavailable, error).",
		}, []string{"kind", "name", "outcome"}),
	}
	reg.MustRegister(m.duration, m.webhooks)
	return m
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (m *Metrics) observeHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			m.duration.WithLabelValues(routeLabel(r), r.Method, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

// routeLabel is the matched route pattern, or "unmatched": never the raw
// path, which would put ids and codes into label values.
func routeLabel(r *http.Request) string {
	rc := chi.RouteContext(r.Context())
	if rc == nil {
		return "unmatched"
	}
	p := rc.RoutePattern()
	if p == "" || strings.HasSuffix(p, "*") {
		return "unmatched"
	}
	return p
}

func (m *Metrics) countWebhook(kind string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, outcome := hasura.TrackOutcome(r.Context())
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				p := recover()
				o := outcome()
				switch {
				case p != nil:
					o = "error" // the recoverer answers 500
				case o == "":
					o = outcomeOfStatus(sw.status)
				}
				defer func() {
					if p != nil {
						panic(p)
					}
				}()
				name := "unknown"
				if rp := routeLabel(r); rp != "unmatched" && o != "not_found" {
					name = path.Base(rp)
				}
				m.webhooks.WithLabelValues(kind, name, o).Inc()
			}()
			next.ServeHTTP(sw, r.WithContext(ctx))
		})
	}
}

func outcomeOfStatus(status int) string {
	switch {
	case status == 0 || status < 400:
		return "ok"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "unauthorized"
	case status == http.StatusNotFound:
		return "not_found"
	case status == http.StatusRequestEntityTooLarge:
		return "too_large"
	case status == http.StatusServiceUnavailable:
		return "unavailable"
	case status >= 500:
		return "error"
	default:
		return "invalid"
	}
}

// OperatorUser is the user name of the operator console's basic auth.
const OperatorUser = "operator"

// operatorAuth admits requests carrying HTTP basic credentials of
// OperatorUser and password (compared in constant time, as hashes so the
// length does not leak either) and asks the browser for them otherwise.
// Failed attempts are logged with the client address.
func operatorAuth(log *slog.Logger, password string) func(http.Handler) http.Handler {
	wantUser, wantPass := sha256.Sum256([]byte(OperatorUser)), sha256.Sum256([]byte(password))
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, pass, ok := r.BasicAuth()
			gotUser, gotPass := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
			if ok && subtle.ConstantTimeCompare(gotUser[:], wantUser[:])&subtle.ConstantTimeCompare(gotPass[:], wantPass[:]) == 1 {
				next.ServeHTTP(w, r)
				return
			}
			if ok {
				log.WarnContext(r.Context(), "operator console: wrong credentials", "remote", r.RemoteAddr)
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="shala operators", charset="UTF-8"`)
			http.Error(w, "operator credentials required", http.StatusUnauthorized)
		})
	}
}

// clientAddr sets r.RemoteAddr to the client's address when the request
// came through trusted proxies (a load balancer in front of shala): the
// rightmost address of X-Forwarded-For that is not a trusted proxy's, as
// each proxy appends the address it was reached from. Rate limits and logs
// key on RemoteAddr; behind a balancer, without this, every client would
// share the balancer's budget. A peer that is not trusted cannot move its
// address: anyone can write the header. An address that does not parse
// ends the walk at the trusted hop that passed it on.
func clientAddr(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if len(trusted) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if client, ok := forwardedClient(r, trusted); ok {
				r = r.WithContext(r.Context()) // a copy: the caller's request stays as it was
				r.RemoteAddr = netip.AddrPortFrom(client, 0).String()
			}
			next.ServeHTTP(w, r)
		})
	}
}

// forwardedClient is the client behind r's trusted proxies, and whether it
// differs from the peer. It reads X-Forwarded-For from the right (the last
// header line first), at most maxHops addresses, and only for a trusted
// peer: from anyone else the header costs nothing. Where it stops reading
// — an item that is no address (an empty one included, where RFC 9110
// would skip it), or maxHops read — it answers the last address it read,
// a trusted hop's: the clients behind that hop then share its budget,
// which is safe; skipping would believe text the hop did not vouch for.
func forwardedClient(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	peerPort, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	isTrusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	peer := peerPort.Addr().Unmap().WithZone("")
	client, hops := peer, 0
	values := r.Header.Values("X-Forwarded-For")
	for v := len(values) - 1; v >= 0; v-- {
		rest := values[v]
		for {
			if !isTrusted(client) || hops == maxHops {
				return client, client != peer
			}
			i := strings.LastIndexByte(rest, ',')
			a, ok := parseHop(strings.TrimSpace(rest[i+1:]))
			if !ok {
				return client, client != peer
			}
			client, hops = a, hops+1
			if i < 0 {
				break
			}
			rest = rest[:i]
		}
	}
	return client, client != peer
}

// maxHops bounds the X-Forwarded-For addresses read: more proxies than
// this in front of shala is a header that lies.
const maxHops = 32

// parseHop reads one X-Forwarded-For address: an IP, or an IP with a
// port ("192.0.2.7:4711", "[2001:db8::1]:4711"); IPv4-mapped IPv6 as IPv4,
// without a zone.
func parseHop(hop string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(hop)
	if err != nil {
		ap, perr := netip.ParseAddrPort(hop)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}
