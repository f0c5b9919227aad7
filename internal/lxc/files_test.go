package lxc

import (
	"context"
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
	rootfs := testRootFS(t)
	td := testDirs{root: shortTempDir(t)}
	const uuid = "7a1e2d3c-4b5a-4f6e-8d7c-9b0a1f2e3d4c"
	doc := strings.Replace(domainXML(rootfs, "old", domOpts{}), "<name>old</name>", "<name>old</name><uuid>"+uuid+"</uuid>", 1)
	etc := td.opts().ConfigDir
	if err := os.MkdirAll(filepath.Join(etc, "autostart"), 0o700); err != nil {
		t.Fatal(err)
	}
	for path, content := range map[string]string{
		filepath.Join(etc, "old.xml"):          doc,
		filepath.Join(etc, "autostart", "old"): uuid + "\n",
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	drv := openTestDriver(t, td)
	on, err := drv.DomainAutostart(context.Background(), uuid)
	if err != nil || !on {
		t.Fatalf("DomainAutostart of the legacy definition = %v, %v; want true", on, err)
	}
	for _, p := range []string{filepath.Join(etc, uuid+".xml"), filepath.Join(etc, "autostart", uuid)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("after loading: %v", err)
		}
	}
	for _, p := range []string{filepath.Join(etc, "old.xml"), filepath.Join(etc, "autostart", "old")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("legacy file %s still there: %v", p, err)
		}
	}
}
