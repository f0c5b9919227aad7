package testdriver

import (
	"context"
	"fmt"
	"slices"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/virt"
)

// The test driver's statistics are made up, as libvirt's test driver's
// are, but they move the way real ones do: every figure of a domain is
// derived from the time it has spent running since it started (its CPU
// time, t), and the host's from the time since the driver started.
//
//   - cpu.time is t; cpu.user three quarters of it, cpu.system the rest.
//     A paused domain's figures stand still; a stopped one has none.
//   - Each vCPU is running and has spent t / vCPUs.
//   - Each disk (named by its target) has read 100 requests of 4 KiB a
//     second of t and written 50, each read taking 100 µs, each write
//     200 µs, and flushed once a second (1 ms each); no errors.
//   - Each interface that has a host device (<target dev>) has received
//     200 packets of 1500 bytes a second of t and sent 100 of 1000 bytes;
//     no errors, no drops.
//   - Memory: the balloon is at the current memory; half of it is resident
//     (rss), a quarter unused.
//   - The host's 16 CPUs have each spent, since the driver started, a
//     quarter of the time in user space, an eighth in the kernel, a
//     sixty-fourth waiting for I/O, and the rest idle. Its memory is the 3
//     GiB of NodeInfo, a third of it free, 64 MiB buffers and 512 MiB
//     cache; each of its 2 NUMA cells has half the total and half the free
//     memory.

var (
	_ driver.Stats              = (*Driver)(nil)
	_ driver.DomainCapabilities = (*Driver)(nil)
)

// statsGroups are the groups the test driver has.
const statsGroups = virt.StatsState | virt.StatsCPUTotal | virt.StatsBalloon |
	virt.StatsVCPU | virt.StatsInterface | virt.StatsBlock

// snapshot is what the statistics of one domain are made of, read under
// its lock.
type snapshot struct {
	view    virt.Domain
	c       *config
	running bool // active: has figures
	cpu     time.Duration
}

func snap(d *domain) snapshot {
	s := snapshot{view: d.View(), c: d.Current(), running: d.State.Active(), cpu: d.Priv.cpuTime}
	if d.State == virt.StateRunning {
		s.cpu += time.Since(d.Priv.runningSince)
	}
	return s
}

// running returns the snapshot of the running domain uuid.
func (drv *Driver) running(ctx context.Context, uuid string) (snapshot, error) {
	var s snapshot
	err := drv.withDomain(ctx, uuid, func(d *domain) error {
		s = snap(d)
		if !s.running {
			return domutil.NotRunning(d.Name())
		}
		return nil
	})
	return s, err
}

// DomainStats returns the made-up figures of the domains (see above).
func (drv *Driver) DomainStats(ctx context.Context, uuids []string, groups virt.StatsGroups, flags virt.StatsFlags) ([]virt.DomainStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	groups, err := domutil.StatsGroups(groups, statsGroups, flags)
	if err != nil {
		return nil, err
	}
	objs, err := drv.doms.Select(uuids, flags.List())
	if err != nil {
		return nil, err
	}
	out := make([]virt.DomainStats, 0, len(objs))
	for _, d := range objs {
		d.Lock()
		removed, s := d.Removed(), snap(d)
		d.Unlock()
		if !removed {
			out = append(out, virt.DomainStats{Domain: s.view, Params: s.params(groups)})
		}
	}
	return out, nil
}

func (s *snapshot) params(groups virt.StatsGroups) virt.TypedParams {
	var b domutil.StatsBuilder
	x, t := s.c.xml, s.cpu
	if groups&virt.StatsState != 0 {
		b.State(s.view.State, s.view.Reason)
	}
	if groups&virt.StatsCPUTotal != 0 && s.running {
		user := t * 3 / 4
		b.CPU(t, user, t-user)
	}
	if groups&virt.StatsBalloon != 0 {
		cur := s.c.maxMemKiB
		if s.running {
			cur = s.c.memKiB
		}
		b.Balloon(cur, s.c.maxMemKiB)
		if s.running {
			b.BalloonMemory(s.memory())
		}
	}
	if groups&virt.StatsVCPU != 0 {
		maxVCPUs := uint32(x.VCPU.Value)
		b.VCPUs(s.c.vcpus, maxVCPUs)
		if s.running {
			for i := range s.c.vcpus {
				b.VCPU(int(i), domutil.VCPURunning, t/time.Duration(s.c.vcpus))
			}
		}
	}
	if groups&virt.StatsInterface != 0 && s.running {
		ifaces := s.c.interfaces()
		b.NetCount(len(ifaces))
		for i := range ifaces {
			if name := ifaceName(&ifaces[i]); name != "" {
				b.Net(i, name, ifaceFigures(t))
			}
		}
	}
	if groups&virt.StatsBlock != 0 {
		disks := s.c.disks()
		b.BlockCount(len(disks))
		for i := range disks {
			b.Block(i, diskName(&disks[i]), diskPath(&disks[i]))
			if s.running {
				b.BlockIO(i, diskFigures(t))
			}
		}
	}
	return b.Params
}

// diskFigures are the figures of one disk after t of running.
func diskFigures(t time.Duration) *domutil.BlockIO {
	rd, wr, fl := uint64(t/(10*time.Millisecond)), uint64(t/(20*time.Millisecond)), uint64(t/time.Second)
	return &domutil.BlockIO{
		RdReqs: rd, RdBytes: 4096 * rd, RdTimes: time.Duration(rd) * 100 * time.Microsecond,
		WrReqs: wr, WrBytes: 4096 * wr, WrTimes: time.Duration(wr) * 200 * time.Microsecond,
		FlReqs: fl, FlTimes: time.Duration(fl) * time.Millisecond,
		Allocation: 4096 * wr,
	}
}

// ifaceFigures are the figures of one interface after t of running, as
// the guest sees them.
func ifaceFigures(t time.Duration) *virt.InterfaceStats {
	rx, tx := int64(t/(5*time.Millisecond)), int64(t/(10*time.Millisecond))
	return &virt.InterfaceStats{
		RxBytes: 1500 * rx, RxPackets: rx,
		TxBytes: 1000 * tx, TxPackets: tx,
	}
}

// memory are the memory figures of a running domain, by tag.
func (s *snapshot) memory() []virt.MemoryStat {
	cur := s.c.memKiB
	return []virt.MemoryStat{
		{Tag: virt.MemoryUnused, Value: cur / 4},
		{Tag: virt.MemoryAvailable, Value: cur},
		{Tag: virt.MemoryActualBalloon, Value: cur},
		{Tag: virt.MemoryRSS, Value: cur / 2},
	}
}

func (c *config) disks() []libvirtxml.DomainDisk {
	if c.xml.Devices == nil {
		return nil
	}
	return c.xml.Devices.Disks
}

func (c *config) interfaces() []libvirtxml.DomainInterface {
	if c.xml.Devices == nil {
		return nil
	}
	return c.xml.Devices.Interfaces
}

func diskName(d *libvirtxml.DomainDisk) string {
	if d.Target == nil {
		return ""
	}
	return d.Target.Dev
}

func diskPath(d *libvirtxml.DomainDisk) string {
	if s := d.Source; s != nil {
		switch {
		case s.File != nil:
			return s.File.File
		case s.Block != nil:
			return s.Block.Dev
		}
	}
	return ""
}

// ifaceName is the host device of an interface, "" for none.
func ifaceName(n *libvirtxml.DomainInterface) string {
	if n.Target == nil {
		return ""
	}
	return n.Target.Dev
}

// BlockStats returns the made-up figures of a running domain's disk, or of
// all its disks summed when disk is "".
func (drv *Driver) BlockStats(ctx context.Context, uuid, disk string) (*virt.BlockStats, error) {
	s, err := drv.running(ctx, uuid)
	if err != nil {
		return nil, err
	}
	n := 0
	disks := s.c.disks()
	for i := range disks {
		d := &disks[i]
		if disk == "" || disk == diskName(d) || (disk == diskPath(d) && disk != "") {
			n++
		}
	}
	if n == 0 && disk != "" {
		return nil, domutil.NoDisk(s.view.Name, disk)
	}
	f := diskFigures(s.cpu)
	k := uint64(n)
	return &virt.BlockStats{
		RdReq: int64(k * f.RdReqs), RdBytes: int64(k * f.RdBytes),
		WrReq: int64(k * f.WrReqs), WrBytes: int64(k * f.WrBytes),
	}, nil
}

// InterfaceStats returns the made-up figures of a running domain's
// interface, named by its host device or MAC address.
func (drv *Driver) InterfaceStats(ctx context.Context, uuid, iface string) (*virt.InterfaceStats, error) {
	s, err := drv.running(ctx, uuid)
	if err != nil {
		return nil, err
	}
	ifaces := s.c.interfaces()
	for i := range ifaces {
		n := &ifaces[i]
		if (iface != "" && iface == ifaceName(n)) || (n.MAC != nil && domutil.SameMAC(iface, n.MAC.Address)) {
			return ifaceFigures(s.cpu), nil
		}
	}
	return nil, domutil.NoInterface(s.view.Name, iface)
}

// MemoryStats returns the made-up memory figures of a running domain.
func (drv *Driver) MemoryStats(ctx context.Context, uuid string) ([]virt.MemoryStat, error) {
	s, err := drv.running(ctx, uuid)
	if err != nil {
		return nil, err
	}
	return s.memory(), nil
}

// NodeCPUStats returns the made-up times of the node's 16 CPUs (see above).
func (drv *Driver) NodeCPUStats(ctx context.Context, cpu int) (*virt.NodeCPUStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := time.Duration(nodeInfo.CPUs)
	switch {
	case cpu == virt.NodeCPUStatsAll:
	case cpu >= 0 && cpu < int(nodeInfo.CPUs):
		n = 1
	default:
		return nil, fmt.Errorf("CPU number %d: the test node has CPUs 0 to %d, or -1 for all: %w", cpu, nodeInfo.CPUs-1, virt.ErrInvalidArgument)
	}
	up := time.Since(drv.started)
	user, kernel, iowait := up/4, up/8, up/64
	return &virt.NodeCPUStats{User: n * user, Kernel: n * kernel, IOWait: n * iowait, Idle: n * (up - user - kernel - iowait)}, nil
}

// NodeMemoryStats returns the made-up memory of the node, or of one of its
// 2 NUMA cells (see above).
func (drv *Driver) NodeMemoryStats(ctx context.Context, cell int) (*virt.NodeMemoryStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	total := nodeInfo.MemoryKiB
	all := virt.NodeMemoryStats{TotalKiB: total, FreeKiB: total / 3, BuffersKiB: 64 * 1024, CachedKiB: 512 * 1024}
	switch {
	case cell == virt.NodeMemoryStatsAll:
		return &all, nil
	case cell >= 0 && cell < int(nodeInfo.Nodes):
		return &virt.NodeMemoryStats{TotalKiB: all.TotalKiB / uint64(nodeInfo.Nodes), FreeKiB: all.FreeKiB / uint64(nodeInfo.Nodes)}, nil
	}
	return nil, fmt.Errorf("cell number %d is out of range: the test node has cells 0 to %d, or -1 for all: %w", cell, nodeInfo.Nodes-1, virt.ErrInvalidArgument)
}

// testEmulator is the emulator the capabilities name; nothing runs it.
const testEmulator = "/usr/bin/test-hv"

// DomainCapabilities describes what a test domain may have: the test
// driver keeps any definition libvirtxml reads and runs none, so the
// devices listed are the usual ones of libvirt's schema. arch is one of
// the capabilities' guest architectures (i686 by default); there is no
// machine type.
func (drv *Driver) DomainCapabilities(ctx context.Context, emulator, arch, machine, virtType string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	switch {
	case virtType != "" && virtType != domainType:
		return "", fmt.Errorf("virtualization type %q is not served by the test driver (only %q): %w", virtType, domainType, virt.ErrInvalidArgument)
	case emulator != "" && emulator != testEmulator:
		return "", fmt.Errorf("emulator %q is not the test driver's (%s): %w", emulator, testEmulator, virt.ErrInvalidArgument)
	case arch != "" && !slices.Contains(guestArches, arch):
		return "", fmt.Errorf("architecture %q is not supported by the test driver (only %v): %w", arch, guestArches, virt.ErrInvalidArgument)
	case machine != "":
		return "", fmt.Errorf("machine type %q: the test driver has no machine types: %w", machine, virt.ErrInvalidArgument)
	}
	if arch == "" {
		arch = guestArches[0]
	}
	enum := func(name string, values ...string) libvirtxml.DomainCapsEnum {
		return libvirtxml.DomainCapsEnum{Name: name, Values: values}
	}
	caps := libvirtxml.DomainCaps{
		Path: testEmulator, Domain: domainType, Arch: arch,
		VCPU: &libvirtxml.DomainCapsVCPU{Max: 255},
		OS:   &libvirtxml.DomainCapsOS{Supported: "yes", Loader: &libvirtxml.DomainCapsOSLoader{Supported: "no"}},
		Devices: &libvirtxml.DomainCapsDevices{
			Disk: &libvirtxml.DomainCapsDevice{Supported: "yes", Enums: []libvirtxml.DomainCapsEnum{
				enum("diskDevice", "disk", "cdrom", "floppy", "lun"),
				enum("bus", "ide", "fdc", "scsi", "virtio", "usb", "sata"),
			}},
			Graphics: &libvirtxml.DomainCapsDevice{Supported: "yes", Enums: []libvirtxml.DomainCapsEnum{
				enum("type", "sdl", "vnc", "spice"),
			}},
			Video: &libvirtxml.DomainCapsDevice{Supported: "yes", Enums: []libvirtxml.DomainCapsEnum{
				enum("modelType", "vga", "cirrus", "vmvga", "qxl", "virtio"),
			}},
			HostDev: &libvirtxml.DomainCapsDevice{Supported: "yes", Enums: []libvirtxml.DomainCapsEnum{
				enum("mode", "subsystem"),
				enum("subsysType", "usb", "pci", "scsi"),
			}},
		},
	}
	s, err := caps.Marshal()
	if err != nil {
		return "", virt.Errorf(virt.ErrInternal, "domain capabilities: %w", err)
	}
	return s, nil
}
