// Package cdac sends SMS through C-DAC's Mobile Seva gateway (msdg), the
// Government of India's DLT SMS service, and polls its delivery reports.
//
// Wire format (Mobile Seva integration document 1.8 and C-DAC's sample
// client): form POST to /esms/sendsmsrequestDLT with username, password (hex
// SHA-1 of the password), senderid, content, smsservicetype (singlemsg for
// ASCII, unicodemsg for anything else), mobileno (10 digits), templateid (the
// DLT template id, 12 or 19 digits) and key = hex SHA-512 of
// trim(username)+trim(senderid)+trim(content)+trim(secure key). Unicode
// content is sent with every character as a decimal entity (&#2344;…) and the
// key is computed over that encoded text. The gateway answers 200 with a
// text body whose first three digits are the result: "402,MsgID = <id>" is
// success; everything else is an error code (401 credentials … 425).
package cdac

import (
	"context"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/shala-edu/shala/internal/sms"
)

// Paths on the gateway.
const (
	SendPath   = "/esms/sendsmsrequestDLT"
	ReportPath = "/ReportAPI/csvreport"
)

// DefaultURL is the production gateway.
const DefaultURL = "https://msdgweb.mgov.gov.in"

// Client talks to one C-DAC account.
type Client struct {
	BaseURL   string
	Username  string
	Password  string // plain; sent as its SHA-1
	SenderID  string
	SecureKey string
	HTTP      *http.Client
}

// New returns a client with a 30 s HTTP timeout.
func New(baseURL, username, password, senderID, secureKey string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Username: username, Password: password,
		SenderID: senderID, SecureKey: secureKey, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Name is "cdac".
func (c *Client) Name() string { return "cdac" }

// HashPassword is the hex SHA-1 the gateway expects instead of the password.
func HashPassword(password string) string {
	sum := sha1.Sum([]byte(strings.TrimSpace(password)))
	return hex.EncodeToString(sum[:])
}

// Key is the request signature: hex SHA-512 over the trimmed username,
// sender id, content (as sent, i.e. entity-encoded for Unicode) and secure
// key.
func Key(username, senderID, content, secureKey string) string {
	sum := sha512.Sum512([]byte(strings.TrimSpace(username) + strings.TrimSpace(senderID) +
		strings.TrimSpace(content) + strings.TrimSpace(secureKey)))
	return hex.EncodeToString(sum[:])
}

// EncodeUnicode writes every character of s as a decimal entity, as the
// gateway's unicodemsg service requires.
func EncodeUnicode(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteString("&#")
		b.WriteString(strconv.Itoa(int(r)))
		b.WriteByte(';')
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Form builds the send request's fields for one message.
func (c *Client) Form(msg sms.Message) url.Values {
	content, service := msg.Body, "singlemsg"
	if !isASCII(content) {
		content, service = EncodeUnicode(strings.TrimSpace(content)), "unicodemsg"
	}
	return url.Values{
		"username":       {strings.TrimSpace(c.Username)},
		"password":       {HashPassword(c.Password)},
		"senderid":       {strings.TrimSpace(c.SenderID)},
		"content":        {content},
		"smsservicetype": {service},
		"mobileno":       {tenDigits(msg.To)},
		"key":            {Key(c.Username, c.SenderID, content, c.SecureKey)},
		"templateid":     {msg.DLTTemplateID},
	}
}

// tenDigits turns +919816012345 into 9816012345.
func tenDigits(e164 string) string {
	d := strings.TrimPrefix(e164, "+")
	if len(d) == 12 && strings.HasPrefix(d, "91") {
		return d[2:]
	}
	return d
}

var (
	successPattern = regexp.MustCompile(`^\s*402\s*,\s*MsgID\s*=\s*(\S+)`)
	codePattern    = regexp.MustCompile(`\b(4\d\d)\b`)
)

// retryable codes: internal database/network errors, SMSC errors and
// timeouts on the gateway side.
var retryable = map[string]bool{"404": true, "405": true, "407": true, "408": true, "409": true}

// Send submits msg and returns the gateway's MsgID.
func (c *Client) Send(ctx context.Context, msg sms.Message) (string, error) {
	if len(msg.DLTTemplateID) != 12 && len(msg.DLTTemplateID) != 19 {
		return "", &sms.Error{Code: "423", Message: "DLT template id must be 12 or 19 digits", Permanent: true}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+SendPath, strings.NewReader(c.Form(msg).Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("cdac send: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("cdac send: read answer: %w", err)
	}
	return parseSendAnswer(resp.StatusCode, string(body))
}

func parseSendAnswer(status int, body string) (string, error) {
	text := strings.TrimSpace(body)
	if status >= 500 {
		return "", &sms.Error{Code: "http_" + strconv.Itoa(status), Message: "gateway unavailable: " + short(text)}
	}
	if status != http.StatusOK {
		return "", &sms.Error{Code: "http_" + strconv.Itoa(status), Message: short(text), Permanent: status != http.StatusTooManyRequests}
	}
	if m := successPattern.FindStringSubmatch(text); m != nil {
		return m[1], nil
	}
	if strings.Contains(text, "don't have Access") {
		return "", &sms.Error{Code: "access", Message: short(text), Permanent: true}
	}
	m := codePattern.FindStringSubmatch(text)
	if m == nil {
		// An answer we do not understand: retry (bounded) rather than fail
		// a message the gateway may have taken.
		return "", &sms.Error{Code: "unknown", Message: short(text)}
	}
	return "", &sms.Error{Code: m[1], Message: short(text), Permanent: !retryable[m[1]]}
}

func short(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

// Reports polls the delivery report of each MsgID (GET /ReportAPI/csvreport,
// one MsgID per call, answer lines "919816012345,DELIVERED,2026-11-22 10:00:00")
// and returns the statuses that are final.
func (c *Client) Reports(ctx context.Context, msgIDs []string) ([]sms.Status, error) {
	var out []sms.Status
	for _, id := range msgIDs {
		q := url.Values{"userid": {c.Username}, "password": {HashPassword(c.Password)}, "msgid": {id}, "pwd_encrypted": {"true"}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+ReportPath+"?"+q.Encode(), nil)
		if err != nil {
			return out, err
		}
		resp, err := c.HTTP.Do(req)
		if err != nil {
			return out, fmt.Errorf("cdac report: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<10))
		resp.Body.Close()
		if err != nil {
			return out, err
		}
		if resp.StatusCode != http.StatusOK {
			return out, fmt.Errorf("cdac report: HTTP %d: %s", resp.StatusCode, short(string(body)))
		}
		if st, ok := parseReport(id, string(body)); ok {
			out = append(out, st)
		}
	}
	return out, nil
}

func parseReport(id, body string) (sms.Status, bool) {
	for _, line := range strings.Split(body, "\n") {
		fields := strings.Split(strings.TrimSpace(line), ",")
		if len(fields) < 2 {
			continue
		}
		switch status := strings.ToUpper(strings.TrimSpace(fields[1])); {
		case status == "DELIVERED":
			return sms.Status{ProviderMessageID: id, Delivered: true}, true
		case strings.HasPrefix(status, "FAILED"), strings.HasPrefix(status, "UNDELIV"),
			strings.HasPrefix(status, "REJECT"), strings.HasPrefix(status, "EXPIRED"):
			return sms.Status{ProviderMessageID: id, Failed: true, Reason: "cdac " + status}, true
		}
	}
	return sms.Status{}, false // SUBMITTED or not known yet
}
