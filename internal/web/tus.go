package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/tus/tusd/v2/pkg/filelocker"
	"github.com/tus/tusd/v2/pkg/filestore"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	expslog "golang.org/x/exp/slog"

	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/httperr"
	"github.com/shala-edu/shala/internal/logging"
)

// Resumable uploads (tus 1.0.0: core, creation, creation-with-upload,
// termination, expiration) for students on 2G/3G links: a dropped
// connection resumes where it stopped instead of starting again.
const (
	// TusIncompleteLifetime is how long an unfinished upload can be resumed.
	TusIncompleteLifetime = 24 * time.Hour
	// TusFinishedKeep is how long a finished upload's bytes stay after its
	// last write, so a client whose last response was lost can ask (HEAD)
	// and get its receipt.
	TusFinishedKeep = time.Hour
	tusSweepEvery   = 10 * time.Minute
	// tusBase is tusd's base path; the placeholder is replaced by the
	// request's upload code in Location headers.
	tusBase = "/submissions/_/tus/"
)

// Receipt headers on the response that finishes a resumable upload (and on
// HEAD of a finished one): tus answers 204, so the receipt travels in
// headers.
const (
	HeaderVerificationCode = "Shala-Verification-Code"
	HeaderUploadsLeft      = "Shala-Uploads-Left"
	HeaderExpiresAt        = "Shala-Expires-At"
	HeaderSHA256           = "Shala-Sha256"
	HeaderSize             = "Shala-Size"
)

// Upload ids are the student's id (32 hex) and 16 random hex characters,
// so a student's uploads are found by name.
var tusIDPattern = regexp.MustCompile(`^[0-9a-f]{48}$`)

// TusMaxUnfinished is how many unfinished uploads a student may hold: a new
// one beyond it removes the oldest (a phone app restarted again and again
// must not lock the student out, nor fill the disk).
const TusMaxUnfinished = 3

// Tus serves /submissions/{uploadCode}/tus/ with tusd's handler over a
// local directory (filestore; a directory shared by every replica, or
// sticky routing by code, when there are several). The same rules as the
// plain POST hold: a declared length over 3 MiB is refused at creation
// (413), the exam window and the 5-upload limit are checked at creation and
// again at the finish, and the finished file goes through exam.Store.Submit
// (cap, sniffed type, replacement) exactly once per upload. Uploads belong
// to the student whose code created them; another code gets 404.
type Tus struct {
	log     *slog.Logger
	exams   *exam.Store
	guesses *Guesses
	dir     string
	store   filestore.FileStore
	h       *tusd.Handler

	mu        sync.Mutex
	lastSweep time.Time
}

type studentKey struct{}

type tusStudent struct {
	code string
	st   exam.Student
}

// NewTus returns the resumable upload handler storing partial uploads in
// dir, which must exist. Upload URLs (Location) are under publicURL, where
// people reach shala: behind a proxy that ends TLS, the address a request
// arrives on (plain http, an internal host) is not one a phone can use.
func NewTus(log *slog.Logger, exams *exam.Store, guesses *Guesses, dir, publicURL string) *Tus {
	t := &Tus{log: log, exams: exams, guesses: guesses, dir: dir, store: filestore.New(dir)}
	composer := tusd.NewStoreComposer()
	t.store.UseIn(composer)
	filelocker.New(dir).UseIn(composer)
	cors := tusd.DefaultCorsConfig
	cors.ExposeHeaders += ", Upload-Expires, " + strings.Join([]string{HeaderVerificationCode, HeaderUploadsLeft, HeaderExpiresAt, HeaderSHA256, HeaderSize}, ", ")
	h, err := tusd.NewHandler(tusd.Config{
		StoreComposer:             composer,
		BasePath:                  strings.TrimRight(publicURL, "/") + tusBase,
		MaxSize:                   exam.MaxFileBytes,
		DisableDownload:           true,
		DisableConcatenation:      true,
		Cors:                      &cors,
		Logger:                    expslog.New(expslog.NewTextHandler(io.Discard, nil)),
		PreUploadCreateCallback:   t.preCreate,
		PreFinishResponseCallback: t.preFinish,
	})
	if err != nil {
		panic("tusd configuration: " + err.Error()) // fixed above; a test would catch it
	}
	t.h = h
	return t
}

// TusWriteError is the error writer of the tus routes (httperr.Use): JSON,
// with the Tus-Resumable header tus 1.0.0 wants in every answer but
// OPTIONS's — the rate limit's in front of them too.
func TusWriteError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Method != http.MethodOptions {
		w.Header().Set("Tus-Resumable", "1.0.0")
	}
	httperr.JSON(w, r, err)
}

func (t *Tus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodOptions {
		// tus 1.0.0: in every response but OPTIONS, shala's own errors too.
		w.Header().Set("Tus-Resumable", "1.0.0")
	}
	code := chi.URLParam(r, "uploadCode")
	id := strings.Trim(chi.URLParam(r, "*"), "/")
	tw := &tusWriter{ResponseWriter: w, code: code}
	if r.Method == http.MethodOptions {
		t.serve(ctx, tw, r, id) // a preflight looks nothing up
		return
	}
	release, ok := t.guesses.hold(w, r)
	if !ok {
		return
	}
	defer release()
	st, err := t.exams.StudentByCode(ctx, code)
	if err != nil {
		t.guesses.refuse(w, r, t.log, err)
		return
	}
	release() // the upload itself holds no guess
	ctx = logging.With(context.WithValue(ctx, studentKey{}, tusStudent{code: code, st: st}), "exam_student_id", st.ID.String())
	now := t.exams.Now()
	if id == "" {
		if r.Method == http.MethodPost {
			t.maybeSweep(ctx, now)
		}
		t.serve(ctx, tw, r, id)
		return
	}
	if !tusIDPattern.MatchString(id) {
		writeError(ctx, w, t.log, fault.New(fault.NotFound, "", "upload not found"))
		return
	}
	up, err := t.store.GetUpload(ctx, id)
	if err != nil {
		if errors.Is(err, tusd.ErrNotFound) {
			err = fault.New(fault.NotFound, "", "upload not found (expired uploads are removed; start again)")
		}
		writeError(ctx, w, t.log, err)
		return
	}
	info, err := up.GetInfo(ctx)
	if err != nil {
		writeError(ctx, w, t.log, err)
		return
	}
	if info.MetaData["student"] != st.ID.String() {
		writeError(ctx, w, t.log, fault.New(fault.NotFound, "", "upload not found"))
		return
	}
	if !finished(info) {
		expires := started(info).Add(TusIncompleteLifetime)
		if !now.Before(expires) {
			if err := t.store.AsTerminatableUpload(up).Terminate(ctx); err != nil {
				t.log.WarnContext(ctx, "remove expired resumable upload", "err", err)
			}
			writeError(ctx, w, t.log, fault.New(fault.Gone, exam.CodeExpired, "upload: expired unfinished after %d hours; start again", int(TusIncompleteLifetime.Hours())))
			return
		}
		w.Header().Set("Upload-Expires", expires.UTC().Format(http.TimeFormat))
	} else if r.Method == http.MethodHead || (r.Method == http.MethodPatch && r.Header.Get("Upload-Offset") == strconv.FormatInt(info.Size, 10)) {
		// A finished upload whose last response was lost, or whose finish
		// failed (store down): accept it now, or return the first receipt.
		// A client may ask with HEAD or send its last PATCH again (empty,
		// at the end offset); tusd answers that PATCH 204 without running
		// the finish, so a 204 without a receipt would lie.
		rc, err := t.finish(ctx, code, info)
		if err != nil {
			writeError(ctx, w, t.log, err)
			return
		}
		setReceipt(w.Header(), rc)
	}
	t.serve(ctx, tw, r, id)
}

// serve hands the request to tusd with the path below /tus/ (tusd's
// router reads the path as its own).
func (t *Tus) serve(ctx context.Context, w http.ResponseWriter, r *http.Request, id string) {
	r = r.Clone(ctx)
	r.URL.Path = "/" + id
	r.URL.RawPath = ""
	t.h.ServeHTTP(w, r)
}

func student(ctx context.Context) (tusStudent, bool) {
	s, ok := ctx.Value(studentKey{}).(tusStudent)
	return s, ok
}

func (t *Tus) preCreate(hook tusd.HookEvent) (tusd.HTTPResponse, tusd.FileInfoChanges, error) {
	s, ok := student(hook.Context)
	if !ok {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(errors.New("tus: creation without a student"))
	}
	if hook.Upload.SizeIsDeferred {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(fault.Invalidf("Upload-Length", "required (the file's size in bytes)"))
	}
	if hook.Upload.Size == 0 {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(fault.Invalidf("Upload-Length", "the file is empty"))
	}
	now := t.exams.Now()
	if err := exam.CanUpload(s.st, now); err != nil {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(err)
	}
	// Only what shala sets is kept: who may resume it, when it began (the
	// exam window and the expiry count from here), the file's name.
	prefix := strings.ReplaceAll(s.st.ID.String(), "-", "")
	if err := t.makeRoom(hook.Context, prefix); err != nil {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(err)
	}
	id := prefix + hex.EncodeToString(randomBytes(8))
	meta := tusd.MetaData{"student": s.st.ID.String(), "started": strconv.FormatInt(now.Unix(), 10)}
	name := hook.Upload.MetaData["filename"]
	if name == "" {
		name = hook.Upload.MetaData["name"]
	}
	if name != "" && len(name) <= 1024 {
		meta["filename"] = name
	}
	resp := tusd.HTTPResponse{Header: tusd.HTTPHeader{"Upload-Expires": now.Add(TusIncompleteLifetime).UTC().Format(http.TimeFormat)}}
	return resp, tusd.FileInfoChanges{ID: id, MetaData: meta}, nil
}

// makeRoom removes a student's oldest unfinished uploads so that a new one
// keeps them at TusMaxUnfinished.
func (t *Tus) makeRoom(ctx context.Context, prefix string) error {
	infos, err := filepath.Glob(filepath.Join(t.dir, prefix+"*.info"))
	if err != nil {
		return err
	}
	type held struct {
		up      tusd.Upload
		started time.Time
	}
	var unfinished []held
	for _, p := range infos {
		up, err := t.store.GetUpload(ctx, strings.TrimSuffix(filepath.Base(p), ".info"))
		if err != nil {
			continue // removed meanwhile, or half-written: the sweep handles it
		}
		info, err := up.GetInfo(ctx)
		if err != nil || finished(info) {
			continue
		}
		unfinished = append(unfinished, held{up, started(info)})
	}
	slices.SortFunc(unfinished, func(a, b held) int { return a.started.Compare(b.started) })
	for len(unfinished) >= TusMaxUnfinished {
		if err := t.store.AsTerminatableUpload(unfinished[0].up).Terminate(ctx); err != nil {
			return err
		}
		unfinished = unfinished[1:]
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error()) // unreachable: crypto/rand crashes the program itself
	}
	return b
}

func (t *Tus) preFinish(hook tusd.HookEvent) (tusd.HTTPResponse, error) {
	s, ok := student(hook.Context)
	if !ok {
		return tusd.HTTPResponse{}, tusError(errors.New("tus: finish without a student"))
	}
	rc, err := t.finish(hook.Context, s.code, hook.Upload)
	if err != nil {
		if fault.KindOf(err) == fault.Internal {
			t.log.ErrorContext(hook.Context, "resumable upload finish failed", "err", err)
		}
		return tusd.HTTPResponse{}, tusError(err)
	}
	t.log.InfoContext(hook.Context, "exam file uploaded (resumable)", "size", rc.Size, "uploads_left", rc.UploadsLeft)
	h := http.Header{}
	setReceipt(h, rc)
	resp := tusd.HTTPResponse{Header: tusd.HTTPHeader{}}
	for k := range h {
		resp.Header[k] = h.Get(k)
	}
	return resp, nil
}

// finish runs the accept step on a finished upload; accepting the same
// upload again returns the first receipt. An upload refused for good (its
// type, the limit, the exam's window) is removed at once: asking again
// could only be refused again, and a code holder sending junk over and
// over must not fill the disk for the hour finished uploads are kept.
func (t *Tus) finish(ctx context.Context, code string, info tusd.FileInfo) (exam.Receipt, error) {
	up, err := t.store.GetUpload(ctx, info.ID)
	if err != nil {
		return exam.Receipt{}, err
	}
	rd, err := up.GetReader(ctx)
	if err != nil {
		return exam.Receipt{}, err
	}
	defer rd.Close()
	rc, err := t.exams.Submit(ctx, exam.Submission{Code: code, FileName: info.MetaData["filename"], Body: rd,
		StartedAt: started(info), TusID: info.ID})
	if err != nil && refusedForGood(err) {
		if terr := t.store.AsTerminatableUpload(up).Terminate(context.WithoutCancel(ctx)); terr != nil {
			t.log.WarnContext(ctx, "remove refused resumable upload", "err", terr)
		}
	}
	return rc, err
}

// refusedForGood reports whether err refuses the file itself, so that
// trying the same upload again cannot succeed. A failing store or
// database (retried by HEAD), an unknown code (the upload continues under
// a reset code) and local read errors are not.
func refusedForGood(err error) bool {
	switch fault.KindOf(err) {
	case fault.Unsupported, fault.Unprocessable, fault.TooLarge, fault.Invalid:
		return true
	}
	return false
}

func setReceipt(h http.Header, rc exam.Receipt) {
	h.Set(HeaderVerificationCode, rc.VerificationCode)
	h.Set(HeaderUploadsLeft, strconv.Itoa(rc.UploadsLeft))
	h.Set(HeaderExpiresAt, rc.ExpiresAt.UTC().Format(time.RFC3339))
	h.Set(HeaderSHA256, rc.SHA256)
	h.Set(HeaderSize, strconv.FormatInt(rc.Size, 10))
}

func finished(info tusd.FileInfo) bool { return !info.SizeIsDeferred && info.Offset == info.Size }

func started(info tusd.FileInfo) time.Time {
	sec, err := strconv.ParseInt(info.MetaData["started"], 10, 64)
	if err != nil {
		return time.Time{} // no start recorded: treated as long expired
	}
	return time.Unix(sec, 0)
}

// tusError turns an error into tusd's, answered as writeError would.
func tusError(err error) tusd.Error {
	f := fault.As(err)
	msg := f.Message
	body, jerr := json.Marshal(newErrorBody(f))
	if jerr != nil {
		body = []byte(`{"message":"internal error"}`)
	}
	e := tusd.NewError(string(f.Code), msg, httperr.Status(f.Kind))
	e.HTTPResponse.Body = string(body) + "\n"
	e.HTTPResponse.Header["Content-Type"] = "application/json; charset=utf-8"
	if f.Kind == fault.Unavailable {
		e.HTTPResponse.Header["Retry-After"] = strconv.Itoa(RetryAfterSeconds)
	}
	return e
}

// maybeSweep runs Sweep at most every tusSweepEvery, on the request that
// creates an upload: every replica cleans the directory it serves without
// a timer of its own.
func (t *Tus) maybeSweep(ctx context.Context, now time.Time) {
	t.mu.Lock()
	due := now.Sub(t.lastSweep) >= tusSweepEvery
	if due {
		t.lastSweep = now
	}
	t.mu.Unlock()
	if !due {
		return
	}
	if n, err := t.Sweep(ctx, now); err != nil {
		t.log.WarnContext(ctx, "resumable uploads sweep", "removed", n, "err", err)
	}
}

// Sweep removes unfinished uploads older than TusIncompleteLifetime and
// finished ones whose last write is older than TusFinishedKeep.
func (t *Tus) Sweep(ctx context.Context, now time.Time) (int, error) {
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return 0, err
	}
	removed := 0
	var errs []error
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".info")
		if !ok || !tusIDPattern.MatchString(id) {
			continue
		}
		up, err := t.store.GetUpload(ctx, id)
		if errors.Is(err, tusd.ErrNotFound) {
			// An info file without its data: remove what is left.
			if err := os.Remove(filepath.Join(t.dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		info, err := up.GetInfo(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		expired := !finished(info) && !now.Before(started(info).Add(TusIncompleteLifetime))
		if finished(info) {
			fi, err := os.Stat(filepath.Join(t.dir, id))
			expired = err == nil && !now.Before(fi.ModTime().Add(TusFinishedKeep))
		}
		if !expired {
			continue
		}
		if err := t.store.AsTerminatableUpload(up).Terminate(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// tusWriter puts the request's upload code into tusd's Location headers
// and announces the expiration extension, which shala implements around
// tusd (Upload-Expires, 410 after it), and not creation-defer-length.
type tusWriter struct {
	http.ResponseWriter
	code  string
	wrote bool
}

func (w *tusWriter) WriteHeader(status int) {
	if !w.wrote {
		w.wrote = true
		h := w.Header()
		if loc := h.Get("Location"); loc != "" {
			h.Set("Location", strings.Replace(loc, tusBase, "/submissions/"+w.code+"/tus/", 1))
		}
		if ext := h.Get("Tus-Extension"); ext != "" {
			// Deferred lengths are refused (the cap is checked at creation).
			var out []string
			for e := range strings.SplitSeq(ext, ",") {
				if e != "creation-defer-length" && e != "expiration" {
					out = append(out, e)
				}
			}
			h.Set("Tus-Extension", strings.Join(append(out, "expiration"), ","))
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *tusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *tusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
