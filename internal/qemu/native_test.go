package qemu

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtd/virtd/internal/noread"
)

// TestDomainXMLToNativeReadsNoPath: qemu-argv conversion, which read-only
// clients may call, touches no path the XML names. The emulator, kernel,
// initrd, disk and serial file paths are copied as text, and the command
// line, path aside, is the same for a readable file, a directory, a
// missing path and a /proc file. Without <emulator> the driver's own
// emulator is used, found among the qemu-system-* binaries of its search
// path.
func TestDomainXMLToNativeReadsNoPath(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "qemu-system-x86_64"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	drv := newDriverWithPath(t, dir, bin)
	ctx := context.Background()

	for arch, want := range map[string]string{"x86_64": filepath.Join(bin, "qemu-system-x86_64") + " ", "i686": "qemu-system-i686 "} {
		out, err := drv.DomainXMLToNative(ctx, "qemu-argv", `<domain type='qemu'><name>a</name><memory unit='MiB'>64</memory><os><type arch='`+arch+`'>hvm</type></os></domain>`)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out, want) {
			t.Errorf("arch %s without <emulator>: %q, want it to start with %q", arch, out, want)
		}
	}

	marker := "qemu-marker-" + rand.Text()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte(marker+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const tmpl = `<domain type='kvm'>
  <name>paths</name>
  <uuid>0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0</uuid>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64'>hvm</type><kernel>%[1]s</kernel><initrd>%[1]s</initrd><cmdline>console=ttyS0</cmdline></os>
  <devices>
    <emulator>%[1]s</emulator>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%[1]s'/><target dev='vda'/></disk>
    <disk type='block' device='disk'><source dev='%[1]s'/><target dev='sda'/></disk>
    <disk type='file' device='cdrom'><source file='%[1]s'/><target dev='hdc'/></disk>
    <serial type='file'><source path='%[1]s'/><target port='0'/></serial>
    <interface type='bridge'><mac address='52:54:00:12:34:56'/><source bridge='br0'/></interface>
  </devices>
</domain>`
	noread.SameForEveryPath(t, []string{secret, bin, filepath.Join(dir, "missing"), "/proc/self/environ"}, marker, tmpl, "PATH -name guest=paths",
		func(doc string) (string, error) { return drv.DomainXMLToNative(ctx, "qemu-argv", doc) })
}
