// Package twilio sends SMS through Twilio's Programmable Messaging API and
// receives its status callbacks.
//
// Send: POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json, form
// fields To, From (or MessagingServiceSid for an MG… sender), Body,
// StatusCallback, HTTP basic auth (Account SID : Auth Token); 201 with the
// message JSON (sid, status…); errors are JSON {code, message, more_info,
// status}. Status callbacks are form POSTs (MessageSid, MessageStatus,
// ErrorCode, …) signed in X-Twilio-Signature: base64 HMAC-SHA1, keyed with
// the Auth Token, of the callback URL followed by every POST parameter's
// name and value in name order.
package twilio

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shala-edu/shala/internal/sms"
)

// DefaultURL is Twilio's API.
const DefaultURL = "https://api.twilio.com"

// CallbackPath is where shala receives status callbacks.
const CallbackPath = "/sms/twilio/status"

// Client talks to one Twilio account.
type Client struct {
	BaseURL        string
	AccountSID     string
	AuthToken      string
	From           string // a number, or a Messaging Service SID (MG…)
	StatusCallback string // absolute URL of CallbackPath as Twilio reaches it
	HTTP           *http.Client
}

// New returns a client with a 30 s HTTP timeout.
func New(baseURL, accountSID, authToken, from, statusCallback string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), AccountSID: accountSID, AuthToken: authToken,
		From: from, StatusCallback: statusCallback, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Name is "twilio".
func (c *Client) Name() string { return "twilio" }

// ReportsByCallback marks Twilio as a sms.CallbackProvider: status callbacks
// to CallbackPath.
func (c *Client) ReportsByCallback() {}

type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// permanent Twilio error codes: the same request will fail again.
var permanent = map[int]bool{
	20003: true, // authentication
	20404: true, // account or resource not found
	21211: true, // invalid To
	21408: true, // region not enabled
	21606: true, // From cannot send
	21608: true, // trial account, unverified To
	21610: true, // recipient unsubscribed
	21612: true, // cannot route to To
	21614: true, // not a mobile number
	21617: true, // body too long
	30002: true, 30004: true, 30005: true, 30006: true, 30007: true,
}

// Send creates the message and returns its SID.
func (c *Client) Send(ctx context.Context, msg sms.Message) (string, error) {
	form := url.Values{"To": {msg.To}, "Body": {msg.Body}}
	if strings.HasPrefix(c.From, "MG") {
		form.Set("MessagingServiceSid", c.From)
	} else {
		form.Set("From", c.From)
	}
	if c.StatusCallback != "" {
		form.Set("StatusCallback", c.StatusCallback)
	}
	endpoint := fmt.Sprintf("%s/2010-04-01/Accounts/%s/Messages.json", c.BaseURL, url.PathEscape(c.AccountSID))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(c.AccountSID, c.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("twilio send: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("twilio send: read answer: %w", err)
	}
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		var m struct {
			SID          string  `json:"sid"`
			Status       string  `json:"status"`
			ErrorCode    *int    `json:"error_code"`
			ErrorMessage *string `json:"error_message"`
		}
		if err := json.Unmarshal(body, &m); err != nil || m.SID == "" {
			return "", &sms.Error{Code: "bad_answer", Message: "unreadable answer: " + string(body)}
		}
		if m.Status == "failed" && m.ErrorCode != nil {
			return "", &sms.Error{Code: strconv.Itoa(*m.ErrorCode), Message: deref(m.ErrorMessage), Permanent: permanent[*m.ErrorCode]}
		}
		return m.SID, nil
	}
	var e apiError
	_ = json.Unmarshal(body, &e)
	code := strconv.Itoa(e.Code)
	if e.Code == 0 {
		code = "http_" + strconv.Itoa(resp.StatusCode)
	}
	retry := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || e.Code == 20429
	return "", &sms.Error{Code: code, Message: strings.TrimSpace(e.Message + " " + e.MoreInfo),
		Permanent: !retry && (permanent[e.Code] || resp.StatusCode < 500)}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Signature computes X-Twilio-Signature for a form POST to fullURL.
func Signature(authToken, fullURL string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		vals := append([]string(nil), params[k]...)
		sort.Strings(vals)
		for i, v := range vals {
			if i > 0 && v == vals[i-1] {
				continue
			}
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ValidSignature checks sig for a POST to fullURL, with and without the
// default port as Twilio's own libraries do.
func ValidSignature(authToken, fullURL string, params url.Values, sig string) bool {
	for _, u := range urlVariants(fullURL) {
		want := Signature(authToken, u, params)
		if subtle.ConstantTimeCompare([]byte(want), []byte(sig)) == 1 {
			return true
		}
	}
	return false
}

func urlVariants(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return []string{raw}
	}
	out := []string{raw}
	port := map[string]string{"https": "443", "http": "80"}[u.Scheme]
	switch {
	case u.Port() == "" && port != "":
		v := *u
		v.Host = u.Host + ":" + port
		out = append(out, v.String())
	case u.Port() == port:
		v := *u
		v.Host = u.Hostname()
		out = append(out, v.String())
	}
	return out
}

// Recorder records delivery statuses (sms.Reports is one).
type Recorder interface {
	Record(ctx context.Context, provider string, statuses []sms.Status) (int, error)
}

// StatusCallback receives Twilio's status callbacks at callbackURL (the URL
// exactly as configured in StatusCallback, which is what Twilio signs; behind
// a proxy the request's own URL differs). Unsigned or wrongly signed requests
// get 403; a delivered or failed status is recorded with reports and moves
// the message forward.
func StatusCallback(log *slog.Logger, reports Recorder, authToken, callbackURL string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		if authToken == "" || !ValidSignature(authToken, callbackURL, r.PostForm, r.Header.Get("X-Twilio-Signature")) {
			log.WarnContext(r.Context(), "twilio callback with a bad signature")
			http.Error(w, "invalid signature", http.StatusForbidden)
			return
		}
		sid, status := r.PostForm.Get("MessageSid"), r.PostForm.Get("MessageStatus")
		if sid == "" {
			http.Error(w, "MessageSid: missing", http.StatusBadRequest)
			return
		}
		var st sms.Status
		switch status {
		case "delivered", "read":
			st = sms.Status{ProviderMessageID: sid, Delivered: true}
		case "undelivered", "failed":
			st = sms.Status{ProviderMessageID: sid, Failed: true, Reason: strings.TrimSpace("twilio " + status + " " + r.PostForm.Get("ErrorCode"))}
		default: // queued, sending, sent, accepted…: nothing to record
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if _, err := reports.Record(r.Context(), "twilio", []sms.Status{st}); err != nil {
			log.ErrorContext(r.Context(), "twilio callback not recorded", "err", err)
			// Twilio does not retry status callbacks by default: this report
			// is lost and the message stays "sent" (logged above).
			http.Error(w, "not recorded", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
