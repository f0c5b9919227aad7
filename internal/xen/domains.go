package xen

import (
	"context"
	"fmt"
	"os"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/internal/xen/domconfig"
	"github.com/virtd/virtd/internal/xen/libxl"
	"github.com/virtd/virtd/virt"
)

// domainView is one domain as the driver sees it at one moment.
type domainView struct {
	uuid, name string
	def        *definition
	live       *liveDomain
	// info is Xen's record when the domain runs.
	info *libxl.DomInfo
}

func (v *domainView) domain(d *Driver) virt.Domain {
	out := virt.Domain{Name: v.name, UUID: v.uuid, ID: -1, Persistent: v.def != nil}
	if v.def != nil {
		out.Autostart = v.def.autostart
	}
	out.State, out.Reason = d.stateLocked(v)
	if v.info != nil {
		out.ID = int32(v.info.DomID)
	}
	return out
}

// stateLocked maps Xen's flags to libvirt's state, with the reasons the
// driver remembers.
func (d *Driver) stateLocked(v *domainView) (virt.State, int32) {
	i := v.info
	switch {
	case i == nil:
		return virt.StateShutoff, d.stopped[v.uuid]
	case i.Shutdown && i.ShutdownReason == libxl.ShutdownCrash:
		return virt.StateCrashed, virt.CrashedUnknown
	case i.Shutdown || i.Dying:
		return virt.StateShutdown, virt.ShutdownUnknown
	case i.Paused:
		if d.runReason[v.uuid] == -1 {
			return virt.StatePaused, virt.PausedUser
		}
		return virt.StatePaused, virt.PausedUnknown
	}
	r, ok := d.runReason[v.uuid]
	if !ok || r < 0 {
		r = virt.RunningUnknown
	}
	return virt.StateRunning, r
}

// snapshotLocked joins the definitions, the live records and Xen's list.
func (d *Driver) snapshotLocked() ([]*domainView, error) {
	running, err := d.hv.List()
	if err != nil {
		return nil, fmt.Errorf("list Xen domains: %v: %w", err, virt.ErrInternal)
	}
	views := map[string]*domainView{}
	for uuid, def := range d.defs {
		views[uuid] = &domainView{uuid: uuid, name: def.cfg.Name, def: def}
	}
	for i := range running {
		r := &running[i]
		v := views[r.UUID]
		if v == nil {
			v = &domainView{uuid: r.UUID, name: r.Name}
			views[r.UUID] = v
		}
		v.info = r
		if l := d.live[r.UUID]; l != nil && l.domid == r.DomID {
			v.live = l
			v.name = l.cfg.Name
		}
	}
	out := make([]*domainView, 0, len(views))
	for _, v := range views {
		out = append(out, v)
	}
	return out, nil
}

// findLocked finds the domain with uuid.
func (d *Driver) findLocked(uuid string) (*domainView, error) {
	u, err := domutil.ParseUUID(uuid)
	if err != nil {
		return nil, err
	}
	views, err := d.snapshotLocked()
	if err != nil {
		return nil, err
	}
	for _, v := range views {
		if v.uuid == u {
			return v, nil
		}
	}
	return nil, domutil.NotFound(virt.ByUUID(u))
}

// withDomain runs fn on the domain with uuid, holding the lock.
func (d *Driver) withDomain(ctx context.Context, uuid string, fn func(v *domainView) error) error {
	if err := d.ready(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, err := d.findLocked(uuid)
	if err != nil {
		return err
	}
	return fn(v)
}

// ListDomains lists running domains by ID, then inactive ones by name.
func (d *Driver) ListDomains(ctx context.Context, flags virt.ListFlags) ([]virt.Domain, error) {
	if err := d.ready(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	views, err := d.snapshotLocked()
	var out []virt.Domain
	for _, v := range views {
		dom := v.domain(d)
		if flags.Match(&dom) {
			out = append(out, dom)
		}
	}
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	domutil.SortDomains(out)
	return out, nil
}

// LookupDomain finds a domain by name, UUID or (running only) ID.
func (d *Driver) LookupDomain(ctx context.Context, key virt.Lookup) (*virt.Domain, error) {
	if err := d.ready(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if key.UUID != "" {
		v, err := d.findLocked(key.UUID)
		if err != nil {
			return nil, err
		}
		dom := v.domain(d)
		return &dom, nil
	}
	views, err := d.snapshotLocked()
	if err != nil {
		return nil, err
	}
	for _, v := range views {
		if key.Name != "" && v.name == key.Name || key.Name == "" && v.info != nil && int32(v.info.DomID) == key.ID {
			dom := v.domain(d)
			return &dom, nil
		}
	}
	if key.Name != "" {
		return nil, domutil.NotFound(key)
	}
	return nil, domutil.NotFound(key)
}

// DefineDomain stores a persistent definition, new or replacing the one
// with the same UUID.
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
	views, err := d.snapshotLocked()
	if err != nil {
		return nil, err
	}
	uuid := def.cfg.UUID
	for _, v := range views {
		if v.name == def.cfg.Name && v.uuid != uuid {
			return nil, fmt.Errorf("domain '%s' is already defined with uuid %s: %w", v.name, v.uuid, virt.ErrAlreadyExists)
		}
		if v.uuid == uuid && v.name != def.cfg.Name {
			return nil, fmt.Errorf("domain '%s' already exists with uuid %s; renaming is not supported: %w", v.name, uuid, virt.ErrAlreadyExists)
		}
	}
	old := d.defs[uuid]
	if old != nil {
		def.autostart = old.autostart
	}
	if err := d.saveDefinition(def); err != nil {
		return nil, err
	}
	d.defs[uuid] = def
	detail := virt.DefinedAdded
	if old != nil {
		detail = virt.DefinedUpdated
	}
	v, err := d.findLocked(uuid)
	if err != nil {
		return nil, err
	}
	dom := v.domain(d)
	d.emitLocked(dom, virt.EventDefined, detail)
	return &dom, nil
}

// UndefineDomain removes the definition; a running domain becomes
// transient.
func (d *Driver) UndefineDomain(ctx context.Context, uuid string) error {
	return d.withDomain(ctx, uuid, func(v *domainView) error {
		if v.def == nil {
			return fmt.Errorf("domain '%s' is not persistent: %w", v.name, virt.ErrFailedPrecondition)
		}
		if err := os.Remove(d.defPath(v.uuid)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("undefine %q: %v: %w", v.name, err, virt.ErrInternal)
		}
		_ = d.setAutostartFile(v.uuid, false)
		delete(d.defs, v.uuid)
		v.def = nil
		if v.info == nil {
			delete(d.stopped, v.uuid)
		}
		d.emitLocked(v.domain(d), virt.EventUndefined, virt.UndefinedRemoved)
		return nil
	})
}

// StartDomain creates the domain in Xen from its definition.
func (d *Driver) StartDomain(ctx context.Context, uuid string) (*virt.Domain, error) {
	var out virt.Domain
	err := d.withDomain(ctx, uuid, func(v *domainView) error {
		if v.info != nil {
			return fmt.Errorf("domain '%s' is already running: %w", v.name, virt.ErrFailedPrecondition)
		}
		if err := d.startLocked(v.def); err != nil {
			return err
		}
		nv, err := d.findLocked(v.uuid)
		if err != nil {
			return err
		}
		out = nv.domain(d)
		d.emitLocked(out, virt.EventStarted, virt.StartedBooted)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func (d *Driver) startLocked(def *definition) error {
	domid, err := d.hv.Create(def.cfg)
	if err != nil {
		return fmt.Errorf("start domain '%s': %v: %w", def.cfg.Name, err, virt.ErrFailedPrecondition)
	}
	l := &liveDomain{cfg: def.cfg, xml: def.xml, domid: domid}
	d.live[def.cfg.UUID] = l
	d.runReason[def.cfg.UUID] = virt.RunningBooted
	if err := d.saveLive(l); err != nil {
		d.log.Warn("cannot record the running domain", "name", def.cfg.Name, "error", err)
	}
	if err := d.hv.Watch(domid); err != nil {
		d.log.Warn("cannot watch domain", "name", def.cfg.Name, "domid", domid, "error", err)
	}
	d.log.Info("domain started", "name", def.cfg.Name, "domid", domid)
	return nil
}

// running checks the domain runs and returns its domid.
func running(v *domainView) (uint32, error) {
	if v.info == nil {
		return 0, fmt.Errorf("domain '%s' is not running: %w", v.name, virt.ErrFailedPrecondition)
	}
	return v.info.DomID, nil
}

// ShutdownDomain asks the guest to power off; the shutdown event does the
// rest (see handleEvents).
func (d *Driver) ShutdownDomain(ctx context.Context, uuid string) error {
	return d.withDomain(ctx, uuid, func(v *domainView) error {
		domid, err := running(v)
		if err != nil {
			return err
		}
		return hvErr("shut down", v.name, d.hv.Shutdown(domid))
	})
}

// RebootDomain asks the guest to reboot.
func (d *Driver) RebootDomain(ctx context.Context, uuid string) error {
	return d.withDomain(ctx, uuid, func(v *domainView) error {
		domid, err := running(v)
		if err != nil {
			return err
		}
		return hvErr("reboot", v.name, d.hv.Reboot(domid))
	})
}

// DestroyDomain ends the domain at once; the definition stays.
func (d *Driver) DestroyDomain(ctx context.Context, uuid string) error {
	return d.withDomain(ctx, uuid, func(v *domainView) error {
		domid, err := running(v)
		if err != nil {
			return err
		}
		if v.live != nil {
			v.live.destroying = true
		}
		if err := d.hv.Destroy(domid); err != nil {
			return hvErr("destroy", v.name, err)
		}
		d.stoppedLocked(v, virt.ShutoffDestroyed, virt.StoppedDestroyed)
		return nil
	})
}

// stoppedLocked records that a domain is gone and tells the subscribers.
func (d *Driver) stoppedLocked(v *domainView, reason, detail int32) {
	delete(d.live, v.uuid)
	delete(d.runReason, v.uuid)
	_ = os.Remove(d.livePath(v.uuid))
	v.info, v.live = nil, nil
	dom := v.domain(d)
	dom.State, dom.Reason, dom.ID = virt.StateShutoff, reason, -1
	if v.def != nil {
		d.stopped[v.uuid] = reason
	} else {
		delete(d.stopped, v.uuid)
	}
	d.emitLocked(dom, virt.EventStopped, detail)
}

// SuspendDomain pauses the domain's vCPUs.
func (d *Driver) SuspendDomain(ctx context.Context, uuid string) error {
	return d.withDomain(ctx, uuid, func(v *domainView) error {
		domid, err := running(v)
		if err != nil {
			return err
		}
		if v.info.Paused {
			return fmt.Errorf("domain '%s' is already paused: %w", v.name, virt.ErrFailedPrecondition)
		}
		if err := d.hv.Pause(domid); err != nil {
			return hvErr("pause", v.name, err)
		}
		d.runReason[v.uuid] = -1 // paused by the user
		v.info.Paused = true
		d.emitLocked(v.domain(d), virt.EventSuspended, virt.SuspendedPaused)
		return nil
	})
}

// ResumeDomain unpauses the domain.
func (d *Driver) ResumeDomain(ctx context.Context, uuid string) error {
	return d.withDomain(ctx, uuid, func(v *domainView) error {
		domid, err := running(v)
		if err != nil {
			return err
		}
		if !v.info.Paused {
			return fmt.Errorf("domain '%s' is not paused: %w", v.name, virt.ErrFailedPrecondition)
		}
		if err := d.hv.Unpause(domid); err != nil {
			return hvErr("resume", v.name, err)
		}
		d.runReason[v.uuid] = virt.RunningUnpaused
		v.info.Paused = false
		d.emitLocked(v.domain(d), virt.EventResumed, virt.ResumedUnpaused)
		return nil
	})
}

func hvErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s domain '%s': %v: %w", op, name, err, virt.ErrInternal)
}

// DomainInfo reports memory, vCPUs and CPU time.
func (d *Driver) DomainInfo(ctx context.Context, uuid string) (*virt.DomainInfo, error) {
	var out *virt.DomainInfo
	err := d.withDomain(ctx, uuid, func(v *domainView) error {
		st, _ := d.stateLocked(v)
		out = &virt.DomainInfo{State: st}
		if i := v.info; i != nil {
			out.MaxMemoryKiB, out.MemoryKiB = i.MaxMemKiB, i.CurrentMemKiB
			out.VCPUs, out.CPUTime = i.VCPUsOnline, i.CPUTime
			return nil
		}
		if v.def != nil {
			out.MaxMemoryKiB, out.MemoryKiB = v.def.cfg.MaxMemKiB, v.def.cfg.MemKiB
			out.VCPUs = uint32(v.def.cfg.VCPUs)
		}
		return nil
	})
	return out, err
}

// DomainState reports libvirt's state and reason.
func (d *Driver) DomainState(ctx context.Context, uuid string) (virt.State, int32, error) {
	var st virt.State
	var r int32
	err := d.withDomain(ctx, uuid, func(v *domainView) error {
		st, r = d.stateLocked(v)
		return nil
	})
	return st, r, err
}

// DomainXML returns the live XML of a running domain (with its id), or
// the definition.
func (d *Driver) DomainXML(ctx context.Context, uuid string, inactive bool) (string, error) {
	var out string
	err := d.withDomain(ctx, uuid, func(v *domainView) error {
		var err error
		switch {
		case !inactive && v.live != nil:
			out, err = marshal(v.live.xml, int32(v.info.DomID))
		case v.def != nil:
			out, err = marshal(v.def.xml, -1)
		case v.live != nil:
			out, err = marshal(v.live.xml, -1)
		default:
			// Started outside virtd (xl create): all we know.
			x := &libvirtxml.Domain{Type: "xen", Name: v.name, UUID: v.uuid,
				Memory: &libvirtxml.DomainMemory{Value: uint(v.info.MaxMemKiB), Unit: "KiB"}}
			id := int32(v.info.DomID)
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
	err := d.withDomain(ctx, uuid, func(v *domainView) error {
		on = v.def != nil && v.def.autostart
		return nil
	})
	return on, err
}

// SetDomainAutostart marks a persistent domain to start with the driver.
func (d *Driver) SetDomainAutostart(ctx context.Context, uuid string, on bool) error {
	return d.withDomain(ctx, uuid, func(v *domainView) error {
		if v.def == nil {
			return fmt.Errorf("domain '%s' is transient; autostart needs a definition: %w", v.name, virt.ErrFailedPrecondition)
		}
		if err := d.setAutostartFile(v.uuid, on); err != nil {
			return fmt.Errorf("autostart of %q: %v: %w", v.name, err, virt.ErrInternal)
		}
		v.def.autostart = on
		return nil
	})
}

// autostart starts the autostart domains that Xen does not run.
func (d *Driver) autostart() {
	d.mu.Lock()
	defer d.mu.Unlock()
	views, err := d.snapshotLocked()
	if err != nil {
		return
	}
	for _, v := range views {
		if v.def == nil || !v.def.autostart || v.info != nil {
			continue
		}
		if err := d.startLocked(v.def); err != nil {
			d.log.Error("autostart failed", "name", v.name, "error", err)
			continue
		}
		if nv, err := d.findLocked(v.uuid); err == nil {
			d.emitLocked(nv.domain(d), virt.EventStarted, virt.StartedBooted)
		}
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
	var l *liveDomain
	for _, x := range d.live {
		if x.domid == ev.DomID {
			l = x
		}
	}
	if l == nil {
		return // not ours, or already handled (destroyed by us)
	}
	v, err := d.findLocked(l.cfg.UUID)
	if err != nil {
		return
	}
	switch ev.Kind {
	case libxl.EventDeath:
		reason, detail := virt.ShutoffShutdown, virt.StoppedShutdown
		if l.destroying {
			reason, detail = virt.ShutoffDestroyed, virt.StoppedDestroyed
		}
		d.stoppedLocked(v, reason, detail)
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
		l.destroying = true
		if err := d.hv.Destroy(l.domid); err != nil {
			d.log.Error("cannot destroy a domain that shut down", "name", l.cfg.Name, "error", err)
			return
		}
		if ev.Reason != libxl.ShutdownReboot {
			d.stoppedLocked(v, reason, detail)
		} else {
			delete(d.live, v.uuid)
		}
		switch action {
		case domconfig.ActionRestart, domconfig.ActionRenameRestart, domconfig.ActionCoredumpRestart:
			def := &definition{cfg: l.cfg, xml: l.xml}
			if err := d.startLocked(def); err != nil {
				d.log.Error("cannot restart domain", "name", l.cfg.Name, "error", err)
				d.stoppedLocked(v, virt.ShutoffFailed, virt.StoppedFailed)
				return
			}
			if nv, err := d.findLocked(v.uuid); err == nil {
				d.emitLocked(nv.domain(d), virt.EventStarted, virt.StartedBooted)
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
func capabilities() string {
	caps := libvirtxml.Caps{Host: libvirtxml.CapsHost{CPU: &libvirtxml.CapsHostCPU{Arch: "x86_64"}}}
	for _, g := range []struct{ osType, machine string }{{"xen", "xenpv"}, {"hvm", "xenfv"}, {"xenpvh", "xenpvh"}} {
		caps.Guests = append(caps.Guests, libvirtxml.CapsGuest{
			OSType: g.osType,
			Arch: libvirtxml.CapsGuestArch{
				Name: "x86_64", WordSize: "64",
				Machines: []libvirtxml.CapsGuestMachine{{Name: g.machine}},
				Domains:  []libvirtxml.CapsGuestDomain{{Type: "xen"}},
			},
		})
	}
	s, _ := caps.Marshal()
	return s
}
