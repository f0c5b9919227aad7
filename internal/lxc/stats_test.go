package lxc

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/internal/netdev/netdevtest"
	"github.com/virtd/virtd/virt"
)

// TestStatsOfAContainer reads the statistics of a container on a bridge,
// which a peer namespace pings: the container received the ping and sent
// the reply. As in TestBridgeNetwork, everything lives in namespaces the
// test makes.
func TestStatsOfAContainer(t *testing.T) {
	rootfs := testRootFS(t)
	brNS, peerNS := netdevtest.NewNS(t), netdevtest.NewNS(t)
	bh, ph := netdevtest.Handle(t, brNS), netdevtest.Handle(t, peerNS)
	br := netdevtest.AddBridge(t, bh, "br0")
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
	addr, _ := netlink.ParseAddr("10.78.0.1/24")
	if err := ph.AddrAdd(eth0, addr); err != nil {
		t.Fatal(err)
	}
	if err := ph.LinkSetUp(eth0); err != nil {
		t.Fatal(err)
	}

	drv, _ := newTestDriver(t)
	ctx := context.Background()
	d, err := drv.DefineDomain(ctx, domainXML(rootfs, "ct-stats", domOpts{devices: `
    <interface type='bridge'><mac address='52:54:00:00:00:0a'/><source bridge='br0'/><ip address='10.78.0.2' prefix='24'/><guest dev='eth0'/></interface>`}))
	if err != nil {
		t.Fatal(err)
	}
	netdevtest.Do(t, brNS, func() { _, err = drv.StartDomain(ctx, d.UUID) })
	if err != nil {
		t.Fatalf("StartDomain: %v", err)
	}
	var out []byte
	netdevtest.Do(t, peerNS, func() {
		out, err = exec.Command(filepath.Join(rootfs, "bin", "busybox"), "ping", "-c", "1", "-w", "10", "10.78.0.2").CombinedOutput()
	})
	if err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}

	var recs []virt.DomainStats
	netdevtest.Do(t, brNS, func() { recs, err = drv.DomainStats(ctx, []string{d.UUID}, 0, 0) })
	if err != nil || len(recs) != 1 {
		t.Fatalf("DomainStats = %v, %v", recs, err)
	}
	ps := recs[0].Params
	veth := "vx" + strings.ReplaceAll(d.UUID, "-", "")[:8] + "0"
	for name, want := range map[string]any{
		"state.state": int32(virt.StateRunning), "balloon.maximum": uint64(65536),
		"net.count": uint32(1), "net.0.name": veth,
	} {
		if got, _ := ps.Get(name); got != want {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	for _, name := range []string{"cpu.time", "balloon.current", "net.0.rx.pkts", "net.0.tx.pkts"} {
		if v, ok := ps.Get(name); !ok || v.(uint64) == 0 {
			t.Errorf("%s = %v, want a figure above 0", name, v)
		}
	}
	// cgroup v1 splits CPU time in ticks of 10 ms, which a fresh
	// container may not have used yet.
	for _, name := range []string{"cpu.user", "cpu.system"} {
		if _, ok := ps.Get(name); !ok {
			t.Errorf("no %s", name)
		}
	}
	for _, prefix := range []string{"vcpu.", "block."} {
		for _, p := range ps {
			if strings.HasPrefix(p.Name, prefix) {
				t.Errorf("a container has %s", p.Name)
			}
		}
	}
	var n *virt.InterfaceStats
	netdevtest.Do(t, brNS, func() { n, err = drv.InterfaceStats(ctx, d.UUID, "52:54:00:00:00:0A") })
	if err != nil || n.RxPackets < 1 || n.TxPackets < 1 {
		t.Errorf("InterfaceStats(MAC) = %+v, %v; want the ping in and the reply out", n, err)
	}
	ms, err := drv.MemoryStats(ctx, d.UUID)
	if err != nil || len(ms) != 2 || ms[0] != (virt.MemoryStat{Tag: virt.MemoryActualBalloon, Value: 65536}) || ms[1].Value == 0 {
		t.Errorf("MemoryStats = %v, %v", ms, err)
	}
	if _, err := drv.BlockStats(ctx, d.UUID, ""); !errors.Is(err, virt.ErrNotSupported) {
		t.Errorf("BlockStats of every disk: %v", err)
	}
	if _, err := drv.BlockStats(ctx, d.UUID, "vda"); !errors.Is(err, virt.ErrInvalidArgument) {
		t.Errorf("BlockStats(vda): %v", err)
	}
	if _, err := drv.DomainStats(ctx, nil, virt.StatsBlock, virt.StatsEnforce); !errors.Is(err, virt.ErrNotSupported) {
		t.Errorf("the block group, enforced: %v", err)
	}

	doc, err := drv.DomainCapabilities(ctx, "", "", "", "")
	var caps libvirtxml.DomainCaps
	if err != nil || caps.Unmarshal(doc) != nil || caps.Path != drv.opts.Executable || caps.Domain != "lxc" || caps.Devices.Disk.Supported != "no" {
		t.Errorf("DomainCapabilities = %s, %v", doc, err)
	}
}
