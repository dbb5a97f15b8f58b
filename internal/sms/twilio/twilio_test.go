package twilio_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/sms/twilio"
	"github.com/shala-edu/shala/internal/sms/twilio/twiliotest"
)

// The example from Twilio's webhook security documentation.
func TestSignatureKnownAnswer(t *testing.T) {
	t.Parallel()
	params := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"}}
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	if got, want := twilio.Signature("12345", u, params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ="; got != want {
		t.Errorf("Signature = %s, want %s", got, want)
	}
	if !twilio.ValidSignature("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=") {
		t.Error("signature with the default port spelled out was refused")
	}
	params.Set("Digits", "1235")
	if twilio.ValidSignature("12345", u, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=") {
		t.Error("a changed parameter still validated")
	}
}

func TestSendAgainstTheAPI(t *testing.T) {
	t.Parallel()
	api := twiliotest.New(t, "AC0123456789abcdef0123456789abcdef", "auth-token")
	c := twilio.New(api.URL, api.AccountSID, api.AuthToken, "+15005550006", "https://shala.example/sms/twilio/status")
	c.HTTP.Timeout = 300 * time.Millisecond
	ctx := context.Background()
	sid, err := c.Send(ctx, sms.Message{To: "+919816012345", Body: "प्रिय अभिभावक"})
	if err != nil {
		t.Fatal(err)
	}
	got := api.Created()
	if len(got) != 1 || got[0].SID != sid || got[0].Body != "प्रिय अभिभावक" || got[0].StatusCallback != "https://shala.example/sms/twilio/status" {
		t.Fatalf("created %+v", got)
	}

	api.Script("+919816000001", twiliotest.Behaviour{Status: 400, Code: 21614})
	api.Script("+919816000002", twiliotest.Behaviour{Status: 429, Code: 20429})
	api.Script("+919816000003", twiliotest.Behaviour{Status: 503, Code: 20500})
	for _, tt := range []struct {
		to        string
		code      string
		permanent bool
	}{
		{"+919816000001", "21614", true},
		{"+919816000002", "20429", false},
		{"+919816000003", "20500", false},
	} {
		_, err := c.Send(ctx, sms.Message{To: tt.to, Body: "x"})
		if sms.ErrorCode(err) != tt.code || sms.Permanent(err) != tt.permanent {
			t.Errorf("%s: %v (permanent %v), want code %s permanent %v", tt.to, err, sms.Permanent(err), tt.code, tt.permanent)
		}
	}
	bad := twilio.New(api.URL, api.AccountSID, "wrong", "+15005550006", "")
	if _, err := bad.Send(ctx, sms.Message{To: "+919816012345", Body: "x"}); sms.ErrorCode(err) != "20003" || !sms.Permanent(err) {
		t.Errorf("wrong token: %v, want permanent 20003", err)
	}
}
