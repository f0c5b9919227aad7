package client

import (
	"context"
	"time"

	"github.com/virtd/virtd/internal/rpcerr"
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
	"github.com/virtd/virtd/virt"
)

// Statistics are read from the driver at each call: they move by
// themselves. A driver without them gives ErrNotSupported.

// DomainStats is one domain's record of GetAllDomainStats: a handle on the
// domain (its snapshot as it was when the figures were read) and the
// figures, named as libvirt names them (see virt.StatsGroups).
type DomainStats struct {
	Domain *Domain
	Params virt.TypedParams
}

// GetAllDomainStats returns the statistics of domains, libvirt's
// virConnectGetAllDomainStats (doms empty: every domain that passes
// flags) and virDomainListGetStats (doms: those of them that pass flags,
// in that order). groups zero asks for every group the driver has; a
// group it lacks is left out, or with virt.StatsEnforce refused with
// ErrNotSupported.
func (c *Conn) GetAllDomainStats(ctx context.Context, doms []*Domain, groups virt.StatsGroups, flags virt.StatsFlags) ([]DomainStats, error) {
	req := &apiv1.GetDomainStatsRequest{Connection: c.id, Groups: uint32(groups), Flags: uint32(flags)}
	for _, d := range doms {
		req.Uuids = append(req.Uuids, d.UUID())
	}
	r, err := c.api.GetDomainStats(ctx, req)
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	out := make([]DomainStats, len(r.GetStats()))
	for i, s := range r.GetStats() {
		out[i] = DomainStats{Domain: c.handle(s.GetDomain()), Params: typedParamsFromAPI(s.GetParams())}
	}
	return out, nil
}

// BlockStats returns the counters of a running domain's disk, named by its
// target ("vda") or source path; disk "" sums every disk. A figure the
// driver does not have is -1. A disk the domain lacks is
// ErrInvalidArgument; a domain that does not run, ErrFailedPrecondition.
func (d *Domain) BlockStats(ctx context.Context, disk string) (*virt.BlockStats, error) {
	r, err := d.conn.api.GetBlockStats(ctx, &apiv1.GetBlockStatsRequest{Connection: d.conid(), Uuid: d.uuid, Disk: disk})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	b := r.GetStats()
	return &virt.BlockStats{RdReq: b.GetRdReq(), RdBytes: b.GetRdBytes(), WrReq: b.GetWrReq(), WrBytes: b.GetWrBytes(), Errs: b.GetErrs()}, nil
}

// InterfaceStats returns the counters of a running domain's interface,
// named by its host device ("vnet0") or MAC address, as the guest sees
// them. A figure the driver does not have is -1.
func (d *Domain) InterfaceStats(ctx context.Context, iface string) (*virt.InterfaceStats, error) {
	r, err := d.conn.api.GetInterfaceStats(ctx, &apiv1.GetInterfaceStatsRequest{Connection: d.conid(), Uuid: d.uuid, Iface: iface})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	n := r.GetStats()
	return &virt.InterfaceStats{
		RxBytes: n.GetRxBytes(), RxPackets: n.GetRxPackets(), RxErrs: n.GetRxErrs(), RxDrop: n.GetRxDrop(),
		TxBytes: n.GetTxBytes(), TxPackets: n.GetTxPackets(), TxErrs: n.GetTxErrs(), TxDrop: n.GetTxDrop(),
	}, nil
}

// MemoryStats returns the memory figures of a running domain, libvirt's
// virDomainMemoryStats.
func (d *Domain) MemoryStats(ctx context.Context) ([]virt.MemoryStat, error) {
	r, err := d.conn.api.GetMemoryStats(ctx, &apiv1.GetMemoryStatsRequest{Connection: d.conid(), Uuid: d.uuid})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	out := make([]virt.MemoryStat, len(r.GetStats()))
	for i, m := range r.GetStats() {
		out[i] = virt.MemoryStat{Tag: virt.MemoryStatTag(m.GetTag()), Value: m.GetValue()}
	}
	return out, nil
}

// NodeCPUStats returns the time the host's CPUs spent in each state since
// boot: cpu is one CPU's number, or virt.NodeCPUStatsAll for all of them.
func (c *Conn) NodeCPUStats(ctx context.Context, cpu int) (*virt.NodeCPUStats, error) {
	r, err := c.api.GetNodeCPUStats(ctx, &apiv1.GetNodeCPUStatsRequest{Connection: c.id, Cpu: int32(cpu)})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	s := r.GetStats()
	return &virt.NodeCPUStats{
		Kernel: time.Duration(s.GetKernelNs()), User: time.Duration(s.GetUserNs()),
		Idle: time.Duration(s.GetIdleNs()), IOWait: time.Duration(s.GetIowaitNs()),
	}, nil
}

// NodeMemoryStats returns the host's memory, or with cell >= 0 one NUMA
// cell's (virt.NodeMemoryStatsAll for the whole host).
func (c *Conn) NodeMemoryStats(ctx context.Context, cell int) (*virt.NodeMemoryStats, error) {
	r, err := c.api.GetNodeMemoryStats(ctx, &apiv1.GetNodeMemoryStatsRequest{Connection: c.id, Cell: int32(cell)})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	m := r.GetStats()
	return &virt.NodeMemoryStats{TotalKiB: m.GetTotalKib(), FreeKiB: m.GetFreeKib(), BuffersKiB: m.GetBuffersKib(), CachedKiB: m.GetCachedKib()}, nil
}

// DomainCapabilities returns libvirt's domainCapabilities XML (virsh
// domcapabilities): what a domain of type virtType ("kvm", "qemu", ...)
// on arch and machine, run by emulator, may have. Each argument may be ""
// for the driver's default.
func (c *Conn) DomainCapabilities(ctx context.Context, emulator, arch, machine, virtType string) (string, error) {
	r, err := c.api.GetDomainCapabilities(ctx, &apiv1.GetDomainCapabilitiesRequest{
		Connection: c.id, Emulator: emulator, Arch: arch, Machine: machine, VirtType: virtType,
	})
	if err != nil {
		return "", rpcerr.FromStatus(err)
	}
	return r.GetXml(), nil
}

// typedParamsFromAPI converts parameters; one of a kind this library does
// not know is left out.
func typedParamsFromAPI(ps []*apiv1.TypedParam) virt.TypedParams {
	out := make(virt.TypedParams, 0, len(ps))
	for _, p := range ps {
		var v any
		switch x := p.GetValue().(type) {
		case *apiv1.TypedParam_IntValue:
			v = x.IntValue
		case *apiv1.TypedParam_UintValue:
			v = x.UintValue
		case *apiv1.TypedParam_LlongValue:
			v = x.LlongValue
		case *apiv1.TypedParam_UllongValue:
			v = x.UllongValue
		case *apiv1.TypedParam_DoubleValue:
			v = x.DoubleValue
		case *apiv1.TypedParam_BooleanValue:
			v = x.BooleanValue
		case *apiv1.TypedParam_StringValue:
			v = x.StringValue
		default:
			continue
		}
		out = append(out, virt.TypedParam{Name: p.GetName(), Value: v})
	}
	return out
}
