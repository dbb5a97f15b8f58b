package web

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/upload"
)

// Links makes the download links a verification code hands out, valid for
// exam.LinkLifetime and never past the file's expiry. For s3:// buckets
// they are the store's own presigned GET URLs (with the original name and
// type as the response's headers); for file:// they are shala's
// /files/{uploadID}/{name}?exp=…&sig=… links, an HMAC-SHA256 over the
// method (GET), the upload, its blob key and the expiry, checked by Files.
type Links struct {
	bucket  *blob.Bucket
	key     []byte
	baseURL string
	now     func() time.Time
	presign bool
}

// LinkKey derives the key that signs /files/ links from shala's webhook
// secret (HKDF-SHA256 with its own label): no second secret to configure,
// and rotating the webhook secret invalidates outstanding links, which
// live 600 s.
func LinkKey(secret string) []byte {
	k, err := hkdf.Key(sha256.New, []byte(secret), nil, "shala /files/ download links v1", 32)
	if err != nil {
		panic("hkdf: " + err.Error()) // only for a key length SHA-256 cannot give
	}
	return k
}

// NewLinks returns the link maker for bucket; publicURL is how people reach
// shala; now is the clock expiry is checked against.
func NewLinks(bucket *blob.Bucket, key []byte, publicURL string, now func() time.Time) *Links {
	var fi os.FileInfo
	return &Links{bucket: bucket, key: key, baseURL: strings.TrimRight(publicURL, "/"), now: now,
		presign: !bucket.As(&fi)} // only fileblob exposes os.FileInfo
}

// URL returns a download link for f and when it stops working.
func (l *Links) URL(ctx context.Context, f exam.File) (string, time.Time, error) {
	now := l.now()
	exp := now.Add(exam.LinkLifetime)
	if f.ExpiresAt.Before(exp) {
		exp = f.ExpiresAt
	}
	exp = exp.Truncate(time.Second)
	if !exp.After(now) {
		return "", time.Time{}, fault.New(fault.Gone, exam.CodeExpired, "file: expires now")
	}
	name := downloadName(f)
	if l.presign {
		u, err := l.bucket.SignedURL(ctx, f.BlobKey, &blob.SignedURLOptions{
			Expiry: exp.Sub(now), Method: http.MethodGet,
			BeforeSign: func(as func(any) bool) error {
				var in *s3.GetObjectInput
				if as(&in) {
					in.ResponseContentDisposition = &name.disposition
					in.ResponseContentType = &f.ContentType
				}
				return nil
			},
		})
		if err != nil {
			return "", time.Time{}, fault.Wrap(err, fault.Unavailable, "", "file storage is unavailable; try again in a minute")
		}
		return u, exp, nil
	}
	q := url.Values{"exp": {strconv.FormatInt(exp.Unix(), 10)}, "sig": {l.sign(http.MethodGet, f.UploadID, f.BlobKey, exp.Unix())}}
	return l.baseURL + "/files/" + f.UploadID.String() + "/" + url.PathEscape(name.file) + "?" + q.Encode(), exp, nil
}

func (l *Links) sign(method string, id uuid.UUID, blobKey string, exp int64) string {
	m := hmac.New(sha256.New, l.key)
	fmt.Fprintf(m, "%s\n%s\n%s\n%d", method, id, blobKey, exp)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// check reports whether sig signs (method, id, blobKey, exp).
func (l *Links) check(method string, id uuid.UUID, blobKey string, exp int64, sig string) bool {
	return hmac.Equal([]byte(sig), []byte(l.sign(method, id, blobKey, exp)))
}

type fileName struct{ file, disposition string }

// downloadName is the file's original name (or answer.<ext> when there is
// none), ending in an extension of its sniffed type (upload.SaveAs), and
// its Content-Disposition.
func downloadName(f exam.File) fileName {
	name := upload.SaveAs(f.FileName, f.ContentType)
	if name == "" {
		name = upload.SaveAs("answer", f.ContentType)
	}
	return fileName{file: name, disposition: mime.FormatMediaType("attachment", map[string]string{"filename": name})}
}

// Files serves GET /files/{uploadID}/{name}?exp=…&sig=…: the file a
// verification code's link names, with its original name and type. Any
// other method, a bad or tampered signature and an expired link are 403; a
// file replaced, expired or deleted since the link was issued is 410.
func Files(log *slog.Logger, exams *exam.Store, links *Links) http.Handler {
	forbidden := func(w http.ResponseWriter, r *http.Request, why string) {
		writeError(r.Context(), w, log, fault.New(fault.Forbidden, "", "link: %s", why))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if r.Method != http.MethodGet {
			forbidden(w, r, "only GET is allowed")
			return
		}
		id, err := uuid.Parse(chi.URLParam(r, "uploadID"))
		exp, perr := strconv.ParseInt(r.URL.Query().Get("exp"), 10, 64)
		sig := r.URL.Query().Get("sig")
		if err != nil || perr != nil || sig == "" {
			forbidden(w, r, "malformed")
			return
		}
		f, state, err := exams.FileByID(ctx, id)
		if err != nil && fault.KindOf(err) != fault.NotFound {
			writeError(ctx, w, log, err)
			return
		}
		if err != nil || !links.check(r.Method, id, f.BlobKey, exp, sig) {
			forbidden(w, r, "signature does not match")
			return
		}
		// The file's state before the link's time: a link never outlives
		// its file, so one past its time whose file expired (or was
		// replaced) is 410, as the file is.
		if err := exams.Available(f, state); err != nil {
			writeError(ctx, w, log, err)
			return
		}
		if links.now().Unix() >= exp {
			forbidden(w, r, "expired; ask for a new one with the verification code")
			return
		}
		rd, err := links.bucket.NewReader(ctx, f.BlobKey, nil)
		if gcerrors.Code(err) == gcerrors.NotFound {
			writeError(ctx, w, log, fault.New(fault.Gone, exam.CodeDeleted, "file: no longer stored"))
			return
		}
		if err != nil {
			writeError(ctx, w, log, fault.Wrap(err, fault.Unavailable, "", "file storage is unavailable; try again in a minute"))
			return
		}
		defer rd.Close()
		h := w.Header()
		h.Set("Content-Type", f.ContentType)
		h.Set("Content-Length", strconv.FormatInt(rd.Size(), 10))
		h.Set("Content-Disposition", downloadName(f).disposition)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
		h.Set("Cache-Control", "private, no-store")
		w.WriteHeader(http.StatusOK)
		if _, err := io.Copy(w, rd); err != nil {
			log.InfoContext(ctx, "file download cut off", "err", err)
		}
	})
}
