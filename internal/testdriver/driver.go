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
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/internal/version"
	"github.com/virtd/virtd/virt"
)

// Version is the driver's version: virtd's.
var Version = version.Version

const (
	driverName = "test"
	domainType = "test"
	// defaultURI is the only URI served.
	defaultURI = "test:///default"
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
var guestArches = []struct {
	name     string
	wordSize string
}{
	{"i686", "32"},
	{"x86_64", "64"},
}

func knownArch(a string) bool {
	for _, g := range guestArches {
		if g.name == a {
			return true
		}
	}
	return false
}

// Driver is the test driver. It is safe for concurrent use.
//
// Lock order: mu only. Events are published while mu is held, with
// non-blocking sends, so every subscriber sees them in Seq order.
type Driver struct {
	log      hclog.Logger
	hostname string
	hostUUID string

	mu     sync.Mutex
	byUUID map[string]*domain
	byName map[string]*domain
	byID   map[int32]*domain
	nextID int32
	events domutil.Events // emitted under mu, so in the order of the changes
}

var _ driver.Driver = (*Driver)(nil)

// domain is one domain's state. Fields are guarded by Driver.mu.
type domain struct {
	// name and uuid never change (renaming is not supported).
	name, uuid string
	// persistent is the persistent definition; nil for a transient domain.
	persistent *config
	// live is the definition the running instance was started with; nil
	// when inactive.
	live      *config
	id        int32
	state     virt.State
	reason    int32
	autostart bool
	// cpuTime is the CPU time accumulated up to runningSince (zero when
	// not running).
	cpuTime      time.Duration
	runningSince time.Time
}

// current is the definition that describes the domain now.
func (d *domain) current() *config {
	if d.live != nil {
		return d.live
	}
	return d.persistent
}

func (d *domain) view() virt.Domain {
	id := int32(-1)
	if d.state.Active() {
		id = d.id
	}
	return virt.Domain{
		Name:       d.name,
		UUID:       d.uuid,
		ID:         id,
		State:      d.state,
		Reason:     d.reason,
		Persistent: d.persistent != nil,
		Autostart:  d.autostart,
	}
}

// New returns a test driver holding libvirt's default domain "test",
// running with ID 1. Its signature is what driver.Serve takes.
func New(logger hclog.Logger) driver.Driver {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	host, err := os.Hostname()
	if err != nil {
		logger.Warn("cannot read hostname", "error", err)
		host = "localhost"
	}
	drv := &Driver{
		log:      logger,
		hostname: host,
		hostUUID: domutil.NewUUID(),
		byUUID:   make(map[string]*domain),
		byName:   make(map[string]*domain),
		byID:     make(map[int32]*domain),
		nextID:   1,
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
	d := &domain{name: c.name(), uuid: c.uuid(), persistent: c}
	drv.byUUID[c.uuid()] = d
	drv.byName[c.name()] = d
	drv.startLocked(d, time.Now())
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
	drv.mu.Lock()
	defer drv.mu.Unlock()
	return len(drv.byID), nil
}

// CheckURI accepts test:///default (also with a transport, as in
// test+unix:///default, and with query parameters, which the daemon
// consumes) and refuses every other URI.
func (drv *Driver) CheckURI(ctx context.Context, uri string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("URI %q: %v (the test driver serves only %s): %w", uri, err, defaultURI, virt.ErrInvalidArgument)
	}
	scheme, _, _ := strings.Cut(u.Scheme, "+")
	if scheme != driverName || u.Host != "" || u.Path != "/default" || u.Opaque != "" {
		return fmt.Errorf("URI %q is not served by the test driver: only %s is: %w",
			uri, defaultURI, virt.ErrInvalidArgument)
	}
	return nil
}

// Hostname returns the host's name.
func (drv *Driver) Hostname(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return drv.hostname, nil
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
	caps := libvirtxml.Caps{
		Host: libvirtxml.CapsHost{
			UUID: drv.hostUUID,
			CPU: &libvirtxml.CapsHostCPU{
				Arch: nodeInfo.Model,
				Topology: &libvirtxml.CapsHostCPUTopology{
					Sockets: int(nodeInfo.Sockets),
					Cores:   int(nodeInfo.Cores),
					Threads: int(nodeInfo.Threads),
				},
			},
		},
	}
	for _, a := range guestArches {
		caps.Guests = append(caps.Guests, libvirtxml.CapsGuest{
			OSType: "hvm",
			Arch: libvirtxml.CapsGuestArch{
				Name:     a.name,
				WordSize: a.wordSize,
				Emulator: "/usr/bin/test-hv",
				Domains:  []libvirtxml.CapsGuestDomain{{Type: domainType}},
			},
		})
	}
	s, err := caps.Marshal()
	if err != nil {
		return "", fmt.Errorf("capabilities: %v: %w", err, virt.ErrInternal)
	}
	return s, nil
}

// ListDomains returns the domains that pass flags, the way `virsh list`
// shows them: active domains by ID, then inactive ones by name.
func (drv *Driver) ListDomains(ctx context.Context, flags virt.ListFlags) ([]virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	drv.mu.Lock()
	all := domutil.Views(drv.byUUID, (*domain).view)
	drv.mu.Unlock()
	return domutil.Filter(all, flags), nil
}

// LookupDomain finds a domain by name, UUID or (active domains only) ID.
func (drv *Driver) LookupDomain(ctx context.Context, key virt.Lookup) (*virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	d, err := domutil.Lookup(key, drv.byName, drv.byUUID, func(id int32) (*domain, bool) {
		d, ok := drv.byID[id]
		return d, ok
	})
	if err != nil {
		return nil, err
	}
	v := d.view()
	return &v, nil
}

// withDomain runs fn on the domain with that UUID, holding the lock.
func (drv *Driver) withDomain(ctx context.Context, uuid string, fn func(d *domain) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	d, err := domutil.ByUUID(drv.byUUID, uuid)
	if err != nil {
		return err
	}
	return fn(d)
}
