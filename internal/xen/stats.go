package xen

import (
	"context"
	"fmt"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/internal/xen/libxl"
	"github.com/virtd/virtd/virt"
)

// Statistics: what libxl's domain list gives of each domain (its CPU time,
// memory and online vCPUs) makes DomainStats' state, cpu-total (cpu.time
// only: Xen does not split it into user and system time), balloon and
// vcpu (counts only) groups. The driver does not read disk, network or
// memory counters, nor the host's through Xen (the host's /proc would
// show domain 0 only): those calls, and domain capabilities, are not
// supported.

var _ driver.Stats = (*Driver)(nil)

const statsGroups = virt.StatsState | virt.StatsCPUTotal | virt.StatsBalloon | virt.StatsVCPU

// DomainStats reads the statistics of the domains from a look at what Xen
// runs (see above).
func (d *Driver) DomainStats(ctx context.Context, uuids []string, groups virt.StatsGroups, flags virt.StatsFlags) ([]virt.DomainStats, error) {
	if err := d.ready(ctx); err != nil {
		return nil, err
	}
	groups, err := domutil.StatsGroups(groups, statsGroups, flags)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.syncLocked(); err != nil {
		return nil, err
	}
	objs, err := d.doms.Select(uuids, flags.List())
	if err != nil {
		return nil, err
	}
	out := make([]virt.DomainStats, 0, len(objs))
	for _, o := range objs {
		o.Lock()
		if !o.Removed() {
			out = append(out, virt.DomainStats{Domain: o.View(), Params: statsParams(o, groups)})
		}
		o.Unlock()
	}
	return out, nil
}

// statsParams are the figures of the locked domain o.
func statsParams(o *domain, groups virt.StatsGroups) virt.TypedParams {
	var b domutil.StatsBuilder
	i, def := o.Priv.info, o.Current()
	if groups&virt.StatsState != 0 {
		b.State(o.State, o.Reason)
	}
	if groups&virt.StatsCPUTotal != 0 && i != nil {
		b.CPUTime(i.CPUTime)
	}
	if groups&virt.StatsBalloon != 0 {
		switch {
		case i != nil:
			b.Balloon(i.CurrentMemKiB, i.MaxMemKiB)
		case def != nil:
			b.Balloon(def.cfg.MaxMemKiB, def.cfg.MaxMemKiB)
		}
	}
	if groups&virt.StatsVCPU != 0 {
		switch {
		case i != nil:
			b.VCPUs(i.VCPUsOnline, maxVCPUs(i, def))
		case def != nil:
			b.VCPUs(uint32(def.cfg.VCPUs), uint32(def.cfg.MaxVCPUs))
		}
	}
	return b.Params
}

// maxVCPUs is a running domain's vCPU limit: its definition's, or the
// vCPUs it has online when the driver did not define it.
func maxVCPUs(i *libxl.DomInfo, def *definition) uint32 {
	if def != nil && uint32(def.cfg.MaxVCPUs) >= i.VCPUsOnline {
		return uint32(def.cfg.MaxVCPUs)
	}
	return i.VCPUsOnline
}

func notSupported(what string) error {
	return fmt.Errorf("the Xen driver does not read %s: %w", what, virt.ErrNotSupported)
}

// BlockStats is not supported: the driver reads no disk counters.
func (d *Driver) BlockStats(context.Context, string, string) (*virt.BlockStats, error) {
	return nil, notSupported("block statistics")
}

// InterfaceStats is not supported: the driver reads no network counters.
func (d *Driver) InterfaceStats(context.Context, string, string) (*virt.InterfaceStats, error) {
	return nil, notSupported("interface statistics")
}

// MemoryStats is not supported: the driver reads no guest memory figures.
func (d *Driver) MemoryStats(context.Context, string) ([]virt.MemoryStat, error) {
	return nil, notSupported("memory statistics")
}

// NodeCPUStats is not supported: the host's CPU times are Xen's, not
// domain 0's /proc.
func (d *Driver) NodeCPUStats(context.Context, int) (*virt.NodeCPUStats, error) {
	return nil, notSupported("the host's CPU statistics")
}

// NodeMemoryStats is not supported, for the same reason.
func (d *Driver) NodeMemoryStats(context.Context, int) (*virt.NodeMemoryStats, error) {
	return nil, notSupported("the host's memory statistics")
}
