package server

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"testing"
)

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		want    string
	}{
		{"no proxies configured: the header is ignored", nil, "10.0.0.2:5000", []string{"203.0.113.7"}, "10.0.0.2:5000"},
		{"an untrusted peer cannot move its address", trusted, "198.51.100.9:5000", []string{"203.0.113.7"}, "198.51.100.9:5000"},
		{"a trusted peer names the client", trusted, "10.0.0.2:5000", []string{"203.0.113.7"}, "203.0.113.7:0"},
		{"the rightmost untrusted address, not a spoofed leftmost one", trusted, "10.0.0.2:5000", []string{"198.51.100.1, 203.0.113.7"}, "203.0.113.7:0"},
		{"trusted hops are skipped", trusted, "10.0.0.2:5000", []string{"203.0.113.7, 10.1.2.3"}, "203.0.113.7:0"},
		{"several headers read as one list", trusted, "10.0.0.2:5000", []string{"198.51.100.1", "203.0.113.7, 10.1.2.3"}, "203.0.113.7:0"},
		{"a hop with a port", trusted, "10.0.0.2:5000", []string{"203.0.113.7:4711"}, "203.0.113.7:0"},
		{"IPv6 behind an IPv6 proxy", trusted, "[2001:db8:1::5]:5000", []string{"2001:db8:2::9"}, "[2001:db8:2::9]:0"},
		{"an IPv4-mapped peer", trusted, "[::ffff:10.0.0.2]:5000", []string{"203.0.113.7"}, "203.0.113.7:0"},
		{"garbage stops the walk at the trusted hop that passed it on", trusted, "10.0.0.2:5000", []string{"unknown, 10.1.2.3"}, "10.1.2.3:0"},
		{"garbage from the peer itself: the peer", trusted, "10.0.0.2:5000", []string{"unknown"}, "10.0.0.2:5000"},
		{"no header: the peer", trusted, "10.0.0.2:5000", nil, "10.0.0.2:5000"},
		{"only trusted hops: the leftmost", trusted, "10.0.0.2:5000", []string{"10.9.9.9, 10.1.2.3"}, "10.9.9.9:0"},
		{"an empty entry stops the walk", trusted, "10.0.0.2:5000", []string{"203.0.113.7,"}, "10.0.0.2:5000"},
		{"bracketed IPv6 without a port does not parse", trusted, "10.0.0.2:5000", []string{"[2001:db8::1]"}, "10.0.0.2:5000"},
		{"a hop's zone is dropped", trusted, "10.0.0.2:5000", []string{"fe80::1%eth0"}, "[fe80::1]:0"},
		{"an empty header: the peer", trusted, "10.0.0.2:5000", []string{""}, "10.0.0.2:5000"},
		{"no more than 32 hops are read", trusted, "10.0.0.2:5000",
			[]string{"203.0.113.7, " + strings.Repeat("10.1.1.1, ", 31) + "10.1.1.1"}, "10.1.1.1:0"},
		{"an IPv4-mapped hop is IPv4", trusted, "10.0.0.2:5000", []string{"203.0.113.7, ::ffff:10.1.2.3"}, "203.0.113.7:0"},
		{"the 32 hops count across header lines", trusted, "10.0.0.2:5000",
			append([]string{"203.0.113.7"}, repeat("10.1.1.1", 32)...), "10.1.1.1:0"},
		{"32 hops are", trusted, "10.0.0.2:5000",
			[]string{"203.0.113.7, " + strings.Repeat("10.1.1.1, ", 30) + "10.1.1.1"}, "203.0.113.7:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got string
			h := clientAddr(tt.trusted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got != tt.want {
				t.Errorf("got RemoteAddr %q, want %q", got, tt.want)
			}
			if r.RemoteAddr != tt.peer {
				t.Errorf("the caller's request changed: RemoteAddr %q, want %q", r.RemoteAddr, tt.peer)
			}
		})
	}
}

// From a peer that is not trusted a huge X-Forwarded-For costs nothing; a
// trusted one's is read from the right, a bounded number of hops.
func TestClientAddrReadsLittleOfAHugeHeader(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	h := clientAddr(trusted)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, peer := range []string{"198.51.100.9:5000", "10.0.0.2:5000"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", strings.Repeat("10.1.1.1,", 1<<17)) // ~1 MiB
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		h.ServeHTTP(httptest.NewRecorder(), r)
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got > 256<<10 { // a copy of the header would be 1 MiB
			t.Errorf("peer %s: got %d bytes allocated for the header, want under 256 KiB", peer, got)
		}
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
