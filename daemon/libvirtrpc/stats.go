package libvirtrpc

import (
	"context"
	"fmt"

	"github.com/virtd/virtd/internal/xdr"
	"github.com/virtd/virtd/virt"
)

// Statistics, domain capabilities and transient domains.

const (
	procDomainBlockStats             = 64
	procDomainInterfaceStats         = 65
	procDomainMemoryStats            = 159
	procNodeGetCPUStats              = 227
	procNodeGetMemoryStats           = 228
	procConnectGetDomainCapabilities = 342
	procConnectGetAllDomainStats     = 344
)

// maxTypedParams bounds the typed parameters of one domain's statistics
// (REMOTE_CONNECT_GET_ALL_DOMAIN_STATS_MAX).
const maxTypedParams = 262144

// maxMemoryStats is REMOTE_DOMAIN_MEMORY_STATS_MAX.
const maxMemoryStats = 1024

func serveStats() {
	serve(procConnectGetAllDomainStats, "CONNECT_GET_ALL_DOMAIN_STATS", proc{needConn: true, fn: allDomainStats})
	serve(procDomainBlockStats, "DOMAIN_BLOCK_STATS", proc{needConn: true, fn: blockStats})
	serve(procDomainInterfaceStats, "DOMAIN_INTERFACE_STATS", proc{needConn: true, fn: interfaceStats})
	serve(procDomainMemoryStats, "DOMAIN_MEMORY_STATS", proc{needConn: true, fn: memoryStats})
	serve(procNodeGetCPUStats, "NODE_GET_CPU_STATS", proc{needConn: true, fn: nodeCPUStats})
	serve(procNodeGetMemoryStats, "NODE_GET_MEMORY_STATS", proc{needConn: true, fn: nodeMemoryStats})
	serve(procConnectGetDomainCapabilities, "CONNECT_GET_DOMAIN_CAPABILITIES", proc{needConn: true, fn: domainCapabilities})
}

// putTypedParam writes a remote_typed_param: its name, then the value as
// a union on its type.
func putTypedParam(e *xdr.Encoder, p virt.TypedParam) error {
	e.String(p.Name)
	e.Int32(int32(p.Type()))
	switch v := p.Value.(type) {
	case int32:
		e.Int32(v)
	case uint32:
		e.Uint32(v)
	case int64:
		e.Int64(v)
	case uint64:
		e.Uint64(v)
	case float64:
		e.Float64(v)
	case bool:
		e.Bool(v)
	case string:
		e.String(v)
	default:
		return fmt.Errorf("typed parameter %q has a value of type %T: %w", p.Name, p.Value, virt.ErrInternal)
	}
	return nil
}

func allDomainStats(ctx context.Context, c *call) error {
	n := c.d.Len(maxDomains, 4+16+4)
	uuids := make([]string, 0, n)
	for i := 0; i < n && c.d.Err() == nil; i++ {
		uuids = append(uuids, c.domain())
	}
	groups := c.d.Uint32()
	flags := c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	if u := virt.StatsFlags(flags).Unknown(); u != 0 {
		return c.checkFlags(uint32(u), 0)
	}
	stats, err := c.conn.DomainStats(ctx, uuids, virt.StatsGroups(groups), virt.StatsFlags(flags))
	if err != nil {
		return err
	}
	if len(stats) > maxDomains {
		return rpcErr(errRPC, "statistics of %d domains are more than one reply may carry (%d)", len(stats), maxDomains)
	}
	c.e.Uint32(uint32(len(stats)))
	for i := range stats {
		s := &stats[i]
		if len(s.Params) > maxTypedParams {
			return rpcErr(errRPC, "%d statistics of domain '%s' are more than one reply may carry (%d)", len(s.Params), s.Domain.Name, maxTypedParams)
		}
		putDomain(c.e, &s.Domain)
		c.e.Uint32(uint32(len(s.Params)))
		for _, p := range s.Params {
			if err := putTypedParam(c.e, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func blockStats(ctx context.Context, c *call) error {
	uuid := c.domain()
	path := c.d.String(maxString)
	if err := c.args(); err != nil {
		return err
	}
	s, err := c.conn.BlockStats(ctx, uuid, path)
	if err != nil {
		return err
	}
	for _, v := range []int64{s.RdReq, s.RdBytes, s.WrReq, s.WrBytes, s.Errs} {
		c.e.Int64(v)
	}
	return nil
}

func interfaceStats(ctx context.Context, c *call) error {
	uuid := c.domain()
	dev := c.d.String(maxString)
	if err := c.args(); err != nil {
		return err
	}
	s, err := c.conn.InterfaceStats(ctx, uuid, dev)
	if err != nil {
		return err
	}
	for _, v := range []int64{s.RxBytes, s.RxPackets, s.RxErrs, s.RxDrop, s.TxBytes, s.TxPackets, s.TxErrs, s.TxDrop} {
		c.e.Int64(v)
	}
	return nil
}

func memoryStats(ctx context.Context, c *call) error {
	uuid := c.domain()
	max := c.d.Uint32()
	flags := c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	if max > maxMemoryStats {
		return rpcErr(errRPC, "maxStats %d is over the limit of %d", max, maxMemoryStats)
	}
	if err := c.checkFlags(flags, 0); err != nil {
		return err
	}
	stats, err := c.conn.MemoryStats(ctx, uuid)
	if err != nil {
		return err
	}
	n := min(len(stats), int(max))
	c.e.Uint32(uint32(n))
	for _, s := range stats[:n] {
		c.e.Int32(int32(s.Tag))
		c.e.Uint64(s.Value)
	}
	return nil
}

// putNodeParams answers NODE_GET_{CPU,MEMORY}_STATS: with nparams 0 the
// number of figures only, else up to nparams of them.
func (c *call) putNodeParams(nparams int32, names []string, values []uint64) error {
	if nparams < 0 || nparams > 16 {
		return &remoteError{code: errInvalidArg, domain: fromRemote, msg: fmt.Sprintf("nparams %d is outside 0..16", nparams)}
	}
	if nparams == 0 {
		c.e.Uint32(0)
		c.e.Int32(int32(len(names)))
		return nil
	}
	n := min(len(names), int(nparams))
	c.e.Uint32(uint32(n))
	for i := 0; i < n; i++ {
		c.e.String(names[i])
		c.e.Uint64(values[i])
	}
	c.e.Int32(int32(n))
	return nil
}

func nodeCPUStats(ctx context.Context, c *call) error {
	cpu := c.d.Int32()
	nparams := c.d.Int32()
	flags := c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	if err := c.checkFlags(flags, 0); err != nil {
		return err
	}
	s, err := c.conn.NodeCPUStats(ctx, int(cpu))
	if err != nil {
		return err
	}
	ns := func(d interface{ Nanoseconds() int64 }) uint64 { return uint64(d.Nanoseconds()) }
	return c.putNodeParams(nparams, []string{"kernel", "user", "idle", "iowait"},
		[]uint64{ns(s.Kernel), ns(s.User), ns(s.Idle), ns(s.IOWait)})
}

func nodeMemoryStats(ctx context.Context, c *call) error {
	nparams := c.d.Int32()
	cell := c.d.Int32()
	flags := c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	if err := c.checkFlags(flags, 0); err != nil {
		return err
	}
	s, err := c.conn.NodeMemoryStats(ctx, int(cell))
	if err != nil {
		return err
	}
	if cell != virt.NodeMemoryStatsAll {
		return c.putNodeParams(nparams, []string{"total", "free"}, []uint64{s.TotalKiB, s.FreeKiB})
	}
	return c.putNodeParams(nparams, []string{"total", "free", "buffers", "cached"},
		[]uint64{s.TotalKiB, s.FreeKiB, s.BuffersKiB, s.CachedKiB})
}

func domainCapabilities(ctx context.Context, c *call) error {
	emulator, _ := c.d.OptString(maxString)
	arch, _ := c.d.OptString(maxString)
	machine, _ := c.d.OptString(maxString)
	virtType, _ := c.d.OptString(maxString)
	flags := c.d.Uint32()
	if err := c.args(); err != nil {
		return err
	}
	// DISABLE_DEPRECATED_FEATURES (1): virtd lists none.
	if err := c.checkFlags(flags, 1); err != nil {
		return err
	}
	s, err := c.conn.DomainCapabilities(ctx, emulator, arch, machine, virtType)
	if err != nil {
		return err
	}
	c.e.String(s)
	return nil
}
