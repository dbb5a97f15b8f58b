package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	_ "image/jpeg" // photos of a printed certificate
	_ "image/png"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/shala-edu/shala/internal/certificate"
	"github.com/shala-edu/shala/internal/web"
)

// cmdVerifyCertificate checks a certificate offline — what a district
// office runs on a laptop: the payload (or the QR in an image file) against
// the published key set (a file, or a URL fetched once), no database.
// Revocation and use can only be known online; a valid signature says so.
func cmdVerifyCertificate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify-certificate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := strings.TrimRight(getenv("SHALA_PUBLIC_URL"), "/")
	defKeys := ""
	if base != "" {
		defKeys = base + web.KeysPath
	}
	keysFrom := fs.String("keys", defKeys, "published key set: a file saved from /.well-known/shala-keys.json, or its URL")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *keysFrom == "" {
		fmt.Fprintln(stderr, "usage: shala verify-certificate -keys <file|URL> <payload | image file>")
		return errors.New("verify-certificate: need -keys and one payload or image")
	}
	keysJSON, err := readKeys(ctx, *keysFrom)
	if err != nil {
		return err
	}
	keys, err := certificate.ParseKeySet(keysJSON)
	if err != nil {
		return err
	}
	payload := fs.Arg(0)
	if !strings.HasPrefix(payload, certificate.Prefix) {
		if payload, err = scanImage(payload); err != nil {
			return err
		}
	}
	o := certificate.Open(payload, keys)
	if o.Problem != "" {
		fmt.Fprintf(stdout, "INVALID: %s (%s)\n", o.Problem, o.Detail)
		return fmt.Errorf("certificate not valid: %s", o.Problem)
	}
	s := o.Snapshot
	fmt.Fprintf(stdout, "VALID SIGNATURE (key %s)\n", o.Key.ID)
	if o.Key.Dev {
		fmt.Fprintln(stdout, "WARNING: signed with a DEVELOPMENT key, not the programme's key")
	}
	online := "shala's /verify/" + s.ID.String()
	if base != "" {
		online = certificate.VerifyURL(base, s.ID.String())
	}
	fmt.Fprintf(stdout, "CHECK ONLINE: revocation and use for an admission are known only online: %s\n\n", online)
	date := func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.Format(time.DateOnly)
	}
	leaving, issued := s.LeavingDate, s.IssuedAt
	for _, row := range [][2]string{
		{"certificate", s.ID.String()}, {"issued", issued.In(certificate.IST).Format(time.RFC3339)},
		{"school (UDISE)", s.IssuerUDISE}, {"student", s.Name}, {"father", s.FatherName}, {"mother", s.MotherName},
		{"date of birth", date(s.DateOfBirth)}, {"gender", s.Gender}, {"category", s.Category},
		{"class", fmt.Sprintf("%d%s %s", s.Grade, map[bool]string{true: "-" + s.Section}[s.Section != ""], s.Stream)},
		{"admission", s.AdmissionNumber + " " + date(s.AdmissionDate)}, {"left on", date(&leaving)}, {"reason", string(s.Reason)},
	} {
		if strings.TrimSpace(row[1]) != "" {
			fmt.Fprintf(stdout, "%-15s %s\n", row[0], row[1])
		}
	}
	return nil
}

func readKeys(ctx context.Context, from string) ([]byte, error) {
	if !strings.HasPrefix(from, "http://") && !strings.HasPrefix(from, "https://") {
		b, err := os.ReadFile(from)
		if err != nil {
			return nil, fmt.Errorf("key set: %w", err)
		}
		return b, nil
	}
	// Whoever hands out the keys decides what verifies: over plain http
	// anyone on the network could make forged certificates pass.
	u, err := url.Parse(from)
	if err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	if host := u.Hostname(); u.Scheme != "https" && host != "localhost" && !isLoopback(host) {
		return nil, fmt.Errorf("key set: fetch it over https, or from a file saved from %s: over plain http anyone on the way could substitute keys that make forged certificates verify", web.KeysPath)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, from, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("key set: %s answered %s", from, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// scanImage reads the QR code in an image file (PNG or JPEG: a scan or a
// photo of the certificate).
func scanImage(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("not a %s payload, and not an image file: %w", certificate.Prefix, err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	// A photo or scan of the page first; then the image as the code alone
	// (gozxing's finder-pattern detector misreads a few valid codes).
	var res *gozxing.Result
	for _, hints := range []map[gozxing.DecodeHintType]any{
		{gozxing.DecodeHintType_TRY_HARDER: true}, {gozxing.DecodeHintType_PURE_BARCODE: true},
	} {
		if res, err = gozxingqr.NewQRCodeReader().Decode(bmp, hints); err == nil {
			return res.GetText(), nil
		}
	}
	return "", fmt.Errorf("%s: no QR code found (paste the payload instead): %w", path, err)
}
