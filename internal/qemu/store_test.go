package qemu

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLegacyDefinitionRenamed: a definition an earlier version stored by
// name (<name>.xml, autostart/<name>) is found and moved to its UUID's
// files.
func TestLegacyDefinitionRenamed(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	const uuid = "6f0d7c1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f"
	doc := strings.Replace(disklessXML("old"), "<name>old</name>", "<name>old</name><uuid>"+uuid+"</uuid>", 1)
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(filepath.Join(state, "autostart"), 0o700); err != nil {
		t.Fatal(err)
	}
	for path, content := range map[string]string{
		filepath.Join(state, "old.xml"):          doc,
		filepath.Join(state, "autostart", "old"): "",
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	drv := newDriverOn(t, dir)
	on, err := drv.DomainAutostart(ctxT(t), uuid)
	if err != nil || !on {
		t.Fatalf("DomainAutostart of the legacy definition = %v, %v; want true", on, err)
	}
	for _, p := range []string{filepath.Join(state, uuid+".xml"), filepath.Join(state, "autostart", uuid)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("after loading: %v", err)
		}
	}
	for _, p := range []string{filepath.Join(state, "old.xml"), filepath.Join(state, "autostart", "old")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("legacy file %s still there: %v", p, err)
		}
	}
}
