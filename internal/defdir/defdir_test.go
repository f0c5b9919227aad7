package defdir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "mark")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Remove(f); err != nil {
		t.Fatalf("Remove of a file: %v", err)
	}
	if _, err := os.Lstat(f); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the file is still there: %v", err)
	}
	if err := Remove(f); err != nil {
		t.Errorf("Remove of a missing file: %v, want nil", err)
	}
	// A directory where a file belongs is an error, and stays.
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Remove(sub); err == nil || !strings.Contains(err.Error(), sub) {
		t.Errorf("Remove of a directory: %v, want an error naming it", err)
	}
	if _, err := os.Lstat(sub); err != nil {
		t.Errorf("the directory went: %v", err)
	}
}
