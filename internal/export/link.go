package export

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shala-edu/shala/internal/fault"
)

// LinkTTL is how long a signed CSV link works.
const LinkTTL = time.Hour

// Error codes of signed links.
const (
	// CodeLinkExpired: the link's expiry has passed.
	CodeLinkExpired fault.Code = "LINK_EXPIRED"
	// CodeBadSignature: the link was altered or signed with another key.
	CodeBadSignature fault.Code = "BAD_SIGNATURE"
)

// Links signs and checks CSV download links: an HMAC-SHA256 over the form,
// the since bound and the expiry, so a link opens exactly that export until
// it expires and changing any part of it breaks it.
type Links struct {
	key  []byte
	base string // public URL, no trailing slash
}

// NewLinks signs with key for links under publicURL.
func NewLinks(key []byte, publicURL string) *Links {
	return &Links{key: key, base: strings.TrimRight(publicURL, "/")}
}

// DeriveKey makes a link key from another secret (HMAC with a label), for
// deployments without a key of their own: every replica derives the same
// key, and it is not the secret itself.
func DeriveKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("shala export links v1"))
	return m.Sum(nil)
}

// Path is the CSV endpoint's path for formID.
func Path(formID string) string { return "/exports/" + url.PathEscape(formID) + ".csv" }

// Sign returns a link to formID's CSV (responses submitted at or after
// since, if set) that works until now+LinkTTL.
func (l *Links) Sign(formID string, since *time.Time, now time.Time) (link string, expires time.Time) {
	expires = now.Add(LinkTTL).Truncate(time.Second)
	q := url.Values{}
	s := ""
	if since != nil {
		s = since.UTC().Format(time.RFC3339Nano)
		q.Set("since", s)
	}
	e := strconv.FormatInt(expires.Unix(), 10)
	q.Set("expires", e)
	q.Set("sig", base64.RawURLEncoding.EncodeToString(l.mac(formID, s, e)))
	return l.base + Path(formID) + "?" + q.Encode(), expires
}

func (l *Links) mac(formID, since, expires string) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("v1\n" + formID + "\n" + since + "\n" + expires))
	return m.Sum(nil)
}

// Verify checks a link's query for formID and returns its since bound.
func (l *Links) Verify(formID string, q url.Values, now time.Time) (*time.Time, error) {
	since, expires, sig := q.Get("since"), q.Get("expires"), q.Get("sig")
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, l.mac(formID, since, expires)) {
		return nil, fault.New(fault.Forbidden, CodeBadSignature, "this export link is not valid: ask for a new one")
	}
	exp, err := strconv.ParseInt(expires, 10, 64)
	if err != nil {
		return nil, fault.New(fault.Forbidden, CodeBadSignature, "this export link is not valid: ask for a new one")
	}
	if !now.Before(time.Unix(exp, 0)) {
		return nil, fault.New(fault.Gone, CodeLinkExpired, "this export link expired at %s: ask for a new one", time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	if since == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, since)
	if err != nil {
		return nil, fault.Invalidf("since", "want an RFC 3339 time, got %q", since)
	}
	return &t, nil
}
