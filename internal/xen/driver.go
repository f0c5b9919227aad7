// Package xen is virtd's Xen driver (executable virtd-driver-xen, URIs
// xen:///system and xen:///): Xen guests through libxl.
//
// The driver opens a libxl context when it starts. Where that fails (no
// Xen hypervisor, as on a KVM host or in a container), it still runs and
// reports itself unavailable with libxl's reason; every domain call then
// fails at once with virt.ErrUnavailable and that reason. Definitions are
// not served either in that state: what a Xen domain is doing can only be
// known from Xen, so listing definitions as "shut off" would be a guess.
// What works anyway: Info, CheckURI, Hostname, and the xl.cfg conversions
// (DomainXMLToNative / DomainXMLFromNative), which are pure Go.
//
// Persistent definitions are libvirt domain XML in the config directory
// (<uuid>.xml, <uuid>.autostart). Running domains belong to Xen, not to
// this process: they outlive the driver, and a restarted driver finds them
// again with libxl_list_domain and the live XML it keeps in the run
// directory.
package xen

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domlist"
	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/driver/hostinfo"
	"github.com/virtd/virtd/internal/version"
	"github.com/virtd/virtd/internal/xen/libxl"
	"github.com/virtd/virtd/internal/xen/xlconfig"
	"github.com/virtd/virtd/virt"
)

// Version is the driver's version: virtd's.
var Version = version.Version

const driverName = "xen"

// Driver is the Xen driver. It is safe for concurrent use.
//
// Lock order: mu, then a domain's lock (package domlist). mu is held for
// every call that reads or changes domains: each first brings the list in
// line with what Xen runs (syncLocked), then works on it.
type Driver struct {
	log       hclog.Logger
	configDir string
	runDir    string

	// hv is nil when no hypervisor can be used; reason says why.
	hv     hypervisor
	reason string

	mu     sync.Mutex
	doms   *domlist.List[*definition, xenState]
	events domutil.Events
}

var (
	_ driver.Driver          = (*Driver)(nil)
	_ driver.NativeConverter = (*Driver)(nil)
)

// New opens libxl and returns the driver on the directories of env; its
// signature is what driver.Serve takes. It never fails: without Xen the
// driver is unavailable, with the reason in Info.
func New(env driver.Env) driver.Driver {
	logger := env.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	var hv hypervisor
	reason := ""
	ctx, err := libxl.Open()
	if err != nil {
		reason = err.Error()
		logger.Warn("Xen is not usable on this host; the driver reports itself unavailable", "reason", reason)
	} else {
		hv = &libxlHypervisor{ctx: ctx}
	}
	return newDriver(logger, hv, reason, env.ConfigDir, env.RunDir)
}

// newDriver builds a driver on hv (nil: unavailable for reason).
func newDriver(logger hclog.Logger, hv hypervisor, reason, configDir, runDir string) *Driver {
	d := &Driver{
		log: logger, configDir: configDir, runDir: runDir,
		hv: hv, reason: reason,
		doms: domlist.New[*definition, xenState](), events: domutil.Events{Log: logger},
	}
	if hv == nil {
		return d
	}
	if configDir == "" || runDir == "" {
		d.hv, d.reason = nil, fmt.Sprintf("the Xen driver needs %s and %s (set by virtd)", driver.EnvConfigDir, driver.EnvRunDir)
		return d
	}
	if err := d.load(); err != nil {
		d.hv, d.reason = nil, err.Error()
		logger.Error("cannot load definitions", "error", err)
		return d
	}
	go d.handleEvents(hv.Events())
	d.autostart()
	return d
}

// unavailable is the error of every domain call without a hypervisor.
func (d *Driver) unavailable() error {
	return fmt.Errorf("xen driver: %s: %w", d.reason, virt.ErrUnavailable)
}

// ready checks ctx and the hypervisor.
func (d *Driver) ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.hv == nil {
		return d.unavailable()
	}
	return nil
}

// Info describes the driver and its health.
func (d *Driver) Info(ctx context.Context) (*driver.Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	info := &driver.Info{
		Name:           driverName,
		Version:        Version,
		Schemes:        []string{"xen"},
		Health:         driver.HealthAvailable,
		HypervisorType: "Xen",
	}
	if d.hv == nil {
		info.Health, info.HealthReason = driver.HealthUnavailable, d.reason
	} else {
		info.HypervisorVersion = d.hv.Version()
	}
	return info, nil
}

// uris are the URIs served: xen:///system, also written xen:///.
var uris = hostinfo.URIs{Driver: "Xen", Scheme: "xen", Paths: []string{"/system", "/", ""}}

// CheckURI accepts xen:///system and xen:/// (with a transport, as in
// xen+unix:///system), with or without a hypervisor.
func (d *Driver) CheckURI(ctx context.Context, uri string) error {
	return uris.Check(ctx, uri)
}

// Hostname returns the host's name.
func (d *Driver) Hostname(ctx context.Context) (string, error) {
	return hostinfo.Hostname(ctx)
}

// NodeInfo reads the host from Xen.
func (d *Driver) NodeInfo(ctx context.Context) (*virt.NodeInfo, error) {
	if err := d.ready(ctx); err != nil {
		return nil, err
	}
	p, err := d.hv.PhysInfo()
	if err != nil {
		return nil, virt.Errorf(virt.ErrInternal, "node info: %w", err)
	}
	threads, cores := max(p.ThreadsPerCore, 1), max(p.CoresPerSocket, 1)
	nodes := max(p.Nodes, 1)
	return &virt.NodeInfo{
		Model: "x86_64", MemoryKiB: p.MemoryKiB, CPUs: p.CPUs, MHz: p.MHz, Nodes: nodes,
		Sockets: max(p.CPUs/(threads*cores*nodes), 1), Cores: cores, Threads: threads,
	}, nil
}

// Capabilities describes the guests Xen runs here: PV, HVM and PVH on
// x86_64.
func (d *Driver) Capabilities(ctx context.Context) (string, error) {
	if err := d.ready(ctx); err != nil {
		return "", err
	}
	return capabilities()
}

// RunningGuests counts the domains Xen runs, domain 0 aside. Xen guests
// outlive the driver, so it is always safe to stop; it reports them anyway
// so that an idle stop does not hide them from `virtsh drivers`.
func (d *Driver) RunningGuests(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if d.hv == nil {
		return 0, nil
	}
	doms, err := d.hv.List()
	if err != nil {
		return 0, virt.Errorf(virt.ErrInternal, "list Xen domains: %w", err)
	}
	n := 0
	for _, x := range doms {
		if x.DomID != 0 {
			n++
		}
	}
	return n, nil
}

// DomainXMLToNative converts domain XML to xl.cfg. It needs no hypervisor.
func (d *Driver) DomainXMLToNative(ctx context.Context, format, xml string) (string, error) {
	if err := checkFormat(ctx, format); err != nil {
		return "", err
	}
	return xlconfig.ToNative(xml)
}

// DomainXMLFromNative converts xl.cfg to domain XML. It needs no
// hypervisor.
func (d *Driver) DomainXMLFromNative(ctx context.Context, format, config string) (string, error) {
	if err := checkFormat(ctx, format); err != nil {
		return "", err
	}
	return xlconfig.FromNative(config)
}

func checkFormat(ctx context.Context, format string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if format != xlconfig.Format {
		return fmt.Errorf("native format %q is not supported by the Xen driver (only %q): %w", format, xlconfig.Format, virt.ErrNotSupported)
	}
	return nil
}
