package lxc

import (
	"context"
	"fmt"
	"runtime"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/driver/hostinfo"
	"github.com/virtd/virtd/internal/netdev"
	"github.com/virtd/virtd/virt"
)

// Statistics of a container, where each figure comes from:
//
//   - CPU time: its cgroup (cpuacct.usage and cpuacct.stat on cgroup v1,
//     cpu.stat on v2), read by the driver.
//   - Memory: the cgroup's usage is balloon.current (as DomainInfo's
//     memory) and the memory statistics' rss; the limit is
//     balloon.maximum and the actual balloon.
//   - Interfaces: the host end of each veth, whose counters (the
//     kernel's, through netlink) are swapped to be the container's.
//
// A container has no disks and no virtual CPUs of its own: the block and
// vcpu groups are not supported, and block statistics neither.

var (
	_ driver.Stats              = (*Driver)(nil)
	_ driver.DomainCapabilities = (*Driver)(nil)
)

const statsGroups = virt.StatsState | virt.StatsCPUTotal | virt.StatsBalloon | virt.StatsInterface

// statsSnapshot is what a container's statistics are read from, taken
// under its lock; hostIfaces is nil when it does not run.
type statsSnapshot struct {
	view       virt.Domain
	c          *config
	active     bool
	hostIfaces []string
}

func statsSnap(d *domain) statsSnapshot {
	s := statsSnapshot{view: d.View(), c: d.Current()}
	if r := d.Priv.run; r != nil && d.State.Active() {
		s.active = true
		if r.status != nil {
			s.hostIfaces = r.status.HostIfaces
		}
	}
	return s
}

func (drv *Driver) running(ctx context.Context, uuid string) (statsSnapshot, error) {
	var s statsSnapshot
	err := drv.withDomain(ctx, uuid, func(d *domain) error {
		s = statsSnap(d)
		if !s.active {
			return domutil.NotRunning(d.Name())
		}
		return nil
	})
	return s, err
}

// memoryKiB is a running container's memory in use, from its cgroup,
// within 1 KiB and its limit (DomainInfo's memory); ok is false when the
// cgroup cannot be read.
func (drv *Driver) memoryKiB(s *statsSnapshot) (uint64, bool) {
	if drv.hier == nil {
		return 0, false
	}
	b, err := drv.hier.Open(drv.opts.CgroupParent, s.view.UUID).MemoryUsage()
	if err != nil {
		return 0, false
	}
	return min(max((b+1023)/1024, 1), s.c.maxMemKiB), true
}

// DomainStats reads the statistics of the containers (see above).
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
		removed, s := d.Removed(), statsSnap(d)
		d.Unlock()
		if !removed {
			out = append(out, virt.DomainStats{Domain: s.view, Params: drv.params(&s, groups)})
		}
	}
	return out, nil
}

func (drv *Driver) params(s *statsSnapshot, groups virt.StatsGroups) virt.TypedParams {
	var b domutil.StatsBuilder
	if groups&virt.StatsState != 0 {
		b.State(s.view.State, s.view.Reason)
	}
	if groups&virt.StatsCPUTotal != 0 && s.active && drv.hier != nil {
		cg := drv.hier.Open(drv.opts.CgroupParent, s.view.UUID)
		total, err := cg.CPUUsage()
		user, system, serr := cg.CPUSplit()
		if err == nil && serr == nil {
			b.CPU(total, user, system)
		}
	}
	if groups&virt.StatsBalloon != 0 {
		cur := s.c.maxMemKiB
		if s.active {
			cur, _ = drv.memoryKiB(s)
		}
		if cur > 0 {
			b.Balloon(cur, s.c.maxMemKiB)
		}
	}
	if groups&virt.StatsInterface != 0 && s.active {
		b.NetCount(len(s.c.xml.Devices.Interfaces))
		for i, host := range s.hostIfaces {
			if st, err := netdev.GuestCounters(host); err == nil {
				b.Net(i, host, st)
			}
		}
	}
	return b.Params
}

// BlockStats: a container has no disks. A disk named is not the
// container's (an invalid argument, as libvirt's); the sum of its disks
// (disk "") is not counted, its I/O being the host's.
func (drv *Driver) BlockStats(ctx context.Context, uuid, disk string) (*virt.BlockStats, error) {
	s, err := drv.running(ctx, uuid)
	if err != nil {
		return nil, err
	}
	if disk == "" {
		return nil, fmt.Errorf("the lxc driver counts no block I/O of a container: %w", virt.ErrNotSupported)
	}
	return nil, domutil.NoDisk(s.view.Name, disk)
}

// InterfaceStats reads a running container's interface, named by its
// host device (the host end of its veth) or MAC address.
func (drv *Driver) InterfaceStats(ctx context.Context, uuid, iface string) (*virt.InterfaceStats, error) {
	s, err := drv.running(ctx, uuid)
	if err != nil {
		return nil, err
	}
	for i := range s.c.xml.Devices.Interfaces {
		n := &s.c.xml.Devices.Interfaces[i]
		host := ""
		if i < len(s.hostIfaces) {
			host = s.hostIfaces[i]
		}
		if (iface != "" && iface == host) || (n.MAC != nil && domutil.SameMAC(iface, n.MAC.Address)) {
			if host == "" {
				return nil, fmt.Errorf("domain '%s': interface %q has no host device: %w", s.view.Name, iface, virt.ErrInternal)
			}
			return netdev.GuestCounters(host)
		}
	}
	return nil, domutil.NoInterface(s.view.Name, iface)
}

// MemoryStats reads a running container's memory: its limit as the
// actual balloon, and its cgroup's usage as rss.
func (drv *Driver) MemoryStats(ctx context.Context, uuid string) ([]virt.MemoryStat, error) {
	s, err := drv.running(ctx, uuid)
	if err != nil {
		return nil, err
	}
	out := []virt.MemoryStat{{Tag: virt.MemoryActualBalloon, Value: s.c.maxMemKiB}}
	if kib, ok := drv.memoryKiB(&s); ok {
		out = append(out, virt.MemoryStat{Tag: virt.MemoryRSS, Value: kib})
	}
	return out, nil
}

// NodeCPUStats reads the host's CPU times from /proc/stat.
func (drv *Driver) NodeCPUStats(ctx context.Context, cpu int) (*virt.NodeCPUStats, error) {
	return hostinfo.NodeCPUStats(ctx, cpu)
}

// NodeMemoryStats reads the host's memory from /proc.
func (drv *Driver) NodeMemoryStats(ctx context.Context, cell int) (*virt.NodeMemoryStats, error) {
	return hostinfo.NodeMemoryStats(ctx, cell)
}

// DomainCapabilities describes what a container may have: type lxc, on
// the host's architecture, run by the driver executable (the capabilities'
// emulator), with no machine type, as many vCPUs as the host has; no
// disks, graphics, video or host devices.
func (drv *Driver) DomainCapabilities(ctx context.Context, emulator, arch, machine, virtType string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	switch {
	case virtType != "" && virtType != driverName:
		return "", fmt.Errorf("virtualization type %q is not served by the lxc driver (only lxc): %w", virtType, virt.ErrInvalidArgument)
	case emulator != "" && emulator != drv.opts.Executable:
		return "", fmt.Errorf("emulator %q is not the lxc driver's (%s): %w", emulator, drv.opts.Executable, virt.ErrInvalidArgument)
	case arch != "" && arch != hostinfo.Arch():
		return "", fmt.Errorf("architecture %q is not the host's (%s): containers run on the host's: %w", arch, hostinfo.Arch(), virt.ErrInvalidArgument)
	case machine != "":
		return "", fmt.Errorf("machine type %q: containers have none: %w", machine, virt.ErrInvalidArgument)
	}
	no := func() *libvirtxml.DomainCapsDevice { return &libvirtxml.DomainCapsDevice{Supported: "no"} }
	caps := libvirtxml.DomainCaps{
		Path: drv.opts.Executable, Domain: driverName, Arch: hostinfo.Arch(),
		VCPU:    &libvirtxml.DomainCapsVCPU{Max: uint(runtime.NumCPU())},
		OS:      &libvirtxml.DomainCapsOS{Supported: "yes", Loader: &libvirtxml.DomainCapsOSLoader{Supported: "no"}},
		Devices: &libvirtxml.DomainCapsDevices{Disk: no(), Graphics: no(), Video: no(), HostDev: no()},
	}
	s, err := caps.Marshal()
	if err != nil {
		return "", virt.Errorf(virt.ErrInternal, "domain capabilities: %w", err)
	}
	return s, nil
}
