package daemon

import (
	"context"
	"fmt"

	"github.com/virtd/virtd/core"
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
	"github.com/virtd/virtd/virt"
)

func (s *service) GetDomainStats(ctx context.Context, req *apiv1.GetDomainStatsRequest) (*apiv1.GetDomainStatsResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetDomainStatsResponse, error) {
		recs, err := c.DomainStats(ctx, req.GetUuids(), virt.StatsGroups(req.GetGroups()), virt.StatsFlags(req.GetFlags()))
		if err != nil {
			return nil, err
		}
		out := make([]*apiv1.DomainStats, len(recs))
		for i := range recs {
			params, err := typedParamsToAPI(recs[i].Params)
			if err != nil {
				return nil, fmt.Errorf("domain '%s': %w", recs[i].Domain.Name, err)
			}
			out[i] = &apiv1.DomainStats{Domain: domainToAPI(&recs[i].Domain), Params: params}
		}
		return &apiv1.GetDomainStatsResponse{Stats: out}, nil
	})
}

func (s *service) GetBlockStats(ctx context.Context, req *apiv1.GetBlockStatsRequest) (*apiv1.GetBlockStatsResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetBlockStatsResponse, error) {
		b, err := c.BlockStats(ctx, req.GetUuid(), req.GetDisk())
		if err != nil {
			return nil, err
		}
		return &apiv1.GetBlockStatsResponse{Stats: &apiv1.BlockStats{
			RdReq: b.RdReq, RdBytes: b.RdBytes, WrReq: b.WrReq, WrBytes: b.WrBytes, Errs: b.Errs,
		}}, nil
	})
}

func (s *service) GetInterfaceStats(ctx context.Context, req *apiv1.GetInterfaceStatsRequest) (*apiv1.GetInterfaceStatsResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetInterfaceStatsResponse, error) {
		n, err := c.InterfaceStats(ctx, req.GetUuid(), req.GetIface())
		if err != nil {
			return nil, err
		}
		return &apiv1.GetInterfaceStatsResponse{Stats: &apiv1.InterfaceStats{
			RxBytes: n.RxBytes, RxPackets: n.RxPackets, RxErrs: n.RxErrs, RxDrop: n.RxDrop,
			TxBytes: n.TxBytes, TxPackets: n.TxPackets, TxErrs: n.TxErrs, TxDrop: n.TxDrop,
		}}, nil
	})
}

func (s *service) GetMemoryStats(ctx context.Context, req *apiv1.GetMemoryStatsRequest) (*apiv1.GetMemoryStatsResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetMemoryStatsResponse, error) {
		ms, err := c.MemoryStats(ctx, req.GetUuid())
		if err != nil {
			return nil, err
		}
		out := make([]*apiv1.MemoryStat, len(ms))
		for i, m := range ms {
			out[i] = &apiv1.MemoryStat{Tag: int32(m.Tag), Value: m.Value}
		}
		return &apiv1.GetMemoryStatsResponse{Stats: out}, nil
	})
}

func (s *service) GetNodeCPUStats(ctx context.Context, req *apiv1.GetNodeCPUStatsRequest) (*apiv1.GetNodeCPUStatsResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetNodeCPUStatsResponse, error) {
		st, err := c.NodeCPUStats(ctx, int(req.GetCpu()))
		if err != nil {
			return nil, err
		}
		return &apiv1.GetNodeCPUStatsResponse{Stats: &apiv1.NodeCPUStats{
			KernelNs: uint64(max(st.Kernel, 0)), UserNs: uint64(max(st.User, 0)),
			IdleNs: uint64(max(st.Idle, 0)), IowaitNs: uint64(max(st.IOWait, 0)),
		}}, nil
	})
}

func (s *service) GetNodeMemoryStats(ctx context.Context, req *apiv1.GetNodeMemoryStatsRequest) (*apiv1.GetNodeMemoryStatsResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetNodeMemoryStatsResponse, error) {
		m, err := c.NodeMemoryStats(ctx, int(req.GetCell()))
		if err != nil {
			return nil, err
		}
		return &apiv1.GetNodeMemoryStatsResponse{Stats: &apiv1.NodeMemoryStats{
			TotalKib: m.TotalKiB, FreeKib: m.FreeKiB, BuffersKib: m.BuffersKiB, CachedKib: m.CachedKiB,
		}}, nil
	})
}

func (s *service) GetDomainCapabilities(ctx context.Context, req *apiv1.GetDomainCapabilitiesRequest) (*apiv1.GetDomainCapabilitiesResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetDomainCapabilitiesResponse, error) {
		x, err := c.DomainCapabilities(ctx, req.GetEmulator(), req.GetArch(), req.GetMachine(), req.GetVirtType())
		return &apiv1.GetDomainCapabilitiesResponse{Xml: x}, err
	})
}

// typedParamsToAPI converts parameters; a value of no typed parameter
// kind (which the driver shims refuse already) is an internal error.
func typedParamsToAPI(ps virt.TypedParams) ([]*apiv1.TypedParam, error) {
	out := make([]*apiv1.TypedParam, len(ps))
	for i, p := range ps {
		q := &apiv1.TypedParam{Name: p.Name}
		switch v := p.Value.(type) {
		case int32:
			q.Value = &apiv1.TypedParam_IntValue{IntValue: v}
		case uint32:
			q.Value = &apiv1.TypedParam_UintValue{UintValue: v}
		case int64:
			q.Value = &apiv1.TypedParam_LlongValue{LlongValue: v}
		case uint64:
			q.Value = &apiv1.TypedParam_UllongValue{UllongValue: v}
		case float64:
			q.Value = &apiv1.TypedParam_DoubleValue{DoubleValue: v}
		case bool:
			q.Value = &apiv1.TypedParam_BooleanValue{BooleanValue: v}
		case string:
			q.Value = &apiv1.TypedParam_StringValue{StringValue: v}
		default:
			return nil, fmt.Errorf("statistic %q has a value of type %T, which is no typed parameter kind: %w", p.Name, p.Value, virt.ErrInternal)
		}
		out[i] = q
	}
	return out, nil
}
