// Package slowreadtest sends request bodies the way a phone on a poor link
// does, for tests of upload routes read under internal/slowread's floor.
package slowreadtest

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Link is a request body that sends Chunk bytes of Data every Interval;
// after StallAt bytes (if > 0) it sends nothing more until it is closed.
// Close it once the answer is read: the transport may still be reading it,
// and a stalled link's reader ends only then.
type Link struct {
	Data     []byte
	Chunk    int
	Interval time.Duration
	StallAt  int

	sent       atomic.Int64
	init, once sync.Once
	closed     chan struct{}
}

// Sent is how many bytes went out so far. It may be read while the
// transport is still reading the link (a request answered before its body
// was sent).
func (p *Link) Sent() int { return int(p.sent.Load()) }

func (p *Link) done() chan struct{} {
	p.init.Do(func() { p.closed = make(chan struct{}) })
	return p.closed
}

// Read sends the next chunk at the link's pace.
func (p *Link) Read(b []byte) (int, error) {
	sent := p.Sent()
	if sent >= len(p.Data) {
		return 0, io.EOF
	}
	if p.StallAt > 0 && sent >= p.StallAt {
		<-p.done() // the link is dead until the request is given up
		return 0, io.ErrClosedPipe
	}
	if sent > 0 {
		select {
		case <-time.After(p.Interval): // the link's pace, not synchronisation
		case <-p.done():
			return 0, io.ErrClosedPipe
		}
	}
	n := copy(b[:min(len(b), p.Chunk)], p.Data[sent:])
	p.sent.Add(int64(n))
	return n, nil
}

// Close gives the link up.
func (p *Link) Close() error {
	p.once.Do(func() { close(p.done()) })
	return nil
}
