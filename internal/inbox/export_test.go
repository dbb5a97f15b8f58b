package inbox

// Pending is how many deliveries wait for a transaction.
func (in *Inbox) Pending() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.pending)
}
