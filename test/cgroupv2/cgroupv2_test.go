// Package cgroupv2 runs the LXC driver's own tests (internal/lxc) on cgroup
// v2. Our machines mount every controller in cgroup v1, so the tests run
// there inside a QEMU guest (TCG) whose kernel mounts only the unified
// hierarchy: the Debian kernel and the busybox of test/qemu/setup.sh, the
// container root filesystem of test/lxc/setup.sh, iproute2 from the host,
// and the package's test binary, built static. The guest's init runs the
// binary and reports its exit status on the serial console.
package cgroupv2

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
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
VIRTD_TEST_CGROUP=v2 VIRTD_LXC_ROOTFS=/rootfs CI=$CI /lxc.test -test.v -test.count=1 -test.timeout=8m -test.skip TestDomainXMLFromNative >/dev/ttyS0 2>&1
echo "VIRTD-TEST-EXIT: $?" >/dev/ttyS0
poweroff -f
`

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// missing skips outside CI and fails in it, where make test has run the
// set-up scripts.
func missing(t *testing.T, what string) {
	t.Helper()
	msg := what + ": run test/qemu/setup.sh and test/lxc/setup.sh (make test-assets)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// copyWithLibs copies the executable path into root at the same path, with
// the shared libraries ldd names.
func copyWithLibs(t *testing.T, root, path string) {
	t.Helper()
	files := []string{path}
	out, _ := exec.Command("ldd", path).Output() // a static file has none
	for _, m := range regexp.MustCompile(`(?m)(/\S+) \(0x`).FindAllStringSubmatch(string(out), -1) {
		files = append(files, m[1])
	}
	for _, f := range files {
		dst := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, "", "cp", "-L", f, dst)
	}
}

// buildInitramfs assembles the guest's initramfs in a temporary directory.
func buildInitramfs(t *testing.T, repo, modules, rootfs string) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"bin", "sbin", "lib/modules", "newroot", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The driver's tests, static like the packaged driver (no libc in
	// the guest), and the controller they start is this same binary.
	run(t, repo, "go", "test", "-c", "-tags", "netgo,osusergo",
		"-ldflags", "-linkmode external -extldflags -static", "-o", filepath.Join(root, "lxc.test"), "./internal/lxc")
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		missing(t, "busybox is not installed")
	}
	run(t, "", "cp", "-L", busybox, filepath.Join(root, "bin", "busybox"))
	for _, app := range []string{"sh", "mount", "mkdir", "cp", "cat", "echo", "switch_root", "poweroff", "insmod", "true"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", app)); err != nil {
			t.Fatal(err)
		}
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		missing(t, "iproute2 is not installed")
	}
	copyWithLibs(t, root, ip)
	if err := os.Symlink(ip, filepath.Join(root, "bin", "ip")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	for _, m := range []string{"llc", "stp", "bridge", "veth"} {
		src := filepath.Join(modules, m+".ko")
		if _, err := os.Stat(src); err != nil {
			missing(t, src+" is missing")
		}
		run(t, "", "cp", src, filepath.Join(root, "lib", "modules"))
	}
	run(t, "", "cp", "-a", rootfs, filepath.Join(root, "rootfs"))
	for name, text := range map[string]string{"init": guestInit, "init2": guestInit2} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "initramfs.cpio.gz")
	run(t, root, "sh", "-c", "find . | cpio -o -H newc --quiet | gzip -1 >"+img)
	return img
}

// TestLXCSuiteOnCgroupV2 boots the guest, runs internal/lxc's tests there
// and checks they all pass on cgroup v2.
func TestLXCSuiteOnCgroupV2(t *testing.T) {
	repo := repoRoot(t)
	assets := filepath.Join(repo, ".cache", "qemu-test")
	rootfs := filepath.Join(repo, ".cache", "lxc-test", "rootfs")
	if v := os.Getenv("VIRTD_LXC_ROOTFS"); v != "" {
		rootfs = v
	}
	kernel := filepath.Join(assets, "vmlinuz")
	for _, p := range []string{kernel, filepath.Join(rootfs, "bin", "busybox")} {
		if _, err := os.Stat(p); err != nil {
			missing(t, p+" is missing")
		}
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		missing(t, "qemu-system-x86_64 is not installed")
	}
	initrd := buildInitramfs(t, repo, filepath.Join(assets, "modules"), rootfs)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// CI=1 reaches the guest's init as an environment variable: there,
	// a test that lacks something fails rather than skips.
	cmd := exec.CommandContext(ctx, qemu, "-accel", "tcg", "-m", "2048", "-smp", "2",
		"-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1 CI=1",
		"-nographic", "-no-reboot", "-serial", "stdio", "-monitor", "none", "-display", "none", "-nodefaults")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var console strings.Builder
	exit, controllers := "", ""
	sc := bufio.NewScanner(io.TeeReader(stdout, &console))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if _, v, ok := strings.Cut(line, "VIRTD-TEST-EXIT: "); ok {
			exit = v
		}
		if _, v, ok := strings.Cut(line, "VIRTD-CGROUP-CONTROLLERS: "); ok {
			controllers = v
		}
	}
	waitErr := cmd.Wait()
	log := console.String()
	if exit == "" {
		t.Fatalf("the guest ended (%v) without the tests' exit status; qemu: %s\nconsole:\n%s", waitErr, stderr.String(), log)
	}
	t.Logf("guest cgroup v2 controllers: %s", controllers)
	for _, c := range []string{"memory", "pids", "cpu"} {
		if !strings.Contains(" "+controllers+" ", " "+c+" ") {
			t.Errorf("the guest's cgroup v2 lacks the %s controller", c)
		}
	}
	passed := regexp.MustCompile(`(?m)^--- PASS: (\S+)`).FindAllStringSubmatch(log, -1)
	failed := regexp.MustCompile(`(?m)^\s*--- FAIL: (\S+)`).FindAllStringSubmatch(log, -1)
	t.Logf("in the guest: %d tests passed, %d failed", len(passed), len(failed))
	if exit != "0" || len(failed) > 0 || len(passed) == 0 {
		t.Fatalf("internal/lxc's tests on cgroup v2 exited %s:\n%s", exit, log)
	}
	// The tests that prove the limits are enforced must have run there.
	for _, name := range []string{"TestHostCgroups", "TestMemoryLimit", "TestPidsLimit", "TestSuspendFreezes", "TestDestroyLeavesNothing", "TestConformance"} {
		if !strings.Contains(log, "--- PASS: "+name+" ") {
			t.Errorf("%s did not pass in the guest", name)
		}
	}
}
