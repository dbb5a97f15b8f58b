package server_test

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/pgtest"
)

// Behind a load balancer named in SHALA_TRUSTED_PROXIES each client has its
// own rate-limit budget; without it, X-Forwarded-For changes nothing.
func TestRateLimitsPerForwardedClient(t *testing.T) {
	t.Parallel()
	statuses := func(t *testing.T, trusted []netip.Prefix, clients ...string) []int {
		t.Helper()
		b := setupWith(t, pgtest.New(t), discard, func(c *config.Config) {
			c.PublicRate, c.PublicBurst = 0.001, 1
			c.TrustedProxies = trusted
		})
		var got []int
		for _, client := range clients {
			req, _ := http.NewRequest(http.MethodGet, b.url+"/openrosa/key/no-such-token/formList", nil)
			req.Header.Set("X-OpenRosa-Version", "1.0")
			req.Header.Set("X-Forwarded-For", client)
			resp, err := b.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got = append(got, resp.StatusCode)
		}
		return got
	}
	equal := func(t *testing.T, got, want []int) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("got statuses %v, want %v", got, want)
				return
			}
		}
	}

	t.Run("ThroughATrustedProxy", func(t *testing.T) {
		t.Parallel()
		// The test's connections come from 127.0.0.1: the "balancer".
		got := statuses(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, "203.0.113.7", "203.0.113.7", "198.51.100.1")
		equal(t, got, []int{http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusUnauthorized})
	})
	t.Run("NoTrustedProxies", func(t *testing.T) {
		t.Parallel()
		got := statuses(t, nil, "203.0.113.7", "198.51.100.1")
		equal(t, got, []int{http.StatusUnauthorized, http.StatusTooManyRequests})
	})
}
