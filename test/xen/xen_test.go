// Package xen runs the Xen driver's tests (internal/xen) on a real Xen
// hypervisor. Our machines run none, so the test boots one under QEMU
// (TCG): the Xen hypervisor, a Debian kernel as dom0 with Xen's tools
// (test/xen/setup.sh fetches them), and the driver's test binary, which
// runs the conformance suite against libxl with PV guests of the same
// kernel and a busybox initramfs.
package xen

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/virtd/virtd/test/guest"
)

// dom0Init starts what libxl needs in dom0 (xenfs, xenstored, the dom0
// entries in xenstore, xenconsoled), runs the tests and powers off.
const dom0Init = `#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mkdir -p /dev/pts /run/xen /run/xenstored /run/lock
mount -t devpts -o ptmxmode=0666 devpts /dev/pts
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs; do insmod /lib/modules/$m.ko; done
mount -t xenfs xenfs /proc/xen
echo "VIRTD-XEN-CAPABILITIES: $(cat /proc/xen/capabilities)" >/dev/hvc0
xenstored --pid-file /run/xenstored.pid >/dev/hvc0 2>&1
xen-init-dom0 >/dev/hvc0 2>&1
xenconsoled --pid-file /run/xenconsoled.pid >/dev/hvc0 2>&1
cd /tmp
VIRTD_TEST_XEN_KERNEL=/guest/vmlinuz VIRTD_TEST_XEN_INITRD=/guest/initrd CI=$CI /xen.test -test.v -test.count=1 -test.timeout=15m >/dev/hvc0 2>&1
echo "VIRTD-TEST-EXIT: $?" >/dev/hvc0
xl list >/dev/hvc0 2>&1
poweroff -f
`

// domUInit is the PV guest's init: it says it is up and waits. Linux runs
// /sbin/poweroff or /sbin/reboot when Xen asks it to shut down or reboot.
const domUInit = `#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
echo "VIRTD-XEN-GUEST-UP" >/dev/hvc0
while :; do sleep 1; done
`

func TestConformanceOnXen(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	assets := filepath.Join(repo, ".cache", "xen-test")
	hypervisor, kernel := filepath.Join(assets, "xen"), filepath.Join(assets, "vmlinuz")
	for _, p := range []string{hypervisor, kernel, filepath.Join(assets, "bin", "xl")} {
		if _, err := os.Stat(p); err != nil {
			guest.Missing(t, p+" is missing")
		}
	}

	domU := guest.NewInitramfs(t, "sh", "mount", "echo", "sleep")
	domU.Write("init", domUInit, 0o755)
	domU.Write("sbin/poweroff", "#!/bin/sh\nexec /bin/busybox poweroff -f\n", 0o755)
	domU.Write("sbin/reboot", "#!/bin/sh\nexec /bin/busybox reboot -f\n", 0o755)

	dom0 := guest.NewInitramfs(t, "sh", "mount", "cat", "echo", "poweroff", "insmod", "mkdir", "sleep")
	dom0.Write("init", dom0Init, 0o755)
	for _, d := range []string{"var/run/xen", "var/lib/xen", "var/lib/xenstored", "var/log/xen", "etc/xen"} {
		dom0.Mkdir(d)
	}
	for _, m := range []string{"xen-evtchn", "xen-gntdev", "xen-gntalloc", "xen-privcmd", "xenfs"} {
		dom0.Copy(filepath.Join(assets, "modules", m+".ko"), "lib/modules/"+m+".ko")
	}
	for _, tool := range []string{"xenstored", "xenconsoled", "xen-init-dom0", "xl"} {
		dom0.CopyWithLibs(filepath.Join(assets, "bin", tool), "bin/"+tool)
	}
	testBin := filepath.Join(t.TempDir(), "xen.test")
	guest.Run(t, repo, "go", "test", "-c", "-o", testBin, "./internal/xen")
	dom0.CopyWithLibs(testBin, "xen.test")
	dom0.Copy(kernel, "guest/vmlinuz")
	dom0.Copy(domU.Pack(), "guest/initrd")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	// Xen is the multiboot kernel; the dom0 kernel and its initramfs are
	// its modules. A PV dom0 runs on QEMU's plain qemu64 CPU under TCG.
	// CI=1 on dom0's command line reaches its init's environment.
	log := guest.Boot(ctx, t, "-cpu", "qemu64", "-m", "2048", "-smp", "2",
		"-kernel", hypervisor, "-append", "console=com1 com1=115200 dom0_mem=768M",
		"-initrd", kernel+" console=hvc0 quiet CI=1,"+dom0.Pack())
	if caps := guest.Field(log, "VIRTD-XEN-CAPABILITIES"); caps != "control_d" {
		t.Fatalf("dom0 did not come up with control of Xen (capabilities %q); console:\n%s", caps, log)
	}
	exit := guest.Field(log, "VIRTD-TEST-EXIT")
	passed, failed := guest.TestResults(log)
	t.Logf("in dom0: %d tests and subtests passed, %d failed", len(passed), len(failed))
	if exit != "0" || len(failed) > 0 {
		t.Fatalf("internal/xen's tests on Xen exited %q; console:\n%s", exit, log)
	}
	for _, name := range []string{"TestConformanceOnXen", "TestConformanceOnXen/Start", "TestConformanceOnXen/Shutdown", "TestConformanceOnXen/Destroy", "TestConformanceOnXen/SuspendResume"} {
		if !slices.Contains(passed, name) {
			t.Errorf("%s did not pass on Xen", name)
		}
	}
}
