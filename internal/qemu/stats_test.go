package qemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/internal/netdev/netdevtest"
	"github.com/virtd/virtd/virt"
)

// TestStatsOfARealGuest reads the statistics of a QEMU guest with a disk,
// a user-mode and a bridge interface and a balloon. It runs in a network
// namespace of its own (the tap, and QEMU, are made there). The guest
// boots no kernel: SeaBIOS reads the disk's first sector looking for one,
// which block stats count.
func TestStatsOfARealGuest(t *testing.T) {
	needQEMU(t)
	drv, dir := newTestDriver(t)
	ctx := ctxT(t)
	ns := netdevtest.NewNS(t)
	netdevtest.AddBridge(t, netdevtest.Handle(t, ns), "br0")
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	d := define(t, drv, interfacesXML("stats", fmt.Sprintf(`
<disk type='file' device='disk'><source file='%s'/><target dev='vda' bus='virtio'/></disk>
<interface type='user'><mac address='52:54:00:00:00:01'/></interface>
<interface type='bridge'><mac address='52:54:00:00:00:02'/><source bridge='br0'/></interface>
<memballoon model='virtio'/>`, img)))
	var err error
	netdevtest.Do(t, ns, func() { _, err = drv.StartDomain(ctx, d.UUID) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netdevtest.Do(t, ns, func() { _ = drv.DestroyDomain(ctx, d.UUID) }) })

	var recs []virt.DomainStats
	deadline := time.Now().Add(30 * time.Second)
	for {
		netdevtest.Do(t, ns, func() { recs, err = drv.DomainStats(ctx, []string{d.UUID}, 0, virt.StatsEnforce) })
		if err != nil || len(recs) != 1 {
			t.Fatalf("DomainStats = %v, %v", recs, err)
		}
		if v, _ := recs[0].Params.Get("block.0.rd.reqs"); v != nil && v.(uint64) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SeaBIOS never read the disk: %v", recs[0].Params)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ps := recs[0].Params
	for name, want := range map[string]any{
		"state.state": int32(virt.StateRunning), "vcpu.current": uint32(1), "vcpu.maximum": uint32(1), "vcpu.0.state": int32(1),
		"balloon.current": uint64(65536), "balloon.maximum": uint64(65536),
		"net.count": uint32(2), "net.1.name": "vnet0",
		"block.count": uint32(1), "block.0.name": "vda", "block.0.path": img, "block.0.capacity": uint64(16 << 20),
	} {
		if got, _ := ps.Get(name); got != want {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	for _, name := range []string{"cpu.time", "cpu.user", "cpu.system", "vcpu.0.time", "balloon.rss", "net.1.rx.bytes", "net.1.tx.drop", "block.0.rd.bytes", "block.0.rd.times", "block.0.allocation"} {
		if _, ok := ps.Get(name); !ok {
			t.Errorf("no %s in %v", name, ps)
		}
	}
	if v, ok := ps.Get("net.0.name"); ok {
		t.Errorf("the user-mode interface has a name, %v: it has no host device", v)
	}

	b, err := drv.BlockStats(ctx, d.UUID, img)
	if err != nil || b.RdReq < 1 || b.RdBytes < 512 || b.Errs != -1 {
		t.Errorf("BlockStats(by path) = %+v, %v", b, err)
	}
	var n *virt.InterfaceStats
	netdevtest.Do(t, ns, func() { n, err = drv.InterfaceStats(ctx, d.UUID, "52:54:00:00:00:02") })
	if err != nil || n.RxBytes < 0 {
		t.Errorf("InterfaceStats(bridge MAC) = %+v, %v", n, err)
	}
	if _, err := drv.InterfaceStats(ctx, d.UUID, "52:54:00:00:00:01"); !errors.Is(err, virt.ErrNotSupported) {
		t.Errorf("InterfaceStats of the user-mode interface: %v", err)
	}
	ms, err := drv.MemoryStats(ctx, d.UUID)
	if err != nil || len(ms) != 2 || ms[0] != (virt.MemoryStat{Tag: virt.MemoryActualBalloon, Value: 65536}) || ms[1].Tag != virt.MemoryRSS || ms[1].Value == 0 {
		t.Errorf("MemoryStats = %v, %v", ms, err)
	}
}

func TestDomainCapabilities(t *testing.T) {
	needQEMU(t)
	drv, _ := newTestDriver(t)
	ctx := ctxT(t)
	doc, err := drv.DomainCapabilities(ctx, "", "x86_64", "pc", "qemu")
	if err != nil {
		t.Fatal(err)
	}
	var caps libvirtxml.DomainCaps
	if err := caps.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(caps.Path, "/qemu-system-x86_64") || caps.Domain != "qemu" || caps.Arch != "x86_64" ||
		!strings.HasPrefix(caps.Machine, "pc-i440fx-") || caps.VCPU.Max != 255 {
		t.Errorf("domain capabilities of pc:\n%s", doc)
	}
	if d := caps.Devices; d.Disk.Supported != "yes" || d.Video.Supported != "yes" || d.HostDev.Supported != "no" ||
		fmt.Sprint(d.Disk.Enums) != "[{diskDevice [disk cdrom]} {bus [ide sata scsi virtio]}]" || fmt.Sprint(d.Graphics.Enums) != "[{type [spice vnc]}]" {
		t.Errorf("devices:\n%s", doc)
	}
	for _, tc := range []struct{ emulator, arch, machine, virtType string }{
		{"/usr/bin/true", "", "", ""},
		{"", "aarch64_nope", "", ""},
		{"", "", "no-such-machine", "qemu"},
		{"", "", "", "xen"},
	} {
		if _, err := drv.DomainCapabilities(ctx, tc.emulator, tc.arch, tc.machine, tc.virtType); !errors.Is(err, virt.ErrInvalidArgument) {
			t.Errorf("DomainCapabilities(%+v): %v, want an invalid argument", tc, err)
		}
	}
}
