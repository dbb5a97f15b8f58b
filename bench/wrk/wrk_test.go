package wrk

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBinary(t *testing.T) {
	setup := func(t *testing.T) (root string) {
		t.Helper()
		root = t.TempDir()
		t.Setenv("PATH", t.TempDir()) // no wrk on PATH
		if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, "bench", "events"), 0o755); err != nil {
			t.Fatal(err)
		}
		return root
	}
	install := func(t *testing.T, root string) string {
		t.Helper()
		p := filepath.Join(root, ".tools", "bin", "wrk")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}

	t.Run("make tools' wrk is found from a package directory of the module", func(t *testing.T) {
		root := setup(t)
		want := install(t, root)
		t.Chdir(filepath.Join(root, "bench", "events"))
		got, err := binary()
		if err != nil {
			t.Fatalf("binary: %v", err)
		}
		if got != want {
			t.Errorf("binary = %q, want %q", got, want)
		}
	})
	t.Run("wrk on PATH comes first", func(t *testing.T) {
		root := setup(t)
		install(t, root)
		onPath := t.TempDir()
		want := filepath.Join(onPath, "wrk")
		if err := os.WriteFile(want, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("PATH", onPath)
		t.Chdir(root)
		got, err := binary()
		if err != nil || got != want {
			t.Errorf("binary = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("neither: an error that says how to get it", func(t *testing.T) {
		root := setup(t)
		t.Chdir(root)
		if Installed() {
			t.Fatal("Installed = true with no wrk anywhere")
		}
		if _, err := binary(); err == nil {
			t.Error("binary: no error")
		}
	})
}
