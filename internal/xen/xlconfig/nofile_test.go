package xlconfig

import (
	"crypto/rand"
	"fmt"
	goparser "go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The Xen driver converts for any user of virtd's read-only socket while
// running as root, so a conversion must read only the text it is given.
// xl.cfg has no include: libxlu's grammar is settings (name = value,
// name += value) and nothing else, so a path in xl.cfg is only ever a
// value, copied into the XML as text.

// pathTargets returns a readable file holding a random marker, a path
// that does not exist, a /proc file, and the marker.
func pathTargets(t *testing.T) (paths []string, marker string) {
	t.Helper()
	marker = "xlconfig-marker-" + rand.Text()
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("name = %q\n%s\n", marker, marker)), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{file, filepath.Join(dir, "missing"), "/proc/self/environ"}, marker
}

// sameWhateverPath converts the input made from tmpl (%[1]s is the path)
// for each path and checks that it converts, with the path in the result
// as text, and that the result, path aside, does not depend on the path
// and holds nothing of the file.
func sameWhateverPath(t *testing.T, tmpl string, convert func(string) (string, error)) {
	t.Helper()
	paths, marker := pathTargets(t)
	var first string
	for _, path := range paths {
		out, err := convert(fmt.Sprintf(tmpl, path))
		if err != nil {
			t.Fatalf("path %s: %v", path, err)
		}
		if !strings.Contains(out, path) {
			t.Errorf("path %s is not in the converted text:\n%s", path, out)
		}
		if strings.Contains(out, marker) {
			t.Errorf("path %s: the result holds the file's content:\n%s", path, out)
		}
		out = strings.ReplaceAll(out, path, "PATH")
		if first == "" {
			first = out
		} else if out != first {
			t.Errorf("path %s: the result depends on the path:\n%s\nfirst path:\n%s", path, out, first)
		}
	}
}

// TestFromNativePathsStayText: every xl.cfg setting that names a file
// (kernel, ramdisk, bootloader, firmware, device model, disk targets, vif
// scripts) converts the same whether the file exists or not.
func TestFromNativePathsStayText(t *testing.T) {
	for name, tmpl := range map[string]string{
		"pv": `name = "pv"
kernel = "%[1]s"
ramdisk = "%[1]s"
disk = [ "format=raw,vdev=xvda,access=rw,target=%[1]s", "%[1]s,qcow2,xvdb,r" ]
vif = [ "bridge=xenbr0,script=%[1]s" ]
`,
		"bootloader": `name = "pvgrub"
bootloader = "%[1]s"
bootloader_args = [ "%[1]s" ]
disk = [ "phy:%[1]s,xvda,w" ]
`,
		"hvm": `name = "hvm"
type = "hvm"
bios = "ovmf"
bios_path_override = "%[1]s"
firmware_override = "%[1]s"
device_model_override = "%[1]s"
disk = [ "format=raw,vdev=hdc,access=ro,devtype=cdrom,target=%[1]s" ]
`,
	} {
		t.Run(name, func(t *testing.T) { sameWhateverPath(t, tmpl, FromNative) })
	}
}

// TestFromNativeIncludeRefused: what would include another file in other
// config languages (xm's Python, "include" lines) is refused by the
// parser or by name, the same whatever the path, without reading it.
func TestFromNativeIncludeRefused(t *testing.T) {
	for _, tmpl := range []string{
		"name = \"x\"\ninclude = \"%[1]s\"\n",
		"name = \"x\"\ninclude \"%[1]s\"\n",
		"name = \"x\"\n@include \"%[1]s\"\n",
		"execfile(\"%[1]s\")\nname = \"x\"\n",
		"name = \"x\"\nkernel += \"%[1]s\"\n",
	} {
		paths, marker := pathTargets(t)
		var first string
		for _, path := range paths {
			out, err := FromNative(fmt.Sprintf(tmpl, path))
			if err == nil {
				t.Fatalf("%q with %s converted to\n%s", tmpl, path, out)
			}
			msg := strings.ReplaceAll(err.Error(), path, "PATH")
			if strings.Contains(msg, marker) {
				t.Errorf("%q: the error holds the file's content: %s", tmpl, msg)
			}
			if first == "" {
				first = msg
			} else if msg != first {
				t.Errorf("%q: the error depends on the path: %q, first %q", tmpl, msg, first)
			}
		}
	}
}

// TestToNativePathsStayText: the XML -> xl.cfg conversion copies kernel,
// initrd, emulator, loader and disk paths as text.
func TestToNativePathsStayText(t *testing.T) {
	for name, tmpl := range map[string]string{
		"pv": `<domain type='xen'><name>pv</name><memory unit='MiB'>256</memory>
  <os><type>linux</type><kernel>%[1]s</kernel><initrd>%[1]s</initrd></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%[1]s'/><target dev='xvda' bus='xen'/></disk>
  </devices></domain>`,
		"hvm": `<domain type='xen'><name>hvm</name><memory unit='MiB'>256</memory>
  <os><type>hvm</type><loader>%[1]s</loader></os>
  <devices><emulator>%[1]s</emulator>
    <disk type='block' device='disk'><source dev='%[1]s'/><target dev='hda' bus='ide'/></disk>
  </devices></domain>`,
	} {
		t.Run(name, func(t *testing.T) { sameWhateverPath(t, tmpl, ToNative) })
	}
}

// TestNoFileAccess keeps the conversion packages (this one and the
// domain model it goes through) free of the packages that reach the file
// system, so that a conversion cannot read a file by construction.
func TestNoFileAccess(t *testing.T) {
	for _, dir := range []string{".", "../domconfig"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s: %v", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			pf, err := goparser.ParseFile(token.NewFileSet(), f, nil, goparser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range pf.Imports {
				switch p, _ := strconv.Unquote(imp.Path.Value); p {
				case "os", "io/fs", "io/ioutil", "path/filepath", "os/exec", "syscall", "golang.org/x/sys/unix":
					t.Errorf("%s imports %q: a conversion must not reach the file system", f, p)
				}
			}
		}
	}
}
