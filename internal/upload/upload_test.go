package upload_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/upload"
)

const maxBytes = 3 << 20

type fixture struct {
	dir    string
	bucket *blob.Bucket
	store  *upload.Store
}

// setup opens a real fileblob bucket in a temp dir, with temp files kept
// next to the blobs (no_tmp_dir) so a test can see that nothing is left.
func setup(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	b, err := fileblob.OpenBucket(dir, &fileblob.Options{NoTempDir: true, CreateDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close bucket: %v", err)
		}
	})
	return fixture{dir: dir, bucket: b, store: upload.New(b, "exams/", maxBytes)}
}

// files lists every file under dir (blobs, attribute sidecars, temp files).
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pdf is a PDF header padded to n bytes.
func pdf(n int) []byte {
	b := bytes.Repeat([]byte{'x'}, n)
	copy(b, "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	return b
}

func pngImage(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func jpegImage(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipOf builds a zip with the given entries in order; stored (not
// compressed) when store is true, as ODF requires for its mimetype entry.
func zipOf(t *testing.T, entries ...[2]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i, e := range entries {
		method := zip.Deflate
		if i == 0 && e[0] == "mimetype" {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e[0], Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, e[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPutCap(t *testing.T) {
	t.Parallel()
	t.Run("exactly the cap is stored whole, with its size and sha256", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		body := pdf(maxBytes)
		got, err := f.store.Put(context.Background(), bytes.NewReader(body))
		if err != nil {
			t.Fatalf("Put(3 MiB): %v", err)
		}
		sum := sha256.Sum256(body)
		if got.Size != maxBytes || got.SHA256 != hex.EncodeToString(sum[:]) || got.ContentType != "application/pdf" {
			t.Errorf("got %+v, want size %d, sha256 %x, application/pdf", got, maxBytes, sum)
		}
		if !strings.HasPrefix(got.Key, "exams/") || len(got.Key) != len("exams/")+26 {
			t.Errorf("key %q: want exams/ and 26 random characters", got.Key)
		}
		stored, err := f.bucket.ReadAll(context.Background(), got.Key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stored, body) {
			t.Errorf("stored %d bytes that differ from the %d sent", len(stored), len(body))
		}
		attrs, err := f.bucket.Attributes(context.Background(), got.Key)
		if err != nil {
			t.Fatal(err)
		}
		if attrs.ContentType != "application/pdf" {
			t.Errorf("blob content type %q, want application/pdf", attrs.ContentType)
		}
	})
	t.Run("one byte more is refused and leaves nothing behind", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		_, err := f.store.Put(context.Background(), bytes.NewReader(pdf(maxBytes+1)))
		if !errors.Is(err, upload.ErrTooLarge) || fault.KindOf(err) != fault.TooLarge {
			t.Fatalf("Put(3 MiB + 1) = %v, want ErrTooLarge (413)", err)
		}
		if fault.As(err).Code != upload.CodeTooLarge {
			t.Errorf("code %q, want %q", fault.As(err).Code, upload.CodeTooLarge)
		}
		if left := files(t, f.dir); len(left) != 0 {
			t.Errorf("files left after a refused upload: %v", left)
		}
	})
	t.Run("a cap smaller than the sniffed head still holds", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		small := upload.New(f.bucket, "x/", 100)
		if _, err := small.Put(context.Background(), bytes.NewReader(pdf(100))); err != nil {
			t.Fatalf("Put(100 of 100): %v", err)
		}
		if _, err := small.Put(context.Background(), bytes.NewReader(pdf(101))); !errors.Is(err, upload.ErrTooLarge) {
			t.Fatalf("Put(101 of 100) = %v, want ErrTooLarge", err)
		}
		if left := files(t, f.dir); len(left) != 2 { // the accepted blob and its .attrs
			t.Errorf("files: %v, want only the accepted blob and its attributes", left)
		}
	})
}

func TestPutTypes(t *testing.T) {
	t.Parallel()
	docx := zipOf(t, [2]string{"[Content_Types].xml", `<?xml version="1.0"?><Types/>`},
		[2]string{"_rels/.rels", `<Relationships/>`}, [2]string{"word/document.xml", `<w:document/>`})
	xlsx := zipOf(t, [2]string{"[Content_Types].xml", `<Types/>`}, [2]string{"xl/workbook.xml", `<workbook/>`})
	odt := zipOf(t, [2]string{"mimetype", "application/vnd.oasis.opendocument.text"}, [2]string{"content.xml", "<office:document-content/>"})
	ods := zipOf(t, [2]string{"mimetype", "application/vnd.oasis.opendocument.spreadsheet"}, [2]string{"content.xml", "<x/>"})
	heic := append([]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), make([]byte, 64)...)
	webp := append([]byte("RIFF\x24\x00\x00\x00WEBPVP8 "), make([]byte, 32)...)
	cases := []struct {
		name string
		body []byte
		want string // stored content type; "" = refused
	}{
		{"pdf", pdf(2000), "application/pdf"},
		{"png", pngImage(t), "image/png"},
		{"jpeg", jpegImage(t), "image/jpeg"},
		{"webp", webp, "image/webp"},
		{"heic", heic, "image/heic"},
		{"text", []byte("My answer to question 1 is 42.\n"), "text/plain; charset=utf-8"},
		{"hindi text", []byte("प्रश्न १ का उत्तर: बयालीस\n"), "text/plain; charset=utf-8"},
		{"text that looks like csv", []byte("Firstly, the answer.\nSecondly, the proof.\n"), "text/plain; charset=utf-8"},
		{"docx", docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"xlsx", xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
		{"odt", odt, "application/vnd.oasis.opendocument.text"},
		{"ods", ods, "application/vnd.oasis.opendocument.spreadsheet"},
		{"gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), ""},
		{"plain zip", zipOf(t, [2]string{"answer.txt", "42"}), ""},
		{"html", []byte("<!DOCTYPE html><html><script>alert(1)</script></html>"), ""},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`), ""},
		{"elf binary", append([]byte("\x7fELF\x02\x01\x01"), make([]byte, 64)...), ""},
		{"pdf named .txt is still a pdf", pdf(100), "application/pdf"},
	}
	f := setup(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := f.store.Put(context.Background(), bytes.NewReader(c.body))
			if c.want == "" {
				if !errors.Is(err, upload.ErrUnsupportedType) || fault.KindOf(err) != fault.Unsupported {
					t.Fatalf("Put(%s) = %+v, %v; want ErrUnsupportedType (415)", c.name, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Put(%s): %v", c.name, err)
			}
			if got.ContentType != c.want {
				t.Errorf("content type %q, want %q", got.ContentType, c.want)
			}
		})
	}
}

func TestPutFailures(t *testing.T) {
	t.Parallel()
	t.Run("empty file", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		_, err := f.store.Put(context.Background(), strings.NewReader(""))
		if !errors.Is(err, upload.ErrEmpty) || fault.KindOf(err) != fault.Invalid {
			t.Fatalf("Put(empty) = %v, want ErrEmpty (400)", err)
		}
	})
	t.Run("client goes away mid-file: error is the reader's, nothing stored", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		cut := errors.New("connection reset")
		r := io.MultiReader(bytes.NewReader(pdf(1<<20)), &failingReader{err: cut})
		_, err := f.store.Put(context.Background(), r)
		if !errors.Is(err, cut) {
			t.Fatalf("Put = %v, want the reader's error", err)
		}
		var se *upload.StorageError
		if errors.As(err, &se) {
			t.Errorf("a reader failure reported as a storage failure: %v", err)
		}
		if left := files(t, f.dir); len(left) != 0 {
			t.Errorf("files left: %v", left)
		}
	})
	t.Run("store failing is 503 with the operation and key", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		// The bucket's directory becomes a plain file: every write fails,
		// as with a full or unmounted disk (and even as root).
		if err := os.RemoveAll(f.dir); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.dir, []byte("not a directory"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(f.dir) })
		_, err := f.store.Put(context.Background(), bytes.NewReader(pdf(5000)))
		var se *upload.StorageError
		if !errors.As(err, &se) || fault.KindOf(err) != fault.Unavailable {
			t.Fatalf("Put on a broken store = %v, want a StorageError (503)", err)
		}
		if se.Op != "put" || !strings.HasPrefix(se.Key, "exams/") {
			t.Errorf("storage error %+v, want op put and the key", se)
		}
	})
}

func TestDelete(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	got, err := f.store.Put(ctx, bytes.NewReader(pdf(1000)))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Delete(ctx, got.Key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if ok, err := f.bucket.Exists(ctx, got.Key); err != nil || ok {
		t.Errorf("after Delete: exists %v, %v", ok, err)
	}
	if err := f.store.Delete(ctx, got.Key); err != nil {
		t.Errorf("Delete of a blob already gone = %v, want nil", err)
	}
}

type failingReader struct{ err error }

func (r *failingReader) Read([]byte) (int, error) { return 0, r.err }

// BenchmarkPut shows the memory one upload takes (-benchmem): a few tens of
// KiB per 1 MiB file, since nothing is buffered whole.
func BenchmarkPut(b *testing.B) {
	dir := b.TempDir()
	bucket, err := fileblob.OpenBucket(dir, &fileblob.Options{NoTempDir: true})
	if err != nil {
		b.Fatal(err)
	}
	defer bucket.Close()
	s := upload.New(bucket, "bench/", maxBytes)
	body := pdf(1 << 20)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		got, err := s.Put(context.Background(), bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Delete(context.Background(), got.Key); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSaveAs(t *testing.T) {
	t.Parallel()
	// The name a file is saved under must not make it something else on
	// the examiner's disk: text holding <img onerror=…> named .html would
	// run as a page when opened from the downloads folder.
	for _, c := range []struct{ name, contentType, want string }{
		{"answer.pdf", "application/pdf", "answer.pdf"},
		{"Scan 1.JPG", "image/jpeg", "Scan 1.JPG"},
		{"photo.jpeg", "image/jpeg", "photo.jpeg"},
		{"उत्तर.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "उत्तर.docx"},
		{"notes.csv", "text/plain; charset=utf-8", "notes.csv"},
		{"essay.html", "text/plain; charset=utf-8", "essay.html.txt"},
		{"essay.svg", "text/plain; charset=utf-8", "essay.svg.txt"},
		{"polyglot.html", "application/pdf", "polyglot.html.pdf"},
		{"photo.pdf", "image/png", "photo.pdf.png"},
		{"answer", "application/vnd.oasis.opendocument.text", "answer.odt"},
		{"answer", "text/plain; charset=utf-16le", "answer.txt"},
		{"report\u202Efdp.html", "text/plain; charset=utf-8", "reportfdp.html.txt"},
		{"answer.pdf. . ", "application/pdf", "answer.pdf"},
		{"..", "application/pdf", ""},
		{"", "application/pdf", ""},
		{"odd.bin", "application/x-unknown", "odd.bin"},
	} {
		if got := upload.SaveAs(c.name, c.contentType); got != c.want {
			t.Errorf("SaveAs(%q, %q) = %q, want %q", c.name, c.contentType, got, c.want)
		}
	}
}
