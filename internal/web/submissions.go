package web

import (
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/logging"
	"github.com/shala-edu/shala/internal/slowread"
	"github.com/shala-edu/shala/internal/upload"
)

// multipartSlack is what a multipart body may carry beside the file's
// bytes: boundaries, part headers, a few small fields.
const multipartSlack = 64 << 10

// ReceiptJSON is the 201 body of an accepted upload.
type ReceiptJSON struct {
	VerificationCode string    `json:"verificationCode"`
	Size             int64     `json:"size"`
	SHA256           string    `json:"sha256"`
	UploadsLeft      int       `json:"uploadsLeft"`
	ExpiresAt        time.Time `json:"expiresAt"`
}

func receiptJSON(r exam.Receipt) ReceiptJSON {
	return ReceiptJSON{VerificationCode: r.VerificationCode, Size: r.Size, SHA256: r.SHA256,
		UploadsLeft: r.UploadsLeft, ExpiresAt: r.ExpiresAt.UTC()}
}

// Submit serves POST /submissions/{uploadCode}: a multipart/form-data body
// whose part `file` is the answer file. The file streams into storage (3
// MiB exactly accepted; one byte more is 413 and nothing is stored), its
// type sniffed from its bytes (415 if not a document or photo), and becomes
// the student's one active upload: 201 with the receipt. Unknown code 404,
// no upload left 422, exam not open 422, store failing 503.
func Submit(log *slog.Logger, exams *exam.Store, guesses *Guesses) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		release, ok := guesses.hold(w, r)
		if !ok {
			return
		}
		defer release()
		code := chi.URLParam(r, "uploadCode")
		st, err := exams.StudentByCode(ctx, code)
		if err != nil {
			guesses.refuse(w, r, log, err)
			return
		}
		release() // the upload itself holds no guess
		ctx = logging.With(ctx, "exam_student_id", st.ID.String())
		if err := exam.CanUpload(st, exams.Now()); err != nil {
			writeError(ctx, w, log, err)
			return
		}
		limit := int64(exam.MaxFileBytes + multipartSlack)
		if r.ContentLength > limit {
			writeError(ctx, w, log, fault.New(fault.TooLarge, upload.CodeTooLarge, "file: larger than %d bytes (3 MiB)", exam.MaxFileBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		part, err := filePart(r)
		if err != nil {
			writeError(ctx, w, log, readError(err))
			return
		}
		rc, err := exams.Submit(ctx, exam.Submission{Code: code, FileName: part.FileName(), Body: part})
		if err != nil {
			writeError(ctx, w, log, readError(err))
			return
		}
		log.InfoContext(ctx, "exam file uploaded", "size", rc.Size, "uploads_left", rc.UploadsLeft)
		writeJSON(w, http.StatusCreated, receiptJSON(rc))
	})
}

// filePart finds the part named file, skipping (bounded) others.
func filePart(r *http.Request) (*multipart.Part, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, fault.Invalidf("file", "send multipart/form-data with the file in a part named file")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, fault.Wrap(err, fault.Invalid, "", "body: %v", err)
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, fault.Invalidf("file", "missing: send the file in a part named file")
		}
		if err != nil {
			return nil, err
		}
		if p.FormName() == "file" {
			return p, nil
		}
		if _, err := io.Copy(io.Discard, p); err != nil {
			return nil, err
		}
	}
}

// readError turns what reading the body can fail with into the answer: the
// body cap (413), a link that stalled, fell below the floor or was cut
// (503 + Retry-After: send it again; the link's own error, which names
// addresses, is only logged), a broken body (400).
func readError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fault.Wrap(err, fault.TooLarge, upload.CodeTooLarge, "file: larger than %d bytes (3 MiB)", exam.MaxFileBytes)
	}
	return bodyError(err)
}

// bodyError is readError past the size cap, for every upload route: a
// refusal already made stands, a link that failed asks for the upload
// again (503 + Retry-After; the link's error, which names addresses, is
// only logged), a broken body is a 400.
func bodyError(err error) error {
	var f *fault.Error
	if errors.As(err, &f) {
		return err
	}
	if slowread.Interrupted(err) {
		return fault.Wrap(err, fault.Unavailable, slowread.CodeInterrupted, "file: the upload was interrupted before it all arrived; send it again")
	}
	if errors.Is(err, upload.ErrRead) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fault.Wrap(err, fault.Invalid, "", "file: the upload was cut off or malformed; send it again")
	}
	return err
}

// StatusJSON is a student's own view of their submission.
type StatusJSON struct {
	ExamTitle   string     `json:"examTitle"`
	OpensAt     *time.Time `json:"opensAt"`
	ClosesAt    *time.Time `json:"closesAt"`
	HasUpload   bool       `json:"hasUpload"`
	UploadsUsed int        `json:"uploadsUsed"`
	UploadsLeft int        `json:"uploadsLeft"`
	UploadedAt  *time.Time `json:"uploadedAt"`
	ExpiresAt   *time.Time `json:"expiresAt"`
	Size        *int64     `json:"size"`
	SHA256      *string    `json:"sha256"`
}

// SubmissionStatus serves GET /submissions/{uploadCode}: whether the
// student has a current file (its size, hash, upload and expiry time), how
// many uploads are left and the exam's window. No names, no codes.
func SubmissionStatus(log *slog.Logger, exams *exam.Store, guesses *Guesses) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, ok := guesses.hold(w, r)
		if !ok {
			return
		}
		defer release()
		s, err := exams.Status(r.Context(), chi.URLParam(r, "uploadCode"))
		if err != nil {
			guesses.refuse(w, r, log, err)
			return
		}
		out := StatusJSON{ExamTitle: s.ExamTitle, OpensAt: s.OpensAt, ClosesAt: s.ClosesAt,
			UploadsUsed: s.UploadsUsed, UploadsLeft: s.UploadsLeft()}
		if c := s.Current; c != nil {
			out.HasUpload = true
			out.UploadedAt, out.ExpiresAt = timePtr(c.UploadedAt.UTC()), timePtr(c.ExpiresAt.UTC())
			out.Size, out.SHA256 = &c.Size, &c.SHA256
		}
		writeJSON(w, http.StatusOK, out)
	})
}
