package domutil

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/virtd/virtd/virt"
)

// StatsGroups returns the groups a DomainStats call reads, chosen as
// libvirt's drivers choose them: every group the driver has (has) when none
// is asked for; otherwise the groups asked for that the driver has, or,
// with virt.StatsEnforce, an error of kind virt.ErrNotSupported that names
// the bits it has not. Flags that libvirt does not define for the call are
// an invalid argument.
func StatsGroups(asked, has virt.StatsGroups, flags virt.StatsFlags) (virt.StatsGroups, error) {
	if u := flags.Unknown(); u != 0 {
		return 0, fmt.Errorf("unsupported domain stats flags %#x: %w", uint32(u), virt.ErrInvalidArgument)
	}
	if asked == 0 {
		return has, nil
	}
	if missing := asked &^ has; missing != 0 && flags&virt.StatsEnforce != 0 {
		return 0, fmt.Errorf("stats groups %#x are not supported by this driver: %w", uint32(missing), virt.ErrNotSupported)
	}
	return asked & has, nil
}

// StatsBuilder writes the parameters of one DomainStats record under
// libvirt's names and types, so that every driver spells them alike.
// Figures a driver does not have are left out, as libvirt leaves them out.
type StatsBuilder struct {
	Params virt.TypedParams
}

func (b *StatsBuilder) add(name string, v any) {
	b.Params = append(b.Params, virt.TypedParam{Name: name, Value: v})
}

// State writes state.state and state.reason.
func (b *StatsBuilder) State(st virt.State, reason int32) {
	b.add("state.state", int32(st))
	b.add("state.reason", reason)
}

// CPU writes cpu.time, cpu.user and cpu.system.
func (b *StatsBuilder) CPU(total, user, system time.Duration) {
	b.add("cpu.time", nanos(total))
	b.add("cpu.user", nanos(user))
	b.add("cpu.system", nanos(system))
}

// CPUTime writes cpu.time alone, for a hypervisor that does not split it
// into user and system time.
func (b *StatsBuilder) CPUTime(total time.Duration) {
	b.add("cpu.time", nanos(total))
}

// Balloon writes balloon.current and balloon.maximum, in KiB.
func (b *StatsBuilder) Balloon(currentKiB, maximumKiB uint64) {
	b.add("balloon.current", currentKiB)
	b.add("balloon.maximum", maximumKiB)
}

// balloonNames are the names of the memory statistics that the balloon
// group carries (libvirt's; the actual balloon is balloon.current).
var balloonNames = map[virt.MemoryStatTag]string{
	virt.MemorySwapIn: "swap_in", virt.MemorySwapOut: "swap_out",
	virt.MemoryMajorFault: "major_fault", virt.MemoryMinorFault: "minor_fault",
	virt.MemoryUnused: "unused", virt.MemoryAvailable: "available",
	virt.MemoryUsable: "usable", virt.MemoryLastUpdate: "last-update",
	virt.MemoryDiskCaches: "disk_caches", virt.MemoryHugetlbPgalloc: "hugetlb_pgalloc",
	virt.MemoryHugetlbPgfail: "hugetlb_pgfail", virt.MemoryRSS: "rss",
}

// BalloonMemory writes balloon.<name> for each memory statistic (a running
// domain's), as libvirt names them ("balloon.rss", "balloon.last-update").
func (b *StatsBuilder) BalloonMemory(stats []virt.MemoryStat) {
	for _, s := range stats {
		if name, ok := balloonNames[s.Tag]; ok {
			b.add("balloon."+name, s.Value)
		}
	}
}

// VCPUs writes vcpu.current and vcpu.maximum.
func (b *StatsBuilder) VCPUs(current, maximum uint32) {
	b.add("vcpu.current", current)
	b.add("vcpu.maximum", maximum)
}

// VCPU states, libvirt's virVcpuState.
const (
	VCPUOffline int32 = 0
	VCPURunning int32 = 1
	VCPUBlocked int32 = 2
)

// VCPU writes vcpu.<n>.state and vcpu.<n>.time.
func (b *StatsBuilder) VCPU(n int, state int32, t time.Duration) {
	b.add(fmt.Sprintf("vcpu.%d.state", n), state)
	b.add(fmt.Sprintf("vcpu.%d.time", n), nanos(t))
}

// NetCount writes net.count: how many interfaces the domain has, whether
// or not each has figures.
func (b *StatsBuilder) NetCount(n int) { b.add("net.count", uint32(n)) }

// Net writes net.<n>.name and the figures of interface n that are known
// (not -1).
func (b *StatsBuilder) Net(n int, name string, s *virt.InterfaceStats) {
	p := fmt.Sprintf("net.%d.", n)
	b.add(p+"name", name)
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"rx.bytes", s.RxBytes}, {"rx.pkts", s.RxPackets}, {"rx.errs", s.RxErrs}, {"rx.drop", s.RxDrop},
		{"tx.bytes", s.TxBytes}, {"tx.pkts", s.TxPackets}, {"tx.errs", s.TxErrs}, {"tx.drop", s.TxDrop},
	} {
		if f.v >= 0 {
			b.add(p+f.name, uint64(f.v))
		}
	}
}

// BlockCount writes block.count.
func (b *StatsBuilder) BlockCount(n int) { b.add("block.count", uint32(n)) }

// Block writes block.<n>.name and, when the disk has a source, block.<n>.path.
func (b *StatsBuilder) Block(n int, name, path string) {
	b.add(fmt.Sprintf("block.%d.name", n), name)
	if path != "" {
		b.add(fmt.Sprintf("block.%d.path", n), path)
	}
}

// BlockIO is what a disk has done since the domain started, and how big it
// is; the sizes are left out when zero.
type BlockIO struct {
	RdReqs, RdBytes    uint64
	RdTimes            time.Duration
	WrReqs, WrBytes    uint64
	WrTimes            time.Duration
	FlReqs             uint64
	FlTimes            time.Duration
	Allocation         uint64 // the offset of the highest sector written, in bytes
	Capacity, Physical uint64 // the guest's size of the disk, and its file's on the host
}

// BlockIO writes block.<n>.rd.*, wr.*, fl.*, and the sizes that are known.
func (b *StatsBuilder) BlockIO(n int, io *BlockIO) {
	p := fmt.Sprintf("block.%d.", n)
	b.add(p+"rd.reqs", io.RdReqs)
	b.add(p+"rd.bytes", io.RdBytes)
	b.add(p+"rd.times", nanos(io.RdTimes))
	b.add(p+"wr.reqs", io.WrReqs)
	b.add(p+"wr.bytes", io.WrBytes)
	b.add(p+"wr.times", nanos(io.WrTimes))
	b.add(p+"fl.reqs", io.FlReqs)
	b.add(p+"fl.times", nanos(io.FlTimes))
	b.add(p+"allocation", io.Allocation)
	if io.Capacity > 0 {
		b.add(p+"capacity", io.Capacity)
	}
	if io.Physical > 0 {
		b.add(p+"physical", io.Physical)
	}
}

func nanos(d time.Duration) uint64 {
	if d < 0 {
		return 0
	}
	return uint64(d)
}

// NotRunning is the error of a call that needs a running domain (block,
// interface and memory statistics), in libvirt's words and kind.
func NotRunning(name string) error {
	return fmt.Errorf("domain '%s' is not running: %w", name, virt.ErrFailedPrecondition)
}

// NoDisk is the error for a disk a domain does not have: an invalid
// argument, as libvirt's "invalid path".
func NoDisk(name, disk string) error {
	return fmt.Errorf("domain '%s' has no disk %q (name a disk by its target, e.g. vda, or its source path): %w", name, disk, virt.ErrInvalidArgument)
}

// NoInterface is the error for an interface a domain does not have: an
// invalid argument, as libvirt's "'%s' is not a known interface".
func NoInterface(name, iface string) error {
	return fmt.Errorf("domain '%s' has no interface %q (name an interface by its host device, e.g. vnet0, or its MAC address): %w", name, iface, virt.ErrInvalidArgument)
}

// SameMAC reports whether s is the MAC address mac, in any spelling
// net.ParseMAC reads.
func SameMAC(s, mac string) bool {
	a, err := net.ParseMAC(s)
	if err != nil {
		return false
	}
	b, err := net.ParseMAC(mac)
	return err == nil && strings.EqualFold(a.String(), b.String())
}
