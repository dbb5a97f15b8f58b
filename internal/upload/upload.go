// Package upload streams files people send into blob storage under rules
// every upload path shares: a hard byte cap (the cap itself accepted, one
// byte more refused and nothing left in storage), a content type sniffed from
// the bytes — never taken from the client's name or header — against an
// allow-list, the SHA-256 and size computed while the bytes pass, and a
// random key that never contains the client's file name. Exam answer files
// and transfer documents both go through Store.Put.
//
// Memory per upload in flight is one sniff buffer and one copy buffer
// (tens of KiB), whatever the file's size: nothing is buffered whole.
package upload

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/shala-edu/shala/internal/fault"
)

// Codes of the errors Put returns (listed in the README's Errors contract).
const (
	CodeTooLarge           fault.Code = "FILE_TOO_LARGE"
	CodeUnsupportedType    fault.Code = "UNSUPPORTED_TYPE"
	CodeEmpty              fault.Code = "EMPTY_FILE"
	CodeStorageUnavailable fault.Code = "STORAGE_UNAVAILABLE"
)

// Sentinels for errors.Is on what Put returns (each arrives inside a
// *fault.Error carrying the status and the message for the person).
var (
	ErrTooLarge        = errors.New("file larger than the limit")
	ErrUnsupportedType = errors.New("file type not accepted")
	ErrEmpty           = errors.New("file is empty")
	// ErrRead wraps an error reading the upload itself (the client went
	// away, a broken body): the caller's fault or the network's, not the
	// store's.
	ErrRead = errors.New("read upload")
)

// Type is an accepted file type: its MIME type, what people call it, and
// the file name extensions a file of it may be saved under (the first is
// added to a name that has none of them; see SaveAs).
type Type struct {
	MIME       string
	Name       string
	Extensions []string
}

// Documents are the types of documents people hand in: PDF, photos of
// paper (JPEG, PNG, WebP, HEIC/HEIF from phones), plain text, and
// OpenDocument and Office Open XML documents. Plain text keeps only
// extensions nothing opens as a page or a program.
func Documents() []Type {
	return []Type{
		{"application/pdf", "PDF", []string{".pdf"}},
		{"image/jpeg", "JPEG", []string{".jpg", ".jpeg", ".jpe", ".jfif"}},
		{"image/png", "PNG", []string{".png"}},
		{"image/webp", "WebP", []string{".webp"}},
		{"image/heic", "HEIC", []string{".heic", ".heif"}},
		{"image/heif", "HEIF", []string{".heif", ".heic"}},
		{"text/plain", "plain text", []string{".txt", ".text", ".csv", ".tsv", ".md", ".json", ".log", ".tex"}},
		{"application/vnd.oasis.opendocument.text", "OpenDocument text (.odt)", []string{".odt"}},
		{"application/vnd.oasis.opendocument.spreadsheet", "OpenDocument spreadsheet (.ods)", []string{".ods"}},
		{"application/vnd.oasis.opendocument.presentation", "OpenDocument presentation (.odp)", []string{".odp"}},
		{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", "Word (.docx)", []string{".docx"}},
		{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Excel (.xlsx)", []string{".xlsx"}},
		{"application/vnd.openxmlformats-officedocument.presentationml.presentation", "PowerPoint (.pptx)", []string{".pptx"}},
	}
}

// bidiControls reorder how a name is shown ("report\u202Efdp.html" reads
// as "reportlmth.pdf"); a file name never needs them.
var bidiControls = strings.NewReplacer("\u200e", "", "\u200f", "", "\u061c", "",
	"\u202a", "", "\u202b", "", "\u202c", "", "\u202d", "", "\u202e", "",
	"\u2066", "", "\u2067", "", "\u2068", "", "\u2069", "")

// SaveAs is the name a file whose bytes were sniffed as contentType is
// handed out under: the person's own name, but ending in an extension of
// that type — the type's first extension is added when the name's own is
// not one of them ("essay.html" holding text becomes "essay.html.txt", so
// markup accepted as text is never saved as a page and opened as one).
// Bidirectional controls and trailing dots and spaces (which Windows drops,
// exposing what precedes them) are removed; a name with nothing left is "".
// A type not among Documents keeps the name as it is.
func SaveAs(name, contentType string) string {
	name = strings.TrimRight(bidiControls.Replace(name), ". ")
	if name == "" {
		return ""
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return name
	}
	for _, t := range Documents() {
		if t.MIME != mediaType {
			continue
		}
		ext := strings.ToLower(path.Ext(name))
		for _, e := range t.Extensions {
			if ext == e {
				return name
			}
		}
		return name + t.Extensions[0]
	}
	return name
}

// sniffLen is how many leading bytes decide the type: mimetype's own read
// limit, enough for the zip entries that tell .docx from .odt from .zip.
const sniffLen = 3072

// copyBuf is the size of the buffer bytes pass through on their way to
// storage.
const copyBuf = 32 << 10

// File is a stored upload.
type File struct {
	// Key is the blob's key: the store's prefix and 26 random characters.
	Key string
	// Size is the file's length in bytes.
	Size int64
	// SHA256 is the hex SHA-256 of the file's bytes.
	SHA256 string
	// ContentType is the sniffed type, with its charset for text
	// ("text/plain; charset=utf-8").
	ContentType string
}

// Store puts uploads into a bucket under a key prefix.
type Store struct {
	bucket *blob.Bucket
	prefix string
	max    int64
	types  []Type
}

// New returns a Store that keeps files of at most maxBytes of the given
// types (Documents() when none) in bucket under prefix (e.g. "exams/").
func New(bucket *blob.Bucket, prefix string, maxBytes int64, types ...Type) *Store {
	if len(types) == 0 {
		types = Documents()
	}
	return &Store{bucket: bucket, prefix: prefix, max: maxBytes, types: types}
}

// MaxBytes is the largest file Put accepts.
func (s *Store) MaxBytes() int64 { return s.max }

// Bucket is the bucket files are stored in.
func (s *Store) Bucket() *blob.Bucket { return s.bucket }

// StorageError is a failure of the blob store itself (not of the input):
// the operation ("put", "delete"), the key and the cause. Callers record it
// (storage_failure) and answer 503; Put returns it inside a *fault.Error of
// kind Unavailable.
type StorageError struct {
	Op  string
	Key string
	Err error
}

func (e *StorageError) Error() string { return fmt.Sprintf("blob %s %s: %v", e.Op, e.Key, e.Err) }

func (e *StorageError) Unwrap() error { return e.Err }

func unavailable(op, key string, err error) error {
	return fault.Wrap(&StorageError{Op: op, Key: key, Err: err}, fault.Unavailable, CodeStorageUnavailable,
		"file storage is unavailable; try again in a minute")
}

// Put streams r into the bucket under a new random key. It reads at most
// MaxBytes+1 bytes: a file of exactly MaxBytes is stored; one byte more is
// ErrTooLarge (413) and the write is aborted, so no blob is left. The type is
// sniffed from the first bytes before anything is written: a type not on the
// allow-list is ErrUnsupportedType (415). A failing store is a
// *StorageError inside a 503 fault. An error reading r (the client went
// away, an http.MaxBytesError) is returned wrapped as it is. On any error
// nothing is stored.
func (s *Store) Put(ctx context.Context, r io.Reader) (File, error) {
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(r, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return File{}, fmt.Errorf("%w: %w", ErrRead, err)
	}
	head = head[:n]
	if n == 0 {
		return File{}, fault.Wrap(ErrEmpty, fault.Invalid, CodeEmpty, "file: is empty")
	}
	if int64(n) > s.max {
		return File{}, s.tooLarge()
	}
	ct, ok := s.accept(mimetype.Detect(head), head)
	if !ok {
		return File{}, fault.Wrap(ErrUnsupportedType, fault.Unsupported, CodeUnsupportedType,
			"file: type %s is not accepted (accepted: %s)", mimetype.Detect(head).String(), s.names())
	}

	key := s.prefix + strings.ToLower(rand.Text())
	wctx, abort := context.WithCancel(ctx)
	defer abort()
	w, err := s.bucket.NewWriter(wctx, key, &blob.WriterOptions{ContentType: ct})
	if err != nil {
		return File{}, unavailable("put", key, err)
	}
	h := sha256.New()
	size, err := s.copy(io.MultiWriter(w, h), io.MultiReader(bytes.NewReader(head), r), key)
	if err != nil {
		// Cancelling the writer's context aborts the write: fileblob removes
		// its temp file, s3blob aborts the multipart upload.
		abort()
		if cerr := w.Close(); cerr == nil {
			// Committed despite the cancel (a driver that ignores it):
			// take the blob back out.
			if derr := s.bucket.Delete(context.WithoutCancel(ctx), key); derr != nil && gcerrors.Code(derr) != gcerrors.NotFound {
				return File{}, errors.Join(err, unavailable("delete", key, derr))
			}
		}
		return File{}, err
	}
	if err := w.Close(); err != nil {
		if ctx.Err() != nil {
			return File{}, fmt.Errorf("%w: %w", ErrRead, ctx.Err())
		}
		return File{}, unavailable("put", key, err)
	}
	return File{Key: key, Size: size, SHA256: hex.EncodeToString(h.Sum(nil)), ContentType: ct}, nil
}

// copy moves r to w, never letting byte MaxBytes+1 reach w. Read errors are
// returned wrapped as "read upload", write errors as storage failures.
func (s *Store) copy(w io.Writer, r io.Reader, key string) (int64, error) {
	buf := make([]byte, copyBuf)
	var total int64
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			total += int64(n)
			if total > s.max {
				return total, s.tooLarge()
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, unavailable("put", key, werr)
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, fmt.Errorf("%w: %w", ErrRead, rerr)
		}
	}
}

func (s *Store) tooLarge() error {
	return fault.Wrap(ErrTooLarge, fault.TooLarge, CodeTooLarge, "file: larger than %d bytes (%s)", s.max, humanBytes(s.max))
}

// Delete removes key from the bucket. A blob already gone is not an error
// (deletes are retried, and expiry may race a replacement). Failures are a
// *StorageError.
func (s *Store) Delete(ctx context.Context, key string) error {
	return Delete(ctx, s.bucket, key)
}

// Delete removes key from bucket; a blob already gone is not an error;
// failures are a *StorageError.
func Delete(ctx context.Context, bucket *blob.Bucket, key string) error {
	if err := bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return &StorageError{Op: "delete", Key: key, Err: err}
	}
	return nil
}

// accept reports whether m is an allowed type and the content type to
// store it under. Text of any kind mimetype recognises (CSV, JSON, an essay
// with commas that looks like CSV) is stored as text/plain with its
// charset, except markup a browser would render (HTML, SVG, XML), which is
// refused.
func (s *Store) accept(m *mimetype.MIME, head []byte) (string, bool) {
	for _, t := range s.types {
		if m.Is(t.MIME) {
			return m.String(), true
		}
	}
	if !s.allows("text/plain") {
		return "", false
	}
	isText := false
	for a := m; a != nil; a = a.Parent() {
		if a.Is("text/html") || a.Is("image/svg+xml") || a.Is("text/xml") {
			return "", false
		}
		if a.Is("text/plain") {
			isText = true
		}
	}
	if !isText {
		return "", false
	}
	_, params, err := mime.ParseMediaType(m.String())
	if err != nil || params == nil {
		params = map[string]string{}
	}
	if params["charset"] == "" && validUTF8Prefix(head) {
		params["charset"] = "utf-8"
	}
	return mime.FormatMediaType("text/plain", params), true
}

// validUTF8Prefix reports whether b is UTF-8 but for a rune the sniff
// buffer may have cut in two at its end.
func validUTF8Prefix(b []byte) bool {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		if utf8.Valid(b) {
			return true
		}
		b = b[:len(b)-1]
	}
	return utf8.Valid(b)
}

func (s *Store) allows(mimeType string) bool {
	for _, t := range s.types {
		if t.MIME == mimeType {
			return true
		}
	}
	return false
}

func (s *Store) names() string {
	names := make([]string, len(s.types))
	for i, t := range s.types {
		names[i] = t.Name
	}
	return strings.Join(names, ", ")
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
