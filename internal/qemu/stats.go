package qemu

import (
	"context"
	"fmt"
	"slices"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/driver/hostinfo"
	"github.com/virtd/virtd/internal/netdev"
	"github.com/virtd/virtd/internal/procfs"
	"github.com/virtd/virtd/internal/qemu/qmp"
	"github.com/virtd/virtd/virt"
)

// Statistics, where each figure comes from:
//
//   - CPU time (cpu.time, cpu.user, cpu.system): the QEMU process's
//     /proc/<pid>/stat, as DomainInfo (a domain has a cgroup only when it
//     asks for limits).
//   - vCPUs: QMP query-cpus-fast gives each vCPU's thread, whose
//     /proc/<pid>/task/<tid>/stat gives its time.
//   - Balloon: QMP query-balloon when the domain has a virtio memballoon,
//     else the current memory of the definition; balloon.rss is the
//     process's resident set. The guest's own memory figures need the
//     balloon's statistics polling, which the driver turns on only when
//     the definition gives <stats period>, and does not read yet.
//   - Interfaces: a bridge interface's tap counters (the kernel's, through
//     netlink), as the guest sees them; a user-mode interface has no host
//     device and no counters, so it is counted in net.count and left out.
//   - Disks: QMP query-blockstats (requests, bytes, times, the highest
//     offset written) and query-block (the image's virtual and actual
//     size), matched by drive id; errors are not counted (-1).

var _ driver.Stats = (*Driver)(nil)

const statsGroups = virt.StatsState | virt.StatsCPUTotal | virt.StatsBalloon |
	virt.StatsVCPU | virt.StatsInterface | virt.StatsBlock

// statsSnapshot is what a domain's statistics are read from, taken under
// its lock; inst is nil when the domain does not run.
type statsSnapshot struct {
	view virt.Domain
	c    *config
	inst *instance
	mon  *qmp.Monitor
}

func statsSnap(d *domain) statsSnapshot {
	s := statsSnapshot{view: d.View(), c: d.Current()}
	if inst := d.Priv.inst; inst != nil && d.State.Active() {
		s.inst, s.mon = inst, inst.mon
	}
	return s
}

// running returns the snapshot of the running domain uuid.
func (drv *Driver) running(ctx context.Context, uuid string) (statsSnapshot, error) {
	d, err := drv.find(ctx, uuid)
	if err != nil {
		return statsSnapshot{}, err
	}
	s := statsSnap(d)
	d.Unlock()
	if s.inst == nil {
		return s, domutil.NotRunning(s.view.Name)
	}
	return s, nil
}

// DomainStats reads the statistics of the domains (see above). A figure
// that cannot be read (QEMU exiting, a tap gone) is left out, as libvirt
// leaves it out.
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
			out = append(out, virt.DomainStats{Domain: s.view, Params: drv.params(ctx, &s, groups)})
		}
	}
	return out, nil
}

func (drv *Driver) params(ctx context.Context, s *statsSnapshot, groups virt.StatsGroups) virt.TypedParams {
	var b domutil.StatsBuilder
	c, active := s.c, s.inst != nil
	if groups&virt.StatsState != 0 {
		b.State(s.view.State, s.view.Reason)
	}
	var proc *procfs.Stat
	if active {
		if st, err := procfs.ReadStat(s.inst.rec.Pid); err == nil && st.StartTime == s.inst.rec.StartTime {
			proc = &st
		}
	}
	if groups&virt.StatsCPUTotal != 0 && proc != nil {
		b.CPU(proc.CPU, proc.User, proc.System)
	}
	if groups&virt.StatsBalloon != 0 {
		cur := c.maxMemKiB
		if active {
			cur = drv.balloon(ctx, s)
		}
		b.Balloon(cur, c.maxMemKiB)
		if proc != nil {
			b.BalloonMemory([]virt.MemoryStat{{Tag: virt.MemoryRSS, Value: proc.RSS / 1024}})
		}
	}
	if groups&virt.StatsVCPU != 0 {
		b.VCPUs(c.vcpus, c.maxVCPUs)
		if active {
			for _, v := range drv.vcpus(ctx, s) {
				b.VCPU(v.index, domutil.VCPURunning, v.time)
			}
		}
	}
	if groups&virt.StatsInterface != 0 && active {
		ifaces := c.dom().Devices.Interfaces
		b.NetCount(len(ifaces))
		for i := range ifaces {
			tap := tapOf(&ifaces[i])
			if tap == "" {
				continue
			}
			if st, err := netdev.GuestCounters(tap); err == nil {
				b.Net(i, tap, st)
			} else {
				drv.log.Debug("no counters for a tap", "domain", c.Name(), "tap", tap, "error", err)
			}
		}
	}
	if groups&virt.StatsBlock != 0 {
		disks := c.dom().Devices.Disks
		b.BlockCount(len(disks))
		var io map[string]*domutil.BlockIO
		if active {
			io = drv.blockIO(ctx, s)
		}
		for i := range disks {
			b.Block(i, disks[i].Target.Dev, diskPath(&disks[i]))
			if f := io[diskID(&disks[i])]; f != nil {
				b.BlockIO(i, f)
			}
		}
	}
	return b.Params
}

// tapOf is the host device of a bridge interface, "" for a user one.
func tapOf(n *libvirtxml.DomainInterface) string {
	if n.Source == nil || n.Source.Bridge == nil || n.Target == nil {
		return ""
	}
	return n.Target.Dev
}

// hasBalloon reports whether the domain has a virtio balloon device.
func (c *config) hasBalloon() bool {
	b := c.dom().Devices.MemBalloon
	return b != nil && b.Model == "virtio"
}

// balloon is a running domain's current memory in KiB: QEMU's balloon,
// or the definition's without a balloon device (or an answer).
func (drv *Driver) balloon(ctx context.Context, s *statsSnapshot) uint64 {
	if s.c.hasBalloon() && s.mon != nil {
		var r struct {
			Actual uint64 `json:"actual"`
		}
		if err := s.mon.Execute(ctx, "query-balloon", nil, &r); err == nil && r.Actual > 0 {
			return r.Actual / 1024
		}
	}
	return s.c.memKiB
}

type vcpuTime struct {
	index int
	time  time.Duration
}

// vcpus reads each vCPU's thread's CPU time.
func (drv *Driver) vcpus(ctx context.Context, s *statsSnapshot) []vcpuTime {
	if s.mon == nil {
		return nil
	}
	var cpus []struct {
		Index    int `json:"cpu-index"`
		ThreadID int `json:"thread-id"`
	}
	if err := s.mon.Execute(ctx, "query-cpus-fast", nil, &cpus); err != nil {
		drv.log.Debug("query-cpus-fast", "domain", s.view.Name, "error", err)
		return nil
	}
	out := make([]vcpuTime, 0, len(cpus))
	for _, c := range cpus {
		st, err := procfs.ReadThreadStat(s.inst.rec.Pid, c.ThreadID)
		if err != nil {
			continue
		}
		out = append(out, vcpuTime{c.Index, st.CPU})
	}
	slices.SortFunc(out, func(a, b vcpuTime) int { return a.index - b.index })
	return out
}

// blockIO reads every disk's figures from QMP, by device id.
func (drv *Driver) blockIO(ctx context.Context, s *statsSnapshot) map[string]*domutil.BlockIO {
	if s.mon == nil {
		return nil
	}
	var stats []struct {
		Device string `json:"device"`
		Stats  struct {
			RdBytes          uint64 `json:"rd_bytes"`
			WrBytes          uint64 `json:"wr_bytes"`
			RdOperations     uint64 `json:"rd_operations"`
			WrOperations     uint64 `json:"wr_operations"`
			FlushOperations  uint64 `json:"flush_operations"`
			RdTotalTimeNs    int64  `json:"rd_total_time_ns"`
			WrTotalTimeNs    int64  `json:"wr_total_time_ns"`
			FlushTotalTimeNs int64  `json:"flush_total_time_ns"`
			WrHighestOffset  uint64 `json:"wr_highest_offset"`
		} `json:"stats"`
	}
	if err := s.mon.Execute(ctx, "query-blockstats", nil, &stats); err != nil {
		drv.log.Debug("query-blockstats", "domain", s.view.Name, "error", err)
		return nil
	}
	out := make(map[string]*domutil.BlockIO, len(stats))
	for _, e := range stats {
		st := e.Stats
		out[e.Device] = &domutil.BlockIO{
			RdReqs: st.RdOperations, RdBytes: st.RdBytes, RdTimes: time.Duration(st.RdTotalTimeNs),
			WrReqs: st.WrOperations, WrBytes: st.WrBytes, WrTimes: time.Duration(st.WrTotalTimeNs),
			FlReqs: st.FlushOperations, FlTimes: time.Duration(st.FlushTotalTimeNs),
			Allocation: st.WrHighestOffset,
		}
	}
	var block []struct {
		Device   string `json:"device"`
		Inserted *struct {
			Image struct {
				VirtualSize uint64 `json:"virtual-size"`
				ActualSize  uint64 `json:"actual-size"`
			} `json:"image"`
		} `json:"inserted"`
	}
	if err := s.mon.Execute(ctx, "query-block", nil, &block); err == nil {
		for _, e := range block {
			if f := out[e.Device]; f != nil && e.Inserted != nil {
				f.Capacity, f.Physical = e.Inserted.Image.VirtualSize, e.Inserted.Image.ActualSize
			}
		}
	}
	// Keyed by the device's id, as diskID names it.
	byID := make(map[string]*domutil.BlockIO, len(out))
	for dev, f := range out {
		if len(dev) > len("drive-") && dev[:len("drive-")] == "drive-" {
			byID[dev[len("drive-"):]] = f
		}
	}
	return byID
}

// BlockStats reads a running domain's disk (its target or source path),
// or the sum of its disks when disk is "", from QMP query-blockstats.
// QEMU counts no errors: Errs is -1.
func (drv *Driver) BlockStats(ctx context.Context, uuid, disk string) (*virt.BlockStats, error) {
	s, err := drv.running(ctx, uuid)
	if err != nil {
		return nil, err
	}
	var ids []string
	disks := s.c.dom().Devices.Disks
	for i := range disks {
		d := &disks[i]
		if disk == "" || disk == d.Target.Dev || disk == diskPath(d) {
			ids = append(ids, diskID(d))
		}
	}
	if len(ids) == 0 && disk != "" {
		return nil, domutil.NoDisk(s.view.Name, disk)
	}
	if s.mon == nil {
		return nil, fmt.Errorf("domain '%s': no QMP connection to its QEMU: %w", s.view.Name, virt.ErrUnavailable)
	}
	io := drv.blockIO(ctx, &s)
	if io == nil && len(ids) > 0 {
		return nil, fmt.Errorf("domain '%s': QEMU did not give its block statistics: %w", s.view.Name, virt.ErrUnavailable)
	}
	out := &virt.BlockStats{Errs: -1}
	for _, id := range ids {
		if f := io[id]; f != nil {
			out.RdReq += int64(f.RdReqs)
			out.RdBytes += int64(f.RdBytes)
			out.WrReq += int64(f.WrReqs)
			out.WrBytes += int64(f.WrBytes)
		}
	}
	return out, nil
}

// InterfaceStats reads a running domain's bridge interface (its tap or
// MAC address): the tap's counters, as the guest sees them. A user-mode
// interface has no host device: its counters are not supported.
func (drv *Driver) InterfaceStats(ctx context.Context, uuid, iface string) (*virt.InterfaceStats, error) {
	s, err := drv.running(ctx, uuid)
	if err != nil {
		return nil, err
	}
	ifaces := s.c.dom().Devices.Interfaces
	for i := range ifaces {
		n := &ifaces[i]
		tap := tapOf(n)
		if (iface == "" || iface != tap) && (n.MAC == nil || !domutil.SameMAC(iface, n.MAC.Address)) {
			continue
		}
		if tap == "" {
			return nil, fmt.Errorf("domain '%s': interface %q is user-mode networking, which has no host device to count: %w", s.view.Name, iface, virt.ErrNotSupported)
		}
		return netdev.GuestCounters(tap)
	}
	return nil, domutil.NoInterface(s.view.Name, iface)
}

// MemoryStats reads a running domain's balloon (see balloon) and its
// process's resident set.
func (drv *Driver) MemoryStats(ctx context.Context, uuid string) ([]virt.MemoryStat, error) {
	s, err := drv.running(ctx, uuid)
	if err != nil {
		return nil, err
	}
	out := []virt.MemoryStat{{Tag: virt.MemoryActualBalloon, Value: drv.balloon(ctx, &s)}}
	if st, err := procfs.ReadStat(s.inst.rec.Pid); err == nil && st.StartTime == s.inst.rec.StartTime {
		out = append(out, virt.MemoryStat{Tag: virt.MemoryRSS, Value: st.RSS / 1024})
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

// guestArch is an emulator's architecture in libvirt's words: QEMU's
// i386 is libvirt's i686.
func guestArch(a string) string {
	if a == "i386" {
		return "i686"
	}
	return a
}

// orHost is arch, or the host's when it is "".
func orHost(arch string) string {
	if arch == "" {
		return hostinfo.Arch()
	}
	return arch
}
