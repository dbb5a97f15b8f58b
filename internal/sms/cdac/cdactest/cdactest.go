// Package cdactest serves C-DAC Mobile Seva's send and delivery-report APIs
// on a local port, checking requests the way the gateway does (SHA-1
// password, SHA-512 key over the content as sent, entity-encoded Unicode, DLT
// template id, 10-digit numbers) and answering in its text format, so tests
// exercise the real cdac client. Numbers can be scripted to fail, time out or
// succeed, per call.
package cdactest

import (
	"crypto/sha1"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Behaviour is one scripted answer to a send.
type Behaviour struct {
	Answer string        // body to answer; "" means success (402,MsgID = …)
	Delay  time.Duration // wait before answering (longer than the client's timeout = a timeout)
}

// Received is a message the gateway accepted or refused.
type Received struct {
	Number     string // 10 digits
	Text       string // decoded content
	Service    string
	TemplateID string
	MsgID      string // set when accepted
	Answer     string
}

// Server is a running fake gateway.
type Server struct {
	URL string

	username, password, senderID, secureKey string

	mu       sync.Mutex
	received []Received
	scripts  map[string][]Behaviour
	reports  map[string]string // MsgID → status line status
	numbers  map[string]string // MsgID → number
	next     int
	latency  time.Duration
}

// New starts a gateway for one account; it is closed when t ends.
func New(t testing.TB, username, password, senderID, secureKey string) *Server {
	s := &Server{username: username, password: password, senderID: senderID, secureKey: secureKey,
		scripts: map[string][]Behaviour{}, reports: map[string]string{}, numbers: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/esms/sendsmsrequestDLT", s.send)
	mux.HandleFunc("/ReportAPI/csvreport", s.report)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Script makes the next sends to number (10 digits) behave as bs, in order;
// later sends succeed.
func (s *Server) Script(number string, bs ...Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[number] = append(s.scripts[number], bs...)
}

// SetLatency makes every send the gateway accepts take d, as a real
// gateway's round trip does (a scripted Delay replaces it).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetReport sets the delivery status the report API gives for msgID
// (DELIVERED, FAILEDBYTELCO, SUBMITTED, …).
func (s *Server) SetReport(msgID, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports[msgID] = status
}

// Received returns every send the gateway answered.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.received...)
}

// Accepted counts accepted sends per number.
func (s *Server) Accepted() map[string]int {
	out := map[string]int{}
	for _, r := range s.Received() {
		if r.MsgID != "" {
			out[r.Number]++
		}
	}
	return out
}

var (
	entity   = regexp.MustCompile(`^(&#[0-9]+;)+$`)
	tenDigit = regexp.MustCompile(`^[6-9][0-9]{9}$`)
	template = regexp.MustCompile(`^([0-9]{12}|[0-9]{19})$`)
)

func hexSHA1(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func hexSHA512(s string) string {
	h := sha512.Sum512([]byte(s))
	return hex.EncodeToString(h[:])
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "This Service is only available on HTTP POST", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f := r.PostForm
	content := f.Get("content")
	rec := Received{Number: f.Get("mobileno"), Service: f.Get("smsservicetype"), TemplateID: f.Get("templateid")}
	answer := func(body string) {
		rec.Answer = body
		s.mu.Lock()
		s.received = append(s.received, rec)
		s.mu.Unlock()
		_, _ = w.Write([]byte(body))
	}
	switch {
	case f.Get("username") == "":
		answer("442 : Invalid username parameter")
		return
	case f.Get("username") != s.username || f.Get("password") != hexSHA1(s.password):
		answer("401,Credentials Error, may be invalid username or password")
		return
	case f.Get("senderid") != s.senderID:
		answer("411,Sender ID not approved")
		return
	case f.Get("key") == "":
		answer("447 : Missing key parameter")
		return
	case f.Get("key") != hexSHA512(s.username+s.senderID+strings.TrimSpace(content)+s.secureKey):
		answer("Error 416 : Hash is not matching, please check your secure key")
		return
	case !template.MatchString(rec.TemplateID):
		answer("423,TEMPLATE_ID is mandatory and it should be 12 or 19 digit length")
		return
	case rec.Service == "":
		answer("ERROR :: 431 SMS Service Type is NULL")
		return
	}
	switch rec.Service {
	case "unicodemsg":
		if !entity.MatchString(content) {
			answer("ERROR : 406 Invalid content for unicodemsg")
			return
		}
		rec.Text = html.UnescapeString(content)
	case "singlemsg":
		rec.Text = content
	default:
		answer("ERROR :: 431 SMS Service Type is NULL")
		return
	}
	if !tenDigit.MatchString(rec.Number) {
		answer("ERROR : 406 Invalid mobile number\r\n")
		return
	}
	s.mu.Lock()
	var b Behaviour
	if script := s.scripts[rec.Number]; len(script) > 0 {
		b, s.scripts[rec.Number] = script[0], script[1:]
	}
	// A scripted delay models a gateway that never answered (nothing
	// sent); the latency models a round trip, and a message whose sender
	// vanished meanwhile (a killed process) was still received and goes out.
	latency := b.Delay == 0
	if latency {
		b.Delay = s.latency
	}
	s.mu.Unlock()
	if b.Delay > 0 {
		select {
		case <-time.After(b.Delay):
		case <-r.Context().Done():
			if !latency {
				return
			}
		}
	}
	if b.Answer != "" {
		answer(b.Answer)
		return
	}
	s.mu.Lock()
	s.next++
	rec.MsgID = fmt.Sprintf("%018d%s", 221120261000000000+s.next, s.username)
	s.numbers[rec.MsgID] = rec.Number
	s.mu.Unlock()
	answer("402,MsgID = " + rec.MsgID + "\r\n")
}

func (s *Server) report(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pw := q.Get("password")
	if q.Get("pwd_encrypted") != "true" {
		pw = hexSHA1(pw)
	}
	if q.Get("userid") != s.username || pw != hexSHA1(s.password) {
		_, _ = w.Write([]byte("401,Credentials Error"))
		return
	}
	s.mu.Lock()
	number, ok := s.numbers[q.Get("msgid")]
	status := s.reports[q.Get("msgid")]
	s.mu.Unlock()
	if !ok {
		return // unknown MsgID: empty report
	}
	if status == "" {
		status = "SUBMITTED"
	}
	fmt.Fprintf(w, "91%s,%s,%s\n", number, status, time.Now().UTC().Format("2006-01-02 15:04:05"))
}
