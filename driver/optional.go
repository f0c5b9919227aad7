package driver

import (
	"context"
	"io"

	"github.com/virtd/virtd/virt"
)

// Optional features. A driver implements them by having the methods; the
// shims find them by type assertion, and a driver without one answers
// virt.ErrNotSupported. Info.Features names them for clients.
const (
	FeatureToNative   = "domxml-to-native"
	FeatureFromNative = "domxml-from-native"
	FeatureConsole    = "console"
	// FeatureStats is Stats; FeatureDomainCapabilities is
	// DomainCapabilities.
	FeatureStats              = "stats"
	FeatureDomainCapabilities = "domain-capabilities"
)

// NativeConverter converts between domain XML and a hypervisor's native
// configuration (virsh domxml-to-native / domxml-from-native). A format
// the driver does not know is refused with virt.ErrNotSupported.
type NativeConverter interface {
	DomainXMLToNative(ctx context.Context, format, xml string) (string, error)
	DomainXMLFromNative(ctx context.Context, format, config string) (string, error)
}

// Consoler attaches to a domain's text console (virsh console). devName ""
// means the first console or serial port. Closing the stream detaches.
type Consoler interface {
	OpenConsole(ctx context.Context, uuid, devName string) (io.ReadWriteCloser, error)
}

// Stats reads the figures that move by themselves: CPU time, memory,
// disk and network counters of domains, and the host's CPU and memory.
// The host keeps none of them in its view: every call reaches the driver.
// A driver that has some of them answers virt.ErrNotSupported for the
// others.
//
// The calls are libvirt's, and so are their errors: block, interface and
// memory statistics of a domain that is not running are
// virt.ErrFailedPrecondition (domutil.NotRunning); a disk or interface
// the domain does not have is virt.ErrInvalidArgument (domutil.NoDisk,
// domutil.NoInterface); so is a CPU or NUMA cell the host does not have.
type Stats interface {
	// DomainStats is libvirt's virConnectGetAllDomainStats when uuids is
	// empty (every domain that passes flags' filter), and
	// virDomainListGetStats otherwise (those domains, in that order, that
	// pass the filter; a UUID that names no domain is skipped). groups
	// are chosen as domutil.StatsGroups says. A group that does not apply
	// to a domain in its state (CPU time of a domain that is not running)
	// is left out of its record.
	DomainStats(ctx context.Context, uuids []string, groups virt.StatsGroups, flags virt.StatsFlags) ([]virt.DomainStats, error)
	// BlockStats reads a running domain's disk, named by its target
	// ("vda") or source path; disk "" sums every disk.
	BlockStats(ctx context.Context, uuid, disk string) (*virt.BlockStats, error)
	// InterfaceStats reads a running domain's interface, named by its
	// host device ("vnet0") or MAC address, as the guest sees it.
	InterfaceStats(ctx context.Context, uuid, iface string) (*virt.InterfaceStats, error)
	// MemoryStats reads a running domain's memory figures.
	MemoryStats(ctx context.Context, uuid string) ([]virt.MemoryStat, error)
	// NodeCPUStats reads the time the host's CPUs spent in each state: cpu
	// is one CPU, or virt.NodeCPUStatsAll.
	NodeCPUStats(ctx context.Context, cpu int) (*virt.NodeCPUStats, error)
	// NodeMemoryStats reads the host's memory: cell is one NUMA cell, or
	// virt.NodeMemoryStatsAll.
	NodeMemoryStats(ctx context.Context, cell int) (*virt.NodeMemoryStats, error)
}

// DomainCapabilities returns libvirt's domainCapabilities XML (virsh
// domcapabilities): what a domain of type virtType, on arch and machine,
// run by emulator, may have, as the driver supports it. An empty argument
// takes the driver's default; one the driver does not have is
// virt.ErrInvalidArgument.
type DomainCapabilities interface {
	DomainCapabilities(ctx context.Context, emulator, arch, machine, virtType string) (string, error)
}

// withOptionalFeatures adds the optional features impl implements.
func withOptionalFeatures(features []string, impl Driver) []string {
	has := map[string]bool{}
	for _, f := range features {
		has[f] = true
	}
	add := func(f string, ok bool) {
		if ok && !has[f] {
			features = append(features, f)
		}
	}
	_, conv := impl.(NativeConverter)
	_, con := impl.(Consoler)
	_, stats := impl.(Stats)
	_, domcaps := impl.(DomainCapabilities)
	add(FeatureToNative, conv)
	add(FeatureFromNative, conv)
	add(FeatureConsole, con)
	add(FeatureStats, stats)
	add(FeatureDomainCapabilities, domcaps)
	return features
}
