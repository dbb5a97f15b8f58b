package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/jobs"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/ping"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/seed"
	"github.com/shala-edu/shala/internal/sms"
)

// human writes a duration as the README does: 40 s, 2 min, 6 h.
func human(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%d h", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d min", d/time.Minute)
	default:
		return fmt.Sprintf("%d s", d/time.Second)
	}
}

// The README is a contract: the figures it gives are the code's.
func TestReadmeFiguresAreTheCodes(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	res, err := seed.Demo(context.Background(), pgtest.New(t), seed.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(context.Background(), func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	sweep := func(after time.Duration) string {
		return fmt.Sprintf("| %s old | %s |", human(after), human(after+jobs.SweepEvery))
	}
	for what, want := range map[string]string{
		"seed schools":             fmt.Sprintf("%d schools", res.Schools),
		"seed students":            fmt.Sprintf("%d,%03d students", res.Students/1000, res.Students%1000),
		"sweep interval":           "swept by River every " + strings.TrimPrefix(human(jobs.SweepEvery), "1 "),
		"ping sweep":               "| a ping without its pong " + sweep(ping.ReconcileAfter),
		"sms sweep":                "| an SMS request still `QUEUED` " + sweep(sms.ReconcileAfter),
		"forms sweep":              "a form registered after its submissions) " + sweep(forms.ReconcileAfter),
		"stuck messages":           fmt.Sprintf("| %s old | the next progress run (every %s", human(sms.StuckAfter), human(sms.ProgressEvery)),
		"rescue bound":             fmt.Sprintf("running **%s** (`queue.RescueAfter`)", human(queue.RescueAfter)),
		"job timeout":              fmt.Sprintf("within **%s** (`queue.MaxTimeout`", human(queue.MaxTimeout)),
		"grace":                    fmt.Sprintf("**%s** (`queue.Grace`", human(queue.Grace)),
		"provider call timeout":    fmt.Sprintf("the SMS provider call: %s)", human(sms.ProviderCallTimeout)),
		"expansion budget":         fmt.Sprintf("pages of %d,%03d students, a transaction each, for up to %s", sms.PageSize/1000, sms.PageSize%1000, human(sms.ExpandBudget)),
		"upload window":            fmt.Sprintf("`SHALA_UPLOAD_WINDOW` (%s)", human(cfg.UploadWindow)),
		"upload floor":             fmt.Sprintf("`SHALA_UPLOAD_MIN_RATE` (%d bytes/s)", cfg.UploadMinRate),
		"rule cost cap":            fmt.Sprintf("over %d syntax-tree nodes", forms.MaxRuleNodes),
		"rule memory budget":       fmt.Sprintf("memory budget of %d,%03d", forms.RuleMemoryBudget/1000, forms.RuleMemoryBudget%1000),
		"kill test recovery bound": fmt.Sprintf("**A killed process heals within %d minutes.**", RecoveryBound/time.Minute),
		"duplicates window":        fmt.Sprintf("(window: %d)", killSMSWorker*sms.BatchConcurrency),
		"batch waves":              fmt.Sprintf("≤ %d first attempts in waves of %d", sms.BatchSize, sms.BatchConcurrency),
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("%s: README.md does not say %q", what, want)
		}
	}
}

// Every River job kind shala declares has a row in the README's table of
// per-kind timeouts (Guarantees): what one run does, its timeout, and what
// happens to longer work — the rescue rule is only as good as that table.
func TestReadmeListsEveryJobKind(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, guarantees, ok := strings.Cut(string(b), "\n## Guarantees\n")
	if !ok {
		t.Fatal("README.md has no Guarantees section")
	}
	guarantees, _, _ = strings.Cut(guarantees, "\n## ")
	var table strings.Builder
	for _, line := range strings.Split(guarantees, "\n") {
		if strings.HasPrefix(line, "| `") && strings.Contains(line, " s |") || strings.Contains(line, " min**") {
			table.WriteString(line + "\n")
		}
	}
	kindRE := regexp.MustCompile(`Kind\(\) string \{ return "([^"]+)" \}`)
	var kinds []string
	err = filepath.WalkDir("../../internal", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		for _, m := range kindRE.FindAllSubmatch(src, -1) {
			kinds = append(kinds, string(m[1]))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(kinds) < 20 {
		t.Fatalf("found %d job kinds under internal/; the scan is broken", len(kinds))
	}
	for _, kind := range kinds {
		if !strings.Contains(table.String(), "`"+kind+"`") {
			t.Errorf("job kind %s has no row in the README's per-kind timeouts (Guarantees)", kind)
		}
	}
}
