// Package elfdeps checks the point of virtd's split into processes at the
// level of the linker: it builds every binary of the project and reads the
// DT_NEEDED entries of each ELF dynamic section. virtd, virtsh and every
// driver but xen must need no libxen* library; virtd-driver-xen must need
// libxenlight.
package elfdeps

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// build compiles pkg into dir and returns the binary's path.
func build(t *testing.T, root, dir, name, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

func needed(t *testing.T, path string) []string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatalf("%s: reading DT_NEEDED: %v", path, err)
	}
	return libs
}

func TestXenLibrariesOnlyInXenDriver(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bins := map[string]string{"virtd": "./cmd/virtd", "virtsh": "./cmd/virtsh"}
	drivers, err := filepath.Glob(filepath.Join(root, "cmd", "driver-*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range drivers {
		if _, err := os.Stat(filepath.Join(d, "main.go")); err != nil {
			continue
		}
		name := strings.TrimPrefix(filepath.Base(d), "driver-")
		bins["virtd-driver-"+name] = "./cmd/" + filepath.Base(d)
	}
	if _, ok := bins["virtd-driver-xen"]; !ok {
		t.Fatal("cmd/driver-xen is missing")
	}
	dir := t.TempDir()
	for name, pkg := range bins {
		t.Run(name, func(t *testing.T) {
			libs := needed(t, build(t, root, dir, name, pkg))
			var xen []string
			for _, l := range libs {
				if strings.HasPrefix(l, "libxen") {
					xen = append(xen, l)
				}
			}
			t.Logf("DT_NEEDED: %s", strings.Join(libs, " "))
			if name == "virtd-driver-xen" {
				found := false
				for _, l := range xen {
					found = found || strings.HasPrefix(l, "libxenlight.so")
				}
				if !found {
					t.Errorf("virtd-driver-xen does not need libxenlight: DT_NEEDED %q", libs)
				}
				return
			}
			if len(xen) > 0 {
				t.Errorf("%s needs Xen libraries %q: only virtd-driver-xen may", name, xen)
			}
		})
	}
}
