// Package testdriver is virtd's test driver (executable virtd-driver-test,
// URI test:///default): an in-memory hypervisor in the spirit of libvirt's
// test:///default. Nothing runs and nothing is written to disk; domains,
// their states and their events live in the driver process and vanish with
// it. It starts with one running persistent domain, "test", as libvirt's
// does, and serves as the reference implementation of driver.Driver and the
// first user of the conformance suite in driver/drivertest.
package testdriver

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domlist"
	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/driver/hostinfo"
	"github.com/virtd/virtd/internal/version"
	"github.com/virtd/virtd/virt"
)

// Version is the driver's version: virtd's.
var Version = version.Version

const (
	driverName = "test"
	domainType = "test"
	// hypervisorVersion is 2.0.0 in libvirt's encoding
	// (major*1000000 + minor*1000 + micro), as libvirt's test driver reports.
	hypervisorVersion = 2000000
	// subscriberBuffer is how many events a WatchEvents subscriber may fall
	// behind before it is dropped.
	subscriberBuffer = domutil.DefaultEventBuffer
)

// The default domain, as in libvirt's test:///default.
const (
	defaultDomainName = "test"
	defaultDomainUUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
)

// nodeInfo is libvirt's test driver's node: 16 i686 CPUs at 1400 MHz in 2
// NUMA nodes of 2 sockets, 2 cores, 2 threads, and 3 GiB of memory.
var nodeInfo = virt.NodeInfo{
	Model:     "i686",
	MemoryKiB: 3 * 1024 * 1024,
	CPUs:      16,
	MHz:       1400,
	Nodes:     2,
	Sockets:   2,
	Cores:     2,
	Threads:   2,
}

// guestArches are the guest architectures the capabilities offer; the first
// is the default for a definition without arch.
var guestArches = []string{"i686", "x86_64"}

// Driver is the test driver. It is safe for concurrent use.
//
// Each domain has its own lock (package domlist). Events about a domain
// are published while its lock is held, with non-blocking sends, so every
// subscriber sees them in the order of its changes.
type Driver struct {
	log      hclog.Logger
	hostUUID string
	// started is when the driver started: the test node's CPU times
	// count from it.
	started time.Time

	doms *domlist.List[*config, cpuUse]
	// lastID is the ID last given to a started domain.
	lastID atomic.Int32
	events domutil.Events
}

var _ driver.Driver = (*Driver)(nil)

// domain is one domain; its fields are guarded by its lock.
type domain = domlist.Object[*config, cpuUse]

// cpuUse is what the test driver keeps about a domain besides its
// definitions and state: the CPU time it has used.
type cpuUse struct {
	// cpuTime is the CPU time accumulated up to runningSince (zero when
	// not running).
	cpuTime      time.Duration
	runningSince time.Time
}

// New returns a test driver holding libvirt's default domain "test",
// running with ID 1. It needs nothing of env but its logger. Its
// signature is what driver.Serve takes.
func New(env driver.Env) driver.Driver {
	logger := env.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	drv := &Driver{
		log:      logger,
		hostUUID: domutil.NewUUID(),
		started:  time.Now(),
		doms:     domlist.New[*config, cpuUse](),
		events:   domutil.Events{Log: logger},
	}
	drv.addDefaultDomain()
	return drv
}

func (drv *Driver) addDefaultDomain() {
	x := &libvirtxml.Domain{
		Type:          domainType,
		Name:          defaultDomainName,
		UUID:          defaultDomainUUID,
		Memory:        &libvirtxml.DomainMemory{Value: 8 * 1024 * 1024, Unit: "KiB"},
		CurrentMemory: &libvirtxml.DomainCurrentMemory{Value: 2 * 1024 * 1024, Unit: "KiB"},
		VCPU:          &libvirtxml.DomainVCPU{Placement: "static", Value: 2},
		OS:            &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "i686", Type: "hvm"}},
		OnPoweroff:    "destroy",
		OnReboot:      "restart",
		OnCrash:       "destroy",
	}
	doc, err := x.Marshal()
	if err != nil {
		panic(fmt.Sprintf("testdriver: default domain: %v", err))
	}
	c, err := parseConfig(doc)
	if err != nil {
		panic(fmt.Sprintf("testdriver: default domain: %v", err))
	}
	d, _, err := drv.doms.Define(c, nil)
	if err != nil {
		panic(fmt.Sprintf("testdriver: default domain: %v", err))
	}
	drv.startLocked(d, d.Persistent, time.Now())
	d.Unlock()
}

// Info describes the driver.
func (drv *Driver) Info(ctx context.Context) (*driver.Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &driver.Info{
		Name:              driverName,
		Version:           Version,
		Schemes:           []string{"test"},
		Health:            driver.HealthAvailable,
		HypervisorType:    "Test",
		HypervisorVersion: hypervisorVersion,
	}, nil
}

// RunningGuests counts the active domains. They live in this process, so
// the driver must not be stopped while it is not zero.
func (drv *Driver) RunningGuests(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	drv.doms.Each(func(d *domain) {
		if d.State.Active() {
			n++
		}
	})
	return n, nil
}

// uris are the URIs served: test:///default only.
var uris = hostinfo.URIs{Driver: driverName, Scheme: "test", Paths: []string{"/default"}}

// CheckURI accepts test:///default (also with a transport, as in
// test+unix:///default, and with query parameters, which the daemon
// consumes) and refuses every other URI.
func (drv *Driver) CheckURI(ctx context.Context, uri string) error {
	return uris.Check(ctx, uri)
}

// Hostname returns the host's name.
func (drv *Driver) Hostname(ctx context.Context) (string, error) {
	return hostinfo.Hostname(ctx)
}

// NodeInfo returns libvirt's test driver's fixed node.
func (drv *Driver) NodeInfo(ctx context.Context) (*virt.NodeInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ni := nodeInfo
	return &ni, nil
}

// Capabilities returns a small libvirt capabilities document: an i686 host
// and hvm guests of type 'test' on i686 and x86_64.
func (drv *Driver) Capabilities(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	ni := nodeInfo
	caps := hostinfo.Caps{HostUUID: drv.hostUUID, Arch: nodeInfo.Model, Topology: &ni}
	for _, a := range guestArches {
		caps.Guests = append(caps.Guests, hostinfo.Guest{
			OSType: "hvm", Arch: a, Emulator: "/usr/bin/test-hv", DomainTypes: []string{domainType},
		})
	}
	return caps.XML()
}

// ListDomains returns the domains that pass flags, the way `virsh list`
// shows them: active domains by ID, then inactive ones by name.
func (drv *Driver) ListDomains(ctx context.Context, flags virt.ListFlags) ([]virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return drv.doms.List(flags), nil
}

// LookupDomain finds a domain by name, UUID or (active domains only) ID.
func (drv *Driver) LookupDomain(ctx context.Context, key virt.Lookup) (*virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return drv.doms.Lookup(key)
}

// withDomain runs fn on the domain with that UUID, holding its lock.
func (drv *Driver) withDomain(ctx context.Context, uuid string, fn func(d *domain) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d, err := drv.doms.Find(virt.ByUUID(uuid))
	if err != nil {
		return err
	}
	defer d.Unlock()
	return fn(d)
}
