package analytics_test

import (
	"testing"

	"github.com/shala-edu/shala/internal/pgtest"
)

// TestMain runs the tests on a throwaway cluster and fails the run when a
// test leaves goroutines running (a posthog-go client not closed).
func TestMain(m *testing.M) { pgtest.Main(m) }
