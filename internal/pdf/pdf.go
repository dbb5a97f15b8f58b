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
	"errors"
	"fmt"
	"html/template"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

//go:embed fonts/*.ttf
var fonts embed.FS

// FontFaces is CSS declaring the bundled fonts as data URLs: "Noto Sans
// Devanagari" (regular, bold) and "Noto Sans" (Latin). Documents put it in
// a <style> and use font-family: "Noto Sans", "Noto Sans Devanagari".
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
	tabs          chan context.Context
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
func (p *Pool) start() error {
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
	if os.Geteuid() == 0 {
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
	tabs := make(chan context.Context, p.opts.Tabs)
	for range p.opts.Tabs {
		tab, _ := chromedp.NewContext(browser) // closed with the browser
		if err := chromedp.Do(tab); err != nil {
			cancelBrowser()
			cancelAlloc()
			return fmt.Errorf("pdf: open tab: %w", err)
		}
		tabs <- tab
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

// Render prints html (a whole document; it must not load anything from the
// network) as an A4 PDF once its fonts are loaded. A crashed browser is
// started again on the next render.
func (p *Pool) Render(ctx context.Context, html string) ([]byte, error) {
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

	var tab context.Context
	select {
	case tab = <-tabs:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { tabs <- tab }()
	if tab.Err() != nil {
		return nil, fmt.Errorf("pdf: browser closed: %w", tab.Err())
	}
	// The tab's context is long-lived; this render is bounded by ctx.
	rctx, cancel := context.WithCancel(tab)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	out, err := chromedp.Run(rctx, func(c context.Context, t *chromedp.Target) ([]byte, error) {
		if _, err := chromedp.Navigate("about:blank")(c, t); err != nil {
			return nil, err
		}
		tree, err := cdp.Call(c, t, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			return nil, err
		}
		if _, err := cdp.Call(c, t, page.SetDocumentContent, page.SetDocumentContentParams{FrameID: tree.FrameTree.Frame.ID, HTML: html}); err != nil {
			return nil, err
		}
		if _, err := chromedp.Evaluate[float64](`document.fonts.ready.then(() => document.fonts.size)`, chromedp.EvalAwaitPromise)(c, t); err != nil {
			return nil, err
		}
		return chromedp.PrintToPDF(chromedp.PDFPaper(chromedp.PaperA4), chromedp.PDFMargin(0),
			chromedp.PDFPrintBackground(), chromedp.PDFPreferCSSPageSize())(c, t)
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("pdf: render: %w", err)
	}
	return out, nil
}
