package virt

import (
	"fmt"
	"strconv"
	"time"
)

// TypedParamType is libvirt's virTypedParameterType: the kind of a
// TypedParam's value. The numbers are libvirt's.
type TypedParamType int32

// Typed parameter kinds, with the Go type each holds.
const (
	TypedParamInt     TypedParamType = 1 // int32, libvirt's VIR_TYPED_PARAM_INT
	TypedParamUInt    TypedParamType = 2 // uint32, VIR_TYPED_PARAM_UINT
	TypedParamLLong   TypedParamType = 3 // int64, VIR_TYPED_PARAM_LLONG
	TypedParamULLong  TypedParamType = 4 // uint64, VIR_TYPED_PARAM_ULLONG
	TypedParamDouble  TypedParamType = 5 // float64, VIR_TYPED_PARAM_DOUBLE
	TypedParamBoolean TypedParamType = 6 // bool, VIR_TYPED_PARAM_BOOLEAN
	TypedParamString  TypedParamType = 7 // string, VIR_TYPED_PARAM_STRING
)

// TypedParam is libvirt's virTypedParameter: a named value whose Go type
// is one of int32, uint32, int64, uint64, float64, bool and string (see
// TypedParamType). A value of any other type is not a typed parameter:
// Type returns 0 for it, and the gRPC shims refuse it.
type TypedParam struct {
	Name  string
	Value any
}

// Type returns the kind of p's value, 0 when it is of no kind.
func (p TypedParam) Type() TypedParamType {
	switch p.Value.(type) {
	case int32:
		return TypedParamInt
	case uint32:
		return TypedParamUInt
	case int64:
		return TypedParamLLong
	case uint64:
		return TypedParamULLong
	case float64:
		return TypedParamDouble
	case bool:
		return TypedParamBoolean
	case string:
		return TypedParamString
	}
	return 0
}

// Format returns the value as virsh prints it: numbers in decimal, a
// double with six decimals ("%f"), a boolean as "yes" or "no", a string
// as it is.
func (p TypedParam) Format() string {
	switch v := p.Value.(type) {
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case uint32:
		return strconv.FormatUint(uint64(v), 10)
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'f', 6, 64)
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case string:
		return v
	}
	return fmt.Sprint(p.Value)
}

// TypedParams is a list of typed parameters, in the order they were made.
type TypedParams []TypedParam

// Get returns the value of the parameter called name.
func (ps TypedParams) Get(name string) (any, bool) {
	for _, p := range ps {
		if p.Name == name {
			return p.Value, true
		}
	}
	return nil, false
}

// DomainStats is one record of libvirt's virConnectGetAllDomainStats: a
// domain, as it was when its figures were read, and the figures, named
// as libvirt names them ("state.state", "cpu.time", "block.0.rd.reqs",
// ...; see StatsGroups).
type DomainStats struct {
	Domain Domain
	Params TypedParams
}

// StatsGroups are libvirt's virDomainStatsTypes: the groups of figures a
// DomainStats call asks for. Zero asks for every group the driver has.
type StatsGroups uint32

// Stats groups, libvirt's bits. The names of their parameters are
// libvirt's:
//
//   - StatsState: state.state and state.reason (int).
//   - StatsCPUTotal: cpu.time, cpu.user, cpu.system (ns, unsigned long
//     long), for a running domain.
//   - StatsBalloon: balloon.current and balloon.maximum (KiB, unsigned
//     long long), and for a running domain what the driver knows of
//     balloon.rss, balloon.available, balloon.unused, ... (KiB).
//   - StatsVCPU: vcpu.current and vcpu.maximum (unsigned int), and for a
//     running domain vcpu.<n>.state (int, virVcpuState) and vcpu.<n>.time
//     (ns, unsigned long long).
//   - StatsInterface: net.count (unsigned int), and per interface <n>
//     net.<n>.name (string), net.<n>.rx.bytes, rx.pkts, rx.errs, rx.drop,
//     tx.bytes, tx.pkts, tx.errs, tx.drop (unsigned long long), as the
//     guest sees them, for a running domain.
//   - StatsBlock: block.count (unsigned int), and per disk <n>
//     block.<n>.name (the target, "vda") and block.<n>.path (strings),
//     block.<n>.rd.reqs, rd.bytes, rd.times, wr.reqs, wr.bytes, wr.times,
//     fl.reqs, fl.times (times in ns), allocation, capacity and physical
//     (bytes), all unsigned long long.
//
// StatsPerf, StatsIOThread, StatsMemory and StatsDirtyRate are libvirt's
// too; no virtd driver has them yet.
const (
	StatsState     StatsGroups = 1 << 0
	StatsCPUTotal  StatsGroups = 1 << 1
	StatsBalloon   StatsGroups = 1 << 2
	StatsVCPU      StatsGroups = 1 << 3
	StatsInterface StatsGroups = 1 << 4
	StatsBlock     StatsGroups = 1 << 5
	StatsPerf      StatsGroups = 1 << 6
	StatsIOThread  StatsGroups = 1 << 7
	StatsMemory    StatsGroups = 1 << 8
	StatsDirtyRate StatsGroups = 1 << 9
)

// StatsFlags are libvirt's virConnectGetAllDomainStatsFlags: the filter
// bits of ListFlags that libvirt shares with virConnectListAllDomains
// (active, inactive, persistent, transient, running, paused, shut off,
// other; grouped and combined as ListFlags.Match does), and StatsEnforce.
type StatsFlags uint32

// Stats flags, libvirt's bits.
const (
	StatsActive     = StatsFlags(ListActive)
	StatsInactive   = StatsFlags(ListInactive)
	StatsPersistent = StatsFlags(ListPersistent)
	StatsTransient  = StatsFlags(ListTransient)
	StatsRunning    = StatsFlags(ListRunning)
	StatsPaused     = StatsFlags(ListPaused)
	StatsShutoff    = StatsFlags(ListShutoff)
	StatsOther      = StatsFlags(ListOther)
	// StatsEnforce makes a call that asks for a group the driver does not
	// have fail (virt.ErrNotSupported) instead of leaving the group out.
	StatsEnforce StatsFlags = 1 << 31
)

// statsListFlags are the StatsFlags that filter domains.
const statsListFlags = StatsActive | StatsInactive | StatsPersistent | StatsTransient |
	StatsRunning | StatsPaused | StatsShutoff | StatsOther

// List returns the domain filter that f holds.
func (f StatsFlags) List() ListFlags { return ListFlags(f & statsListFlags) }

// Unknown returns the bits of f that are no StatsFlags.
func (f StatsFlags) Unknown() StatsFlags { return f &^ (statsListFlags | StatsEnforce) }

// BlockStats is libvirt's virDomainBlockStatsStruct: the requests and
// bytes a disk has read and written since the domain started. A figure the
// driver does not have is -1, as in libvirt (virsh leaves it out).
type BlockStats struct {
	RdReq, RdBytes, WrReq, WrBytes, Errs int64
}

// InterfaceStats is libvirt's virDomainInterfaceStatsStruct: what a network
// interface received and sent, as the guest sees it. A figure the driver
// does not have is -1.
type InterfaceStats struct {
	RxBytes, RxPackets, RxErrs, RxDrop int64
	TxBytes, TxPackets, TxErrs, TxDrop int64
}

// MemoryStatTag is libvirt's virDomainMemoryStatTags; the numbers are
// libvirt's.
type MemoryStatTag int32

// Memory statistics. Sizes are in KiB.
const (
	MemorySwapIn         MemoryStatTag = 0
	MemorySwapOut        MemoryStatTag = 1
	MemoryMajorFault     MemoryStatTag = 2
	MemoryMinorFault     MemoryStatTag = 3
	MemoryUnused         MemoryStatTag = 4
	MemoryAvailable      MemoryStatTag = 5
	MemoryActualBalloon  MemoryStatTag = 6
	MemoryRSS            MemoryStatTag = 7
	MemoryUsable         MemoryStatTag = 8
	MemoryLastUpdate     MemoryStatTag = 9 // seconds since the epoch
	MemoryDiskCaches     MemoryStatTag = 10
	MemoryHugetlbPgalloc MemoryStatTag = 11
	MemoryHugetlbPgfail  MemoryStatTag = 12
)

var memoryStatNames = [...]string{
	"swap_in", "swap_out", "major_fault", "minor_fault", "unused", "available",
	"actual", "rss", "usable", "last_update", "disk_caches", "hugetlb_pgalloc", "hugetlb_pgfail",
}

// String returns the tag as `virsh dommemstat` names it ("actual", "rss").
func (t MemoryStatTag) String() string {
	if t >= 0 && int(t) < len(memoryStatNames) {
		return memoryStatNames[t]
	}
	return fmt.Sprintf("tag %d", int32(t))
}

// MemoryStat is libvirt's virDomainMemoryStatStruct: one memory figure of a
// running domain.
type MemoryStat struct {
	Tag   MemoryStatTag
	Value uint64
}

// NodeCPUStatsAll and NodeMemoryStatsAll ask NodeCPUStats for every CPU
// and NodeMemoryStats for every NUMA cell, as libvirt's -1 does.
const (
	NodeCPUStatsAll    = -1
	NodeMemoryStatsAll = -1
)

// NodeCPUStats is what libvirt's virNodeGetCPUStats returns on Linux: the
// time the host's CPUs (one, or all summed) spent in the kernel (system,
// irq and softirq), in user space (user and nice), idle, and waiting for
// I/O, since the host booted.
type NodeCPUStats struct {
	Kernel, User, Idle, IOWait time.Duration
}

// NodeMemoryStats is what libvirt's virNodeGetMemoryStats returns on Linux:
// the host's (or one NUMA cell's) memory, in KiB. A cell's buffers and
// cache are not counted apart: they are 0.
type NodeMemoryStats struct {
	TotalKiB, FreeKiB, BuffersKiB, CachedKiB uint64
}
