package pgcluster_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when a test leaves goroutines running — but for
// the goroutine that started each postgres, which keeps its thread for good
// by design (Pdeathsig is tied to that thread).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/shala-edu/shala/internal/pgcluster.launch.func1"))
}
