package lxcconf

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtd/virtd/internal/noread"

	"github.com/virtd/virtd/virt"
)

// secretFiles writes, in a new directory, a readable file and a directory
// of *.conf files whose content holds a random marker (in fstab and in
// lxc.* form, so that a converter reading them would either quote the
// marker in an error or turn it into XML), and returns their paths, a
// path that does not exist, and the marker.
func secretFiles(t *testing.T) (file, dir, missing, marker string) {
	t.Helper()
	marker = "lxcconf-marker-" + rand.Text()
	root := t.TempDir()
	content := fmt.Sprintf("%s\n/srv/%s /mnt none bind 0 0\nlxc.uts.name = %s\n", marker, marker, marker)
	file = filepath.Join(root, "secret")
	dir = filepath.Join(root, "secret.d")
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.conf"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, dir, filepath.Join(root, "missing"), marker
}

// TestFileKeysRefused: the keys whose value is another file's name are
// refused by name, as invalid arguments, whatever the path: the error is
// the same for a readable file, a directory, a missing path and a /proc
// file, and never holds what the file holds.
func TestFileKeysRefused(t *testing.T) {
	file, dir, missing, marker := secretFiles(t)
	for _, tt := range []struct {
		key, advice string
	}{
		{"lxc.mount.fstab", "give its entries as lxc.mount.entry lines"},
		{"lxc.mount", "give its entries as lxc.mount.entry lines"},
		{"lxc.include", "put the included settings in the configuration itself"},
	} {
		t.Run(tt.key, func(t *testing.T) {
			var first string
			for _, path := range []string{file, dir, missing, "/proc/self/environ", "/proc/self/mounts"} {
				config := "lxc.uts.name = ct\nlxc.rootfs.path = /var/lib/lxc/ct/rootfs\n" + tt.key + " = " + path + "\n"
				out, err := ToDomainXML(config)
				if err == nil {
					t.Fatalf("%s = %s: converted to\n%s\nwant an error", tt.key, path, out)
				}
				msg := err.Error()
				if !errors.Is(err, virt.ErrInvalidArgument) {
					t.Errorf("%s = %s: %q has kind %v, want invalid argument", tt.key, path, msg, virt.KindOf(err))
				}
				if !strings.Contains(msg, "line 3: "+tt.key+" ") || !strings.Contains(msg, tt.advice) {
					t.Errorf("%s = %s: %q does not name the key (line 3) and say %q", tt.key, path, msg, tt.advice)
				}
				if strings.Contains(msg, marker) {
					t.Errorf("%s = %s: the error holds the file's content: %q", tt.key, path, msg)
				}
				if first == "" {
					first = msg
				} else if msg != first {
					t.Errorf("%s: the error depends on the path:\n%s = %s: %q\nfirst path: %q", tt.key, tt.key, path, msg, first)
				}
			}
		})
	}
}

// TestPathsStayText: paths a configuration names (root filesystem, bind
// mount sources, hooks, profiles, log files, network scripts) are copied
// into the XML as text or ignored; the result is the same, path aside,
// whether the path exists or not, and holds nothing of the file.
func TestPathsStayText(t *testing.T) {
	file, dir, missing, marker := secretFiles(t)
	const config = `lxc.uts.name = ct
lxc.rootfs.path = dir:%[1]s
lxc.mount.entry = %[1]s srv none bind,ro 0 0
lxc.hook.pre-start = %[1]s
lxc.hook.mount = %[1]s
lxc.seccomp.profile = %[1]s
lxc.apparmor.profile = %[1]s
lxc.console.logfile = %[1]s
lxc.console.path = %[1]s
lxc.log.file = %[1]s
lxc.net.0.type = veth
lxc.net.0.script.up = %[1]s
lxc.environment = CONFIG=%[1]s
`
	noread.SameForEveryPath(t, []string{file, dir, missing, "/proc/self/environ"}, marker, config, `<source dir="PATH">`, ToDomainXML)
}

// TestNoFileAccess keeps the package free of the packages that reach the
// file system, so that a conversion cannot read a file by construction.
func TestNoFileAccess(t *testing.T) { noread.NoFileImports(t, ".") }
