package server_test

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestFormNamesAreXLSFormNamesAndURLsAreEscaped: an id or version that would
// break the download URL Collect is given is refused at registration, with
// the reason; what is accepted (non-ASCII letters, dots) is advertised in
// formList with escaped URLs that download the definition.
func TestFormNamesAreXLSFormNamesAndURLsAreEscaped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	def := xformFile(t, "household_survey.xml")
	named := func(id, version string) string {
		return strings.Replace(def, `<data id="household_survey" version="2026111501">`,
			fmt.Sprintf(`<data id="%s" version="%s">`, id, version), 1)
	}
	for _, tt := range []struct{ id, version, mention string }{
		{"..", "1", "id"},
		{".", "1", "id"},
		{"a/b", "1", "id"},
		{"house hold", "1", "id"},
		{"1st_survey", "1", "id"},
		{"survey", "..", "version"},
		{"survey", "1/2", "version"},
		{"survey", "2026 11", "version"},
		{"survey", ".1", "version"},
		{"survey", "1?x=1", "version"},
	} {
		status, out := b.action(t, "registerForm", "admin", map[string]any{"xform": named(tt.id, tt.version), "purpose": "DATA_COLLECTION"})
		msg := fmt.Sprint(out["message"])
		if status != 400 || code(out) != "INVALID_XFORM" || !strings.HasPrefix(msg, "xform: ") || !strings.Contains(msg, tt.mention+" ") {
			t.Errorf("id %q version %q: got %d %v, want 400 INVALID_XFORM naming the %s", tt.id, tt.version, status, out, tt.mention)
		}
	}
	if n := b.count(t, "SELECT count(*) FROM form_version"); n != 0 {
		t.Fatalf("%d form versions registered, want none", n)
	}

	accepted := map[string]string{"household.survey-v2": "2026.11.15_01", "_survey": "v3"}
	for id, version := range accepted {
		if status, out := b.action(t, "registerForm", "admin", map[string]any{"xform": named(id, version), "purpose": "DATA_COLLECTION"}); status != 200 {
			t.Fatalf("register %q %q: %d %v", id, version, status, out)
		}
	}
	// A version registered before names were checked (the table allows any
	// text) is still offered, at an escaped URL that works.
	legacy := named("legacy", "2026 11/a?b#c")
	if _, err := b.pool.Exec(t.Context(), `WITH f AS (INSERT INTO form (id, title, purpose) VALUES ('legacy', 'Legacy', 'DATA_COLLECTION'))
		INSERT INTO form_version (form_id, version, title, xform, languages) VALUES ('legacy', '2026 11/a?b#c', 'Legacy', $1, '{}')`, legacy); err != nil {
		t.Fatal(err)
	}
	accepted["legacy"] = "2026 11/a?b#c"
	_, token := b.createCollector(t)
	resp, err := b.client.Get(b.url + "/openrosa/key/" + token + "/formList")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var list struct {
		Forms []struct {
			FormID      string `xml:"formID"`
			Version     string `xml:"version"`
			DownloadURL string `xml:"downloadUrl"`
		} `xml:"xform"`
	}
	if err := xml.Unmarshal(raw, &list); err != nil || len(list.Forms) != len(accepted) {
		t.Fatalf("formList: %v %s", err, raw)
	}
	for _, f := range list.Forms {
		u, err := url.Parse(f.DownloadURL)
		if err != nil || u.Host != "shala.example" || !strings.HasSuffix(u.Path, "/"+f.FormID+"/"+f.Version+".xml") {
			t.Errorf("downloadUrl %q of %s %s: %v", f.DownloadURL, f.FormID, f.Version, err)
			continue
		}
		lowerHex := regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(u.EscapedPath(), strings.ToLower)
		for _, raw := range []string{u.EscapedPath(), lowerHex} { // clients differ in the case of escapes
			resp, err := b.client.Get(b.url + raw)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(got) != named(f.FormID, f.Version) {
				t.Errorf("GET %s: %d, %d bytes; want the definition", raw, resp.StatusCode, len(got))
			}
		}
	}
}
