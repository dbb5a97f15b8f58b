package lesson

// SetContended sets the hook called when a start waits for another start of
// the same group.
func (r *Rooms) SetContended(f func()) { r.contended = f }

// Check runs a connection check of server id (the CheckWorker's work).
var Check = (*Servers).check

// SettleTime is what a sweep keeps in hand to start one lesson's check.
const SettleTime = settleTime
