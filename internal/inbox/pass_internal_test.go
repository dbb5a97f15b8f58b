package inbox

import "testing"

// A turn ends early once, and never after its batch is over: a second
// pass, or a late one (a timer firing as the batch ends), would end the
// turn of the leader building by then, and two batches would be built at
// once.
func TestAPassEndsOnlyItsOwnTurn(t *testing.T) {
	t.Parallel()
	in := &Inbox{MaxInFlight: 2, running: 1, building: true}
	first := &turn{}
	in.pass(first, passSlow)
	if in.building {
		t.Fatal("after the builder passed: still building, want the turn free")
	}
	in.running, in.building = 2, true // the next batch's leader builds
	in.pass(first, passCommit)
	if !in.building {
		t.Error("a second pass of a passed turn ended the next builder's turn")
	}
	over := &turn{over: true}
	in.pass(over, passSlow)
	if !in.building {
		t.Error("a pass after its batch was over ended the next builder's turn")
	}
	if commit, slow, failed := in.Passes(); commit != 0 || slow != 1 || failed != 0 {
		t.Errorf("got passes commit=%d slow=%d failed=%d, want the first only (slow)", commit, slow, failed)
	}
}
