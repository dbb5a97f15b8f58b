// Command readme rewrites the configuration table in README.md from the
// struct tags of internal/config (run it from the repository root after
// changing a variable: go run ./internal/config/readme). Running it again
// changes nothing; internal/config's tests fail while the README is behind.
package main

import (
	"fmt"
	"os"

	"github.com/shala-edu/shala/internal/config"
)

func main() {
	if err := run("README.md"); err != nil {
		fmt.Fprintln(os.Stderr, "readme:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	updated, err := config.Readme(old)
	if err != nil {
		return err
	}
	return os.WriteFile(path, updated, 0o644)
}
