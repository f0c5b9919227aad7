package xen

import (
	"context"
	"fmt"
	"os"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver/domlist"
	"github.com/virtd/virtd/driver/hostinfo"
	"github.com/virtd/virtd/internal/xen/domconfig"
	"github.com/virtd/virtd/internal/xen/libxl"
	"github.com/virtd/virtd/virt"
)

// domain is one domain: a definition of this driver, a domain it started,
// or one Xen runs that it did not start (Domain-0, xl create). Its Live
// definition is that of the instance this driver started (domid). Its
// fields are guarded by its lock, taken under Driver.mu.
type domain = domlist.Object[*definition, xenState]

// xenState is what the driver knows of a domain besides its definitions.
type xenState struct {
	// info is Xen's record of the domain at the last look (syncLocked,
	// refreshLocked); nil when Xen does not run it.
	info *libxl.DomInfo
	// domid is the instance this driver started (Live); destroying is set
	// while the driver itself ends it, so that its death event reads as
	// "destroyed".
	domid      uint32
	destroying bool
	// stopped is why the domain last stopped (its shut off reason).
	stopped int32
	// runReason keeps the reason of a running state, which Xen does not
	// record; -1 means paused by the user.
	runReason int32
}

// ours reports whether Xen runs the instance this driver started.
func ours(o *domain) bool {
	return o.Live != nil && o.Priv.info != nil && o.Priv.info.DomID == o.Priv.domid
}

// setStateLocked maps Xen's flags to libvirt's state and the ID, with the
// reasons the driver remembers.
func setStateLocked(o *domain) {
	i := o.Priv.info
	switch {
	case i == nil:
		o.State, o.Reason = virt.StateShutoff, o.Priv.stopped
	case i.Shutdown && i.ShutdownReason == libxl.ShutdownCrash:
		o.State, o.Reason = virt.StateCrashed, virt.CrashedUnknown
	case i.Shutdown || i.Dying:
		o.State, o.Reason = virt.StateShutdown, virt.ShutdownUnknown
	case i.Paused && o.Priv.runReason == -1:
		o.State, o.Reason = virt.StatePaused, virt.PausedUser
	case i.Paused:
		o.State, o.Reason = virt.StatePaused, virt.PausedUnknown
	default:
		o.State, o.Reason = virt.StateRunning, max(o.Priv.runReason, virt.RunningUnknown)
	}
	id := int32(-1)
	if i != nil {
		id = int32(i.DomID)
	}
	if o.ID() != id {
		o.SetID(id)
	}
}

// syncLocked brings the list in line with what Xen runs now: every domain
// Xen runs is listed, with Xen's record, state and ID (one this driver
// did not start as a transient domain); one it no longer runs is shut
// off, or forgotten when it has no definition. Called under d.mu, with no
// domain locked.
func (d *Driver) syncLocked() error {
	running, err := d.hv.List()
	if err != nil {
		return virt.Errorf(virt.ErrInternal, "list Xen domains: %w", err)
	}
	seen := make(map[string]bool, len(running))
	for i := range running {
		r := &running[i]
		o, err := d.doms.Find(virt.ByUUID(r.UUID))
		if err != nil {
			if o, err = d.doms.Add(r.Name, r.UUID); err != nil {
				d.log.Warn("a domain Xen runs is not listed", "name", r.Name, "uuid", r.UUID, "error", err)
				continue
			}
		}
		seen[o.UUID()] = true
		o.Priv.info = r
		setStateLocked(o)
		o.Unlock()
	}
	d.doms.Each(func(o *domain) {
		if seen[o.UUID()] {
			return
		}
		o.Priv.info = nil
		setStateLocked(o)
		if !o.IsPersistent() {
			d.doms.Remove(o)
		}
	})
	return nil
}

// refreshLocked updates the locked domain o from Xen's record of it.
func (d *Driver) refreshLocked(o *domain) error {
	running, err := d.hv.List()
	if err != nil {
		return virt.Errorf(virt.ErrInternal, "list Xen domains: %w", err)
	}
	o.Priv.info = nil
	for i := range running {
		if running[i].UUID == o.UUID() {
			o.Priv.info = &running[i]
		}
	}
	setStateLocked(o)
	return nil
}

// withDomain runs fn on the domain with uuid, holding the driver's lock
// and the domain's, after a look at what Xen runs.
func (d *Driver) withDomain(ctx context.Context, uuid string, fn func(o *domain) error) error {
	if err := d.ready(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.syncLocked(); err != nil {
		return err
	}
	o, err := d.doms.Find(virt.ByUUID(uuid))
	if err != nil {
		return err
	}
	defer o.Unlock()
	return fn(o)
}

// ListDomains lists running domains by ID, then inactive ones by name.
func (d *Driver) ListDomains(ctx context.Context, flags virt.ListFlags) ([]virt.Domain, error) {
	if err := d.ready(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.syncLocked(); err != nil {
		return nil, err
	}
	return d.doms.List(flags), nil
}

// LookupDomain finds a domain by name, UUID or (running only) ID.
func (d *Driver) LookupDomain(ctx context.Context, key virt.Lookup) (*virt.Domain, error) {
	if err := d.ready(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.syncLocked(); err != nil {
		return nil, err
	}
	return d.doms.Lookup(key)
}

// DefineDomain stores a persistent definition, new or replacing the one
// with the same UUID, under the rules of package domlist; the domains Xen
// runs that this driver did not start count too.
func (d *Driver) DefineDomain(ctx context.Context, doc string) (*virt.Domain, error) {
	if err := d.ready(ctx); err != nil {
		return nil, err
	}
	def, err := parseDefinition(doc)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := d.syncLocked(); err != nil {
		return nil, err
	}
	o, detail, err := d.doms.Define(def, func(*domain) error { return d.saveDefinition(def) })
	if err != nil {
		return nil, err
	}
	defer o.Unlock()
	dom := o.View()
	d.emitLocked(dom, virt.EventDefined, detail)
	return &dom, nil
}

// UndefineDomain removes the definition; a running domain becomes
// transient.
func (d *Driver) UndefineDomain(ctx context.Context, uuid string) error {
	return d.withDomain(ctx, uuid, func(o *domain) error {
		if !o.IsPersistent() {
			return fmt.Errorf("domain '%s' is not persistent: %w", o.Name(), virt.ErrFailedPrecondition)
		}
		if err := os.Remove(d.defPath(o.UUID())); err != nil && !os.IsNotExist(err) {
			return virt.Errorf(virt.ErrInternal, "undefine %q: %w", o.Name(), err)
		}
		_ = d.setAutostartFile(o.UUID(), false)
		o.Persistent, o.Autostart = nil, false
		if o.Priv.info == nil {
			o.Priv.stopped = 0
			setStateLocked(o)
			d.doms.Remove(o)
		}
		d.emitLocked(o.View(), virt.EventUndefined, virt.UndefinedRemoved)
		return nil
	})
}

// StartDomain creates the domain in Xen from its definition.
func (d *Driver) StartDomain(ctx context.Context, uuid string) (*virt.Domain, error) {
	var out virt.Domain
	err := d.withDomain(ctx, uuid, func(o *domain) error {
		if o.Priv.info != nil {
			return fmt.Errorf("domain '%s' is already running: %w", o.Name(), virt.ErrFailedPrecondition)
		}
		if err := d.startLocked(o, o.Persistent); err != nil {
			return err
		}
		if err := d.refreshLocked(o); err != nil {
			return err
		}
		out = o.View()
		d.emitLocked(out, virt.EventStarted, virt.StartedBooted)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateDomain creates a domain in Xen from XML without a persistent
// definition, under the rules of package domlist (Create), the domains
// Xen runs that this driver did not start counting too: a new transient
// domain, which vanishes when it stops, or an inactive persistent domain
// of that name and UUID, started with the XML as its live definition.
func (d *Driver) CreateDomain(ctx context.Context, doc string) (*virt.Domain, error) {
	if err := d.ready(ctx); err != nil {
		return nil, err
	}
	def, err := parseDefinition(doc)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := d.syncLocked(); err != nil {
		return nil, err
	}
	o, added, err := d.doms.Create(def)
	if err != nil {
		return nil, err
	}
	defer o.Unlock()
	if err := d.startLocked(o, def); err != nil {
		if added {
			d.doms.Remove(o)
		}
		return nil, err
	}
	d.doms.Show(o)
	if err := d.refreshLocked(o); err != nil {
		return nil, err
	}
	out := o.View()
	d.emitLocked(out, virt.EventStarted, virt.StartedBooted)
	return &out, nil
}

// startLocked creates o in Xen from def, as the instance this driver runs.
func (d *Driver) startLocked(o *domain, def *definition) error {
	domid, err := d.hv.Create(def.cfg)
	if err != nil {
		return virt.Errorf(virt.ErrFailedPrecondition, "start domain '%s': %w", def.cfg.Name, err)
	}
	o.Live = def
	o.Priv.domid, o.Priv.destroying, o.Priv.runReason = domid, false, virt.RunningBooted
	if err := d.saveLive(def, domid); err != nil {
		d.log.Warn("cannot record the running domain", "name", def.cfg.Name, "error", err)
	}
	if err := d.hv.Watch(domid); err != nil {
		d.log.Warn("cannot watch domain", "name", def.cfg.Name, "domid", domid, "error", err)
	}
	d.log.Info("domain started", "name", def.cfg.Name, "domid", domid)
	return nil
}

// running checks the domain runs and returns its domid.
func running(o *domain) (uint32, error) {
	if o.Priv.info == nil {
		return 0, fmt.Errorf("domain '%s' is not running: %w", o.Name(), virt.ErrFailedPrecondition)
	}
	return o.Priv.info.DomID, nil
}

// ShutdownDomain asks the guest to power off; the shutdown event does the
// rest (see handleEvents).
func (d *Driver) ShutdownDomain(ctx context.Context, uuid string) error {
	return d.withDomain(ctx, uuid, func(o *domain) error {
		domid, err := running(o)
		if err != nil {
			return err
		}
		return hvErr("shut down", o.Name(), d.hv.Shutdown(domid))
	})
}

// RebootDomain asks the guest to reboot.
func (d *Driver) RebootDomain(ctx context.Context, uuid string) error {
	return d.withDomain(ctx, uuid, func(o *domain) error {
		domid, err := running(o)
		if err != nil {
			return err
		}
		return hvErr("reboot", o.Name(), d.hv.Reboot(domid))
	})
}

// DestroyDomain ends the domain at once; the definition stays.
func (d *Driver) DestroyDomain(ctx context.Context, uuid string) error {
	return d.withDomain(ctx, uuid, func(o *domain) error {
		domid, err := running(o)
		if err != nil {
			return err
		}
		if ours(o) {
			o.Priv.destroying = true
		}
		if err := d.hv.Destroy(domid); err != nil {
			return hvErr("destroy", o.Name(), err)
		}
		d.stoppedLocked(o, virt.ShutoffDestroyed, virt.StoppedDestroyed)
		return nil
	})
}

// stoppedLocked records that a domain is gone and tells the subscribers.
// A transient one leaves the list at the next look at Xen (syncLocked),
// unless it is started again before.
func (d *Driver) stoppedLocked(o *domain, reason, detail int32) {
	_ = os.Remove(d.livePath(o.UUID()))
	o.Live, o.Priv.info = nil, nil
	o.Priv.domid, o.Priv.destroying, o.Priv.runReason = 0, false, 0
	o.Priv.stopped = reason
	setStateLocked(o)
	d.emitLocked(o.View(), virt.EventStopped, detail)
}

// SuspendDomain pauses the domain's vCPUs.
func (d *Driver) SuspendDomain(ctx context.Context, uuid string) error {
	return d.withDomain(ctx, uuid, func(o *domain) error {
		domid, err := running(o)
		if err != nil {
			return err
		}
		if o.Priv.info.Paused {
			return fmt.Errorf("domain '%s' is already paused: %w", o.Name(), virt.ErrFailedPrecondition)
		}
		if err := d.hv.Pause(domid); err != nil {
			return hvErr("pause", o.Name(), err)
		}
		o.Priv.runReason = -1 // paused by the user
		o.Priv.info.Paused = true
		setStateLocked(o)
		d.emitLocked(o.View(), virt.EventSuspended, virt.SuspendedPaused)
		return nil
	})
}

// ResumeDomain unpauses the domain.
func (d *Driver) ResumeDomain(ctx context.Context, uuid string) error {
	return d.withDomain(ctx, uuid, func(o *domain) error {
		domid, err := running(o)
		if err != nil {
			return err
		}
		if !o.Priv.info.Paused {
			return fmt.Errorf("domain '%s' is not paused: %w", o.Name(), virt.ErrFailedPrecondition)
		}
		if err := d.hv.Unpause(domid); err != nil {
			return hvErr("resume", o.Name(), err)
		}
		o.Priv.runReason = virt.RunningUnpaused
		o.Priv.info.Paused = false
		setStateLocked(o)
		d.emitLocked(o.View(), virt.EventResumed, virt.ResumedUnpaused)
		return nil
	})
}

func hvErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return virt.Errorf(virt.ErrInternal, "%s domain '%s': %w", op, name, err)
}

// DomainInfo reports memory, vCPUs and CPU time.
func (d *Driver) DomainInfo(ctx context.Context, uuid string) (*virt.DomainInfo, error) {
	var out *virt.DomainInfo
	err := d.withDomain(ctx, uuid, func(o *domain) error {
		out = &virt.DomainInfo{State: o.State}
		if i := o.Priv.info; i != nil {
			out.MaxMemoryKiB, out.MemoryKiB = i.MaxMemKiB, i.CurrentMemKiB
			out.VCPUs, out.CPUTime = i.VCPUsOnline, i.CPUTime
			return nil
		}
		if def := o.Persistent; def != nil {
			out.MaxMemoryKiB, out.MemoryKiB = def.cfg.MaxMemKiB, def.cfg.MemKiB
			out.VCPUs = uint32(def.cfg.VCPUs)
		}
		return nil
	})
	return out, err
}

// DomainState reports libvirt's state and reason.
func (d *Driver) DomainState(ctx context.Context, uuid string) (virt.State, int32, error) {
	var st virt.State
	var r int32
	err := d.withDomain(ctx, uuid, func(o *domain) error {
		st, r = o.State, o.Reason
		return nil
	})
	return st, r, err
}

// DomainXML returns the live XML of a running domain (with its id), or
// the definition.
func (d *Driver) DomainXML(ctx context.Context, uuid string, inactive bool) (string, error) {
	var out string
	err := d.withDomain(ctx, uuid, func(o *domain) error {
		var err error
		switch {
		case !inactive && ours(o):
			out, err = marshal(o.Live.xml, int32(o.Priv.info.DomID))
		case o.IsPersistent():
			out, err = marshal(o.Persistent.xml, -1)
		case ours(o):
			out, err = marshal(o.Live.xml, -1)
		default:
			// Started outside virtd (xl create): all we know.
			x := &libvirtxml.Domain{Type: "xen", Name: o.Name(), UUID: o.UUID(),
				Memory: &libvirtxml.DomainMemory{Value: uint(o.Priv.info.MaxMemKiB), Unit: "KiB"}}
			id := int32(o.Priv.info.DomID)
			if inactive {
				id = -1
			}
			out, err = marshal(x, id)
		}
		return err
	})
	return out, err
}

// DomainAutostart reports whether the domain starts with the driver.
func (d *Driver) DomainAutostart(ctx context.Context, uuid string) (bool, error) {
	var on bool
	err := d.withDomain(ctx, uuid, func(o *domain) error {
		on = o.Autostart
		return nil
	})
	return on, err
}

// SetDomainAutostart marks a persistent domain to start with the driver.
func (d *Driver) SetDomainAutostart(ctx context.Context, uuid string, on bool) error {
	return d.withDomain(ctx, uuid, func(o *domain) error {
		if !o.IsPersistent() {
			return fmt.Errorf("domain '%s' is transient; autostart needs a definition: %w", o.Name(), virt.ErrFailedPrecondition)
		}
		if err := d.setAutostartFile(o.UUID(), on); err != nil {
			return virt.Errorf(virt.ErrInternal, "autostart of %q: %w", o.Name(), err)
		}
		o.Autostart = on
		return nil
	})
}

// autostart starts the autostart domains that Xen does not run.
func (d *Driver) autostart() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.syncLocked(); err != nil {
		return
	}
	var todo []string
	d.doms.Each(func(o *domain) {
		if o.IsPersistent() && o.Autostart && o.Priv.info == nil {
			todo = append(todo, o.UUID())
		}
	})
	for _, uuid := range todo {
		o, err := d.doms.Find(virt.ByUUID(uuid))
		if err != nil {
			continue
		}
		if err := d.startLocked(o, o.Persistent); err != nil {
			d.log.Error("autostart failed", "name", o.Name(), "error", err)
		} else if d.refreshLocked(o) == nil {
			d.emitLocked(o.View(), virt.EventStarted, virt.StartedBooted)
		}
		o.Unlock()
	}
}

// handleEvents applies the guest's on_poweroff / on_reboot / on_crash
// when it shuts itself down, and records deaths.
func (d *Driver) handleEvents(events <-chan libxl.Event) {
	for ev := range events {
		d.mu.Lock()
		d.handleEventLocked(ev)
		d.mu.Unlock()
	}
}

func (d *Driver) handleEventLocked(ev libxl.Event) {
	var uuid string
	d.doms.Each(func(o *domain) {
		if o.Live != nil && o.Priv.domid == ev.DomID {
			uuid = o.UUID()
		}
	})
	if uuid == "" {
		return // not ours, or already handled (destroyed by us)
	}
	if err := d.syncLocked(); err != nil {
		return
	}
	o, err := d.doms.Find(virt.ByUUID(uuid))
	if err != nil {
		return
	}
	defer o.Unlock()
	l := o.Live
	if l == nil {
		return
	}
	switch ev.Kind {
	case libxl.EventDeath:
		reason, detail := virt.ShutoffShutdown, virt.StoppedShutdown
		if o.Priv.destroying {
			reason, detail = virt.ShutoffDestroyed, virt.StoppedDestroyed
		}
		d.stoppedLocked(o, reason, detail)
	case libxl.EventShutdown:
		action, reason, detail := l.cfg.OnPoweroff, virt.ShutoffShutdown, virt.StoppedShutdown
		switch ev.Reason {
		case libxl.ShutdownReboot:
			action = l.cfg.OnReboot
		case libxl.ShutdownCrash, libxl.ShutdownWatchdog:
			action, reason, detail = l.cfg.OnCrash, virt.ShutoffCrashed, virt.StoppedCrashed
		}
		if action == domconfig.ActionPreserve {
			return
		}
		o.Priv.destroying = true
		if err := d.hv.Destroy(o.Priv.domid); err != nil {
			d.log.Error("cannot destroy a domain that shut down", "name", l.cfg.Name, "error", err)
			return
		}
		if ev.Reason != libxl.ShutdownReboot {
			d.stoppedLocked(o, reason, detail)
		} else {
			o.Live = nil
		}
		switch action {
		case domconfig.ActionRestart, domconfig.ActionRenameRestart, domconfig.ActionCoredumpRestart:
			if err := d.startLocked(o, l); err != nil {
				d.log.Error("cannot restart domain", "name", l.cfg.Name, "error", err)
				d.stoppedLocked(o, virt.ShutoffFailed, virt.StoppedFailed)
				return
			}
			if d.refreshLocked(o) == nil {
				d.emitLocked(o.View(), virt.EventStarted, virt.StartedBooted)
			}
		}
	}
}

// WatchEvents streams lifecycle events until ctx ends.
func (d *Driver) WatchEvents(ctx context.Context) (<-chan virt.Event, error) {
	if err := d.ready(ctx); err != nil {
		return nil, err
	}
	return d.events.Watch(ctx)
}

// emitLocked publishes an event; called under d.mu, so events keep the
// order of the changes.
func (d *Driver) emitLocked(dom virt.Domain, typ virt.EventType, detail int32) {
	d.events.Emit(dom, typ, detail)
}

// capabilities is libvirt's capabilities XML for Xen on x86_64.
func capabilities() (string, error) {
	caps := hostinfo.Caps{Arch: "x86_64"}
	for _, g := range []struct{ osType, machine string }{{"xen", "xenpv"}, {"hvm", "xenfv"}, {"xenpvh", "xenpvh"}} {
		caps.Guests = append(caps.Guests, hostinfo.Guest{
			OSType: g.osType, Arch: "x86_64",
			Machines: []libvirtxml.CapsGuestMachine{{Name: g.machine}}, DomainTypes: []string{"xen"},
		})
	}
	return caps.XML()
}
