// Package cgroupv2 runs the LXC driver's own tests (internal/lxc) and its
// cgroup package's (internal/cgroup) on cgroup v2. Our machines mount
// every controller in cgroup v1, so the tests run there inside a QEMU
// guest (TCG) whose kernel mounts only the unified hierarchy: the Debian
// kernel and the busybox of test/qemu/setup.sh, the container root
// filesystem of test/lxc/setup.sh, and the packages' test binaries, built
// static. The guest's init runs the binaries and reports their exit status
// on the serial console.
package cgroupv2

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/virtd/virtd/test/guest"
)

// guestInit moves the initramfs to a tmpfs (pivot_root, which containers
// need, refuses the initramfs root) and runs init2 there.
const guestInit = `#!/bin/sh
export PATH=/bin
mount -t tmpfs -o size=1200m tmpfs /newroot
for f in /*; do
	case $f in /newroot|/proc|/sys|/dev) ;; *) cp -a "$f" /newroot/ ;; esac
done
mkdir -p /newroot/proc /newroot/sys /newroot/dev
exec switch_root /newroot /init2
`

// guestInit2 mounts the unified cgroup hierarchy only, loads the network
// modules, runs the tests and powers off. The config import's golden tests
// parse files and touch no cgroup: they are left to the host run.
const guestInit2 = `#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /var/run
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
for m in llc stp bridge veth; do insmod /lib/modules/$m.ko; done
ip link set lo up
echo "VIRTD-CGROUP-CONTROLLERS: $(cat /sys/fs/cgroup/cgroup.controllers)" >/dev/ttyS0
cd /tmp
VIRTD_TEST_CGROUP=v2 CI=$CI /cgroup.test -test.v -test.count=1 -test.timeout=3m >/dev/ttyS0 2>&1
echo "VIRTD-CGROUP-TEST-EXIT: $?" >/dev/ttyS0
VIRTD_TEST_CGROUP=v2 VIRTD_LXC_ROOTFS=/rootfs CI=$CI /lxc.test -test.v -test.count=1 -test.timeout=8m -test.skip TestDomainXMLFromNative >/dev/ttyS0 2>&1
echo "VIRTD-TEST-EXIT: $?" >/dev/ttyS0
poweroff -f
`

// buildInitramfs assembles the guest's initramfs.
func buildInitramfs(t *testing.T, repo, modules, rootfs string) string {
	t.Helper()
	r := guest.NewInitramfs(t, "sh", "mount", "mkdir", "cp", "cat", "echo", "switch_root", "poweroff", "insmod", "true", "ip")
	r.Mkdir("newroot")
	// The driver's tests, static like the packaged driver (no libc in
	// the guest), and the controller they start is this same binary.
	guest.Run(t, repo, "go", "test", "-c", "-tags", "netgo,osusergo",
		"-ldflags", "-linkmode external -extldflags -static", "-o", filepath.Join(r.Root, "lxc.test"), "./internal/lxc")
	// The cgroup package's tests of the freezer and cgroup.kill.
	guest.Run(t, repo, "go", "test", "-c",
		"-ldflags", "-linkmode external -extldflags -static", "-o", filepath.Join(r.Root, "cgroup.test"), "./internal/cgroup")
	for _, m := range []string{"llc", "stp", "bridge", "veth"} {
		src := filepath.Join(modules, m+".ko")
		if _, err := os.Stat(src); err != nil {
			guest.Missing(t, src+" is missing")
		}
		r.Copy(src, "lib/modules/"+m+".ko")
	}
	r.Copy(rootfs, "rootfs")
	r.Write("init", guestInit, 0o755)
	r.Write("init2", guestInit2, 0o755)
	return r.Pack()
}

// TestLXCSuiteOnCgroupV2 boots the guest, runs internal/lxc's tests there
// and checks they all pass on cgroup v2.
func TestLXCSuiteOnCgroupV2(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	assets := filepath.Join(repo, ".cache", "qemu-test")
	rootfs := filepath.Join(repo, ".cache", "lxc-test", "rootfs")
	if v := os.Getenv("VIRTD_LXC_ROOTFS"); v != "" {
		rootfs = v
	}
	kernel := filepath.Join(assets, "vmlinuz")
	for _, p := range []string{kernel, filepath.Join(rootfs, "bin", "busybox")} {
		if _, err := os.Stat(p); err != nil {
			guest.Missing(t, p+" is missing")
		}
	}
	initrd := buildInitramfs(t, repo, filepath.Join(assets, "modules"), rootfs)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// CI=1 reaches the guest's init as an environment variable: there,
	// a test that lacks something fails rather than skips.
	log := guest.Boot(ctx, t, "-m", "2048", "-smp", "2", "-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1 CI=1")
	exit, controllers := guest.Field(log, "VIRTD-TEST-EXIT"), guest.Field(log, "VIRTD-CGROUP-CONTROLLERS")
	cgroupExit := guest.Field(log, "VIRTD-CGROUP-TEST-EXIT")
	if exit == "" || cgroupExit == "" {
		t.Fatalf("the guest ended without the tests' exit status; console:\n%s", log)
	}
	t.Logf("guest cgroup v2 controllers: %s", controllers)
	for _, c := range []string{"memory", "pids", "cpu"} {
		if !strings.Contains(" "+controllers+" ", " "+c+" ") {
			t.Errorf("the guest's cgroup v2 lacks the %s controller", c)
		}
	}
	passed, failed := guest.TestResults(log)
	t.Logf("in the guest: %d tests and subtests passed, %d failed", len(passed), len(failed))
	if exit != "0" || cgroupExit != "0" || len(failed) > 0 || len(passed) == 0 {
		t.Fatalf("on cgroup v2, internal/lxc's tests exited %s and internal/cgroup's %s:\n%s", exit, cgroupExit, log)
	}
	// The tests that prove the limits are enforced must have run there.
	for _, name := range []string{"TestHostCgroups", "TestMemoryLimit", "TestPidsLimit", "TestSuspendFreezes", "TestDestroyLeavesNothing", "TestConformance",
		"TestFreezeV2", "TestKillV2UsesCgroupKill", "TestKillV2WithoutCgroupKill"} {
		if !slices.Contains(passed, name) {
			t.Errorf("%s did not pass in the guest", name)
		}
	}
}
