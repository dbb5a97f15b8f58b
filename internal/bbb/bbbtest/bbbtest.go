// Package bbbtest serves the BigBlueButton API on a local port — create,
// join, isMeetingRunning, getMeetingInfo, getMeetings, end — checking every
// call's checksum the way BBB's own validator does (the raw query string
// with its checksum parameter cut out, the algorithm chosen by the
// checksum's length among the server's supportedChecksumAlgorithms) and
// answering in BBB's XML, so tests exercise the real bbb client. A server can
// be slowed down, taken down (connections dropped) or scripted to fail
// particular calls.
package bbbtest

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// APIPath is where the API is served, as on a real server.
const APIPath = "/bigbluebutton/api/"

// Options configure a server.
type Options struct {
	// Secret is the shared secret (securitySalt); random when empty.
	Secret string
	// Algorithms are the accepted checksum algorithms
	// (supportedChecksumAlgorithms); all of sha1, sha256, sha384, sha512
	// when empty.
	Algorithms []string
	// Latency delays every answer.
	Latency time.Duration
	// Reencode validates as BBB 2.4 did (bigbluebutton#12919): the query is
	// parsed and encoded again with Apache HttpClient's URLEncodedUtils
	// before it is hashed, so a checksum only matches a query encoded the
	// way Java's form encoding does it.
	Reencode bool
	// BeforeAnswer, if set, is called with the call's name before each
	// answer (after its checksum was checked): tests block or count there.
	BeforeAnswer func(call string)
}

// Failure scripts the next answer to a call.
type Failure struct {
	// Drop closes the connection without an answer.
	Drop bool
	// Status answers with this HTTP status and no BBB document.
	Status int
	// Key and Message answer FAILED with this messageKey.
	Key, Message string
}

// Attendee is a user in a meeting.
type Attendee struct {
	UserID, FullName, Role string
}

// Meeting is a meeting the server holds.
type Meeting struct {
	ID, Name, InternalID    string
	AttendeePW, ModeratorPW string
	CreateTime              int64
	Attendees               []Attendee
	Meta                    map[string]string
	MaxParticipants         int
	// Ended: ended by the end call (or a moderator in the meeting). BBB
	// keeps such a meeting in memory for a while: getMeetingInfo still
	// finds it (hasBeenForciblyEnded), join refuses it, and create with the
	// same ID makes a new meeting. Forget removes it.
	Ended bool
}

// Server is a running fake BBB server.
type Server struct {
	// URL is the API base (…/bigbluebutton/api/), as admins register it.
	URL string
	// Host is host:port.
	Host   string
	Secret string

	algorithms   []string
	reencode     bool
	beforeAnswer func(string)

	mu       sync.Mutex
	latency  time.Duration
	down     bool
	meetings map[string]*Meeting
	calls    map[string]int
	failures map[string][]Failure
	lastTime int64
}

// New starts a server; it is closed when t ends.
func New(t testing.TB, o Options) *Server {
	s, stop := Start(o)
	t.Cleanup(stop)
	return s
}

// Start starts a server outside a test (benchmarks); stop closes it.
func Start(o Options) (s *Server, stop func()) {
	s = &Server{Secret: o.Secret, algorithms: o.Algorithms, reencode: o.Reencode, latency: o.Latency, beforeAnswer: o.BeforeAnswer,
		meetings: map[string]*Meeting{}, calls: map[string]int{}, failures: map[string][]Failure{}}
	if s.Secret == "" {
		s.Secret = randomHex(16)
	}
	if len(s.algorithms) == 0 {
		s.algorithms = []string{"sha1", "sha256", "sha384", "sha512"}
	}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	u, _ := url.Parse(srv.URL)
	s.Host = u.Host
	s.URL = srv.URL + APIPath
	return s, srv.Close
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// SetLatency delays every later answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetDown makes every later request see its connection closed (true) or
// served again (false).
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Fail scripts the next answers to call, one failure per answer.
func (s *Server) Fail(call string, fs ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[call] = append(s.failures[call], fs...)
}

// Calls is how many checked calls of call the server answered (or failed on
// script).
func (s *Server) Calls(call string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[call]
}

// Meetings returns a copy of the meetings the server holds.
func (s *Server) Meetings() []Meeting {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Meeting, 0, len(s.meetings))
	for _, m := range s.meetings {
		c := *m
		c.Attendees = slices.Clone(m.Attendees)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Meeting) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Meeting returns a copy of the meeting id, if it exists.
func (s *Server) Meeting(id string) (Meeting, bool) {
	for _, m := range s.Meetings() {
		if m.ID == id {
			return m, true
		}
	}
	return Meeting{}, false
}

// Leave removes the first attendee with userID from the meeting (a closed
// browser tab).
func (s *Server) Leave(meetingID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.meetings[meetingID]; m != nil {
		for i, a := range m.Attendees {
			if a.UserID == userID {
				m.Attendees = slices.Delete(m.Attendees, i, i+1)
				return
			}
		}
	}
}

// Forget removes a meeting from memory, as BBB does some time after it
// ended, expired or its last user left.
func (s *Server) Forget(meetingID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.meetings, meetingID)
}

// status is every answer's envelope.
type status struct {
	ReturnCode string `xml:"returncode"`
	MessageKey string `xml:"messageKey,omitempty"`
	Message    string `xml:"message,omitempty"`
}

func okStatus(key, msg string) status {
	return status{ReturnCode: "SUCCESS", MessageKey: key, Message: msg}
}

func writeXML(w http.ResponseWriter, v any) {
	out, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=utf-8")
	w.Write(append([]byte(xml.Header), out...))
}

func failed(w http.ResponseWriter, key, msg string) {
	writeXML(w, struct {
		XMLName xml.Name `xml:"response"`
		status
	}{status: status{ReturnCode: "FAILED", MessageKey: key, Message: msg}})
}

// checksumOK is BBB's GetChecksumValidator: the checksum parameter is cut
// out of the raw query string (as GetChecksum does, by string replacement),
// the algorithm comes from the checksum's length, and only algorithms in
// supportedChecksumAlgorithms count.
func (s *Server) checksumOK(call, rawQuery, checksum string) bool {
	if checksum == "" {
		return false
	}
	q := rawQuery
	if s.reencode {
		q = reencoded(rawQuery)
	} else {
		q = strings.Replace(q, "&checksum="+checksum, "", -1)
		q = strings.Replace(q, "checksum="+checksum+"&", "", -1)
		q = strings.Replace(q, "checksum="+checksum, "", -1)
	}
	var h hash.Hash
	var alg string
	switch len(checksum) {
	case 40:
		h, alg = sha1.New(), "sha1"
	case 64:
		h, alg = sha256.New(), "sha256"
	case 96:
		h, alg = sha512.New384(), "sha384"
	case 128:
		h, alg = sha512.New(), "sha512"
	default:
		return false
	}
	if !slices.Contains(s.algorithms, alg) {
		return false
	}
	h.Write([]byte(call + q + s.Secret))
	return strings.EqualFold(hex.EncodeToString(h.Sum(nil)), checksum)
}

// reencoded is BBB 2.4's query without its checksum:
// URLEncodedUtils.parse (pairs split at '&' and ';', '+' and %XX decoded),
// the checksum pairs removed, then URLEncodedUtils.format, whose safe
// characters are letters, digits and "-_.*", a space becoming '+' and any
// other byte %XX in upper case.
func reencoded(raw string) string {
	var out []string
	for _, pair := range strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		k, v, _ := strings.Cut(pair, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || dk == "checksum" {
			continue
		}
		out = append(out, javaForm(dk)+"="+javaForm(dv))
	}
	return strings.Join(out, "&")
}

func javaForm(s string) string {
	const safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.*"
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c == ' ':
			b.WriteByte('+')
		case strings.IndexByte(safe, c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down, latency := s.down, s.latency
	s.mu.Unlock()
	if down {
		drop(w)
		return
	}
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if !strings.HasPrefix(r.URL.Path, APIPath) {
		http.NotFound(w, r)
		return
	}
	call := strings.TrimPrefix(r.URL.Path, APIPath)
	if call == "" {
		writeXML(w, struct {
			XMLName xml.Name `xml:"response"`
			status
			Version string `xml:"version"`
		}{status: okStatus("", ""), Version: "2.0"})
		return
	}
	q := r.URL.Query()
	if !s.checksumOK(call, r.URL.RawQuery, q.Get("checksum")) {
		failed(w, "checksumError", "Checksums do not match")
		return
	}
	s.mu.Lock()
	s.calls[call]++
	var f *Failure
	if fs := s.failures[call]; len(fs) > 0 {
		f, s.failures[call] = &fs[0], fs[1:]
	}
	s.mu.Unlock()
	if s.beforeAnswer != nil {
		s.beforeAnswer(call)
	}
	if f != nil {
		switch {
		case f.Drop:
			drop(w)
		case f.Status != 0:
			http.Error(w, http.StatusText(f.Status), f.Status)
		default:
			failed(w, f.Key, f.Message)
		}
		return
	}
	switch call {
	case "create":
		s.create(w, q)
	case "join":
		s.join(w, r, q)
	case "isMeetingRunning":
		s.mu.Lock()
		m := s.meetings[q.Get("meetingID")]
		running := m != nil && !m.Ended && len(m.Attendees) > 0
		s.mu.Unlock()
		writeXML(w, struct {
			XMLName xml.Name `xml:"response"`
			status
			Running bool `xml:"running"`
		}{status: okStatus("", ""), Running: running})
	case "getMeetingInfo":
		s.mu.Lock()
		m := s.meetings[q.Get("meetingID")]
		var info *meetingXML
		if m != nil {
			info = toXML(m)
		}
		s.mu.Unlock()
		if info == nil {
			failed(w, "notFound", "We could not find a meeting with that meeting ID")
			return
		}
		writeXML(w, struct {
			XMLName xml.Name `xml:"response"`
			status
			*meetingXML
		}{status: okStatus("", ""), meetingXML: info})
	case "getMeetings":
		s.mu.Lock()
		var list []*meetingXML
		for _, m := range s.meetings {
			list = append(list, toXML(m))
		}
		s.mu.Unlock()
		slices.SortFunc(list, func(a, b *meetingXML) int { return strings.Compare(a.MeetingID, b.MeetingID) })
		st := okStatus("", "")
		if len(list) == 0 {
			st = okStatus("noMeetings", "no meetings were found on this server")
		}
		writeXML(w, struct {
			XMLName xml.Name `xml:"response"`
			status
			Meetings []*meetingXML `xml:"meetings>meeting"`
		}{status: st, Meetings: list})
	case "end":
		s.mu.Lock()
		m, ok := s.meetings[q.Get("meetingID")]
		if ok {
			m.Ended, m.Attendees = true, nil
		}
		s.mu.Unlock()
		if !ok {
			failed(w, "notFound", "We could not find a meeting with that meeting ID - perhaps the meeting is not yet running?")
			return
		}
		writeXML(w, struct {
			XMLName xml.Name `xml:"response"`
			status
		}{status: okStatus("sentEndMeetingRequest", "A request to end the meeting was sent.")})
	default:
		failed(w, "unsupportedRequest", "This request is not supported.")
	}
}

// drop closes the connection without answering.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "down", http.StatusBadGateway)
		return
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		conn.Close()
	}
}

func validID(s string) bool { return len(s) >= 2 && len(s) <= 256 && !strings.Contains(s, ",") }

func (s *Server) create(w http.ResponseWriter, q url.Values) {
	id, name := q.Get("meetingID"), q.Get("name")
	if !validID(id) {
		failed(w, "validationError", "Meeting ID must be between 2 and 256 characters and must not contain commas")
		return
	}
	if len(name) < 2 || len(name) > 256 {
		failed(w, "validationError", "Meeting name must be between 2 and 256 characters")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.meetings[id]; m != nil && !m.Ended {
		if (q.Get("attendeePW") != "" && q.Get("attendeePW") != m.AttendeePW) ||
			(q.Get("moderatorPW") != "" && q.Get("moderatorPW") != m.ModeratorPW) {
			failed(w, "idNotUnique", "A meeting already exists with that meeting ID.  Please use a different meeting ID.")
			return
		}
		writeCreate(w, m, okStatus("duplicateWarning", "This conference was already in existence and may currently be in progress."))
		return
	}
	now := time.Now().UnixMilli()
	if now <= s.lastTime {
		now = s.lastTime + 1
	}
	s.lastTime = now
	m := &Meeting{ID: id, Name: name, AttendeePW: q.Get("attendeePW"), ModeratorPW: q.Get("moderatorPW"),
		CreateTime: now, Meta: map[string]string{}}
	sum := sha1.Sum([]byte(id))
	m.InternalID = fmt.Sprintf("%x-%d", sum, now)
	if m.AttendeePW == "" {
		m.AttendeePW = randomHex(4)
	}
	if m.ModeratorPW == "" {
		m.ModeratorPW = randomHex(4)
	}
	if n := q.Get("maxParticipants"); n != "" {
		fmt.Sscan(n, &m.MaxParticipants)
	}
	for k, v := range q {
		if after, ok := strings.CutPrefix(k, "meta_"); ok {
			m.Meta[strings.ToLower(after)] = v[0]
		}
	}
	s.meetings[id] = m
	writeCreate(w, m, okStatus("", ""))
}

func (s *Server) join(w http.ResponseWriter, r *http.Request, q url.Values) {
	s.mu.Lock()
	m := s.meetings[q.Get("meetingID")]
	if m == nil {
		s.mu.Unlock()
		failed(w, "invalidMeetingIdentifier", "The meeting ID that you supplied did not match any existing meetings")
		return
	}
	if m.Ended {
		s.mu.Unlock()
		failed(w, "meetingForciblyEnded", "You can not re-join a meeting that has already been forcibly ended.")
		return
	}
	if ct := q.Get("createTime"); ct != "" && ct != fmt.Sprint(m.CreateTime) {
		s.mu.Unlock()
		failed(w, "mismatchCreateTimeParam", "The createTime parameter submitted mismatches with the current meeting.")
		return
	}
	role := strings.ToUpper(q.Get("role"))
	switch {
	case role == "MODERATOR" || role == "VIEWER":
	case q.Get("password") == m.ModeratorPW:
		role = "MODERATOR"
	case q.Get("password") == m.AttendeePW:
		role = "VIEWER"
	default:
		s.mu.Unlock()
		failed(w, "invalidPassword", "You either did not supply a password or the password supplied is neither the attendee or moderator password for this conference.")
		return
	}
	if q.Get("fullName") == "" {
		s.mu.Unlock()
		failed(w, "missingParamFullName", "You must specify a name for the attendee who will be joining the meeting.")
		return
	}
	if m.MaxParticipants > 0 && len(m.Attendees) >= m.MaxParticipants {
		s.mu.Unlock()
		failed(w, "maxParticipantsReached", "The number of participants allowed for this meeting has been reached.")
		return
	}
	m.Attendees = append(m.Attendees, Attendee{UserID: q.Get("userID"), FullName: q.Get("fullName"), Role: role})
	s.mu.Unlock()
	token := randomHex(8)
	clientURL := "http://" + r.Host + "/html5client/join?sessionToken=" + token
	if q.Get("redirect") == "false" {
		writeXML(w, struct {
			XMLName xml.Name `xml:"response"`
			status
			URL string `xml:"url"`
		}{status: okStatus("successfullyJoined", "You have joined successfully."), URL: clientURL})
		return
	}
	http.Redirect(w, r, clientURL, http.StatusFound)
}

type createAnswer struct {
	MeetingID         string `xml:"meetingID"`
	InternalMeetingID string `xml:"internalMeetingID"`
	ParentMeetingID   string `xml:"parentMeetingID"`
	AttendeePW        string `xml:"attendeePW"`
	ModeratorPW       string `xml:"moderatorPW"`
	CreateTime        int64  `xml:"createTime"`
	HasUserJoined     bool   `xml:"hasUserJoined"`
	Duration          int    `xml:"duration"`
}

func writeCreate(w http.ResponseWriter, m *Meeting, st status) {
	writeXML(w, struct {
		XMLName xml.Name `xml:"response"`
		status
		createAnswer
	}{status: st, createAnswer: createAnswer{MeetingID: m.ID, InternalMeetingID: m.InternalID, ParentMeetingID: "bbb-none",
		AttendeePW: m.AttendeePW, ModeratorPW: m.ModeratorPW, CreateTime: m.CreateTime, HasUserJoined: len(m.Attendees) > 0}})
}

type attendeeXML struct {
	UserID   string `xml:"userID"`
	FullName string `xml:"fullName"`
	Role     string `xml:"role"`
}

type meetingXML struct {
	MeetingName       string        `xml:"meetingName"`
	MeetingID         string        `xml:"meetingID"`
	InternalMeetingID string        `xml:"internalMeetingID"`
	CreateTime        int64         `xml:"createTime"`
	AttendeePW        string        `xml:"attendeePW"`
	ModeratorPW       string        `xml:"moderatorPW"`
	Running           bool          `xml:"running"`
	ForciblyEnded     bool          `xml:"hasBeenForciblyEnded"`
	ParticipantCount  int           `xml:"participantCount"`
	ModeratorCount    int           `xml:"moderatorCount"`
	Attendees         []attendeeXML `xml:"attendees>attendee"`
}

func toXML(m *Meeting) *meetingXML {
	x := &meetingXML{MeetingName: m.Name, MeetingID: m.ID, InternalMeetingID: m.InternalID, CreateTime: m.CreateTime,
		AttendeePW: m.AttendeePW, ModeratorPW: m.ModeratorPW, Running: !m.Ended && len(m.Attendees) > 0, ForciblyEnded: m.Ended,
		ParticipantCount: len(m.Attendees)}
	for _, a := range m.Attendees {
		if a.Role == "MODERATOR" {
			x.ModeratorCount++
		}
		x.Attendees = append(x.Attendees, attendeeXML(a))
	}
	return x
}
