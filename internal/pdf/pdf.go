// Package pdf renders HTML documents to PDF in headless Chromium (Debian's
// chromium) driven over the DevTools protocol by chromedp. Chromium shapes
// Devanagari correctly — conjuncts and matras, which pure-Go PDF libraries
// cannot — with the Noto fonts bundled here (fonts/, SIL Open Font
// License), so the result does not depend on the host's fonts. One browser
// is started and kept warm; renders share it through a pool of tabs.
package pdf

import (
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
)

//go:embed fonts/*.ttf
var fonts embed.FS

// FontFaces is CSS declaring the bundled fonts as data URLs: "Noto Sans
// Devanagari" (regular, bold) and "Noto Sans" (Latin). Every tab's shell
// document has it; pages use font-family: "Noto Sans", "Noto Sans Devanagari".
func FontFaces() template.CSS {
	var sb strings.Builder
	for _, f := range []struct{ file, family, weight string }{
		{"NotoSans-Regular.ttf", "Noto Sans", "400"},
		{"NotoSansDevanagari-Regular.ttf", "Noto Sans Devanagari", "400"},
		{"NotoSansDevanagari-Bold.ttf", "Noto Sans Devanagari", "700"},
	} {
		b, err := fonts.ReadFile("fonts/" + f.file)
		if err != nil {
			panic(err) // embedded at build time
		}
		fmt.Fprintf(&sb, "@font-face{font-family:%q;font-weight:%s;src:url(data:font/ttf;base64,%s) format(\"truetype\");}\n",
			f.family, f.weight, base64.StdEncoding.EncodeToString(b))
	}
	return template.CSS(sb.String())
}

// Options configure the pool.
type Options struct {
	// ExecPath is the Chromium binary; empty looks for chromium,
	// chromium-browser, google-chrome on PATH.
	ExecPath string
	// Tabs is how many documents render at once (default 2).
	Tabs int
	// NoSandbox runs Chromium without its sandbox: for containers whose
	// seccomp profile refuses the namespaces it needs (Docker's default).
	// Chromium renders only shala's own templates.
	NoSandbox bool
	// Metrics counts renders and browser starts (nil: none).
	Metrics *Metrics
	// Timeout bounds one render once it has a tab (0: DefaultTimeout). A
	// render that takes longer fails and its tab is replaced (the browser
	// too, if it cannot open one): a hung Chromium shows as errors, not as
	// its callers' timeouts.
	Timeout time.Duration
}

// DefaultTimeout bounds one render; a certificate takes well under a
// second.
const DefaultTimeout = 10 * time.Second

// Metrics are the Chromium provider's: renders by outcome and their
// duration, and browser starts (a start after the first is a crash or a
// killed browser being replaced).
type Metrics struct {
	renders  *prometheus.CounterVec
	duration prometheus.Histogram
	starts   *prometheus.CounterVec
}

// NewMetrics registers the PDF metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		renders: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shala_pdf_renders_total",
			Help: "PDF renders in headless Chromium by outcome: ok, error (Chromium failed or could not start), cancelled (the caller's time ran out).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "shala_pdf_render_duration_seconds",
			Help:    "Time of a PDF render, waiting for a free tab included.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 20},
		}),
		starts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shala_pdf_browser_starts_total",
			Help: "Chromium starts by outcome (ok, error); more than one ok per process means a browser crashed and was replaced.",
		}, []string{"outcome"}),
	}
	for _, o := range []string{"ok", "error", "cancelled"} {
		m.renders.WithLabelValues(o)
	}
	m.starts.WithLabelValues("ok")
	m.starts.WithLabelValues("error")
	reg.MustRegister(m.renders, m.duration, m.starts)
	return m
}

// rendered counts a render that started at start for a caller whose
// context is ctx: a failure is "cancelled" when that context is done (not
// when the browser's own context ended: that is an error).
func (m *Metrics) rendered(ctx context.Context, start time.Time, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	switch {
	case err != nil && ctx.Err() != nil:
		outcome = "cancelled"
	case err != nil:
		outcome = "error"
	}
	m.renders.WithLabelValues(outcome).Inc()
	m.duration.Observe(time.Since(start).Seconds())
}

func (m *Metrics) started(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.starts.WithLabelValues("error").Inc()
		return
	}
	m.starts.WithLabelValues("ok").Inc()
}

// FindChromium returns the Chromium binary on PATH, or an error saying how
// to install it.
func FindChromium() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("pdf: no Chromium on PATH (apt-get install -y chromium)")
}

// Pool is a warm headless Chromium with a fixed number of tabs.
type Pool struct {
	opts Options

	mu            sync.Mutex
	browser       context.Context
	cancelAlloc   context.CancelFunc
	cancelBrowser context.CancelFunc
	tabs          chan *tab
}

// tab is one page of the browser holding the shell document: the bundled
// fonts loaded once (a document that brought its fonts each time would
// spend most of its render decoding 1 MB of them), a style element and a
// body that each render replaces.
type tab struct {
	ctx     context.Context
	close   context.CancelFunc // closes this tab only
	browser context.Context    // the browser it belongs to
	ready   bool               // the shell is loaded and its fonts decoded
}

// tabTimeout bounds closing a tab and opening its replacement.
const tabTimeout = 5 * time.Second

// replaceTab closes t (its renderer with it) and sends a new tab of the
// same browser to tabs. A browser that cannot do that within tabTimeout is
// ended, if it is still the pool's, and t (closed) goes back to tabs, so a
// render waiting for a tab fails at once and the next one starts a new
// browser.
func (p *Pool) replaceTab(tabs chan *tab, t *tab) {
	done := make(chan *tab, 1)
	go func() {
		t.close()
		nt, err := openTab(t.browser)
		if err != nil {
			nt = nil
		}
		done <- nt
	}()
	select {
	case nt := <-done:
		if nt != nil {
			tabs <- nt
			return
		}
	case <-time.After(tabTimeout):
	}
	p.mu.Lock()
	if p.browser == t.browser && p.cancelBrowser != nil {
		p.cancelBrowser() // the opener's calls end with it
	}
	p.mu.Unlock()
	tabs <- t
}

// openTab opens a tab in browser.
func openTab(browser context.Context) (*tab, error) {
	t, closeTab := chromedp.NewContext(browser) // closed with the browser too
	if err := chromedp.Do(t); err != nil {
		closeTab()
		return nil, fmt.Errorf("pdf: open tab: %w", err)
	}
	return &tab{ctx: t, close: closeTab, browser: browser}, nil
}

// New starts Chromium and opens its tabs.
func New(ctx context.Context, opts Options) (*Pool, error) {
	if opts.Tabs <= 0 {
		opts.Tabs = 2
	}
	if opts.ExecPath == "" {
		p, err := FindChromium()
		if err != nil {
			return nil, err
		}
		opts.ExecPath = p
	}
	p := &Pool{opts: opts}
	if err := p.start(); err != nil {
		return nil, err
	}
	return p, nil
}

// NewLazy returns a pool that starts Chromium at its first render: for
// processes that may never render (a missing Chromium then fails the render
// jobs, visibly and retried, instead of the start-up).
func NewLazy(opts Options) *Pool {
	if opts.Tabs <= 0 {
		opts.Tabs = 2
	}
	return &Pool{opts: opts}
}

// start launches the browser (the caller holds mu or owns p alone).
func (p *Pool) start() (err error) {
	defer func() { p.opts.Metrics.started(err) }()
	if p.opts.ExecPath == "" {
		path, err := FindChromium()
		if err != nil {
			return err
		}
		p.opts.ExecPath = path
	}
	flags := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(p.opts.ExecPath),
		chromedp.DisableGPU,
		// This machine's network is closed: no background connections.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	if os.Geteuid() == 0 || p.opts.NoSandbox {
		// Chromium refuses to run as root with its sandbox.
		flags = append(flags, chromedp.NoSandbox)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), flags...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(browser); err != nil {
		cancelBrowser()
		cancelAlloc()
		return fmt.Errorf("pdf: start chromium %s: %w", p.opts.ExecPath, err)
	}
	tabs := make(chan *tab, p.opts.Tabs)
	for range p.opts.Tabs {
		t, err := openTab(browser)
		if err != nil {
			cancelBrowser()
			cancelAlloc()
			return err
		}
		tabs <- t
	}
	p.browser, p.cancelAlloc, p.cancelBrowser, p.tabs = browser, cancelAlloc, cancelBrowser, tabs
	return nil
}

// Close stops Chromium.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancelBrowser != nil {
		p.cancelBrowser()
		p.cancelAlloc()
		p.cancelBrowser = nil
	}
}

// shell is the document every tab keeps: fonts declared (and loaded once),
// an empty style element and body for each render to fill.
func shell() string {
	return `<!doctype html><html><head><meta charset="utf-8"><style>` + string(FontFaces()) +
		`</style><style id="page"></style></head><body></body></html>`
}

// Render prints a page — its CSS and the HTML of its body; it must not load
// anything from the network — as PDF once its fonts are ready (@page in the
// CSS sets the paper). A crashed browser is started again on the next
// render.
func (p *Pool) Render(ctx context.Context, style, body string) (_ []byte, err error) {
	defer func(start time.Time) { p.opts.Metrics.rendered(ctx, start, err) }(time.Now())
	p.mu.Lock()
	if p.browser == nil || p.browser.Err() != nil {
		if p.cancelBrowser != nil {
			p.cancelBrowser()
			p.cancelAlloc()
		}
		if err := p.start(); err != nil {
			p.mu.Unlock()
			return nil, err
		}
	}
	tabs := p.tabs
	p.mu.Unlock()

	var t *tab
	select {
	case t = <-tabs:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// A render that ran out of its own time may have left its tab hung: it
	// is replaced in the background, the others go on. (One whose caller
	// gave up first goes back: if it is hung, the next render's own
	// timeout finds it.)
	replace := false
	defer func() {
		if replace {
			go p.replaceTab(tabs, t)
			return
		}
		tabs <- t
	}()
	if t.ctx.Err() != nil {
		return nil, fmt.Errorf("pdf: browser closed: %w", t.ctx.Err())
	}
	// The tab's context is long-lived; this render is bounded by ctx and
	// by the render timeout.
	timeout := p.opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	rctx, cancel := context.WithTimeout(t.ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	fill, err := json.Marshal([2]string{style, body})
	if err != nil {
		return nil, err
	}
	out, err := chromedp.Run(rctx, func(c context.Context, tt *chromedp.Target) ([]byte, error) {
		if !t.ready {
			if _, err := chromedp.Navigate("about:blank")(c, tt); err != nil {
				return nil, err
			}
			tree, err := cdp.Call(c, tt, page.GetFrameTree, cdp.Empty{})
			if err != nil {
				return nil, err
			}
			if _, err := cdp.Call(c, tt, page.SetDocumentContent, page.SetDocumentContentParams{FrameID: tree.FrameTree.Frame.ID, HTML: shell()}); err != nil {
				return nil, err
			}
			// @font-face fonts load when text uses them: load them all now.
			if _, err := chromedp.Evaluate[float64](`Promise.all([...document.fonts].map(f => f.load())).then(l => l.length)`, chromedp.EvalAwaitPromise)(c, tt); err != nil {
				return nil, fmt.Errorf("load fonts: %w", err)
			}
			t.ready = true
		}
		js := `(() => { const [s, b] = ` + string(fill) + `; document.getElementById("page").textContent = s; document.body.innerHTML = b;
			return document.fonts.ready.then(() => document.fonts.size); })()`
		if _, err := chromedp.Evaluate[float64](js, chromedp.EvalAwaitPromise)(c, tt); err != nil {
			return nil, err
		}
		return chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4), chromedp.PDFMargin(0),
			chromedp.PDFPrintBackground(), chromedp.PDFPreferCSSPageSize())(c, tt)
	})
	if err != nil {
		t.ready = false // load the shell again next time
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(rctx.Err(), context.DeadlineExceeded) && t.ctx.Err() == nil {
			replace = true
			return nil, fmt.Errorf("pdf: render took over %s (its tab is replaced): %w", timeout, err)
		}
		return nil, fmt.Errorf("pdf: render: %w", err)
	}
	return out, nil
}
