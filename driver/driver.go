// Package driver is what a virtd driver author imports: the Driver
// interface, Serve to run it as a virtd-driver-<name> executable, and the
// two gRPC shims (one per direction) that carry the driver API v1 between
// the daemon and the driver process. Proto types never leave this package:
// drivers and the daemon see only Driver and package virt's types.
//
// A driver's main is one call, with a constructor that takes the Env the
// host gives:
//
//	func main() { driver.Serve(mydriver.New) } // mydriver.New(driver.Env) driver.Driver
package driver

import (
	"context"

	"github.com/virtd/virtd/virt"
)

// APIVersion is the driver API version this package speaks.
const APIVersion = 1

// Health says whether a driver can manage guests on this host.
type Health int

// Health values.
const (
	HealthUnknown Health = iota
	// HealthAvailable: the driver can manage guests here.
	HealthAvailable
	// HealthUnavailable: the driver runs, but cannot manage guests here;
	// Info.HealthReason says why.
	HealthUnavailable
)

func (h Health) String() string {
	switch h {
	case HealthAvailable:
		return "available"
	case HealthUnavailable:
		return "unavailable"
	}
	return "unknown"
}

// Info describes a driver.
type Info struct {
	// Name is the driver's name, the <name> of virtd-driver-<name>.
	Name    string
	Version string
	// Schemes are the URI schemes the driver serves ("qemu", "test").
	Schemes      []string
	Health       Health
	HealthReason string
	// Features lists optional additions to API v1 the driver implements.
	Features []string
	// HypervisorType and HypervisorVersion are what `virsh version` calls
	// the running hypervisor ("QEMU", 8002002 for 8.2.2).
	HypervisorType    string
	HypervisorVersion uint64
}

// Driver is what every virtd driver implements. The daemon reaches it
// through the gRPC shims; a driver never imports grpc.
//
// Domains are named by UUID in every call after lookup. Errors carry one of
// virt's kinds (virt.ErrNotFound, ...), wrapped with context.
type Driver interface {
	Info(ctx context.Context) (*Info, error)
	// RunningGuests counts the guests this driver runs now. The daemon stops
	// an idle driver only when it is zero.
	RunningGuests(ctx context.Context) (int, error)
	// CheckURI accepts or refuses a connection URI whose scheme the driver
	// serves ("test:///default" yes, "test:///nowhere" no).
	CheckURI(ctx context.Context, uri string) error

	Hostname(ctx context.Context) (string, error)
	// Capabilities returns libvirt's capabilities XML.
	Capabilities(ctx context.Context) (string, error)
	NodeInfo(ctx context.Context) (*virt.NodeInfo, error)

	ListDomains(ctx context.Context, flags virt.ListFlags) ([]virt.Domain, error)
	LookupDomain(ctx context.Context, key virt.Lookup) (*virt.Domain, error)
	// DefineDomain makes a persistent definition from libvirt domain XML, or
	// updates the one with the same UUID (or name).
	DefineDomain(ctx context.Context, xml string) (*virt.Domain, error)
	// UndefineDomain removes the persistent definition; a running domain
	// becomes transient and vanishes when it stops.
	UndefineDomain(ctx context.Context, uuid string) error
	StartDomain(ctx context.Context, uuid string) (*virt.Domain, error)
	// CreateDomain starts a domain from libvirt domain XML without making
	// a persistent definition (libvirt's virDomainCreateXML, virsh
	// create): the domain is transient, running (or paused) while it
	// exists, and vanishes when it stops for any reason, with a Stopped
	// event and no Undefined one. It emits Started (booted). The name and
	// UUID rules are package domlist's (Create): the name and UUID of an
	// inactive persistent domain start that domain with xml as its live
	// definition; those of an active one are refused as
	// virt.ErrFailedPrecondition; a name or UUID another domain holds, as
	// virt.ErrAlreadyExists.
	CreateDomain(ctx context.Context, xml string) (*virt.Domain, error)
	// ShutdownDomain asks the guest to power off (ACPI) and returns at once;
	// DestroyDomain pulls the plug. Both keep the definition.
	ShutdownDomain(ctx context.Context, uuid string) error
	RebootDomain(ctx context.Context, uuid string) error
	DestroyDomain(ctx context.Context, uuid string) error
	SuspendDomain(ctx context.Context, uuid string) error
	ResumeDomain(ctx context.Context, uuid string) error
	DomainInfo(ctx context.Context, uuid string) (*virt.DomainInfo, error)
	DomainState(ctx context.Context, uuid string) (state virt.State, reason int32, err error)
	// DomainXML returns the live XML, or the persistent definition when
	// inactive is true.
	DomainXML(ctx context.Context, uuid string, inactive bool) (string, error)
	DomainAutostart(ctx context.Context, uuid string) (bool, error)
	SetDomainAutostart(ctx context.Context, uuid string, autostart bool) error

	// WatchEvents returns lifecycle events, in order, until ctx ends; then
	// the channel is closed.
	WatchEvents(ctx context.Context) (<-chan virt.Event, error)
}
