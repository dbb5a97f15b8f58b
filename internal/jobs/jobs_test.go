package jobs_test

import (
	"os"
	"strings"
	"testing"

	"github.com/shala-edu/shala/internal/jobs"
	"github.com/shala-edu/shala/internal/sms/cdac"
)

// Every kind is registered through queue.Add, which refuses a timeout that
// breaks the rescue rule (internal/queue/rescue.go): building the workers
// must not panic, and jobs.go must not bypass the check.
func TestEveryKindFitsTheRescueRule(t *testing.T) {
	t.Parallel()
	// With a provider that polls reports, so every kind is registered.
	jobs.Workers(jobs.Deps{SMSProvider: cdac.New("http://127.0.0.1:1", "u", "p", "SENDER", "k")})

	src, err := os.ReadFile("jobs.go")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(src), "river.AddWorker") {
		t.Error("jobs.go registers a worker with river.AddWorker; use queue.Add, which checks its timeout against the rescue bound")
	}
}
