// Package openrosa serves the OpenRosa submission API, so ODK Collect and
// Enketo submit straight to shala: HEAD and POST
// /openrosa/key/{token}/submission, authenticated the way ODK Central's app
// users are (a collector token in the path). A POST is multipart/form-data
// with the instance in the xml_submission_file part and attachments as
// further file parts; answers are OpenRosaResponse XML documents with
// X-OpenRosa-Version: 1.0 and X-OpenRosa-Accept-Content-Length.
package openrosa

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/blob"
	"github.com/shala-edu/shala/internal/collector"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/httperr"
	"github.com/shala-edu/shala/internal/logging"
	"github.com/shala-edu/shala/internal/slowread"
	"github.com/shala-edu/shala/internal/xform"
)

// MaxAttachments caps the files of one submission.
const MaxAttachments = 20

// Deps are what the endpoint needs.
type Deps struct {
	Log         *slog.Logger
	Catalog     *forms.Catalog
	Pipeline    *forms.Pipeline
	Collectors  *collector.Store
	Attachments *forms.Attachments
	Bucket      *blob.Bucket
	// MaxBytes caps a whole submission request (XML and attachments).
	MaxBytes int64
}

type response struct {
	XMLName xml.Name `xml:"http://openrosa.org/http/response OpenRosaResponse"`
	Message struct {
		Nature string `xml:"nature,attr,omitempty"`
		Text   string `xml:",chardata"`
	} `xml:"message"`
}

func (d Deps) headers(w http.ResponseWriter) {
	w.Header().Set("X-OpenRosa-Version", "1.0")
	w.Header().Set("X-OpenRosa-Accept-Content-Length", strconv.FormatInt(d.MaxBytes, 10))
}

func (d Deps) write(w http.ResponseWriter, status int, nature, text string) {
	d.headers(w)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(status)
	var r response
	r.Message.Nature, r.Message.Text = nature, text
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(r)
}

// WriteError is the httperr.Writer of the OpenRosa routes: what middleware
// answer (the rate limit, a panic) reaches ODK Collect as an
// OpenRosaResponse document too.
func (d Deps) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	d.writeError(r.Context(), w, err)
}

// MethodNotAllowed answers a method an OpenRosa route does not take (chi's
// own answer is an empty body) as an OpenRosaResponse, with Allow.
func (d Deps) MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	allow := http.MethodGet
	if path.Base(r.URL.Path) == "submission" {
		allow = http.MethodHead + ", " + http.MethodPost
	}
	w.Header().Set("Allow", allow)
	d.write(w, http.StatusMethodNotAllowed, "", fmt.Sprintf("%s is not allowed here (allowed: %s)", r.Method, allow))
}

// writeError answers a failure in OpenRosa's format with the status the
// fault's kind implies; unexpected errors are logged and answered 500.
func (d Deps) writeError(ctx context.Context, w http.ResponseWriter, err error) {
	f := fault.As(err)
	switch f.Kind {
	case fault.Internal:
		d.Log.ErrorContext(ctx, "openrosa submission failed", "err", err)
		d.write(w, http.StatusInternalServerError, "", "internal error: send the form again later")
		return
	case fault.Unavailable:
		d.Log.WarnContext(ctx, "openrosa submission: a dependency is unavailable", "err", err)
		w.Header().Set("Retry-After", "30")
	default:
		d.Log.InfoContext(ctx, "openrosa submission refused", "code", f.Code, "err", f.Message)
	}
	d.write(w, httperr.Status(f.Kind), "", f.Message)
}

// Submission serves HEAD and POST /openrosa/key/{token}/submission.
func Submission(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		col, err := d.Collectors.Authenticate(ctx, chi.URLParam(r, "token"))
		if err != nil {
			d.writeError(ctx, w, err)
			return
		}
		ctx = logging.With(ctx, "collector_id", col.ID.String())
		if r.Method == http.MethodHead {
			d.headers(w)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.ContentLength > d.MaxBytes {
			d.write(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("submission larger than %d bytes", d.MaxBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, d.MaxBytes)
		doc, files, err := readParts(r)
		defer func() {
			for _, f := range files {
				f.file.Close()
				os.Remove(f.file.Name())
			}
		}()
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				d.write(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("submission larger than %d bytes", d.MaxBytes))
				return
			}
			if slowread.Interrupted(err) {
				// The link failed, not the form: a 5xx makes Collect keep
				// it and send it again; nothing was stored.
				d.Log.InfoContext(ctx, "openrosa upload interrupted", "err", err, "cause", cause(err))
				w.Header().Set("Retry-After", "30")
				d.write(w, http.StatusServiceUnavailable, "", "The upload was interrupted before the whole submission arrived; send it again.")
				return
			}
			d.writeError(ctx, w, err)
			return
		}
		res, err := d.Pipeline.Receive(ctx, forms.Input{XML: doc, Source: "openrosa", CollectorID: &col.ID})
		if err != nil {
			if res != nil {
				// Stored but refused (a form not registered yet, a
				// conflict): its photos are kept with it, for when it is
				// processed or looked into.
				if serr := d.store(ctx, res.SubmissionID, files); serr != nil {
					d.Log.WarnContext(ctx, "openrosa: attachments of a refused submission not stored", "err", serr)
				}
			}
			d.writeError(ctx, w, err)
			return
		}
		if err := d.store(ctx, res.SubmissionID, files); err != nil {
			// The XML is recorded; the attachments are not. Collect keeps
			// the submission and sends it again: the XML is then a
			// duplicate and the attachments are stored.
			d.writeError(ctx, w, fault.Wrap(err, fault.Unavailable, "", "attachments could not be stored; send the form again"))
			return
		}
		switch {
		case res.Status == forms.StatusRejected:
			var reasons []string
			for _, e := range res.Errors {
				reasons = append(reasons, e.String())
			}
			// Stored with its errors: 201, so Collect does not resend what
			// cannot change; the reasons reach the collector.
			d.write(w, http.StatusCreated, "submit_success", "Received with errors: "+strings.Join(reasons, "; "))
		case res.Duplicate:
			d.write(w, http.StatusCreated, "submit_success", "Form already received")
		case len(res.Flags) > 0:
			d.write(w, http.StatusCreated, "submit_success", "Form received. Please check: "+strings.Join(res.Flags, "; "))
		default:
			d.write(w, http.StatusCreated, "submit_success", "Form received")
		}
	})
}

type attachment struct {
	name, contentType string
	size              int64
	file              *os.File
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9._() -]{1,255}$`)

// readParts streams the multipart body: the instance into memory, each
// attachment to a temp file.
func readParts(r *http.Request) ([]byte, []*attachment, error) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/form-data" {
		return nil, nil, fault.New(fault.Invalid, forms.CodeInvalidSubmission, "want multipart/form-data with an xml_submission_file part")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, fault.Wrap(err, fault.Invalid, forms.CodeInvalidSubmission, "multipart body: %v", err)
	}
	var doc []byte
	var files []*attachment
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, files, maybeTooBig(err, "multipart body")
		}
		switch {
		case part.FormName() == "xml_submission_file":
			if doc, err = io.ReadAll(part); err != nil {
				return nil, files, maybeTooBig(err, "xml_submission_file")
			}
		case part.FileName() != "":
			if len(files) >= MaxAttachments {
				return nil, files, fault.New(fault.Invalid, forms.CodeInvalidSubmission, "more than %d attachments", MaxAttachments)
			}
			name := path.Base(part.FileName())
			if !safeName.MatchString(name) || name == "." || name == ".." {
				return nil, files, fault.New(fault.Invalid, forms.CodeInvalidSubmission, "attachment name %q is not allowed", part.FileName())
			}
			f, err := createTemp("", "shala-attachment-*")
			if err != nil {
				return nil, files, spoolFailed(err, name)
			}
			a := &attachment{name: name, contentType: part.Header.Get("Content-Type"), file: f}
			files = append(files, a)
			if a.size, err = io.Copy(spool{f}, part); err != nil {
				var se spoolError
				if errors.As(err, &se) {
					return nil, files, spoolFailed(se.err, name)
				}
				return nil, files, maybeTooBig(err, "attachment "+name)
			}
			if a.contentType == "" {
				a.contentType = "application/octet-stream"
			}
		}
		part.Close()
	}
	if doc == nil {
		return nil, files, fault.New(fault.Invalid, forms.CodeInvalidSubmission, "xml_submission_file: missing")
	}
	return doc, files, nil
}

// createTemp makes the file an attachment is spooled to (a variable so a
// test can make the spool fail).
var createTemp = os.CreateTemp

// spool writes an attachment to its temporary file and marks the errors of
// that write, so a full or failing disk is told apart from a bad body.
type spool struct{ f *os.File }

func (s spool) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	if err != nil {
		err = spoolError{err}
	}
	return n, err
}

type spoolError struct{ err error }

func (e spoolError) Error() string { return e.err.Error() }
func (e spoolError) Unwrap() error { return e.err }

// spoolFailed is this server failing to keep an attachment (disk full, no
// temporary directory): nothing wrong with the submission, so 503 with
// Retry-After — ODK Collect sends it again — and no file path in the
// answer (the log has it).
func spoolFailed(err error, name string) error {
	return fault.Wrap(err, fault.Unavailable, fault.CodeUnavailable,
		"attachment %s could not be stored on the server just now; send the form again later", name)
}

// cause is the link's own error behind an interrupted upload, for logs.
func cause(err error) error {
	var ie *slowread.InterruptedError
	if errors.As(err, &ie) {
		return ie.Cause()
	}
	return err
}

// maybeTooBig passes on errors of size and of the link as they are (their
// text, which names addresses, is never shown) and makes the rest a
// refusal of what was sent.
func maybeTooBig(err error, what string) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) || slowread.Interrupted(err) {
		return err
	}
	return fault.Wrap(err, fault.Invalid, forms.CodeInvalidSubmission, "%s: %v", what, err)
}

// store uploads attachments to the bucket under submissions/{id}/ and
// records them; storing the same name again overwrites the file.
func (d Deps) store(ctx context.Context, submission uuid.UUID, files []*attachment) error {
	for _, a := range files {
		key := "submissions/" + submission.String() + "/" + a.name
		if _, err := a.file.Seek(0, io.SeekStart); err != nil {
			return err
		}
		bw, err := d.Bucket.NewWriter(ctx, key, nil)
		if err != nil {
			return err
		}
		if _, err := io.Copy(bw, a.file); err != nil {
			_ = bw.Close()
			return err
		}
		if err := bw.Close(); err != nil {
			return err
		}
		if err := d.Attachments.Record(ctx, forms.Attachment{SubmissionID: submission, Name: a.name,
			ContentType: a.contentType, Size: a.size, BlobKey: key}); err != nil {
			return err
		}
	}
	return nil
}

// unversioned stands for version "" in form URLs (xform.Unversioned,
// which registration refuses as a real version).
const unversioned = xform.Unversioned

func versionSegment(v string) string {
	if v == "" {
		return unversioned
	}
	return v
}

type xformsList struct {
	XMLName xml.Name    `xml:"http://openrosa.org/xforms/xformsList xforms"`
	Forms   []xformItem `xml:"xform"`
}

type xformItem struct {
	FormID      string `xml:"formID"`
	Name        string `xml:"name"`
	Version     string `xml:"version"`
	Hash        string `xml:"hash"`
	DownloadURL string `xml:"downloadUrl"`
}

// FormList serves GET /openrosa/key/{token}/formList (the OpenRosa Form List
// API): the latest version of every data-collection form (and of the
// assessment builders, for collectors that build assessments), with its MD5
// hash and download URL, so ODK Collect can fetch and update forms.
func FormList(d Deps, publicURL string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		token := chi.URLParam(r, "token")
		col, err := d.Collectors.Authenticate(ctx, token)
		if err != nil {
			d.writeError(ctx, w, err)
			return
		}
		latest, err := d.Catalog.Latest(ctx, col.BuildsAssessments)
		if err != nil {
			d.writeError(ctx, w, err)
			return
		}
		list := xformsList{Forms: []xformItem{}}
		for _, f := range latest {
			list.Forms = append(list.Forms, xformItem{FormID: f.FormID, Name: f.Title, Version: f.Version,
				Hash: "md5:" + f.MD5, DownloadURL: DownloadURL(publicURL, token, f.FormID, versionSegment(f.Version))})
		}
		d.headers(w)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write([]byte(xml.Header))
		_ = xml.NewEncoder(w).Encode(list)
	})
}

// DownloadURL is where Collect downloads a form version; every segment is
// escaped (ids may hold non-ASCII letters; forms registered before names
// were checked may hold anything).
func DownloadURL(publicURL, token, formID, version string) string {
	return strings.TrimRight(publicURL, "/") + "/openrosa/key/" + url.PathEscape(token) +
		"/forms/" + url.PathEscape(formID) + "/" + url.PathEscape(version+".xml")
}

// param is a path parameter, unescaped: the router matches the raw path
// when the client escaped it differently from Go's default.
func param(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if u, err := url.PathUnescape(v); err == nil && r.URL.RawPath != "" {
		return u
	}
	return v
}

// FormDownload serves GET /openrosa/key/{token}/forms/{form}/{version}.xml:
// a registered definition, byte for byte.
func FormDownload(d Deps) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if _, err := d.Collectors.Authenticate(ctx, chi.URLParam(r, "token")); err != nil {
			d.writeError(ctx, w, err)
			return
		}
		form, version := param(r, "form"), strings.TrimSuffix(param(r, "file"), ".xml")
		if version == unversioned {
			version = ""
		}
		def, err := d.Catalog.Source(ctx, form, version)
		if err != nil {
			d.writeError(ctx, w, err)
			return
		}
		d.headers(w)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		_, _ = w.Write([]byte(def))
	})
}
