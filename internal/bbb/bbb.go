// Package bbb is a client of the BigBlueButton (BBB) API: the calls shala
// makes to the servers of its pool (create, join links, isMeetingRunning,
// getMeetingInfo, getMeetings, end).
//
// Every call is a GET of {API base}{call}?{query}&checksum={hex(hash(call +
// query + secret))}, where hash is SHA-1, SHA-256 or SHA-512 (BBB picks the
// algorithm from the checksum's length and accepts the ones listed in its
// supportedChecksumAlgorithms). The checksum is computed over the exact query
// string that is sent. Answers are XML documents whose returncode is SUCCESS
// or FAILED; a FAILED answer carries a stable messageKey (notFound,
// checksumError, …) and an English message.
//
// The API secret never leaves this package except inside a checksum: Server
// prints and logs as its URL only.
package bbb

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Algorithm is a checksum hash BBB accepts.
type Algorithm string

// The algorithms shala signs with. SHA-256 is the default; SHA-1 only for a
// server that asks for it.
const (
	SHA1   Algorithm = "sha1"
	SHA256 Algorithm = "sha256"
	SHA512 Algorithm = "sha512"
)

// ParseAlgorithm accepts sha1, sha256 and sha512 (any case); "" is SHA256.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch a := Algorithm(strings.ToLower(strings.TrimSpace(s))); a {
	case "":
		return SHA256, nil
	case SHA1, SHA256, SHA512:
		return a, nil
	default:
		return "", fmt.Errorf("unknown checksum algorithm %q (want sha1, sha256 or sha512)", s)
	}
}

func (a Algorithm) hash() hash.Hash {
	switch a {
	case SHA1:
		return sha1.New()
	case SHA512:
		return sha512.New()
	default:
		return sha256.New()
	}
}

// Checksum is hex(hash(call + query + secret)), the checksum BBB expects for
// query (without its checksum parameter).
func Checksum(a Algorithm, call, query, secret string) string {
	h := a.hash()
	io.WriteString(h, call)
	io.WriteString(h, query)
	io.WriteString(h, secret)
	return hex.EncodeToString(h.Sum(nil))
}

// Server is one BBB server's API: its base URL (ending in /api/) and shared
// secret. It formats and logs as its URL only.
type Server struct {
	URL       string
	Secret    string
	Algorithm Algorithm
}

// String is the API URL: never the secret.
func (s Server) String() string { return s.URL }

// GoString is the API URL: never the secret.
func (s Server) GoString() string { return "bbb.Server{" + s.URL + "}" }

// LogValue is the API URL: never the secret.
func (s Server) LogValue() slog.Value { return slog.StringValue(s.URL) }

// NormalizeURL checks an API base URL (as Scalelite and Greenlight take it:
// https://host/bigbluebutton/api/) and returns it with one trailing slash,
// with the host[:port] that identifies the server (lower case). Plain http is
// accepted only for loopback hosts (local test servers).
func NormalizeURL(raw string) (base, host string, err error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", "", errors.New("want an absolute URL such as https://bbb.example.org/bigbluebutton/api/")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", errors.New("must not carry credentials, a query or a fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return "", "", errors.New("must be https (plain http only for a loopback test server)")
		}
	default:
		return "", "", errors.New("must be https")
	}
	path := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(path, "/api") {
		return "", "", errors.New("must be the API base, ending in /api/ (e.g. https://bbb.example.org/bigbluebutton/api/)")
	}
	u.Path = path + "/"
	// One server, one host: lower case, no final dot, no default port, as
	// its heartbeats and alerts name it (and as the unique hostname is kept).
	name, port := strings.TrimSuffix(strings.ToLower(u.Hostname()), "."), u.Port()
	if u.Scheme == "https" && port == "443" || u.Scheme == "http" && port == "80" {
		port = ""
	}
	switch {
	case port != "":
		u.Host = net.JoinHostPort(name, port)
	case strings.Contains(name, ":"):
		u.Host = "[" + name + "]"
	default:
		u.Host = name
	}
	return u.String(), u.Host, nil
}

// ErrUnreachable wraps every failure to get an answer from a server: no
// connection, a timeout, an HTTP error status, or a body that is not a BBB
// answer. The server cannot be used right now.
var ErrUnreachable = errors.New("bbb server unreachable")

// Error is a FAILED answer.
type Error struct {
	Call    string
	Key     string // messageKey: notFound, checksumError, idNotUnique, …
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("bbb %s: %s: %s", e.Call, e.Key, e.Message)
}

// IsNotFound reports whether err is BBB's "no such meeting" answer.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Key == "notFound" || e.Key == "invalidMeetingIdentifier")
}

// IsChecksumError reports whether the server refused the checksum: a wrong
// secret, or an algorithm the server does not accept.
func IsChecksumError(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Key == "checksumError"
}

// Client calls BBB servers. Its zero value is not usable; use New.
type Client struct {
	http    *http.Client
	metrics *Metrics
}

// Metrics count and time BBB API calls (no server names or ids in labels).
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers shala_bbb_requests_total{call,outcome} (outcome:
// ok, failed — a FAILED answer —, unreachable, cancelled) and
// shala_bbb_request_duration_seconds{call}.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shala_bbb_requests_total",
			Help: "BigBlueButton API calls by call and outcome (ok, failed, unreachable, cancelled)."}, []string{"call", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "shala_bbb_request_duration_seconds",
			Help: "Time a BigBlueButton API call took, by call.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}, []string{"call"}),
	}
	reg.MustRegister(m.calls, m.duration)
	return m
}

func (m *Metrics) observe(call string, start time.Time, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	var failed *Error
	switch {
	case err == nil:
	case errors.As(err, &failed):
		outcome = "failed"
	case errors.Is(err, ErrUnreachable):
		outcome = "unreachable"
	default:
		outcome = "cancelled"
	}
	m.calls.WithLabelValues(call, outcome).Inc()
	m.duration.WithLabelValues(call).Observe(time.Since(start).Seconds())
}

// New returns a client whose every call gives up after timeout; m (may be
// nil) observes every call.
func New(timeout time.Duration, m *Metrics) *Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	return &Client{metrics: m, http: &http.Client{Timeout: timeout, Transport: t,
		// BBB API answers are never redirects; following one would send the
		// checksum elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Param is one query parameter; calls keep their order, so the checksum is
// computed over the string exactly as sent.
type Param struct{ Key, Value string }

// Query encodes params in order, the way Java's form encoding does:
// letters, digits and "-_.*" as they are, a space as '+', every other byte
// as %XX (upper case). Most BBB versions hash the query exactly as sent,
// but BBB 2.4 parsed it and encoded it again that way before hashing
// (bigbluebutton#12919); a query already encoded so is the same string to
// both. (url.QueryEscape differs on '*' and '~'.)
func Query(params []Param) string {
	var b strings.Builder
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		formEscape(&b, p.Key)
		b.WriteByte('=')
		formEscape(&b, p.Value)
	}
	return b.String()
}

func formEscape(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '*':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
}

// CallURL is the signed URL of call with params on s.
func (s Server) CallURL(call string, params []Param) string {
	q := Query(params)
	sum := Checksum(s.Algorithm, call, q, s.Secret)
	if q != "" {
		q += "&"
	}
	return s.URL + call + "?" + q + "checksum=" + sum
}

// response is every answer's envelope; call-specific fields are decoded from
// the same document.
type response struct {
	ReturnCode string `xml:"returncode"`
	MessageKey string `xml:"messageKey"`
	Message    string `xml:"message"`
}

// maxAnswer caps an answer (getMeetings of a busy server lists every
// attendee of every meeting).
const maxAnswer = 16 << 20

// get calls call on s and decodes a SUCCESS answer into v (which must also
// hold the envelope fields it needs).
func (c *Client) get(ctx context.Context, s Server, call string, params []Param, v any) (_ response, err error) {
	start := time.Now()
	defer func() { c.metrics.observe(call, start, err) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.CallURL(call, params), nil)
	if err != nil {
		return response{}, fmt.Errorf("bbb %s: %w", call, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up: that says nothing about the server.
			return response{}, fmt.Errorf("bbb %s: %w", call, ctx.Err())
		}
		return response{}, fmt.Errorf("bbb %s on %s: %w: %v", call, s, ErrUnreachable, scrub(err, s))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		if ctx.Err() != nil {
			return response{}, fmt.Errorf("bbb %s: %w", call, ctx.Err())
		}
		return response{}, fmt.Errorf("bbb %s on %s: %w: read answer: %v", call, s, ErrUnreachable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return response{}, fmt.Errorf("bbb %s on %s: %w: HTTP %d", call, s, ErrUnreachable, resp.StatusCode)
	}
	var env response
	if err := xml.Unmarshal(body, &env); err != nil || env.ReturnCode == "" {
		return response{}, fmt.Errorf("bbb %s on %s: %w: not a BBB answer", call, s, ErrUnreachable)
	}
	if !strings.EqualFold(env.ReturnCode, "SUCCESS") {
		return env, &Error{Call: call, Key: env.MessageKey, Message: env.Message}
	}
	if v != nil {
		if err := xml.Unmarshal(body, v); err != nil {
			return env, fmt.Errorf("bbb %s on %s: %w: %v", call, s, ErrUnreachable, err)
		}
	}
	return env, nil
}

// scrub removes the signed URL from a transport error (it carries the
// checksum, which for join URLs is a capability).
func scrub(err error, s Server) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + " " + s.URL + "…: " + ue.Err.Error()
	}
	return err.Error()
}

// CreateParams are the parameters of create shala uses.
type CreateParams struct {
	MeetingID   string // 2–256 characters, no commas
	Name        string // 2–256 characters
	AttendeePW  string // for servers older than 2.4, which join by password
	ModeratorPW string
	Welcome     string
	// MaxParticipants caps users in the meeting (0: no cap).
	MaxParticipants int
	// Meta become meta_<key> parameters (kept with the meeting and any
	// recording).
	Meta []Param
}

// Meeting is what create returns.
type Meeting struct {
	MeetingID         string `xml:"meetingID"`
	InternalMeetingID string `xml:"internalMeetingID"`
	CreateTime        int64  `xml:"createTime"`
	AttendeePW        string `xml:"attendeePW"`
	ModeratorPW       string `xml:"moderatorPW"`
	// Existing is true when the meeting already existed (create is
	// idempotent: BBB answers SUCCESS with messageKey duplicateWarning).
	Existing bool `xml:"-"`
}

// Create creates the meeting, or finds it when it exists.
func (c *Client) Create(ctx context.Context, s Server, p CreateParams) (Meeting, error) {
	params := []Param{{"name", p.Name}, {"meetingID", p.MeetingID}}
	if p.AttendeePW != "" {
		params = append(params, Param{"attendeePW", p.AttendeePW})
	}
	if p.ModeratorPW != "" {
		params = append(params, Param{"moderatorPW", p.ModeratorPW})
	}
	if p.Welcome != "" {
		params = append(params, Param{"welcome", p.Welcome})
	}
	if p.MaxParticipants > 0 {
		params = append(params, Param{"maxParticipants", strconv.Itoa(p.MaxParticipants)})
	}
	params = append(params, Param{"record", "false"})
	for _, m := range p.Meta {
		params = append(params, Param{"meta_" + m.Key, m.Value})
	}
	var m Meeting
	env, err := c.get(ctx, s, "create", params, &m)
	if err != nil {
		return Meeting{}, err
	}
	m.Existing = env.MessageKey == "duplicateWarning"
	return m, nil
}

// Role is a join role.
type Role string

// Join roles.
const (
	Moderator Role = "MODERATOR"
	Viewer    Role = "VIEWER"
)

// JoinParams are the parameters of a join link.
type JoinParams struct {
	MeetingID string
	FullName  string
	Role      Role
	// Password is sent too, for servers older than 2.4 (newer ones use Role).
	Password string
	// UserID is shala's id of the person (getMeetingInfo lists it, so live
	// sessions can be counted).
	UserID string
	// CreateTime, when set, makes the link valid for that session of the
	// meeting only.
	CreateTime int64
}

// JoinURL is the signed join link: the browser that opens it enters the
// meeting. It is a capability; never log it.
func (s Server) JoinURL(p JoinParams) string {
	params := []Param{{"fullName", p.FullName}, {"meetingID", p.MeetingID}, {"role", string(p.Role)}}
	if p.Password != "" {
		params = append(params, Param{"password", p.Password})
	}
	if p.UserID != "" {
		params = append(params, Param{"userID", p.UserID})
	}
	if p.CreateTime != 0 {
		params = append(params, Param{"createTime", strconv.FormatInt(p.CreateTime, 10)})
	}
	return s.CallURL("join", params)
}

// IsMeetingRunning reports whether the meeting has users in it (a created
// meeting nobody joined yet is not running).
func (c *Client) IsMeetingRunning(ctx context.Context, s Server, meetingID string) (bool, error) {
	var r struct {
		Running bool `xml:"running"`
	}
	_, err := c.get(ctx, s, "isMeetingRunning", []Param{{"meetingID", meetingID}}, &r)
	return r.Running, err
}

// Attendee is a user in a meeting.
type Attendee struct {
	UserID   string `xml:"userID"`
	FullName string `xml:"fullName"`
	Role     string `xml:"role"`
}

// MeetingInfo is what getMeetingInfo and getMeetings tell about a meeting.
type MeetingInfo struct {
	MeetingID         string `xml:"meetingID"`
	InternalMeetingID string `xml:"internalMeetingID"`
	CreateTime        int64  `xml:"createTime"`
	Running           bool   `xml:"running"`
	// ForciblyEnded: the meeting was ended (the end call, or a moderator's
	// "End meeting"); BBB keeps it in memory a while, but nobody can join.
	ForciblyEnded    bool       `xml:"hasBeenForciblyEnded"`
	ParticipantCount int        `xml:"participantCount"`
	ModeratorCount   int        `xml:"moderatorCount"`
	Attendees        []Attendee `xml:"attendees>attendee"`
}

// GetMeetingInfo describes the meeting; a meeting that does not exist is an
// error for which IsNotFound is true.
func (c *Client) GetMeetingInfo(ctx context.Context, s Server, meetingID string) (MeetingInfo, error) {
	var m MeetingInfo
	_, err := c.get(ctx, s, "getMeetingInfo", []Param{{"meetingID", meetingID}}, &m)
	return m, err
}

// GetMeetings lists the server's meetings. shala uses it to check that a
// server answers and accepts its secret.
func (c *Client) GetMeetings(ctx context.Context, s Server) ([]MeetingInfo, error) {
	var r struct {
		Meetings []MeetingInfo `xml:"meetings>meeting"`
	}
	_, err := c.get(ctx, s, "getMeetings", nil, &r)
	return r.Meetings, err
}

// End ends the meeting for everyone in it.
func (c *Client) End(ctx context.Context, s Server, meetingID string) error {
	_, err := c.get(ctx, s, "end", []Param{{"meetingID", meetingID}}, nil)
	return err
}
