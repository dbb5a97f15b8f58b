// Package outbox is the local SMS provider (SHALA_SMS_PROVIDER=log): it
// never calls the network; each message is appended to a file a person can
// read (like a mail catcher: the full number, the rendered text, the DLT
// template id) and logged with the number masked.
package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/shala-edu/shala/internal/sms"
)

// Outbox writes messages to a file.
type Outbox struct {
	path string
	log  *slog.Logger
	mu   sync.Mutex
	f    *os.File
}

// New returns an outbox appending to path (created 0600, with its
// directory).
func New(path string, log *slog.Logger) (*Outbox, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("sms outbox: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sms outbox: %w", err)
	}
	// Kept open for the life of the process: one append per message.
	return &Outbox{path: path, log: log, f: f}, nil
}

// Name is "log".
func (o *Outbox) Name() string { return "log" }

// Send appends msg to the outbox file.
func (o *Outbox) Send(ctx context.Context, msg sms.Message) (string, error) {
	var raw [8]byte
	_, _ = rand.Read(raw[:])
	id := "log-" + hex.EncodeToString(raw[:])
	line := fmt.Sprintf("%s\t%s\tto=%s\tdlt=%s\t%s\n", time.Now().UTC().Format(time.RFC3339), id, msg.To, msg.DLTTemplateID, msg.Body)
	o.mu.Lock()
	_, err := o.f.WriteString(line)
	o.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("sms outbox: write: %w", err)
	}
	o.log.InfoContext(ctx, "sms written to outbox", "id", id, "to", sms.Mask(msg.To), "file", o.path)
	return id, nil
}

// Close closes the outbox file; Send fails afterwards.
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.f.Close()
}
