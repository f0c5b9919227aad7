// Package lxc is virtd's LXC driver (executable virtd-driver-lxc, URI
// lxc:///system): real Linux containers built from namespaces and cgroups,
// the way libvirt's LXC driver builds them, without the lxc tools. Each
// running container has its own controller process (package controller),
// detached from the driver, so that containers outlive a driver or daemon
// restart; the driver finds them again through the run directory.
//
// Files: persistent definitions in the config directory (<uuid>.xml, and
// autostart/<uuid> markers); per running container, in the run directory,
// <uuid>.xml (live XML), <uuid>.spec (what the controller runs),
// <uuid>.sock (the controller's socket), <uuid>.state (controller and init
// pids) and, once it has stopped, <uuid>.exit; controller logs in the log
// directory (<uuid>.log). Files are named by UUID, never by domain name: a
// name may be 255 bytes long, which leaves no room for a suffix in a file
// name. Definitions an earlier version wrote by name (<name>.xml,
// autostart/<name>) are renamed when loaded.
package lxc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domlist"
	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/driver/hostinfo"
	"github.com/virtd/virtd/internal/cgroup"
	"github.com/virtd/virtd/internal/defdir"
	"github.com/virtd/virtd/internal/version"
	"github.com/virtd/virtd/virt"
)

// Version is the driver's version: virtd's.
var Version = version.Version

const (
	driverName = "lxc"
	// DefaultCgroupParent is the cgroup under which containers' are made.
	DefaultCgroupParent = "virtd-lxc"
)

// Options are the driver's directories and settings.
type Options struct {
	// The driver's directories (driver.Env's); all must be set.
	ConfigDir, StateDir, RunDir, LogDir string
	// Executable is the driver executable re-run as controller; default
	// the running one.
	Executable   string
	CgroupParent string
	// NoAutostart skips starting autostart domains at creation.
	NoAutostart bool
}

func (o *Options) fill() {
	if o.Executable == "" {
		o.Executable, _ = os.Executable()
	}
	if o.CgroupParent == "" {
		o.CgroupParent = DefaultCgroupParent
	}
}

// Driver is the LXC driver. It is safe for concurrent use.
//
// Each domain has its own lock (package domlist); mu guards the driver's
// own fields. Events about a domain are published under its lock, with
// non-blocking sends, so subscribers see them in the order of its changes.
type Driver struct {
	log  hclog.Logger
	opts Options
	// hier is nil when the host has no usable cgroups (health says why).
	hier      *cgroup.Hierarchy
	health    driver.Health
	healthWhy string
	hostUUID  string

	doms   *domlist.List[*config, container]
	events domutil.Events

	mu     sync.Mutex
	closed bool
	// spare is a controller started ahead of need (spare.go).
	spare *ctlProc
}

var (
	_ driver.Driver = (*Driver)(nil)
)

// domain is one domain; its fields are guarded by its lock. Its ID is its
// controller's pid.
type domain = domlist.Object[*config, container]

// container is what the driver keeps about a domain's container.
type container struct {
	run *run
	// starting is set while a start is under way (without the lock).
	starting bool
}

// New returns the driver on the directories of env. Its signature is what
// driver.Serve takes.
func New(env driver.Env) driver.Driver {
	d, err := NewWithOptions(env.Logger, Options{
		ConfigDir: env.ConfigDir, StateDir: env.StateDir, RunDir: env.RunDir, LogDir: env.LogDir,
	})
	if err != nil {
		d.log.Error("lxc driver", "error", err)
	}
	return d
}

// NewWithOptions returns the driver: it loads the persistent definitions,
// reconnects to the controllers of running containers and, once per host
// boot, starts the autostart domains. An error is returned with a usable
// driver that reports it in its health.
func NewWithOptions(logger hclog.Logger, opts Options) (*Driver, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	opts.fill()
	drv := &Driver{
		log: logger, opts: opts, health: driver.HealthAvailable, hostUUID: domutil.NewUUID(),
		doms: domlist.New[*config, container](), events: domutil.Events{Log: logger},
	}
	if opts.ConfigDir == "" || opts.StateDir == "" || opts.RunDir == "" || opts.LogDir == "" {
		err := fmt.Errorf("lxc driver: its config, state, run and log directories must be set: %w", virt.ErrInvalidArgument)
		drv.health, drv.healthWhy = driver.HealthUnavailable, err.Error()
		return drv, err
	}
	var firstErr error
	for _, d := range []string{opts.ConfigDir, filepath.Join(opts.ConfigDir, "autostart"), opts.RunDir, opts.LogDir} {
		if err := os.MkdirAll(d, 0o700); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if h, err := cgroup.Detect(); err != nil {
		drv.health, drv.healthWhy = driver.HealthUnavailable, err.Error()
	} else {
		drv.hier = h
	}
	if os.Geteuid() != 0 {
		drv.health, drv.healthWhy = driver.HealthUnavailable, "the lxc driver needs root to create containers"
	}
	if err := drv.load(); err != nil && firstErr == nil {
		firstErr = err
	}
	drv.recover()
	if !opts.NoAutostart {
		drv.autostartOnce()
	}
	if firstErr != nil && drv.health == driver.HealthAvailable {
		drv.health, drv.healthWhy = driver.HealthUnavailable, firstErr.Error()
	}
	return drv, firstErr
}

// Close detaches the driver from its controllers, as a driver exit would:
// running containers go on running.
func (drv *Driver) Close() error {
	drv.mu.Lock()
	drv.closed = true
	if drv.spare != nil {
		drv.spare.conn.Close() // it exits
		drv.spare = nil
	}
	drv.mu.Unlock()
	drv.doms.Each(func(d *domain) {
		if r := d.Priv.run; r != nil && r.watch != nil {
			r.watch.Close()
		}
	})
	drv.events.Close()
	return nil
}

// load reads the persistent definitions and autostart marks.
func (drv *Driver) load() error {
	files, err := filepath.Glob(filepath.Join(drv.opts.ConfigDir, "*.xml"))
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			drv.log.Error("read definition", "file", f, "error", err)
			continue
		}
		c, err := parseConfig(string(b))
		if err != nil {
			drv.log.Error("bad definition, ignored", "file", f, "error", err)
			continue
		}
		if strings.TrimSuffix(filepath.Base(f), ".xml") != c.UUID() && !drv.renameLegacy(f, b, c) {
			continue
		}
		d, err := drv.doms.Load(c)
		if err != nil {
			drv.log.Error("definition ignored", "file", f, "error", err)
			continue
		}
		_, err = os.Stat(drv.autostartPath(d.UUID()))
		d.Autostart = err == nil
		d.Unlock()
	}
	return nil
}

func (drv *Driver) configPath(uuid string) string {
	return filepath.Join(drv.opts.ConfigDir, uuid+".xml")
}

func (drv *Driver) autostartPath(uuid string) string {
	return filepath.Join(drv.opts.ConfigDir, "autostart", uuid)
}

// renameLegacy moves a definition an earlier version wrote by name to the
// files named by c's UUID, and reports whether it should be used.
func (drv *Driver) renameLegacy(path string, b []byte, c *config) bool {
	use, err := defdir.RenameLegacy(drv.opts.ConfigDir, path, b, c.UUID(), []byte(c.UUID()+"\n"))
	if err != nil {
		drv.log.Error("cannot rename a definition to its UUID", "file", path, "error", err)
	} else if use {
		drv.log.Info("definition renamed to its UUID", "from", path, "to", drv.configPath(c.UUID()))
	}
	return use
}

// Info describes the driver.
func (drv *Driver) Info(ctx context.Context) (*driver.Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &driver.Info{
		Name: driverName, Version: Version, Schemes: []string{"lxc"},
		Health: drv.health, HealthReason: drv.healthWhy,
		Features:       []string{"domxml-from-native:lxc-tools", "console"},
		HypervisorType: "LXC", HypervisorVersion: kernelVersion(),
	}, nil
}

// kernelVersion is the running kernel's version in libvirt's encoding, as
// libvirt's LXC driver reports it.
func kernelVersion() uint64 {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return 0
	}
	var v [3]uint64
	for i, p := range strings.SplitN(strings.TrimSpace(string(b)), ".", 3) {
		n := strings.IndexFunc(p, func(r rune) bool { return r < '0' || r > '9' })
		if n >= 0 {
			p = p[:n]
		}
		v[i], _ = strconv.ParseUint(p, 10, 64)
	}
	return v[0]*1000000 + v[1]*1000 + v[2]
}

// RunningGuests counts the running (or paused) containers.
func (drv *Driver) RunningGuests(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	drv.doms.Each(func(d *domain) {
		if d.State.Active() || d.Priv.starting {
			n++
		}
	})
	return n, nil
}

// uris are the URIs served: lxc:///system, also written lxc:///.
var uris = hostinfo.URIs{Driver: driverName, Scheme: "lxc", Paths: []string{"/system", "/", ""}}

// CheckURI accepts lxc:///system and lxc:/// (with a transport and query
// parameters, which the daemon consumes).
func (drv *Driver) CheckURI(ctx context.Context, uri string) error {
	return uris.Check(ctx, uri)
}

// Hostname returns the host's name.
func (drv *Driver) Hostname(ctx context.Context) (string, error) {
	return hostinfo.Hostname(ctx)
}

// NodeInfo describes the host from /proc.
func (drv *Driver) NodeInfo(ctx context.Context) (*virt.NodeInfo, error) {
	return hostinfo.NodeInfo(ctx)
}

// Capabilities returns libvirt's capabilities XML: exe guests of type lxc
// on the host's architecture.
func (drv *Driver) Capabilities(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	caps := hostinfo.Caps{HostUUID: drv.hostUUID, Arch: hostinfo.Arch(), Guests: []hostinfo.Guest{{
		OSType: "exe", Arch: hostinfo.Arch(), Emulator: drv.opts.Executable, DomainTypes: []string{"lxc"},
	}}}
	return caps.XML()
}

// ListDomains returns the domains that pass flags: active ones by ID, then
// inactive ones by name.
func (drv *Driver) ListDomains(ctx context.Context, flags virt.ListFlags) ([]virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return drv.doms.List(flags), nil
}

// LookupDomain finds a domain by name, UUID or (running ones) ID.
func (drv *Driver) LookupDomain(ctx context.Context, key virt.Lookup) (*virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return drv.doms.Lookup(key)
}

// withDomain runs fn on the domain with uuid, holding its lock.
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

// WatchEvents returns lifecycle events from now on, in Seq order, until
// ctx ends. A subscriber that falls domutil.DefaultEventBuffer events behind is
// dropped (its channel closed).
func (drv *Driver) WatchEvents(ctx context.Context) (<-chan virt.Event, error) {
	return drv.events.Watch(ctx)
}

// emitLocked publishes an event about d; called under d's lock, so events
// keep the order of its changes.
func (drv *Driver) emitLocked(d *domain, typ virt.EventType, detail int32) {
	drv.events.Emit(d.View(), typ, detail)
}
