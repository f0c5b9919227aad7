package qemu

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// corpusPlaceholder starts every host path in testdata/corpus.
const corpusPlaceholder = "@DIR@"

// corpusDocument reads testdata/corpus/FILE, replaces @DIR@ with a new
// temporary directory, and creates there what the document names: each
// disk image in the format of its <driver type> (qcow2 or raw; a
// *-overlay.qcow2 gets a *-base.qcow2 backing file) and the directories of
// log and serial files. It returns the document ready to define.
func corpusDocument(t testing.TB, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, file))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	doc := strings.ReplaceAll(string(b), corpusPlaceholder, dir)
	if err := createCorpusFiles(doc, dir); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return doc
}

// createCorpusFiles creates the files a corpus document names under dir.
func createCorpusFiles(doc, dir string) error {
	root, err := parseXMLTree(doc)
	if err != nil {
		return err
	}
	under := func(p string) bool { return strings.HasPrefix(p, dir+"/") }
	for _, disk := range findAll(root, "devices", "disk") {
		var src, format string
		for _, s := range findAll(disk, "source") {
			src = s.attrs["file"]
		}
		for _, d := range findAll(disk, "driver") {
			format = d.attrs["type"]
		}
		if src == "" {
			continue // an empty cdrom
		}
		if !under(src) {
			return fmt.Errorf("disk source %s is outside %s", src, corpusPlaceholder)
		}
		if format == "" {
			format = "raw"
		}
		if err := createImage(src, format); err != nil {
			return err
		}
	}
	var files []string
	for _, kind := range []string{"serial", "console", "channel"} {
		for _, c := range findAll(root, "devices", kind) {
			for _, s := range findAll(c, "source") {
				files = append(files, s.attrs["path"])
			}
			for _, l := range findAll(c, "log") {
				files = append(files, l.attrs["file"])
			}
		}
	}
	for _, f := range files {
		if f == "" || !under(f) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// createImage makes one image with qemu-img; a qcow2 named *-overlay.qcow2
// is made on top of a new *-base.qcow2.
func createImage(path, format string) error {
	if _, err := os.Stat(path); err == nil {
		return nil // named twice in one document
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	args := []string{"create", "-q", "-f", format}
	switch format {
	case "qcow2":
		if strings.HasSuffix(path, "-overlay.qcow2") {
			base := strings.TrimSuffix(path, "-overlay.qcow2") + "-base.qcow2"
			if err := createImage(base, "qcow2"); err != nil {
				return err
			}
			args = append(args, "-b", base, "-F", "qcow2")
		}
	case "raw":
	default:
		return fmt.Errorf("disk %s: driver type %q: the corpus makes only qcow2 and raw images", path, format)
	}
	args = append(args, path, "64M")
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func TestCorpusDocumentCreatesFiles(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img is not installed (Debian: qemu-utils)")
	}
	// The first document with a backing chain and the first with a serial
	// log file and a raw volume.
	var chain, nova string
	for _, e := range generateCorpus() {
		if chain == "" && strings.Contains(e.doc, "-overlay.qcow2") {
			chain = e.file
		}
		if nova == "" && strings.Contains(e.doc, "console.log") && strings.Contains(e.doc, "/volume-") {
			nova = e.file
		}
	}
	if chain == "" || nova == "" {
		t.Fatalf("the corpus lacks a backing chain (%q) or a nova volume with a log (%q)", chain, nova)
	}

	doc := corpusDocument(t, chain)
	if strings.Contains(doc, corpusPlaceholder) {
		t.Fatalf("%s: %s left in the document", chain, corpusPlaceholder)
	}
	root, err := parseXMLTree(doc)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, disk := range findAll(root, "devices", "disk") {
		srcs := findAll(disk, "source")
		if len(srcs) == 0 {
			continue
		}
		src := srcs[0].attrs["file"]
		want := findAll(disk, "driver")[0].attrs["type"]
		info := qemuImgInfo(t, src)
		if info.Format != want {
			t.Errorf("%s: format %s, want %s", src, info.Format, want)
		}
		if strings.HasSuffix(src, "-overlay.qcow2") {
			base := strings.TrimSuffix(src, "-overlay.qcow2") + "-base.qcow2"
			if info.BackingFilename != base || qemuImgInfo(t, base).Format != "qcow2" {
				t.Errorf("%s: backing file %q, want %s in qcow2", src, info.BackingFilename, base)
			}
		} else if info.BackingFilename != "" {
			t.Errorf("%s: unexpected backing file %s", src, info.BackingFilename)
		}
		checked++
	}
	if checked == 0 {
		t.Fatalf("%s: no disk image checked", chain)
	}

	doc = corpusDocument(t, nova)
	root, err = parseXMLTree(doc)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, s := range findAll(root, "devices", "serial") {
		for _, p := range append(findAll(s, "source"), findAll(s, "log")...) {
			dirs = append(dirs, filepath.Dir(p.attrs["path"]+p.attrs["file"]))
		}
	}
	sort.Strings(dirs)
	if len(dirs) == 0 {
		t.Fatalf("%s: no serial log", nova)
	}
	for _, d := range dirs {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			t.Errorf("%s: directory %s of the serial log was not created: %v", nova, d, err)
		}
	}
	for _, disk := range findAll(root, "devices", "disk") {
		for _, s := range findAll(disk, "source") {
			if _, err := os.Stat(s.attrs["file"]); err != nil {
				t.Errorf("%s: %v", nova, err)
			}
		}
	}
}

type imgInfo struct {
	Format          string `json:"format"`
	BackingFilename string `json:"backing-filename"`
}

func qemuImgInfo(t *testing.T, path string) imgInfo {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "-U", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", path, err)
	}
	var info imgInfo
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

func TestCreateCorpusFilesRefusesPathsOutside(t *testing.T) {
	dir := t.TempDir()
	doc := `<domain><devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/var/lib/libvirt/images/x.img'/></disk></devices></domain>`
	if err := createCorpusFiles(doc, dir); err == nil || !strings.Contains(err.Error(), "/var/lib/libvirt/images/x.img") {
		t.Errorf("a disk outside the directory: %v", err)
	}
	doc = `<domain><devices><disk type='file' device='disk'><driver name='qemu' type='vmdk'/><source file='` + dir + `/x.vmdk'/></disk></devices></domain>`
	if err := createCorpusFiles(doc, dir); err == nil || !strings.Contains(err.Error(), "vmdk") {
		t.Errorf("a vmdk disk: %v", err)
	}
}
