// Package twiliotest serves Twilio's Messages API on a local port — basic
// auth, form fields, 201 message JSON, error JSON with Twilio's codes — and
// sends status callbacks signed the way Twilio signs them, so tests exercise
// the real twilio client and callback handler.
package twiliotest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/sms/twilio"
)

// Behaviour is one scripted answer to a create-message call.
type Behaviour struct {
	Status int // HTTP status; 0 = 201 success
	Code   int // Twilio error code
	Delay  time.Duration
}

// Message is a created message.
type Message struct {
	SID, To, From, Body, StatusCallback string
}

// Server is a running fake of Twilio's API.
type Server struct {
	URL        string
	AccountSID string
	AuthToken  string

	mu      sync.Mutex
	created []Message
	scripts map[string][]Behaviour
	bySID   map[string]Message
	e164    *regexp.Regexp
}

// New starts the API for one account; closed when t ends.
func New(t testing.TB, accountSID, authToken string) *Server {
	s := &Server{AccountSID: accountSID, AuthToken: authToken, scripts: map[string][]Behaviour{},
		bySID: map[string]Message{}, e164: regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Script makes the next creates for to behave as bs.
func (s *Server) Script(to string, bs ...Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[to] = append(s.scripts[to], bs...)
}

// Created returns the messages created so far.
func (s *Server) Created() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.created...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"code": code, "message": msg,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	want := "/2010-04-01/Accounts/" + s.AccountSID + "/Messages.json"
	if r.Method != http.MethodPost || r.URL.Path != want {
		apiError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != s.AccountSID || pass != s.AuthToken {
		apiError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if err := r.ParseForm(); err != nil {
		apiError(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	}
	f := r.PostForm
	to := f.Get("To")
	if !s.e164.MatchString(to) {
		apiError(w, http.StatusBadRequest, 21211, fmt.Sprintf("The 'To' number %s is not a valid phone number.", to))
		return
	}
	if f.Get("From") == "" && f.Get("MessagingServiceSid") == "" {
		apiError(w, http.StatusBadRequest, 21603, "The 'From' number is required.")
		return
	}
	if f.Get("Body") == "" {
		apiError(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	}
	s.mu.Lock()
	var b Behaviour
	if sc := s.scripts[to]; len(sc) > 0 {
		b, s.scripts[to] = sc[0], sc[1:]
	}
	s.mu.Unlock()
	if b.Delay > 0 {
		select {
		case <-time.After(b.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if b.Status != 0 {
		apiError(w, b.Status, b.Code, "scripted failure")
		return
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	m := Message{SID: "SM" + hex.EncodeToString(raw[:]), To: to, From: f.Get("From") + f.Get("MessagingServiceSid"),
		Body: f.Get("Body"), StatusCallback: f.Get("StatusCallback")}
	s.mu.Lock()
	s.created = append(s.created, m)
	s.bySID[m.SID] = m
	s.mu.Unlock()
	now := time.Now().UTC().Format(time.RFC1123Z)
	writeJSON(w, http.StatusCreated, map[string]any{
		"sid": m.SID, "account_sid": s.AccountSID, "to": m.To, "from": f.Get("From"), "body": m.Body,
		"status": "queued", "num_segments": "1", "direction": "outbound-api", "api_version": "2010-04-01",
		"date_created": now, "date_updated": now, "date_sent": nil, "error_code": nil, "error_message": nil,
		"price": nil, "price_unit": "USD", "messaging_service_sid": nilIfEmpty(f.Get("MessagingServiceSid")),
		"uri": want[:len(want)-len(".json")] + "/" + m.SID + ".json",
	})
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Callback posts a status callback for sid to its StatusCallback URL, signed
// with the auth token (or with signWith, to test a forgery), and returns the
// HTTP status shala answered.
func (s *Server) Callback(sid, status, errorCode, signWith string) (int, error) {
	s.mu.Lock()
	m, ok := s.bySID[sid]
	s.mu.Unlock()
	if !ok || m.StatusCallback == "" {
		return 0, fmt.Errorf("twiliotest: no message %s with a callback", sid)
	}
	form := url.Values{"MessageSid": {sid}, "SmsSid": {sid}, "MessageStatus": {status}, "SmsStatus": {status},
		"AccountSid": {s.AccountSID}, "To": {m.To}, "From": {m.From}, "ApiVersion": {"2010-04-01"}}
	if errorCode != "" {
		form.Set("ErrorCode", errorCode)
	}
	if signWith == "" {
		signWith = s.AuthToken
	}
	req, err := http.NewRequest(http.MethodPost, m.StatusCallback, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twilio.Signature(signWith, m.StatusCallback, form))
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
