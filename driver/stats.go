package driver

import (
	"context"
	"fmt"
	"time"

	"github.com/virtd/virtd/internal/rpcerr"
	driverv1 "github.com/virtd/virtd/proto/virtd/driver/v1"
	"github.com/virtd/virtd/virt"
)

// The shims of the optional Stats and DomainCapabilities calls. A driver
// without them answers UNIMPLEMENTED, which the client side reads as
// virt.ErrNotSupported.

var (
	_ Stats              = (*Client)(nil)
	_ DomainCapabilities = (*Client)(nil)
)

func (s *server) stats() (Stats, error) {
	st, ok := s.impl.(Stats)
	if !ok {
		return nil, rpcerr.ToStatus(notSupported("statistics"))
	}
	return st, nil
}

func (s *server) GetDomainStats(ctx context.Context, req *driverv1.GetDomainStatsRequest) (*driverv1.GetDomainStatsResponse, error) {
	s.touch()
	st, err := s.stats()
	if err != nil {
		return nil, err
	}
	recs, err := st.DomainStats(ctx, req.GetUuids(), virt.StatsGroups(req.GetGroups()), virt.StatsFlags(req.GetFlags()))
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	out := make([]*driverv1.DomainStats, len(recs))
	for i := range recs {
		params, err := typedParamsToProto(recs[i].Params)
		if err != nil {
			return nil, rpcerr.ToStatus(fmt.Errorf("domain '%s': %w", recs[i].Domain.Name, err))
		}
		out[i] = &driverv1.DomainStats{Domain: domainToProto(&recs[i].Domain), Params: params}
	}
	return &driverv1.GetDomainStatsResponse{Stats: out}, nil
}

func (s *server) GetBlockStats(ctx context.Context, req *driverv1.GetBlockStatsRequest) (*driverv1.GetBlockStatsResponse, error) {
	s.touch()
	st, err := s.stats()
	if err != nil {
		return nil, err
	}
	b, err := st.BlockStats(ctx, req.GetUuid(), req.GetDisk())
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.GetBlockStatsResponse{Stats: &driverv1.BlockStats{
		RdReq: b.RdReq, RdBytes: b.RdBytes, WrReq: b.WrReq, WrBytes: b.WrBytes, Errs: b.Errs,
	}}, nil
}

func (s *server) GetInterfaceStats(ctx context.Context, req *driverv1.GetInterfaceStatsRequest) (*driverv1.GetInterfaceStatsResponse, error) {
	s.touch()
	st, err := s.stats()
	if err != nil {
		return nil, err
	}
	n, err := st.InterfaceStats(ctx, req.GetUuid(), req.GetIface())
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.GetInterfaceStatsResponse{Stats: &driverv1.InterfaceStats{
		RxBytes: n.RxBytes, RxPackets: n.RxPackets, RxErrs: n.RxErrs, RxDrop: n.RxDrop,
		TxBytes: n.TxBytes, TxPackets: n.TxPackets, TxErrs: n.TxErrs, TxDrop: n.TxDrop,
	}}, nil
}

func (s *server) GetMemoryStats(ctx context.Context, req *driverv1.GetMemoryStatsRequest) (*driverv1.GetMemoryStatsResponse, error) {
	s.touch()
	st, err := s.stats()
	if err != nil {
		return nil, err
	}
	ms, err := st.MemoryStats(ctx, req.GetUuid())
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	out := make([]*driverv1.MemoryStat, len(ms))
	for i, m := range ms {
		out[i] = &driverv1.MemoryStat{Tag: int32(m.Tag), Value: m.Value}
	}
	return &driverv1.GetMemoryStatsResponse{Stats: out}, nil
}

func (s *server) GetNodeCPUStats(ctx context.Context, req *driverv1.GetNodeCPUStatsRequest) (*driverv1.GetNodeCPUStatsResponse, error) {
	s.touch()
	st, err := s.stats()
	if err != nil {
		return nil, err
	}
	c, err := st.NodeCPUStats(ctx, int(req.GetCpu()))
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.GetNodeCPUStatsResponse{Stats: &driverv1.NodeCPUStats{
		KernelNs: nanos(c.Kernel), UserNs: nanos(c.User), IdleNs: nanos(c.Idle), IowaitNs: nanos(c.IOWait),
	}}, nil
}

func (s *server) GetNodeMemoryStats(ctx context.Context, req *driverv1.GetNodeMemoryStatsRequest) (*driverv1.GetNodeMemoryStatsResponse, error) {
	s.touch()
	st, err := s.stats()
	if err != nil {
		return nil, err
	}
	m, err := st.NodeMemoryStats(ctx, int(req.GetCell()))
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.GetNodeMemoryStatsResponse{Stats: &driverv1.NodeMemoryStats{
		TotalKib: m.TotalKiB, FreeKib: m.FreeKiB, BuffersKib: m.BuffersKiB, CachedKib: m.CachedKiB,
	}}, nil
}

func (s *server) GetDomainCapabilities(ctx context.Context, req *driverv1.GetDomainCapabilitiesRequest) (*driverv1.GetDomainCapabilitiesResponse, error) {
	s.touch()
	dc, ok := s.impl.(DomainCapabilities)
	if !ok {
		return nil, rpcerr.ToStatus(notSupported("domain capabilities"))
	}
	x, err := dc.DomainCapabilities(ctx, req.GetEmulator(), req.GetArch(), req.GetMachine(), req.GetVirtType())
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.GetDomainCapabilitiesResponse{Xml: x}, nil
}

// DomainStats reads the statistics of domains in the driver process.
func (c *Client) DomainStats(ctx context.Context, uuids []string, groups virt.StatsGroups, flags virt.StatsFlags) ([]virt.DomainStats, error) {
	r, err := c.rpc.GetDomainStats(ctx, &driverv1.GetDomainStatsRequest{Uuids: uuids, Groups: uint32(groups), Flags: uint32(flags)})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	out := make([]virt.DomainStats, len(r.GetStats()))
	for i, p := range r.GetStats() {
		if d := domainFromProto(p.GetDomain()); d != nil {
			out[i].Domain = *d
		}
		out[i].Params = typedParamsFromProto(p.GetParams())
	}
	return out, nil
}

// BlockStats reads a domain's disk counters in the driver process.
func (c *Client) BlockStats(ctx context.Context, uuid, disk string) (*virt.BlockStats, error) {
	r, err := c.rpc.GetBlockStats(ctx, &driverv1.GetBlockStatsRequest{Uuid: uuid, Disk: disk})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	b := r.GetStats()
	return &virt.BlockStats{RdReq: b.GetRdReq(), RdBytes: b.GetRdBytes(), WrReq: b.GetWrReq(), WrBytes: b.GetWrBytes(), Errs: b.GetErrs()}, nil
}

// InterfaceStats reads a domain's interface counters in the driver process.
func (c *Client) InterfaceStats(ctx context.Context, uuid, iface string) (*virt.InterfaceStats, error) {
	r, err := c.rpc.GetInterfaceStats(ctx, &driverv1.GetInterfaceStatsRequest{Uuid: uuid, Iface: iface})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	n := r.GetStats()
	return &virt.InterfaceStats{
		RxBytes: n.GetRxBytes(), RxPackets: n.GetRxPackets(), RxErrs: n.GetRxErrs(), RxDrop: n.GetRxDrop(),
		TxBytes: n.GetTxBytes(), TxPackets: n.GetTxPackets(), TxErrs: n.GetTxErrs(), TxDrop: n.GetTxDrop(),
	}, nil
}

// MemoryStats reads a domain's memory figures in the driver process.
func (c *Client) MemoryStats(ctx context.Context, uuid string) ([]virt.MemoryStat, error) {
	r, err := c.rpc.GetMemoryStats(ctx, &driverv1.GetMemoryStatsRequest{Uuid: uuid})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	out := make([]virt.MemoryStat, len(r.GetStats()))
	for i, m := range r.GetStats() {
		out[i] = virt.MemoryStat{Tag: virt.MemoryStatTag(m.GetTag()), Value: m.GetValue()}
	}
	return out, nil
}

// NodeCPUStats reads the host's CPU times in the driver process.
func (c *Client) NodeCPUStats(ctx context.Context, cpu int) (*virt.NodeCPUStats, error) {
	r, err := c.rpc.GetNodeCPUStats(ctx, &driverv1.GetNodeCPUStatsRequest{Cpu: int32(cpu)})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	s := r.GetStats()
	return &virt.NodeCPUStats{
		Kernel: time.Duration(s.GetKernelNs()), User: time.Duration(s.GetUserNs()),
		Idle: time.Duration(s.GetIdleNs()), IOWait: time.Duration(s.GetIowaitNs()),
	}, nil
}

// NodeMemoryStats reads the host's memory in the driver process.
func (c *Client) NodeMemoryStats(ctx context.Context, cell int) (*virt.NodeMemoryStats, error) {
	r, err := c.rpc.GetNodeMemoryStats(ctx, &driverv1.GetNodeMemoryStatsRequest{Cell: int32(cell)})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	m := r.GetStats()
	return &virt.NodeMemoryStats{TotalKiB: m.GetTotalKib(), FreeKiB: m.GetFreeKib(), BuffersKiB: m.GetBuffersKib(), CachedKiB: m.GetCachedKib()}, nil
}

// DomainCapabilities asks the driver process for domainCapabilities XML.
func (c *Client) DomainCapabilities(ctx context.Context, emulator, arch, machine, virtType string) (string, error) {
	r, err := c.rpc.GetDomainCapabilities(ctx, &driverv1.GetDomainCapabilitiesRequest{Emulator: emulator, Arch: arch, Machine: machine, VirtType: virtType})
	if err != nil {
		return "", rpcerr.FromStatus(err)
	}
	return r.GetXml(), nil
}

func nanos(d time.Duration) uint64 {
	if d < 0 {
		return 0
	}
	return uint64(d)
}

// typedParamsToProto converts parameters; a value of no typed parameter
// kind is the driver's fault, an internal error that names it.
func typedParamsToProto(ps virt.TypedParams) ([]*driverv1.TypedParam, error) {
	out := make([]*driverv1.TypedParam, len(ps))
	for i, p := range ps {
		q := &driverv1.TypedParam{Name: p.Name}
		switch v := p.Value.(type) {
		case int32:
			q.Value = &driverv1.TypedParam_IntValue{IntValue: v}
		case uint32:
			q.Value = &driverv1.TypedParam_UintValue{UintValue: v}
		case int64:
			q.Value = &driverv1.TypedParam_LlongValue{LlongValue: v}
		case uint64:
			q.Value = &driverv1.TypedParam_UllongValue{UllongValue: v}
		case float64:
			q.Value = &driverv1.TypedParam_DoubleValue{DoubleValue: v}
		case bool:
			q.Value = &driverv1.TypedParam_BooleanValue{BooleanValue: v}
		case string:
			q.Value = &driverv1.TypedParam_StringValue{StringValue: v}
		default:
			return nil, fmt.Errorf("statistic %q has a value of type %T, which is no typed parameter kind: %w", p.Name, p.Value, virt.ErrInternal)
		}
		out[i] = q
	}
	return out, nil
}

// typedParamsFromProto converts parameters; one without a value (from a
// newer peer with a kind this side does not know) is left out.
func typedParamsFromProto(ps []*driverv1.TypedParam) virt.TypedParams {
	out := make(virt.TypedParams, 0, len(ps))
	for _, p := range ps {
		var v any
		switch x := p.GetValue().(type) {
		case *driverv1.TypedParam_IntValue:
			v = x.IntValue
		case *driverv1.TypedParam_UintValue:
			v = x.UintValue
		case *driverv1.TypedParam_LlongValue:
			v = x.LlongValue
		case *driverv1.TypedParam_UllongValue:
			v = x.UllongValue
		case *driverv1.TypedParam_DoubleValue:
			v = x.DoubleValue
		case *driverv1.TypedParam_BooleanValue:
			v = x.BooleanValue
		case *driverv1.TypedParam_StringValue:
			v = x.StringValue
		default:
			continue
		}
		out = append(out, virt.TypedParam{Name: p.GetName(), Value: v})
	}
	return out
}
