package core

import (
	"context"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/virt"
)

// Statistics and domain capabilities: reads, so read-only connections may
// make them. Their figures move by themselves, so the view keeps none of
// them: every call goes to the driver.

// stats runs fn on the driver's statistics.
func stats[T any](c *Conn, ctx context.Context, fn func(driver.Stats) (T, error)) (T, error) {
	return read(c, ctx, func(d driver.Driver) (T, error) {
		st, ok := d.(driver.Stats)
		if !ok {
			var zero T
			return zero, notSupported(driver.FeatureStats)
		}
		return fn(st)
	})
}

// DomainStats returns the statistics of the domains uuids names, or of
// every domain when it is empty; flags filter them (libvirt's
// virConnectGetAllDomainStats and virDomainListGetStats).
func (c *Conn) DomainStats(ctx context.Context, uuids []string, groups virt.StatsGroups, flags virt.StatsFlags) ([]virt.DomainStats, error) {
	return stats(c, ctx, func(st driver.Stats) ([]virt.DomainStats, error) {
		return st.DomainStats(ctx, uuids, groups, flags)
	})
}

// BlockStats returns the counters of a running domain's disk; disk ""
// sums every disk.
func (c *Conn) BlockStats(ctx context.Context, uuid, disk string) (*virt.BlockStats, error) {
	return stats(c, ctx, func(st driver.Stats) (*virt.BlockStats, error) { return st.BlockStats(ctx, uuid, disk) })
}

// InterfaceStats returns the counters of a running domain's interface.
func (c *Conn) InterfaceStats(ctx context.Context, uuid, iface string) (*virt.InterfaceStats, error) {
	return stats(c, ctx, func(st driver.Stats) (*virt.InterfaceStats, error) { return st.InterfaceStats(ctx, uuid, iface) })
}

// MemoryStats returns the memory figures of a running domain.
func (c *Conn) MemoryStats(ctx context.Context, uuid string) ([]virt.MemoryStat, error) {
	return stats(c, ctx, func(st driver.Stats) ([]virt.MemoryStat, error) { return st.MemoryStats(ctx, uuid) })
}

// NodeCPUStats returns the time the host's CPUs (one, or all) spent in
// each state.
func (c *Conn) NodeCPUStats(ctx context.Context, cpu int) (*virt.NodeCPUStats, error) {
	return stats(c, ctx, func(st driver.Stats) (*virt.NodeCPUStats, error) { return st.NodeCPUStats(ctx, cpu) })
}

// NodeMemoryStats returns the host's memory, or one NUMA cell's.
func (c *Conn) NodeMemoryStats(ctx context.Context, cell int) (*virt.NodeMemoryStats, error) {
	return stats(c, ctx, func(st driver.Stats) (*virt.NodeMemoryStats, error) { return st.NodeMemoryStats(ctx, cell) })
}

// DomainCapabilities returns libvirt's domainCapabilities XML for an
// emulator, architecture, machine and domain type (each "" for the
// driver's default).
func (c *Conn) DomainCapabilities(ctx context.Context, emulator, arch, machine, virtType string) (string, error) {
	return read(c, ctx, func(d driver.Driver) (string, error) {
		dc, ok := d.(driver.DomainCapabilities)
		if !ok {
			return "", notSupported(driver.FeatureDomainCapabilities)
		}
		return dc.DomainCapabilities(ctx, emulator, arch, machine, virtType)
	})
}
