package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/auth"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/slowread"
	registry "github.com/shala-edu/shala/internal/student" // web has its own student (tus)
	"github.com/shala-edu/shala/internal/upload"
)

// DocumentsPath is where schools upload the documents a child from another
// state or board brings (then named in registerStudent's documents).
const DocumentsPath = "/students/documents"

// StudentDocuments serves POST /students/documents: the app's Hasura JWT
// (role school, or an admin role with ?schoolId=), the file as the body or
// as the "file" part of a multipart form, streamed into blob storage under
// the exam files' rules (≤ 3 MiB: 413 beyond; type sniffed: 415 for others).
// It answers 201 {id, contentType, size, sha256}; an upload whose link
// failed (behind slowread: stalled, below the floor, cut off) 503 +
// Retry-After, UPLOAD_INTERRUPTED.
func StudentDocuments(log *slog.Logger, verifier *auth.Verifier, students *registry.Store, files *upload.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		school, actor, err := schoolOf(ctx, r, verifier)
		if err != nil {
			writeError(ctx, w, log, err)
			return
		}
		// The cap is the store's; this one, on the whole request, stops a
		// client that keeps sending after it, in the file or in other parts
		// before it (multipart framing gets a little room).
		r.Body = http.MaxBytesReader(w, r.Body, files.MaxBytes()+64<<10)
		tooLarge := func(err error) error {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return fault.New(fault.TooLarge, upload.CodeTooLarge, "file: larger than %d bytes", files.MaxBytes())
			}
			return err
		}
		body, err := fileOf(r)
		if err != nil {
			writeError(ctx, w, log, bodyError(tooLarge(err)))
			return
		}
		f, err := files.Put(ctx, body)
		err = tooLarge(err)
		if err != nil {
			writeError(ctx, w, log, bodyError(err))
			return
		}
		doc, err := students.AddDocument(ctx, school, actor, f)
		if err != nil {
			if derr := files.Delete(context.WithoutCancel(ctx), f.Key); derr != nil {
				log.ErrorContext(ctx, "orphaned transfer document", "key", f.Key, "err", derr)
			}
			writeError(ctx, w, log, err)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusCreated)
		if err := json.NewEncoder(w).Encode(doc); err != nil {
			log.DebugContext(ctx, "write document answer", "err", err)
		}
	})
}

// schoolOf authorises r from its Hasura JWT: the school role uploads for
// its own school; admin and state_admin name one with ?schoolId=.
func schoolOf(ctx context.Context, r *http.Request, verifier *auth.Verifier) (uuid.UUID, string, error) {
	if verifier == nil {
		return uuid.Nil, "", fault.New(fault.Unauthorized, "", "sign-in is not configured (HASURA_GRAPHQL_JWT_SECRET)")
	}
	token, err := verifier.TokenFrom(r)
	if err != nil {
		return uuid.Nil, "", fault.Wrap(err, fault.Unauthorized, "", "sign in: send the app's token")
	}
	claims, err := verifier.Verify(ctx, token)
	if errors.Is(err, auth.ErrKeysUnavailable) {
		return uuid.Nil, "", fault.Wrap(err, fault.Unavailable, "", "your sign-in cannot be checked right now")
	}
	if err != nil {
		return uuid.Nil, "", fault.Wrap(err, fault.Unauthorized, "", "the token is not valid")
	}
	sess, err := claims.Session(r.Header.Get("X-Hasura-Role"))
	if err != nil {
		return uuid.Nil, "", fault.Wrap(err, fault.Forbidden, "", "that role is not allowed for this token")
	}
	raw := sess["x-hasura-school-id"]
	switch sess["x-hasura-role"] {
	case "school":
	case "admin", "state_admin":
		raw = r.URL.Query().Get("schoolId")
	default:
		return uuid.Nil, "", fault.New(fault.Forbidden, "", "only schools upload transfer documents")
	}
	id, err := uuid.Parse(raw)
	if err != nil {
		return uuid.Nil, "", fault.Invalidf("schoolId", "a school id is required")
	}
	return id, sess["x-hasura-user-id"], nil
}

// fileOf is the upload's bytes: the "file" part of a multipart form, or
// the body itself.
func fileOf(r *http.Request) (io.Reader, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return r.Body, nil
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, fault.Invalidf("file", "not a multipart form: %v", err)
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, fault.Invalidf("file", "the form has no part named file")
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if slowread.Interrupted(err) || errors.As(err, &tooBig) {
				return nil, err // the link's error names addresses: see bodyError
			}
			return nil, fault.Invalidf("file", "unreadable form: %v", err)
		}
		if p.FormName() == "file" {
			return p, nil
		}
	}
}
