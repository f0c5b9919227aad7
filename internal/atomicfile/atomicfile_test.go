package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestWriteFileReplacesAndLeavesNoTemp(t *testing.T) {
	for name, write := range map[string]func(string, []byte, os.FileMode) error{"WriteFile": WriteFile, "Rewrite": Rewrite, "Replace": Replace} {
		t.Run(name, func(t *testing.T) { testReplaces(t, write) })
	}
}

func testReplaces(t *testing.T, write func(string, []byte, os.FileMode) error) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dom.xml")
	for _, content := range []string{"first", "second"} {
		if err := write(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	for _, write := range []func(string, []byte, os.FileMode) error{WriteFile, Replace} {
		if err := write(filepath.Join(t.TempDir(), "no", "such"), nil, 0o600); err == nil {
			t.Fatal("want an error for a missing directory")
		}
	}
}

// TestFailedWriteLeavesNoTemp: a write whose rename fails (the path is a
// directory) says so and leaves nothing behind.
func TestFailedWriteLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dom.xml")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	err := Rewrite(path, []byte("x"), 0o600)
	var le *os.LinkError
	if !errors.As(err, &le) || le.New != path {
		t.Fatalf("Rewrite onto a directory: %v, want the rename's error naming %s", err, path)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the directory written onto", len(entries))
	}
}

// TestCleanRemovesWhatDeadWritersLeft: a temporary file whose writer was
// killed mid-write is removed; one whose writer still runs, and every other
// file, stay.
func TestCleanRemovesWhatDeadWritersLeft(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := dead.Process.Pid
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{ // path: removed
		filepath.Join(dir, fmt.Sprintf(".web.xml.tmp.%d.123", deadPID)):    true,
		filepath.Join(sub, fmt.Sprintf(".state.tmp.%d.9", deadPID)):        true,
		filepath.Join(dir, fmt.Sprintf(".db.xml.tmp.%d.456", os.Getpid())): false,
		filepath.Join(dir, "web.xml"):                                      false,
		filepath.Join(dir, fmt.Sprintf("web.xml.tmp.%d.1", deadPID)):       false, // not hidden: not ours
		filepath.Join(dir, ".old.xml.tmp123"):                              false, // no pid: not ours
		filepath.Join(dir, fmt.Sprintf(".web.xml.tmp.%dx.1", deadPID)):     false,
	}
	for f := range files {
		if err := os.WriteFile(f, []byte("<domain/>"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := Clean(dir)
	if err != nil {
		t.Fatal(err)
	}
	for f, gone := range files {
		_, err := os.Stat(f)
		if gone != os.IsNotExist(err) {
			t.Errorf("%s: removed %v, want %v", filepath.Base(f), os.IsNotExist(err), gone)
		}
	}
	if len(removed) != 2 {
		t.Errorf("Clean reported %v", removed)
	}
	if _, err := Clean(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("a missing directory: %v", err)
	}
}

// TestTempNamesCarryThePID: what a write leaves if killed mid-way is what
// Clean recognises.
func TestTempNamesCarryThePID(t *testing.T) {
	f, err := createTemp(t.TempDir(), "web.xml")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if pid, ok := writerPID(filepath.Base(f.Name())); !ok || pid != os.Getpid() {
		t.Fatalf("writerPID(%s) = %d, %v", filepath.Base(f.Name()), pid, ok)
	}
}

// TestOverwrite: an existing small file is rewritten in place (same
// inode), padded to its old length; anything else is left to Replace.
func TestOverwrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rec.json")
	if done, err := Overwrite(path, []byte("{}"), ' '); done || err != nil {
		t.Fatalf("Overwrite of a missing file = %v, %v; want false, nil", done, err)
	}
	if err := Replace(path, []byte(`{"state":"running"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	for _, tc := range []struct{ data, want string }{
		{`{"s":1}`, `{"s":1}            `},                       // shorter: padded to 19 bytes
		{`{"state":"paused","x":2}`, `{"state":"paused","x":2}`}, // longer: the file grows
	} {
		done, err := Overwrite(path, []byte(tc.data), ' ')
		if !done || err != nil {
			t.Fatalf("Overwrite(%q) = %v, %v", tc.data, done, err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != tc.want {
			t.Errorf("after Overwrite(%q) the file holds %q, want %q", tc.data, got, tc.want)
		}
	}
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Error("Overwrite replaced the file instead of writing in place")
	}
	big := make([]byte, OverwriteMax+1)
	if done, err := Overwrite(path, big, ' '); done || err != nil {
		t.Errorf("Overwrite of %d bytes = %v, %v; want false, nil", len(big), done, err)
	}
	if err := Replace(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if done, err := Overwrite(path, []byte("{}"), ' '); done || err != nil {
		t.Errorf("Overwrite of a file longer than a page = %v, %v; want false, nil", done, err)
	}
}
