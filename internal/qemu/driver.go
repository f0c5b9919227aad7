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
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/internal/atomicfile"
	"github.com/virtd/virtd/internal/procfs"
	"github.com/virtd/virtd/internal/qemu/qmp"
	"github.com/virtd/virtd/internal/version"
	"github.com/virtd/virtd/virt"
)

// Version is the driver's version: virtd's.
var Version = version.Version

// Defaults for a driver started without the host's directories.
const (
	defaultConfigDir = "/etc/virtd/qemu"
	defaultRunDir    = "/run/virtd/qemu"
	defaultLogDir    = "/var/log/virtd/qemu"
	bootIDFile       = "/proc/sys/kernel/random/boot_id"
)

// Config are the driver's directories and host settings.
type Config struct {
	// ConfigDir holds persistent definitions and autostart marks.
	ConfigDir string
	// RunDir holds runtime records, QMP sockets and pidfiles.
	RunDir string
	// LogDir holds one QEMU log per domain.
	LogDir string
	// Path is searched for qemu-system-* binaries; empty means $PATH.
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
// Lock order: domain.op (one operation at a time per domain), then
// Driver.mu (all state). Nothing that waits for QEMU runs under mu.
type Driver struct {
	log hclog.Logger
	cfg Config

	caps *capsCache

	mu     sync.Mutex
	byUUID map[string]*domain
	byName map[string]*domain
	nextID int32
	events domutil.Events
	closed bool
	// broken is why the driver cannot work on this host (its directories
	// are unusable); Info reports it.
	broken error
}

var _ driver.Driver = (*Driver)(nil)

// domain is one domain. Fields other than op are guarded by Driver.mu.
type domain struct {
	op sync.Mutex

	persistent *config // nil for a transient domain
	live       *config // nil when inactive
	inst       *instance
	id         int32
	state      virt.State
	reason     int32
	autostart  bool
}

func (d *domain) current() *config {
	if d.live != nil {
		return d.live
	}
	return d.persistent
}

func (d *domain) view() virt.Domain {
	c := d.current()
	id := int32(-1)
	if d.state.Active() {
		id = d.id
	}
	return virt.Domain{
		Name: c.name(), UUID: c.uuid(), ID: id,
		State: d.state, Reason: d.reason,
		Persistent: d.persistent != nil, Autostart: d.autostart,
	}
}

// New builds the driver from the directories the host passes in the
// environment (driver.EnvConfigDir, ...). Its signature is what
// driver.Serve takes.
func New(logger hclog.Logger) driver.Driver {
	cfg := Config{
		ConfigDir: envOr(driver.EnvConfigDir, defaultConfigDir),
		RunDir:    envOr(driver.EnvRunDir, defaultRunDir),
		LogDir:    envOr(driver.EnvLogDir, defaultLogDir),
	}
	drv, err := NewWithConfig(logger, cfg)
	if err != nil {
		// Serve needs a driver; one that cannot use its directories
		// reports it through Info's health and refuses every call.
		logger.Error("qemu driver cannot use its directories", "error", err)
		return &Driver{log: logger, cfg: cfg, caps: newCapsCache(cfg), broken: err,
			byUUID: map[string]*domain{}, byName: map[string]*domain{}}
	}
	return drv
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
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
	for _, dir := range []string{cfg.ConfigDir, cfg.RunDir, cfg.LogDir} {
		if dir == "" {
			return nil, fmt.Errorf("qemu driver: state, run and log directories must be set: %w", virt.ErrInvalidArgument)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("qemu driver: %v: %w", err, virt.ErrInternal)
		}
	}
	drv := &Driver{
		log:    logger,
		cfg:    cfg,
		caps:   newCapsCache(cfg),
		byUUID: make(map[string]*domain),
		byName: make(map[string]*domain),
		nextID: 1,
		events: domutil.Events{Log: logger},
	}
	for _, c := range drv.loadDefinitions() {
		if drv.byUUID[c.uuid()] != nil || drv.byName[c.name()] != nil {
			drv.log.Error("skipping a duplicate definition", "name", c.name(), "uuid", c.uuid())
			continue
		}
		d := &domain{persistent: c, state: virt.StateShutoff, reason: virt.ShutoffUnknown, id: -1}
		d.autostart = drv.hasAutostartMark(c)
		drv.byUUID[c.uuid()] = d
		drv.byName[c.name()] = d
	}
	drv.recover()
	go drv.autostart()
	return drv, nil
}

// Close detaches the driver from its guests (they keep running) and ends
// its event streams. A new driver on the same directories finds them
// again.
func (drv *Driver) Close() error {
	drv.mu.Lock()
	defer drv.mu.Unlock()
	if drv.closed {
		return nil
	}
	drv.closed = true
	for _, d := range drv.byUUID {
		if d.inst != nil && d.inst.mon != nil {
			d.inst.mon.Close()
		}
	}
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
		if x.arch == hostArch() {
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
	drv.mu.Lock()
	defer drv.mu.Unlock()
	n := 0
	for _, d := range drv.byUUID {
		if d.inst != nil {
			n++
		}
	}
	return n, nil
}

// CheckURI accepts qemu:///system and qemu:///session (with a transport
// such as qemu+unix, and query parameters, which the daemon consumes).
func (drv *Driver) CheckURI(ctx context.Context, uri string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("URI %q: %v: %w", uri, err, virt.ErrInvalidArgument)
	}
	scheme, _, _ := strings.Cut(u.Scheme, "+")
	if scheme != "qemu" || u.Opaque != "" || (u.Path != "/system" && u.Path != "/session") {
		return fmt.Errorf("URI %q is not served by the qemu driver: only qemu:///system and qemu:///session are: %w",
			uri, virt.ErrInvalidArgument)
	}
	return nil
}

// Hostname returns the host's name.
func (drv *Driver) Hostname(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("hostname: %v: %w", err, virt.ErrInternal)
	}
	return h, nil
}

// ListDomains returns the domains that pass flags: active ones by ID,
// then inactive ones by name.
func (drv *Driver) ListDomains(ctx context.Context, flags virt.ListFlags) ([]virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	drv.mu.Lock()
	all := domutil.Views(drv.byUUID, (*domain).view)
	drv.mu.Unlock()
	return domutil.Filter(all, flags), nil
}

// LookupDomain finds a domain by name, UUID or (running domains) ID.
func (drv *Driver) LookupDomain(ctx context.Context, key virt.Lookup) (*virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	d, err := domutil.Lookup(key, drv.byName, drv.byUUID, func(id int32) (*domain, bool) {
		for _, d := range drv.byUUID {
			if d.state.Active() && d.id == id {
				return d, true
			}
		}
		return nil, false
	})
	if err != nil {
		return nil, err
	}
	v := d.view()
	return &v, nil
}

func (drv *Driver) lookup(ctx context.Context, uuid string) (*domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	return domutil.ByUUID(drv.byUUID, uuid)
}

// DefineDomain makes or updates a persistent definition. A running domain
// keeps the definition it was started with until it stops.
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
	// Lock order is op, then mu: find the domain, take its op lock, then
	// check again under mu that nothing changed, and decide and write
	// under mu so that two defines cannot both pass the checks.
	drv.mu.Lock()
	d := drv.byUUID[c.uuid()]
	drv.mu.Unlock()
	if d != nil {
		d.op.Lock()
		defer d.op.Unlock()
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	byU := drv.byUUID[c.uuid()]
	byN := drv.byName[c.name()]
	switch {
	case byU != d:
		return nil, fmt.Errorf("domain with uuid %s changed during define; try again: %w", c.uuid(), virt.ErrFailedPrecondition)
	case byN != nil && byN != byU:
		return nil, fmt.Errorf("domain '%s' already exists with uuid %s: %w", c.name(), byN.current().uuid(), virt.ErrAlreadyExists)
	case byU != nil && byU.current().name() != c.name():
		return nil, fmt.Errorf("domain '%s' is already defined with uuid %s (renaming through define is not supported): %w",
			byU.current().name(), c.uuid(), virt.ErrAlreadyExists)
	}
	if err := drv.saveDefinition(c); err != nil {
		return nil, err
	}
	detail := virt.DefinedUpdated
	if d == nil {
		d = &domain{state: virt.StateShutoff, reason: virt.ShutoffUnknown, id: -1}
		drv.byUUID[c.uuid()] = d
		drv.byName[c.name()] = d
		detail = virt.DefinedAdded
	} else if d.persistent == nil {
		detail = virt.DefinedAdded
	}
	d.persistent = c
	if d.inst != nil {
		d.inst.rec.Persistent = true
		drv.saveRecordLocked(d)
	}
	drv.emitLocked(d, virt.EventDefined, detail)
	v := d.view()
	drv.log.Info("domain defined", "name", c.name(), "uuid", c.uuid())
	return &v, nil
}

// UndefineDomain removes the persistent definition. A running domain
// becomes transient and vanishes when it stops, as in libvirt.
func (drv *Driver) UndefineDomain(ctx context.Context, uuid string) error {
	d, err := drv.lookup(ctx, uuid)
	if err != nil {
		return err
	}
	d.op.Lock()
	defer d.op.Unlock()
	drv.mu.Lock()
	defer drv.mu.Unlock()
	if d.persistent == nil {
		return fmt.Errorf("domain '%s' is transient: cannot undefine it: %w", d.current().name(), virt.ErrFailedPrecondition)
	}
	if err := drv.removeDefinition(d.persistent); err != nil {
		return err
	}
	drv.emitLocked(d, virt.EventUndefined, virt.UndefinedRemoved)
	if d.inst == nil {
		drv.forgetLocked(d)
	} else {
		d.inst.rec.Persistent = false
		drv.saveRecordLocked(d)
	}
	d.persistent = nil
	d.autostart = false
	return nil
}

func (drv *Driver) forgetLocked(d *domain) {
	c := d.current()
	delete(drv.byUUID, c.uuid())
	delete(drv.byName, c.name())
}

// DomainInfo returns state, memory, vCPUs and CPU time (from /proc).
func (drv *Driver) DomainInfo(ctx context.Context, uuid string) (*virt.DomainInfo, error) {
	d, err := drv.lookup(ctx, uuid)
	if err != nil {
		return nil, err
	}
	drv.mu.Lock()
	c := d.current()
	info := &virt.DomainInfo{State: d.state, MaxMemoryKiB: c.maxMemKiB, MemoryKiB: c.memKiB, VCPUs: c.vcpus}
	inst := d.inst
	drv.mu.Unlock()
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
	d, err := drv.lookup(ctx, uuid)
	if err != nil {
		return 0, 0, err
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	return d.state, d.reason, nil
}

// DomainXML returns the live XML of a running domain (id, pty paths, VNC
// port), or the persistent definition when inactive is true or the
// domain does not run.
func (drv *Driver) DomainXML(ctx context.Context, uuid string, inactive bool) (string, error) {
	d, err := drv.lookup(ctx, uuid)
	if err != nil {
		return "", err
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	if d.live != nil && (!inactive || d.persistent == nil) {
		return d.live.marshal(d.id)
	}
	return d.persistent.marshal(0)
}

// DomainAutostart reports whether the domain starts with the host.
func (drv *Driver) DomainAutostart(ctx context.Context, uuid string) (bool, error) {
	d, err := drv.lookup(ctx, uuid)
	if err != nil {
		return false, err
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	return d.autostart, nil
}

// SetDomainAutostart marks a persistent domain to start once per host
// boot, when the driver first runs.
func (drv *Driver) SetDomainAutostart(ctx context.Context, uuid string, on bool) error {
	d, err := drv.lookup(ctx, uuid)
	if err != nil {
		return err
	}
	d.op.Lock()
	defer d.op.Unlock()
	drv.mu.Lock()
	defer drv.mu.Unlock()
	if d.persistent == nil {
		return fmt.Errorf("domain '%s' is transient: it cannot autostart: %w", d.current().name(), virt.ErrFailedPrecondition)
	}
	if err := drv.setAutostartMark(d.persistent, on); err != nil {
		return err
	}
	d.autostart = on
	return nil
}

// autostart starts the autostart domains once per host boot.
func (drv *Driver) autostart() {
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
	drv.mu.Lock()
	var todo []string
	for u, d := range drv.byUUID {
		if d.autostart && d.inst == nil {
			todo = append(todo, u)
		}
	}
	drv.mu.Unlock()
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
	drv.mu.Lock()
	defer drv.mu.Unlock()
	if d.inst == nil {
		return nil, nil, fmt.Errorf("domain '%s' is not running: %w", d.current().name(), virt.ErrFailedPrecondition)
	}
	if d.inst.mon == nil {
		return nil, nil, fmt.Errorf("domain '%s': no QMP connection to its QEMU: %w", d.current().name(), virt.ErrUnavailable)
	}
	return d.inst, d.inst.mon, nil
}
