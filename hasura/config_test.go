package hasura_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The Hasura CLI configuration cannot apply shala's migrations by accident
// (shala migrate owns them), and scaffolds actions at shala's routes.
func TestCLIConfig(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Metadata   string `yaml:"metadata_directory"`
		Migrations string `yaml:"migrations_directory"`
		Actions    struct {
			Handler string `yaml:"handler_webhook_baseurl"`
		} `yaml:"actions"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	t.Run("migrations directory holds no migrations", func(t *testing.T) {
		t.Parallel()
		if cfg.Migrations == "" {
			t.Fatal("no migrations_directory: the CLI would default to ./migrations")
		}
		err := filepath.WalkDir(cfg.Migrations, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if strings.HasSuffix(path, ".sql") {
				t.Errorf("%s: the CLI would apply it; shala migrate owns the schema", path)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("migrations_directory %q: %v", cfg.Migrations, err)
		}
	})
	t.Run("metadata directory is the repository's", func(t *testing.T) {
		t.Parallel()
		if got, want := cfg.Metadata, "../metadata"; got != want {
			t.Errorf("metadata_directory %q, want %q", got, want)
		}
	})
	t.Run("new actions point at shala's /actions routes", func(t *testing.T) {
		t.Parallel()
		if got, want := cfg.Actions.Handler, "{{SHALA_URL}}/actions"; got != want {
			t.Errorf("handler_webhook_baseurl %q, want %q", got, want)
		}
	})
}
