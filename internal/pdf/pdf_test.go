package pdf_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shala-edu/shala/internal/pdf"
	"github.com/shala-edu/shala/internal/promtest"
)

func needChromium(t *testing.T) {
	t.Helper()
	if _, err := pdf.FindChromium(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (.ci/run installs chromium)", err)
		}
		t.Skip(err)
	}
}

// TestMetrics: renders are counted by outcome — ok, cancelled (the
// caller's time ran out) and error (Chromium could not start) — and each
// browser start is counted.
func TestMetrics(t *testing.T) {
	t.Parallel()
	needChromium(t)
	ctx := context.Background()

	t.Run("ok and cancelled", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		m := pdf.NewMetrics(reg)
		pool := pdf.NewLazy(pdf.Options{Tabs: 1, Metrics: m})
		t.Cleanup(pool.Close)
		out, err := pool.Render(ctx, "@page { size: A4 }", "<p>नमस्ते</p>")
		if err != nil || !bytes.HasPrefix(out, []byte("%PDF-")) {
			t.Fatalf("Render = %d bytes, %v; want a PDF", len(out), err)
		}
		done, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := pool.Render(done, "", "<p>late</p>"); err == nil {
			t.Fatal("a render for a caller that has given up succeeded")
		}
		if got := promtest.Value(t, reg, "shala_pdf_render_duration_seconds", nil); got != 2 {
			t.Errorf("got %v render durations, want 2", got)
		}
		for outcome, want := range map[string]float64{"ok": 1, "cancelled": 1, "error": 0} {
			if got := promtest.Value(t, reg, "shala_pdf_renders_total", map[string]string{"outcome": outcome}); got != want {
				t.Errorf("renders{outcome=%q} = %v, want %v", outcome, got, want)
			}
		}
		if got := promtest.Value(t, reg, "shala_pdf_browser_starts_total", map[string]string{"outcome": "ok"}); got != 1 {
			t.Errorf("starts{outcome=ok} = %v, want 1 (the lazy pool's first render)", got)
		}
	})

	t.Run("a render past its timeout is an error and replaces its tab, not the browser", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		m := pdf.NewMetrics(reg)
		pool := pdf.NewLazy(pdf.Options{Tabs: 1, Metrics: m, Timeout: time.Millisecond})
		t.Cleanup(pool.Close)
		for range 2 {
			if _, err := pool.Render(ctx, "", "<p>slow</p>"); err == nil || !strings.Contains(err.Error(), "took over") {
				t.Fatalf("Render with a 1 ms timeout = %v, want it to time out", err)
			}
		}
		if got := promtest.Value(t, reg, "shala_pdf_renders_total", map[string]string{"outcome": "error"}); got != 2 {
			t.Errorf("renders{outcome=error} = %v, want 2 (not cancelled: the caller had time)", got)
		}
		if got := promtest.Value(t, reg, "shala_pdf_browser_starts_total", map[string]string{"outcome": "ok"}); got != 1 {
			t.Errorf("starts{outcome=ok} = %v, want 1 (a new tab, the same browser)", got)
		}
	})

	t.Run("a hung tab is replaced and the next render works", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		m := pdf.NewMetrics(reg)
		pool := pdf.NewLazy(pdf.Options{Tabs: 1, Metrics: m, Timeout: 5 * time.Second})
		t.Cleanup(pool.Close)
		// An error handler that never returns hangs the tab's renderer.
		if _, err := pool.Render(ctx, "", `<img src="data:image/png;base64,AAAA" onerror="for(;;){}">`); err == nil || !strings.Contains(err.Error(), "took over") {
			t.Fatalf("Render of a page that hangs = %v, want it to time out", err)
		}
		// One tab: this render waits for the replacement.
		out, err := pool.Render(ctx, "", "<p>नमस्ते</p>")
		if err != nil || !bytes.HasPrefix(out, []byte("%PDF-")) {
			t.Fatalf("Render after the hang = %d bytes, %v; want a PDF", len(out), err)
		}
		for outcome, want := range map[string]float64{"ok": 1, "error": 1, "cancelled": 0} {
			if got := promtest.Value(t, reg, "shala_pdf_renders_total", map[string]string{"outcome": outcome}); got != want {
				t.Errorf("renders{outcome=%q} = %v, want %v", outcome, got, want)
			}
		}
		if got := promtest.Value(t, reg, "shala_pdf_browser_starts_total", map[string]string{"outcome": "ok"}); got != 1 {
			t.Errorf("starts{outcome=ok} = %v, want 1 (a new tab, the same browser)", got)
		}
	})

	t.Run("a browser that cannot start", func(t *testing.T) {
		t.Parallel()
		reg := prometheus.NewRegistry()
		m := pdf.NewMetrics(reg)
		missing, err := exec.LookPath("false") // exits at once: no DevTools
		if err != nil {
			t.Skip(err)
		}
		pool := pdf.NewLazy(pdf.Options{ExecPath: missing, Tabs: 1, Metrics: m})
		t.Cleanup(pool.Close)
		if _, err := pool.Render(ctx, "", "<p>x</p>"); err == nil {
			t.Fatal("rendered with no browser")
		}
		if got := promtest.Value(t, reg, "shala_pdf_renders_total", map[string]string{"outcome": "error"}); got != 1 {
			t.Errorf("renders{outcome=error} = %v, want 1", got)
		}
		if got := promtest.Value(t, reg, "shala_pdf_browser_starts_total", map[string]string{"outcome": "error"}); got != 1 {
			t.Errorf("starts{outcome=error} = %v, want 1", got)
		}
	})
}
