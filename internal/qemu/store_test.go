package qemu

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtd/virtd/virt"
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

// TestRecordRewrittenInPlace: a record written again (a suspend, a resume)
// is overwritten in the same file, and one shorter than before still reads
// back whole, with the new state, as the next driver process reads it.
func TestRecordRewrittenInPlace(t *testing.T) {
	drv, _ := newTestDriver(t)
	r := &record{UUID: "6a1c3f2e-0d7b-4c5e-9a8f-1b2c3d4e5f60", Name: "rec", Pid: 4242, State: virt.StateRunning,
		Reason: 1, XML: "<domain type='qemu'><name>rec</name>" + strings.Repeat("<!-- live -->", 20) + "</domain>"}
	if err := drv.saveRecord(r); err != nil {
		t.Fatal(err)
	}
	first, err := os.Stat(drv.recordPath(r.UUID))
	if err != nil {
		t.Fatal(err)
	}
	r.State, r.Reason, r.XML = virt.StatePaused, 1, "<domain type='qemu'><name>rec</name></domain>"
	if err := drv.saveRecord(r); err != nil {
		t.Fatal(err)
	}
	second, err := os.Stat(drv.recordPath(r.UUID))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(first, second) || second.Size() != first.Size() {
		t.Errorf("the record was replaced (same file %v, %d then %d bytes); want it overwritten in place, padded",
			os.SameFile(first, second), first.Size(), second.Size())
	}
	recs := drv.loadRecords()
	if len(recs) != 1 || recs[0].State != virt.StatePaused || recs[0].XML != r.XML || recs[0].Pid != 4242 {
		t.Fatalf("records read back: %+v; want the paused one", recs)
	}
	if err := os.Remove(drv.recordPath(r.UUID)); err != nil {
		t.Fatal(err)
	}
}
