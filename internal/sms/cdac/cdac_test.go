package cdac_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/sms/cdac"
	"github.com/shala-edu/shala/internal/sms/cdac/cdactest"
)

// Known answers, computed independently (Python hashlib) from the inputs a
// published msdg client test uses, and for Hindi content as sent.
func TestHashesKnownAnswers(t *testing.T) {
	t.Parallel()
	if got, want := cdac.HashPassword("secret"), "e5e9fa1ba31ecd1ae84f75caaa474f3a663f05f4"; got != want {
		t.Errorf("HashPassword = %s, want %s", got, want)
	}
	if got, want := cdac.Key(" user ", "DRISTI", "Use OTP 1234 to log in", "secure-key "),
		"80a62add07b8694fd0dd522951aa62f307b96a77c9c752c3cf346b525baaef571927ec3ec0e77c769c43c3d0ad3e36ea44e73515730b6b5dadbe6aeb44d879fe"; got != want {
		t.Errorf("Key = %s, want %s", got, want)
	}
	if got, want := cdac.Key("hpgovt-hpssa", "HPSSAS", cdac.EncodeUnicode("नमस्ते"), "sk"),
		"0227ed8ca8fffcee3f103aead1882f22e2fbb900a517a2a40533bd0c2a85c32de31536e64d36af4c4a610fe29afe0ff74bb6fe053773e9d7ef443f60dbd5c0d1"; got != want {
		t.Errorf("Key over encoded Hindi = %s, want %s", got, want)
	}
}

func TestUnicodeIsEntityEncodedAndSignedAsSent(t *testing.T) {
	t.Parallel()
	if got, want := cdac.EncodeUnicode("नमस्ते"), "&#2344;&#2350;&#2360;&#2381;&#2340;&#2375;"; got != want {
		t.Errorf("EncodeUnicode(नमस्ते) = %s, want %s", got, want)
	}
	c := cdac.New("http://unused", "hpgovt-hpssa", "pw", "HPSSAS", "sk")
	f := c.Form(sms.Message{To: "+919816012345", Body: "प्रिय अभिभावक, 5 तारीख", DLTTemplateID: "1007164390254879011"})
	if f.Get("smsservicetype") != "unicodemsg" || f.Get("mobileno") != "9816012345" {
		t.Errorf("service %q mobileno %q", f.Get("smsservicetype"), f.Get("mobileno"))
	}
	if f.Get("key") != cdac.Key("hpgovt-hpssa", "HPSSAS", f.Get("content"), "sk") {
		t.Error("key not computed over the encoded content")
	}
	ascii := c.Form(sms.Message{To: "+919816012345", Body: "School closed on 5th", DLTTemplateID: "100716439025"})
	if ascii.Get("smsservicetype") != "singlemsg" || ascii.Get("content") != "School closed on 5th" {
		t.Errorf("ascii: %v", ascii)
	}
}

func setup(t *testing.T) (*cdac.Client, *cdactest.Server) {
	t.Helper()
	gw := cdactest.New(t, "hpgovt-hpssa", "s3cret", "HPSSAS", "dept-secure-key")
	c := cdac.New(gw.URL, "hpgovt-hpssa", "s3cret", "HPSSAS", "dept-secure-key")
	c.HTTP.Timeout = 300 * time.Millisecond
	return c, gw
}

func TestSendAgainstTheGateway(t *testing.T) {
	t.Parallel()
	c, gw := setup(t)
	ctx := context.Background()
	id, err := c.Send(ctx, sms.Message{To: "+919816012345", Body: "प्रिय अभिभावक, विद्यालय कल बंद रहेगा।", DLTTemplateID: "1007164390254879011"})
	if err != nil {
		t.Fatal(err)
	}
	rec := gw.Received()
	if len(rec) != 1 || rec[0].MsgID != id || rec[0].Text != "प्रिय अभिभावक, विद्यालय कल बंद रहेगा।" {
		t.Fatalf("gateway got %+v, id %q", rec, id)
	}

	gw.Script("9816000001", cdactest.Behaviour{Answer: "ERROR : 406 Invalid mobile number\r\n"})
	gw.Script("9816000002", cdactest.Behaviour{Answer: "404,Internal Database Error"})
	gw.Script("9816000003", cdactest.Behaviour{Delay: time.Second})
	gw.Script("9816000004", cdactest.Behaviour{Answer: "414,Rejected by the operator: DND"})
	tests := []struct {
		to        string
		code      string
		permanent bool
	}{
		{"+919816000001", "406", true},
		{"+919816000002", "404", false},
		{"+919816000003", "timeout", false},
		{"+919816000004", "414", true},
	}
	for _, tt := range tests {
		_, err := c.Send(ctx, sms.Message{To: tt.to, Body: "hello", DLTTemplateID: "1007164390254879011"})
		if err == nil {
			t.Errorf("%s: no error", tt.to)
			continue
		}
		code := sms.ErrorCode(err)
		if tt.code == "timeout" {
			var se *sms.Error
			if errors.As(err, &se) {
				t.Errorf("%s: a timeout should not be a gateway answer: %v", tt.to, err)
			}
			continue
		}
		if code != tt.code || sms.Permanent(err) != tt.permanent {
			t.Errorf("%s: code %s permanent %v, want %s %v (%v)", tt.to, code, sms.Permanent(err), tt.code, tt.permanent, err)
		}
	}

	wrong := cdac.New(gw.URL, "hpgovt-hpssa", "s3cret", "HPSSAS", "wrong-key")
	if _, err := wrong.Send(ctx, sms.Message{To: "+919816012345", Body: "x", DLTTemplateID: "1007164390254879011"}); sms.ErrorCode(err) != "416" || !sms.Permanent(err) {
		t.Errorf("wrong secure key: %v, want permanent 416", err)
	}
}

func TestDeliveryReports(t *testing.T) {
	t.Parallel()
	c, gw := setup(t)
	ctx := context.Background()
	var ids []string
	for _, to := range []string{"+919816012345", "+919816012346", "+919816012347"} {
		id, err := c.Send(ctx, sms.Message{To: to, Body: "hello", DLTTemplateID: "1007164390254879011"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	gw.SetReport(ids[0], "DELIVERED")
	gw.SetReport(ids[1], "FAILEDBYTELCO")
	got, err := c.Reports(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Delivered || !got[1].Failed || got[1].Reason != "cdac FAILEDBYTELCO" {
		t.Errorf("reports %+v, want delivered, failed (the third still SUBMITTED)", got)
	}
}
