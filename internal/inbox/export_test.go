package inbox

import "time"

// Pending is how many deliveries wait for a transaction.
func (in *Inbox) Pending() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.pending)
}

// Paths is how many batches the fast and the slow path recorded.
func (in *Inbox) Paths() (fast, slow int64) { return in.fastBatches.Load(), in.slowBatches.Load() }

// Running is how many leaders hold a transaction slot.
func (in *Inbox) Running() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.running
}

// SetAverages sets how long batches have taken to build and to commit, as
// if measured.
func (in *Inbox) SetAverages(build, commit time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.buildTime, in.commitTime = build, commit
}

// Averages is how long batches have taken to build and to commit.
func (in *Inbox) Averages() (build, commit time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.buildTime, in.commitTime
}
