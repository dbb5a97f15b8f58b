// Package analytics sends product events to PostHog. Events say what
// happened (a certificate issued, an SMS request finished) with internal ids
// and counts only — never names, phone numbers or other personal data — so
// the product team can see usage without holding anyone's data. Without an
// API key it is a no-op, so the local default and tests need nothing.
package analytics

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/posthog/posthog-go"
)

// Tracker records product events. distinctID is an internal id (a school's
// or staff member's uuid, or "shala" for system events).
type Tracker interface {
	Capture(distinctID, event string, props map[string]any)
	// Close flushes queued events; call it once on shutdown.
	Close() error
}

// New returns a PostHog tracker for apiKey at host, or a no-op tracker when
// apiKey is empty.
func New(apiKey, host string, log *slog.Logger) (Tracker, error) {
	if apiKey == "" {
		return Nop{}, nil
	}
	c, err := posthog.NewWithConfig(apiKey, posthog.Config{
		Endpoint:  host,
		Interval:  5 * time.Second,
		BatchSize: 100,
		Logger:    slogAdapter{log},
	})
	if err != nil {
		return nil, fmt.Errorf("posthog: %w", err)
	}
	return &postHog{c: c, log: log}, nil
}

type postHog struct {
	c   posthog.Client
	log *slog.Logger
}

func (p *postHog) Capture(distinctID, event string, props map[string]any) {
	msg := posthog.Capture{DistinctId: distinctID, Event: event, Properties: posthog.Properties(props)}
	if err := p.c.Enqueue(msg); err != nil {
		// Analytics must never fail the work it describes.
		p.log.Warn("posthog: event dropped", "event", event, "err", err)
	}
}

func (p *postHog) Close() error { return p.c.Close() }

// Nop discards events.
type Nop struct{}

// Capture does nothing.
func (Nop) Capture(string, string, map[string]any) {}

// Close does nothing.
func (Nop) Close() error { return nil }

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Logf(format string, args ...any) {
	a.log.Debug("posthog: " + fmt.Sprintf(format, args...))
}
func (a slogAdapter) Debugf(format string, args ...any) {
	a.log.Debug("posthog: " + fmt.Sprintf(format, args...))
}
func (a slogAdapter) Warnf(format string, args ...any) {
	a.log.Warn("posthog: " + fmt.Sprintf(format, args...))
}
func (a slogAdapter) Errorf(format string, args ...any) {
	a.log.Error("posthog: " + fmt.Sprintf(format, args...))
}
