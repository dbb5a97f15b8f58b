package config_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/shala-edu/shala/internal/config"
)

func TestReadme(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the README's table is current", func(t *testing.T) {
		t.Parallel()
		got, err := config.Readme(readme)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, readme) {
			t.Error("README.md's configuration table is behind internal/config: run go run ./internal/config/readme")
		}
	})

	t.Run("running it twice changes nothing", func(t *testing.T) {
		t.Parallel()
		stale := bytes.Replace(readme, []byte("| `SHALA_ADDR` |"), []byte("| `SHALA_ADDRESS` |"), 1)
		once, err := config.Readme(stale)
		if err != nil {
			t.Fatal(err)
		}
		twice, err := config.Readme(once)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(once, twice) {
			t.Error("a second run changed the README")
		}
		if bytes.Contains(once, []byte("SHALA_ADDRESS")) {
			t.Error("the stale row survived")
		}
	})

	t.Run("markers must appear once", func(t *testing.T) {
		t.Parallel()
		start := "<!-- config-table (generated from internal/config/config.go: go run ./internal/config/readme) -->"
		for name, doc := range map[string]string{
			"no markers":       "# shala\n",
			"start repeated":   start + "\n" + start + "\n<!-- /config-table -->\n",
			"end before start": "<!-- /config-table -->\n" + start + "\n",
		} {
			if _, err := config.Readme([]byte(doc)); err == nil {
				t.Errorf("%s: nil error", name)
			}
		}
	})

	t.Run("quoted words become code, apostrophes stay", func(t *testing.T) {
		t.Parallel()
		table := config.Markdown()
		for _, want := range []string{"a school's NAT sending a morning's forms", "Unset under `shala dev` (make run)", "user `operator` for"} {
			if !strings.Contains(table, want) {
				t.Errorf("table lacks %q", want)
			}
		}
		if strings.Contains(table, "school`s") {
			t.Error("an apostrophe became a backquote")
		}
	})
}
