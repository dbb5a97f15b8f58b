package certificate

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"

	qrcode "github.com/yeqown/go-qrcode/v2"
)

// MaxQRVersion is the largest QR version a certificate may need at error
// correction level Q: version 16 is 81×81 modules, which at the printed
// size (≥ 35 mm) gives modules of 0.43 mm — readable by a phone camera from
// a photocopy. The issue path refuses anything bigger (CheckFits makes it
// unreachable for records within the name limits).
const MaxQRVersion = 16

// QR is a certificate payload as a QR code: alphanumeric mode (base45 and
// the prefix use only that alphabet), error correction level Q (25%).
type QR struct {
	Version int
	modules [][]bool
}

// NewQR encodes payload.
func NewQR(payload string) (*QR, error) {
	q, err := qrcode.NewWith(payload,
		qrcode.WithEncodingMode(qrcode.EncModeAlphanumeric),
		qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionQuart))
	if err != nil {
		return nil, fmt.Errorf("qr: %w", err)
	}
	var w matrixWriter
	if err := q.Save(&w); err != nil {
		return nil, fmt.Errorf("qr: %w", err)
	}
	return &QR{Version: (q.Dimension() - 17) / 4, modules: w.bits}, nil
}

type matrixWriter struct{ bits [][]bool }

func (w *matrixWriter) Write(m qrcode.Matrix) error { w.bits = m.Bitmap(); return nil }
func (w *matrixWriter) Close() error                { return nil }

// quiet is the quiet zone the QR standard asks for, in modules.
const quiet = 4

// SVG draws the code as one path (crisp at any print size), quiet zone
// included, in a viewBox of modules.
func (q *QR) SVG() string {
	n := len(q.modules) + 2*quiet
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges">`, n, n)
	fmt.Fprintf(&sb, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y, row := range q.modules {
		for x, dark := range row {
			if dark {
				fmt.Fprintf(&sb, "M%d %dh1v1h-1z", x+quiet, y+quiet)
			}
		}
	}
	sb.WriteString(`"/></svg>`)
	return sb.String()
}

// PNG draws the code with scale pixels per module, quiet zone included.
func (q *QR) PNG(scale int) ([]byte, error) {
	n := (len(q.modules) + 2*quiet) * scale
	img := image.NewGray(image.Rect(0, 0, n, n))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for y, row := range q.modules {
		for x, dark := range row {
			if !dark {
				continue
			}
			for dy := range scale {
				for dx := range scale {
					img.SetGray((x+quiet)*scale+dx, (y+quiet)*scale+dy, color.Gray{})
				}
			}
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
