// Package ratelimit limits requests per client IP on the public endpoints a
// code or token opens (OpenRosa today; upload codes and join links later),
// so that guessing codes is slow and one client cannot starve the others.
// The limit is per shala process; behind N replicas a client gets N times it.
package ratelimit

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/httperr"
)

// MaxClients caps the clients remembered at once. Beyond it (a flood from
// many addresses) new clients share one overflow bucket until idle ones are
// forgotten: memory stays bounded and known clients keep their own buckets.
const MaxClients = 100_000

// PerIP is a token bucket per client IP (per /64 for IPv6, which a single
// subscriber gets whole).
type PerIP struct {
	rate  rate.Limit
	burst int

	mu       sync.Mutex
	clients  map[string]*client
	overflow *client
	sweep    time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
	// held is how many requests hold one of the bucket's tokens without
	// having taken it yet (Hold); freed, when not nil, is closed when one
	// lets its hold go.
	held  int
	freed chan struct{}
}

// New allows each IP perSecond requests on average and burst at once.
func New(perSecond float64, burst int) *PerIP {
	return &PerIP{rate: rate.Limit(perSecond), burst: burst, clients: map[string]*client{},
		overflow: &client{lim: rate.NewLimiter(rate.Limit(perSecond), burst)}}
}

// refill is how long an idle client takes to have a full bucket again: it
// can then be forgotten, since a new bucket is the same.
func (p *PerIP) refill() time.Duration {
	if p.rate <= 0 {
		return time.Minute
	}
	return max(time.Second, time.Duration(float64(p.burst)/float64(p.rate)*float64(time.Second)))
}

// client returns ip's bucket, made on first use (the overflow bucket when
// MaxClients are remembered), forgetting clients idle long enough to have a
// full bucket again. p.mu is held.
func (p *PerIP) client(ip string, now time.Time) *client {
	idle := p.refill()
	if now.Sub(p.sweep) > idle || (len(p.clients) >= MaxClients && now.Sub(p.sweep) > time.Second) {
		for k, c := range p.clients {
			if now.Sub(c.seen) > idle && c.held == 0 {
				delete(p.clients, k)
			}
		}
		p.sweep = now
	}
	c := p.clients[ip]
	if c == nil {
		if len(p.clients) >= MaxClients {
			return p.overflow
		}
		c = &client{lim: rate.NewLimiter(p.rate, p.burst)}
		p.clients[ip] = c
	}
	c.seen = now
	return c
}

// Allow reports whether ip may make a request now, and takes one.
func (p *PerIP) Allow(ip string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.client(ip, now).lim.AllowN(now, 1)
}

// HoldWait bounds how long Hold waits for requests in flight to end.
const HoldWait = 5 * time.Second

// Hold is for limits that count only failures (wrong codes): a request
// holds one of ip's requests left while it works, and release lets it go —
// after taking it (Allow) if the request failed. So requests sent at once
// never do more work than the client has requests left. When all it has
// left are held, Hold waits for one to be let go (at most HoldWait, or ctx),
// since they may all succeed: a class behind one address sending right
// codes at once is served. A client with nothing left is refused at once.
func (p *PerIP) Hold(ctx context.Context, ip string, now time.Time) (release func(), ok bool) {
	var timeout <-chan time.Time
	for {
		p.mu.Lock()
		c := p.client(ip, now)
		left := c.lim.TokensAt(now)
		if left < 1 {
			p.mu.Unlock()
			return nil, false
		}
		if left-float64(c.held) >= 1 {
			c.held++
			p.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { p.letGo(c) }) }, true
		}
		if c.freed == nil {
			c.freed = make(chan struct{})
		}
		freed := c.freed
		p.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(HoldWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, false
		case <-timeout:
			return nil, false
		}
	}
}

// letGo ends one of c's holds and wakes the requests waiting for one.
func (p *PerIP) letGo(c *client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.held--
	if c.freed != nil {
		close(c.freed)
		c.freed = nil
	}
}

// RetryAfter is the Retry-After, in seconds, of an answer beyond the limit.
func (p *PerIP) RetryAfter() int {
	if p.rate <= 0 {
		return 60
	}
	return max(1, int(1/float64(p.rate)+0.999))
}

// Middleware answers 429 with Retry-After beyond the limit (in the route's
// wire format, httperr.Write), keyed by the
// connection's remote address (a proxy in front must pass the client's own
// connection, or every client shares the proxy's bucket).
func (p *PerIP) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.Allow(ClientKey(r), time.Now()) {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(float64(p.burst)/float64(p.rate)))))
			httperr.Write(w, r, fault.New(fault.RateLimited, "", "too many requests; try again shortly"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ClientKey is the key r's client is limited under: the connection's IP,
// or its /64 for IPv6.
func ClientKey(r *http.Request) string {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	return key(ip)
}

// key is ip itself for IPv4, its /64 for IPv6.
func key(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	prefix, _ := a.Prefix(64)
	return prefix.String()
}
