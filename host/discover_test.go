package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeExe(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestScanAcceptsAndRejectsWithReasons(t *testing.T) {
	first, second := t.TempDir(), t.TempDir()
	writeExe(t, filepath.Join(first, "virtd-driver-good"), 0o755)
	writeExe(t, filepath.Join(first, "virtd-driver-noexec"), 0o644)
	writeExe(t, filepath.Join(first, "virtd-driver-groupw"), 0o775)
	writeExe(t, filepath.Join(first, "virtd-driver-Bad-Name"), 0o755)
	writeExe(t, filepath.Join(first, "unrelated-file"), 0o777)
	if err := os.Mkdir(filepath.Join(first, "virtd-driver-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	owned := filepath.Join(first, "virtd-driver-owned")
	writeExe(t, owned, 0o755)
	if err := os.Chown(owned, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	writeExe(t, filepath.Join(second, "virtd-driver-good"), 0o755) // shadowed
	writeExe(t, filepath.Join(second, "virtd-driver-extra"), 0o755)

	found, rejected := Scan([]string{first, second, filepath.Join(first, "missing")}, Trust{UID: os.Getuid()})
	if len(found) != 2 || found["good"].Path != filepath.Join(first, "virtd-driver-good") || found["extra"].Path == "" {
		t.Fatalf("found %+v", found)
	}
	reasons := map[string]string{}
	for _, r := range rejected {
		reasons[filepath.Base(r.Path)] = r.Reason
	}
	want := map[string]string{
		"virtd-driver-noexec":   "not executable (mode 0644)",
		"virtd-driver-groupw":   "writable by group or others (mode 0775)",
		"virtd-driver-Bad-Name": "is not valid",
		"virtd-driver-dir":      "not a regular file",
		"virtd-driver-owned":    "owned by uid 4242",
		"virtd-driver-good":     "shadowed by " + filepath.Join(first, "virtd-driver-good"),
	}
	for name, w := range want {
		if !strings.Contains(reasons[name], w) {
			t.Errorf("%s: reason %q, want it to contain %q", name, reasons[name], w)
		}
	}
	if len(rejected) != len(want) {
		t.Errorf("rejected %d files, want %d: %+v", len(rejected), len(want), rejected)
	}
}

func TestRingKeepsLastLinesAndMessages(t *testing.T) {
	r := newRing(3)
	r.Write([]byte("one\ntwo\n"))
	r.Write([]byte(`{"@level":"debug","@message":"noise"}` + "\n"))
	r.Write([]byte(`{"@level":"error","@message":"disk on fire"}` + "\nthree\nfou"))
	r.Write([]byte("r"))
	got := strings.Join(r.Lines(), "|")
	if got != "two|error: disk on fire|three|four" {
		t.Fatalf("lines %q", got)
	}
	if q := newRing(2).quote(); q != "no output on stderr" {
		t.Fatalf("empty quote %q", q)
	}
}
