package inbox

// Pending is how many deliveries wait for a transaction.
func (in *Inbox) Pending() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.pending)
}

// Paths is how many batches the fast and the slow path recorded.
func (in *Inbox) Paths() (fast, slow int64) { return in.fastBatches.Load(), in.slowBatches.Load() }
