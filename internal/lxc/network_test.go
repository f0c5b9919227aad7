package lxc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/virtd/virtd/internal/netdev/netdevtest"
	"github.com/virtd/virtd/virt"
)

// The container joins a bridge: another namespace on that bridge reaches
// it, its host end is on the bridge, and a destroy removes the pair.
// Everything lives in namespaces the test makes: the bridge in one (where
// the driver, and so the controller, run), the peer in another; the
// host's interfaces are not touched.
func TestBridgeNetwork(t *testing.T) {
	rootfs := testRootFS(t)
	brNS, peerNS := netdevtest.NewNS(t), netdevtest.NewNS(t)
	bh, ph := netdevtest.Handle(t, brNS), netdevtest.Handle(t, peerNS)
	br := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
	br.Name = "br0"
	if err := bh.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	if err := bh.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	peer := netlink.NewVeth(netlink.NewLinkAttrs())
	peer.Name, peer.PeerName, peer.PeerNamespace, peer.MasterIndex = "vpeer", "eth0", netlink.NsFd(peerNS), br.Index
	if err := bh.LinkAdd(peer); err != nil {
		t.Fatal(err)
	}
	if err := bh.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	eth0, err := ph.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("10.77.0.1/24")
	if err := ph.AddrAdd(eth0, addr); err != nil {
		t.Fatal(err)
	}
	if err := ph.LinkSetUp(eth0); err != nil {
		t.Fatal(err)
	}

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
	netdevtest.Do(t, brNS, func() { _, startErr = drv.StartDomain(ctx, d.UUID) })
	if startErr != nil {
		t.Fatalf("StartDomain: %v", startErr)
	}
	if addr := waitFile(t, filepath.Join(out, "addr"), 5*time.Second); !strings.Contains(addr, "10.77.0.2/24") {
		t.Errorf("eth0 inside: %s", addr)
	}
	// ping waits up to 10 s for its one answer, pinging each second.
	var pingOut []byte
	netdevtest.Do(t, peerNS, func() {
		pingOut, err = exec.Command(filepath.Join(rootfs, "bin", "busybox"), "ping", "-c", "1", "-w", "10", "10.77.0.2").CombinedOutput()
	})
	if err != nil {
		t.Fatalf("the peer namespace cannot ping the container over the bridge: %v\n%s", err, pingOut)
	}
	veth := "vx" + strings.ReplaceAll(d.UUID, "-", "")[:8] + "0"
	if l, err := bh.LinkByName(veth); err != nil || l.Attrs().MasterIndex != br.Index {
		t.Errorf("host veth %s is not on br0: %v", veth, err)
	}
	if err := drv.DestroyDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := bh.LinkByName(veth); err == nil {
		t.Errorf("veth %s survived the destroy", veth)
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
