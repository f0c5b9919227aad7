package xlconfig

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtd/virtd/internal/noread"
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

// sameWhateverPath checks noread.SameForEveryPath for the usual paths,
// the path being in the result as text.
func sameWhateverPath(t *testing.T, tmpl string, convert func(string) (string, error)) {
	t.Helper()
	paths, marker := pathTargets(t)
	noread.SameForEveryPath(t, paths, marker, tmpl, "PATH", convert)
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
func TestNoFileAccess(t *testing.T) { noread.NoFileImports(t, ".", "../domconfig") }
