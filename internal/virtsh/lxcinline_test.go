package virtsh

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/testdriver"
	"github.com/virtd/virtd/virt"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// nativeRecorder is a driver that records the native configurations it
// is sent, and converts none.
type nativeRecorder struct {
	driver.Driver
	mu      sync.Mutex
	configs []string
}

func (r *nativeRecorder) DomainXMLFromNative(_ context.Context, _, config string) (string, error) {
	r.mu.Lock()
	r.configs = append(r.configs, config)
	r.mu.Unlock()
	return "", fmt.Errorf("no conversion here: %w", virt.ErrNotSupported)
}

func (r *nativeRecorder) DomainXMLToNative(context.Context, string, string) (string, error) {
	return "", fmt.Errorf("no conversion here: %w", virt.ErrNotSupported)
}

func (r *nativeRecorder) sent() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.configs...)
}

// TestFromNativeInlinesLXCFiles: for lxc-tools, virtsh reads the files an
// LXC configuration names for their content (includes, nested and of a
// directory; fstab files) and sends their lines in their place, relative
// paths taken from the naming file's directory.
func TestFromNativeInlinesLXCFiles(t *testing.T) {
	r := &nativeRecorder{Driver: testdriver.New(driver.Env{})}
	h := newHarness(t, r)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"ct/config": `# container ct
lxc.include = common.conf
lxc.uts.name = ct
lxc.rootfs.path = dir:/var/lib/lxc/ct/rootfs
lxc.mount.fstab = "fstab"
lxc.include = ` + filepath.Join(dir, "ct/conf.d") + `
lxc.console.path = none`,
		"ct/common.conf":        "lxc.arch = amd64\n  lxc.include=nested/nested.conf\n",
		"ct/nested/nested.conf": "lxc.tty.max = 4", // no final newline
		"ct/fstab":              "# mounts\nproc proc proc defaults 0 0\n\n  /srv/data srv none bind 0 0  \n",
		"ct/conf.d/b.conf":      "lxc.mount = ../fstab2\n",
		"ct/conf.d/a.conf":      "lxc.cap.drop = sys_module\n",
		"ct/conf.d/notes.txt":   "lxc.uts.name = not-included\n",
		"ct/conf.d/sub.conf/x":  "lxc.uts.name = not-included-either\n",
		"ct/fstab2":             "tmpfs tmp tmpfs size=1M 0 0",
	})
	cfg := filepath.Join(dir, "ct/config")
	want := `# container ct
lxc.arch = amd64
lxc.tty.max = 4
lxc.uts.name = ct
lxc.rootfs.path = dir:/var/lib/lxc/ct/rootfs
lxc.mount.entry = proc proc proc defaults 0 0
lxc.mount.entry = /srv/data srv none bind 0 0
lxc.cap.drop = sys_module
lxc.mount.entry = tmpfs tmp tmpfs size=1M 0 0
lxc.console.path = none`

	_, errs, code := h.run("domxml-from-native", "lxc-tools", cfg)
	if code != 1 || !strings.Contains(errs, "no conversion here") {
		t.Fatalf("exit %d, stderr %q; want the driver's refusal", code, errs)
	}
	sent := r.sent()
	if len(sent) != 1 || sent[0] != want {
		t.Fatalf("sent %q\nwant %q", sent, want)
	}

	// Another format is sent as it is.
	writeFiles(t, dir, map[string]string{"xl.cfg": "lxc.include = " + filepath.Join(dir, "ct/common.conf") + "\n"})
	h.run("domxml-from-native", "xen-xl", filepath.Join(dir, "xl.cfg"))
	if sent := r.sent(); len(sent) != 2 || sent[1] != "lxc.include = "+filepath.Join(dir, "ct/common.conf")+"\n" {
		t.Errorf("xen-xl config sent as %q", sent[1:])
	}
}

// TestFromNativeLXCFileErrors: a file virtsh cannot read, or includes
// without end, fail in virtsh, naming the file and the line, and nothing
// is sent.
func TestFromNativeLXCFileErrors(t *testing.T) {
	r := &nativeRecorder{Driver: testdriver.New(driver.Env{})}
	h := newHarness(t, r)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"missing-fstab": "lxc.uts.name = ct\n\nlxc.mount.fstab = nope\n",
		"missing-incl":  "lxc.include = /nonexistent/lxc/common.conf\n",
		"loop":          "lxc.uts.name = ct\nlxc.include = loop\n",
		"fstab-dir":     "lxc.mount = " + dir + "\n",
	})
	for _, tt := range []struct{ file, want string }{
		{"missing-fstab", "error: Failed to read file '" + filepath.Join(dir, "nope") + "' (lxc.mount.fstab at " + filepath.Join(dir, "missing-fstab") + ":3): no such file or directory\n"},
		{"missing-incl", "error: Failed to read file '/nonexistent/lxc/common.conf' (lxc.include at " + filepath.Join(dir, "missing-incl") + ":1): no such file or directory\n"},
		{"loop", "error: lxc.include at " + filepath.Join(dir, "loop") + ":2: includes nested more than 16 deep (does a file include itself?)\n"},
		{"fstab-dir", "error: Failed to read file '" + dir + "' (lxc.mount at " + filepath.Join(dir, "fstab-dir") + ":1): is a directory\n"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			if errs := h.fails("domxml-from-native", "lxc-tools", filepath.Join(dir, tt.file)); errs != tt.want {
				t.Errorf("stderr:\n%s\nwant:\n%s", errs, tt.want)
			}
		})
	}
	if sent := r.sent(); len(sent) != 0 {
		t.Errorf("sent %q after errors", sent)
	}
}
