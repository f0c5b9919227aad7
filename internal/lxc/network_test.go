package lxc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/virtd/virtd/virt"
)

// testNetns makes a network namespace, deleted when t ends.
func testNetns(t *testing.T, name string) {
	t.Helper()
	runCmd(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	runCmd(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// inNetns runs fn on a thread in the named network namespace; the thread
// is thrown away afterwards. Processes fn starts inherit the namespace.
func inNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		f, err := os.Open(filepath.Join("/run/netns", name))
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBridgeNetwork(t *testing.T) {
	rootfs := testRootFS(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	sfx := hex.EncodeToString(b[:])
	brNS, peerNS := "vlxc-br-"+sfx, "vlxc-pe-"+sfx
	// Everything lives in namespaces the test makes: the bridge in one,
	// a peer on that bridge in another; the host's interfaces are not
	// touched.
	testNetns(t, brNS)
	testNetns(t, peerNS)
	runCmd(t, "ip", "-n", brNS, "link", "add", "br0", "type", "bridge")
	runCmd(t, "ip", "-n", brNS, "link", "set", "br0", "up")
	runCmd(t, "ip", "-n", brNS, "link", "add", "vpeer", "type", "veth", "peer", "name", "eth0", "netns", peerNS)
	runCmd(t, "ip", "-n", brNS, "link", "set", "vpeer", "master", "br0", "up")
	runCmd(t, "ip", "-n", peerNS, "addr", "add", "10.77.0.1/24", "dev", "eth0")
	runCmd(t, "ip", "-n", peerNS, "link", "set", "eth0", "up")

	drv, _ := newTestDriver(t)
	ctx := context.Background()
	out := outDir(t)
	d, err := drv.DefineDomain(ctx, domainXML(rootfs, "ct-net", domOpts{
		init: shInit("ip -o addr show dev eth0 > /out/addr"),
		devices: bindXML(out, "/out", false) + `
    <interface type='bridge'><source bridge='br0'/><ip address='10.77.0.2' prefix='24'/><guest dev='eth0'/></interface>`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	var startErr error
	inNetns(t, brNS, func() { _, startErr = drv.StartDomain(ctx, d.UUID) })
	if startErr != nil {
		t.Fatalf("StartDomain: %v", startErr)
	}
	if addr := waitFile(t, filepath.Join(out, "addr"), 5*time.Second); !strings.Contains(addr, "10.77.0.2/24") {
		t.Errorf("eth0 inside: %s", addr)
	}
	var pingOut []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		pingOut, err = exec.Command("ip", "netns", "exec", peerNS, filepath.Join(rootfs, "bin", "busybox"), "ping", "-c", "1", "-W", "1", "10.77.0.2").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the peer namespace cannot ping the container over the bridge: %v\n%s", err, pingOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
	veth := "vx" + strings.ReplaceAll(d.UUID, "-", "")[:8] + "0"
	if o := runCmd(t, "ip", "-n", brNS, "-o", "link", "show", "master", "br0"); !strings.Contains(o, veth) {
		t.Errorf("host veth %s is not on br0:\n%s", veth, o)
	}
	if err := drv.DestroyDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	if o := runCmd(t, "ip", "-n", brNS, "-o", "link", "show"); strings.Contains(o, veth) {
		t.Errorf("veth %s survived the destroy:\n%s", veth, o)
	}
}

// assertNothingLeft checks that a failed start left no trace.
func assertNothingLeft(t *testing.T, td testDirs, uuid string) {
	t.Helper()
	if left, _ := filepath.Glob(filepath.Join(td.root, "run", uuid+"*")); len(left) > 0 {
		t.Errorf("run files left behind: %v", left)
	}
	if cg := testCgroup(t, uuid); cg.Exists() {
		t.Errorf("cgroup left behind: %v", cg.Dirs())
	}
	if _, err := os.Stat("/sys/class/net/vx" + strings.ReplaceAll(uuid, "-", "")[:8] + "0"); err == nil {
		t.Errorf("veth left behind")
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), uuid) {
			t.Errorf("process left behind: %s: %q", p, b)
		}
	}
}

func TestBadInput(t *testing.T) {
	rootfs := testRootFS(t)
	drv, td := newTestDriver(t)
	ctx := context.Background()
	startFails := []struct {
		name, doc string
		kind      error
		want      []string
	}{
		{"missing-rootfs", domainXML("/nonexistent/virtd-rootfs", "ct-bad-rootfs", domOpts{}),
			virt.ErrInvalidArgument, []string{"root filesystem", "/nonexistent/virtd-rootfs"}},
		{"missing-init", domainXML(rootfs, "ct-bad-init", domOpts{init: []string{"/sbin/no-such-init"}}),
			virt.ErrInvalidArgument, []string{"init", "/sbin/no-such-init", "not found"}},
		{"unknown-bridge", domainXML(rootfs, "ct-bad-bridge", domOpts{
			devices: "\n    <interface type='bridge'><source bridge='virtd-nobr0'/></interface>"}),
			virt.ErrInvalidArgument, []string{"bridge", "virtd-nobr0", "does not exist"}},
	}
	for _, tc := range startFails {
		t.Run(tc.name, func(t *testing.T) {
			d, err := drv.DefineDomain(ctx, tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			_, err = drv.StartDomain(ctx, d.UUID)
			if err == nil || !errors.Is(err, tc.kind) {
				t.Fatalf("StartDomain = %v, want an error of kind %v", err, tc.kind)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			st, _, _ := drv.DomainState(ctx, d.UUID)
			if st != virt.StateShutoff {
				t.Errorf("after a failed start the domain is %s", st)
			}
			if n, _ := drv.RunningGuests(ctx); n != 0 {
				t.Errorf("RunningGuests = %d after a failed start", n)
			}
			assertNothingLeft(t, td, d.UUID)
		})
	}
	defineFails := []struct {
		name, top, devices string
		kind               error
		want               string
	}{
		{"idmap-no-gid", `<idmap><uid start='0' target='100000' count='65536'/></idmap>`, "", virt.ErrInvalidArgument, "gid"},
		{"idmap-no-root", `<idmap><uid start='1' target='100000' count='10'/><gid start='0' target='100000' count='10'/></idmap>`, "", virt.ErrInvalidArgument, "does not map uid 0"},
		{"idmap-overlap", `<idmap><uid start='0' target='100000' count='100'/><uid start='50' target='300000' count='100'/><gid start='0' target='100000' count='10'/></idmap>`, "", virt.ErrInvalidArgument, "overlap"},
		{"idmap-count-zero", `<idmap><uid start='0' target='100000' count='0'/><gid start='0' target='100000' count='10'/></idmap>`, "", virt.ErrInvalidArgument, "count 0"},
		{"features", `<features><acpi/></features>`, "", virt.ErrNotSupported, "<features>"},
		{"disk", "", `<disk type='file' device='disk'><source file='/x.img'/><target dev='sda'/></disk>`, virt.ErrNotSupported, "domain/devices/disk: <devices/disk> is not supported by the lxc driver"},
		{"network-interface", "", `<interface type='network'><source network='default'/></interface>`, virt.ErrNotSupported, "<devices/interface type='network'>"},
		{"on-crash-preserve", `<on_crash>preserve</on_crash>`, "", virt.ErrNotSupported, "on_crash"},
	}
	for _, tc := range defineFails {
		t.Run(tc.name, func(t *testing.T) {
			doc := domainXML(rootfs, "ct-bad-"+tc.name, domOpts{top: "\n  " + tc.top, devices: "\n    " + tc.devices})
			_, err := drv.DefineDomain(ctx, doc)
			if err == nil || !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DefineDomain = %v, want an error of kind %v naming %q", err, tc.kind, tc.want)
			}
			if _, err := drv.LookupDomain(ctx, virt.ByName("ct-bad-"+tc.name)); !errors.Is(err, virt.ErrNotFound) {
				t.Errorf("a refused definition is known: %v", err)
			}
		})
	}
	_ = fmt.Sprint()
}
