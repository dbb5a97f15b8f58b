// Package ratelimit limits requests per client IP on the public endpoints a
// code or token opens (OpenRosa today; upload codes and join links later),
// so that guessing codes is slow and one client cannot starve the others.
// The limit is per shala process; behind N replicas a client gets N times it.
package ratelimit

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// PerIP is a token bucket per client IP.
type PerIP struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	clients map[string]*client
	sweep   time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

// New allows each IP perSecond requests on average and burst at once.
func New(perSecond float64, burst int) *PerIP {
	return &PerIP{rate: rate.Limit(perSecond), burst: burst, clients: map[string]*client{}}
}

// Allow reports whether ip may make a request now.
func (p *PerIP) Allow(ip string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.sweep) > time.Minute {
		// Forget clients idle long enough to have a full bucket again.
		for k, c := range p.clients {
			if now.Sub(c.seen) > 10*time.Minute {
				delete(p.clients, k)
			}
		}
		p.sweep = now
	}
	c := p.clients[ip]
	if c == nil {
		c = &client{lim: rate.NewLimiter(p.rate, p.burst)}
		p.clients[ip] = c
	}
	c.seen = now
	return c.lim.AllowN(now, 1)
}

// Middleware answers 429 with Retry-After beyond the limit, keyed by the
// connection's remote address (a proxy in front must pass the client's own
// connection, or every client shares the proxy's bucket).
func (p *PerIP) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		if !p.Allow(ip, time.Now()) {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(float64(p.burst)/float64(p.rate)))))
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusTooManyRequests)
			_ = json.NewEncoder(w).Encode(map[string]any{"message": "too many requests; try again shortly",
				"extensions": map[string]any{"code": "RATE_LIMITED"}})
			return
		}
		next.ServeHTTP(w, r)
	})
}
