// Package qemu is virtd's QEMU driver (executable virtd-driver-qemu, URIs
// qemu:///system and qemu:///session). Each guest is its own detached QEMU
// process, managed over QMP; what the driver needs to find a guest again
// after a restart (pid, process start time, QMP socket, live XML) is kept
// under its run directory, and persistent definitions under its config
// directory (/etc/virtd/qemu).
package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domlist"
	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/driver/hostinfo"
	"github.com/virtd/virtd/internal/atomicfile"
	"github.com/virtd/virtd/internal/procfs"
	"github.com/virtd/virtd/internal/qemu/qmp"
	"github.com/virtd/virtd/internal/version"
	"github.com/virtd/virtd/virt"
)

// Version is the driver's version: virtd's.
var Version = version.Version

const (
	// bootIDFile names the current boot.
	bootIDFile = "/proc/sys/kernel/random/boot_id"
	// systemRunDir is the run directory of a system driver, which the
	// command lines of DomainXMLToNative name.
	systemRunDir = "/run/virtd/qemu"
)

// Config are the driver's directories and host settings.
type Config struct {
	// ConfigDir holds persistent definitions and autostart marks.
	ConfigDir string
	// RunDir holds runtime records, QMP sockets and pidfiles.
	RunDir string
	// LogDir holds one QEMU log per domain.
	LogDir string
	// StateDir holds what a domain keeps across its runs besides its
	// definition: TPM state (swtpm/<uuid>/) and NVRAM files (nvram/).
	// Empty means ConfigDir/lib.
	StateDir string
	// Path is searched for qemu-system-* binaries; empty means $PATH.
	// PATH is the driver process's own setting (the host gives a minimal
	// one), which it uses to run programs anyway, not something the host
	// tells the driver: it is read where it is used, not through
	// driver.Env.
	Path string
	// BootIDFile names the current boot, for autostart; empty means the
	// kernel's boot_id.
	BootIDFile string
	// StartTimeout bounds the wait for a new QEMU's QMP greeting; zero
	// means 30 s.
	StartTimeout time.Duration
}

// Driver is the QEMU driver. It is safe for concurrent use.
//
// Lock order: a domain's op lock (one operation at a time on the domain),
// then the domain's own lock (its state, package domlist). Nothing that
// waits for QEMU runs under a domain's lock.
type Driver struct {
	log hclog.Logger
	cfg Config

	caps *capsCache
	// ports are the SPICE ports handed to starting guests.
	ports portPool

	doms *domlist.List[*config, guest]
	// lastID is the ID last given to a started domain.
	lastID atomic.Int32
	events domutil.Events
	closed atomic.Bool
	// autostarted is closed when the autostart pass NewWithConfig began
	// is over.
	autostarted chan struct{}
	// broken is why the driver cannot work on this host (its directories
	// are unusable); Info reports it.
	broken error
}

var _ driver.Driver = (*Driver)(nil)

// domain is one domain; its fields other than Priv.op are guarded by its
// lock.
type domain = domlist.Object[*config, guest]

// guest is what the driver keeps about a domain's QEMU.
type guest struct {
	// op is held for a whole operation on the domain (start, destroy,
	// undefine, ...), while the domain's lock is taken and let go.
	op   sync.Mutex
	inst *instance // nil when no QEMU runs
}

// New builds the driver on the directories of env. Its signature is what
// driver.Serve takes.
func New(env driver.Env) driver.Driver {
	logger := env.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	cfg := Config{ConfigDir: env.ConfigDir, RunDir: env.RunDir, LogDir: env.LogDir, StateDir: env.StateDir}
	drv, err := NewWithConfig(logger, cfg)
	if err != nil {
		// Serve needs a driver; one that cannot use its directories
		// reports it through Info's health and refuses every call.
		logger.Error("qemu driver cannot use its directories", "error", err)
		return &Driver{log: logger, cfg: cfg, caps: newCapsCache(cfg), broken: err, doms: domlist.New[*config, guest]()}
	}
	return drv
}

// NewWithConfig builds the driver on explicit directories, finds the
// guests that still run from an earlier driver process, and starts the
// autostart domains once per host boot.
func NewWithConfig(logger hclog.Logger, cfg Config) (*Driver, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.BootIDFile == "" {
		cfg.BootIDFile = bootIDFile
	}
	if cfg.LogDir == "" {
		cfg.LogDir = filepath.Join(cfg.RunDir, "log")
	}
	if cfg.StateDir == "" && cfg.ConfigDir != "" {
		cfg.StateDir = filepath.Join(cfg.ConfigDir, "lib")
	}
	for _, dir := range []string{cfg.ConfigDir, cfg.RunDir, cfg.LogDir} {
		if dir == "" {
			return nil, fmt.Errorf("qemu driver: state, run and log directories must be set: %w", virt.ErrInvalidArgument)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, virt.Errorf(virt.ErrInternal, "qemu driver: %w", err)
		}
	}
	drv := &Driver{
		log:    logger,
		cfg:    cfg,
		caps:   newCapsCache(cfg),
		doms:   domlist.New[*config, guest](),
		events: domutil.Events{Log: logger},

		autostarted: make(chan struct{}),
	}
	for _, c := range drv.loadDefinitions() {
		d, err := drv.doms.Load(c)
		if err != nil {
			drv.log.Error("skipping a duplicate definition", "name", c.Name(), "uuid", c.UUID(), "error", err)
			continue
		}
		d.Autostart = drv.hasAutostartMark(c)
		d.Unlock()
	}
	drv.recover()
	go drv.autostart()
	return drv, nil
}

// Close detaches the driver from its guests (they keep running) and ends
// its event streams. A new driver on the same directories finds them
// again.
func (drv *Driver) Close() error {
	if drv.closed.Swap(true) {
		return nil
	}
	drv.doms.Each(func(d *domain) {
		if inst := d.Priv.inst; inst != nil && inst.mon != nil {
			inst.mon.Close()
		}
	})
	drv.events.Close()
	return nil
}

// Info describes the driver; its health is unavailable when no
// qemu-system-* binary is found.
func (drv *Driver) Info(ctx context.Context) (*driver.Info, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	info := &driver.Info{
		Name:           "qemu",
		Version:        Version,
		Schemes:        []string{"qemu"},
		Health:         driver.HealthAvailable,
		HypervisorType: "QEMU",
	}
	if drv.broken != nil {
		info.Health = driver.HealthUnavailable
		info.HealthReason = drv.broken.Error()
		return info, nil
	}
	emus := drv.caps.emulators()
	if len(emus) == 0 {
		info.Health = driver.HealthUnavailable
		info.HealthReason = "no QEMU found: no qemu-system-* binary in " + drv.caps.searchPath()
		return info, nil
	}
	e := emus[0]
	for _, x := range emus {
		if x.arch == hostinfo.Arch() {
			e = x
		}
	}
	if p, err := drv.caps.probe(ctx, e); err == nil {
		info.HypervisorVersion = p.Version
	} else {
		drv.log.Warn("cannot probe QEMU", "emulator", e.path, "error", err)
	}
	return info, nil
}

// RunningGuests counts the running QEMU processes of this driver.
func (drv *Driver) RunningGuests(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	drv.doms.Each(func(d *domain) {
		if d.Priv.inst != nil {
			n++
		}
	})
	return n, nil
}

// uris are the URIs served.
var uris = hostinfo.URIs{Driver: "qemu", Scheme: "qemu", Paths: []string{"/system", "/session"}}

// CheckURI accepts qemu:///system and qemu:///session (with a transport
// such as qemu+unix, and query parameters, which the daemon consumes).
func (drv *Driver) CheckURI(ctx context.Context, uri string) error {
	return uris.Check(ctx, uri)
}

// Hostname returns the host's name.
func (drv *Driver) Hostname(ctx context.Context) (string, error) {
	return hostinfo.Hostname(ctx)
}

// ListDomains returns the domains that pass flags: active ones by ID,
// then inactive ones by name.
func (drv *Driver) ListDomains(ctx context.Context, flags virt.ListFlags) ([]virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return drv.doms.List(flags), nil
}

// LookupDomain finds a domain by name, UUID or (running domains) ID.
func (drv *Driver) LookupDomain(ctx context.Context, key virt.Lookup) (*virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return drv.doms.Lookup(key)
}

// lookup returns the domain with uuid, unlocked: an operation takes its
// op lock first.
func (drv *Driver) lookup(ctx context.Context, uuid string) (*domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return drv.doms.Get(virt.ByUUID(uuid))
}

// find returns the domain locked, and never one removed meanwhile (an
// undefined domain, a transient one that stopped), which has no
// configuration left to read.
func (drv *Driver) find(ctx context.Context, uuid string) (*domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return drv.doms.Find(virt.ByUUID(uuid))
}

// lookupOp returns the domain with its operation lock held (the caller
// unlocks d.Priv.op), unless it was removed before the lock was taken.
func (drv *Driver) lookupOp(ctx context.Context, uuid string) (*domain, error) {
	d, err := drv.lookup(ctx, uuid)
	if err != nil {
		return nil, err
	}
	d.Priv.op.Lock()
	d.Lock()
	removed := d.Removed()
	d.Unlock()
	if removed {
		d.Priv.op.Unlock()
		return nil, domutil.NotFound(virt.ByUUID(uuid))
	}
	return d, nil
}

// DefineDomain makes or updates a persistent definition, under the rules
// of package domlist. A running domain keeps the definition it was
// started with until it stops.
func (drv *Driver) DefineDomain(ctx context.Context, doc string) (*virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := parseConfig(doc)
	if err != nil {
		return nil, err
	}
	if err := drv.checkHost(c, false); err != nil {
		return nil, err
	}
	if err := drv.resolveMachine(ctx, c); err != nil {
		return nil, err
	}
	if c, err = c.compact(); err != nil {
		return nil, err
	}
	d, detail, err := drv.doms.Define(c, func(*domain) error { return drv.saveDefinition(c) })
	if err != nil {
		return nil, err
	}
	defer d.Unlock()
	if inst := d.Priv.inst; inst != nil {
		inst.rec.Persistent = true
		drv.saveRecordLocked(d)
	}
	drv.emitLocked(d, virt.EventDefined, detail)
	v := d.View()
	drv.log.Debug("domain defined", "name", c.Name(), "uuid", c.UUID())
	return &v, nil
}

// UndefineDomain removes the persistent definition. A running domain
// becomes transient and vanishes when it stops, as in libvirt.
func (drv *Driver) UndefineDomain(ctx context.Context, uuid string) error {
	d, err := drv.lookupOp(ctx, uuid)
	if err != nil {
		return err
	}
	defer d.Priv.op.Unlock()
	d.Lock()
	defer d.Unlock()
	if !d.IsPersistent() {
		return fmt.Errorf("domain '%s' is transient: cannot undefine it: %w", d.Name(), virt.ErrFailedPrecondition)
	}
	if err := drv.removeDefinition(d.Persistent); err != nil {
		return err
	}
	drv.emitLocked(d, virt.EventUndefined, virt.UndefinedRemoved)
	if inst := d.Priv.inst; inst == nil {
		drv.removeDomainState(d.Persistent)
		drv.doms.Remove(d)
	} else {
		inst.rec.Persistent = false
		drv.saveRecordLocked(d)
	}
	d.Persistent = nil
	d.Autostart = false
	return nil
}

// DomainInfo returns state, memory, vCPUs and CPU time (from /proc).
func (drv *Driver) DomainInfo(ctx context.Context, uuid string) (*virt.DomainInfo, error) {
	d, err := drv.find(ctx, uuid)
	if err != nil {
		return nil, err
	}
	c := d.Current()
	info := &virt.DomainInfo{State: d.State, MaxMemoryKiB: c.maxMemKiB, MemoryKiB: c.memKiB, VCPUs: c.vcpus}
	inst := d.Priv.inst
	d.Unlock()
	if inst == nil {
		info.MemoryKiB = 0
		return info, nil
	}
	if st, err := procfs.ReadStat(inst.rec.Pid); err == nil && st.StartTime == inst.rec.StartTime {
		info.CPUTime = st.CPU
	}
	return info, nil
}

// DomainState returns the state and libvirt's reason for it.
func (drv *Driver) DomainState(ctx context.Context, uuid string) (virt.State, int32, error) {
	d, err := drv.find(ctx, uuid)
	if err != nil {
		return 0, 0, err
	}
	defer d.Unlock()
	return d.State, d.Reason, nil
}

// DomainXML returns the live XML of a running domain (id, pty paths, VNC
// port), or the persistent definition when inactive is true or the
// domain does not run.
func (drv *Driver) DomainXML(ctx context.Context, uuid string, inactive bool) (string, error) {
	d, err := drv.find(ctx, uuid)
	if err != nil {
		return "", err
	}
	defer d.Unlock()
	if d.Live != nil && (!inactive || !d.IsPersistent()) {
		// Written when the guest started, with its ID, pty paths and
		// ports (the record's): the live definition does not change
		// while the guest runs.
		return d.Priv.inst.rec.XML, nil
	}
	return d.Persistent.marshal(0)
}

// DomainAutostart reports whether the domain starts with the host.
func (drv *Driver) DomainAutostart(ctx context.Context, uuid string) (bool, error) {
	d, err := drv.find(ctx, uuid)
	if err != nil {
		return false, err
	}
	defer d.Unlock()
	return d.Autostart, nil
}

// SetDomainAutostart marks a persistent domain to start once per host
// boot, when the driver first runs.
func (drv *Driver) SetDomainAutostart(ctx context.Context, uuid string, on bool) error {
	d, err := drv.lookupOp(ctx, uuid)
	if err != nil {
		return err
	}
	defer d.Priv.op.Unlock()
	d.Lock()
	defer d.Unlock()
	if !d.IsPersistent() {
		return fmt.Errorf("domain '%s' is transient: it cannot autostart: %w", d.Name(), virt.ErrFailedPrecondition)
	}
	if err := drv.setAutostartMark(d.Persistent, on); err != nil {
		return err
	}
	d.Autostart = on
	return nil
}

// autostart starts the autostart domains once per host boot.
func (drv *Driver) autostart() {
	defer close(drv.autostarted)
	b, err := os.ReadFile(drv.cfg.BootIDFile)
	if err != nil {
		drv.log.Warn("cannot read the boot id; autostart skipped", "error", err)
		return
	}
	boot := strings.TrimSpace(string(b))
	mark := filepath.Join(drv.cfg.ConfigDir, "autostart.boot_id")
	if prev, err := os.ReadFile(mark); err == nil && strings.TrimSpace(string(prev)) == boot {
		return
	}
	if err := atomicfile.WriteFile(mark, []byte(boot+"\n"), 0o600); err != nil {
		drv.log.Error("cannot record the autostart boot id", "error", err)
		return
	}
	var todo []string
	drv.doms.Each(func(d *domain) {
		if d.Autostart && d.Priv.inst == nil {
			todo = append(todo, d.UUID())
		}
	})
	for _, u := range todo {
		ctx, cancel := context.WithTimeout(context.Background(), 2*drv.cfg.StartTimeout)
		if _, err := drv.StartDomain(ctx, u); err != nil {
			drv.log.Error("autostart failed", "uuid", u, "error", err)
		} else {
			drv.log.Info("domain autostarted", "uuid", u)
		}
		cancel()
	}
}

// monitor returns the QMP monitor of a running domain.
func (drv *Driver) monitor(d *domain) (*instance, *qmp.Monitor, error) {
	d.Lock()
	defer d.Unlock()
	inst := d.Priv.inst
	if inst == nil {
		return nil, nil, fmt.Errorf("domain '%s' is not running: %w", d.Name(), virt.ErrFailedPrecondition)
	}
	if inst.mon == nil {
		return nil, nil, fmt.Errorf("domain '%s': no QMP connection to its QEMU: %w", d.Name(), virt.ErrUnavailable)
	}
	return inst, inst.mon, nil
}
