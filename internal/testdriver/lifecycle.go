package testdriver

import (
	"context"
	"fmt"
	"time"

	"github.com/virtd/virtd/virt"
)

// DefineDomain makes a persistent definition from domain XML, or replaces
// the one with the same UUID, under the rules of package domlist. A
// running domain keeps the definition it was started with until it stops;
// its inactive XML shows the new one at once.
func (drv *Driver) DefineDomain(ctx context.Context, xml string) (*virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := parseConfig(xml)
	if err != nil {
		return nil, err
	}
	d, detail, err := drv.doms.Define(c, nil)
	if err != nil {
		return nil, err
	}
	defer d.Unlock()
	drv.log.Debug("domain defined", "name", d.Name(), "uuid", d.UUID(), "detail", virt.EventDetailString(virt.EventDefined, detail))
	drv.emitLocked(d, virt.EventDefined, detail)
	v := d.View()
	return &v, nil
}

// UndefineDomain removes the persistent definition. An inactive domain is
// gone; a running one becomes transient and vanishes when it stops.
func (drv *Driver) UndefineDomain(ctx context.Context, uuid string) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if !d.IsPersistent() {
			return fmt.Errorf("domain '%s': cannot undefine a transient domain: %w", d.Name(), virt.ErrFailedPrecondition)
		}
		d.Persistent = nil
		d.Autostart = false
		drv.log.Debug("domain undefined", "name", d.Name(), "uuid", d.UUID(), "active", d.State.Active())
		drv.emitLocked(d, virt.EventUndefined, virt.UndefinedRemoved)
		if !d.State.Active() {
			drv.doms.Remove(d)
		}
		return nil
	})
}

// StartDomain boots an inactive domain with the next free ID.
func (drv *Driver) StartDomain(ctx context.Context, uuid string) (*virt.Domain, error) {
	var v virt.Domain
	err := drv.withDomain(ctx, uuid, func(d *domain) error {
		if d.State.Active() {
			return fmt.Errorf("domain '%s': domain is already running: %w", d.Name(), virt.ErrFailedPrecondition)
		}
		drv.startLocked(d, d.Persistent, time.Now())
		drv.log.Info("domain started", "name", d.Name(), "uuid", d.UUID(), "id", d.ID())
		drv.emitLocked(d, virt.EventStarted, virt.StartedBooted)
		v = d.View()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// CreateDomain starts a domain from XML without a persistent definition,
// under the rules of package domlist (Create): a new transient domain, or
// an inactive persistent one started with the XML as its live definition.
func (drv *Driver) CreateDomain(ctx context.Context, xml string) (*virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := parseConfig(xml)
	if err != nil {
		return nil, err
	}
	d, _, err := drv.doms.Create(c)
	if err != nil {
		return nil, err
	}
	defer d.Unlock()
	drv.startLocked(d, c, time.Now())
	drv.doms.Show(d)
	drv.log.Info("domain created", "name", d.Name(), "uuid", d.UUID(), "id", d.ID(), "persistent", d.IsPersistent())
	drv.emitLocked(d, virt.EventStarted, virt.StartedBooted)
	v := d.View()
	return &v, nil
}

// ShutdownDomain powers the domain off. The test guest always cooperates at
// once, as in libvirt's test driver: the domain is shut off (reason
// shutdown) when the call returns, after a Shutdown/Finished and a
// Stopped/Shutdown event.
func (drv *Driver) ShutdownDomain(ctx context.Context, uuid string) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if !d.State.Active() {
			return fmt.Errorf("domain '%s': domain is not running: %w", d.Name(), virt.ErrFailedPrecondition)
		}
		drv.log.Info("domain shut down", "name", d.Name(), "uuid", d.UUID())
		drv.emitLocked(d, virt.EventShutdown, virt.ShutdownFinished)
		drv.stopLocked(d, virt.ShutoffShutdown, virt.StoppedShutdown)
		return nil
	})
}

// RebootDomain reboots a running domain: it stays running (reason booted)
// with the same ID, unless its <on_reboot> is destroy, in which case it
// shuts off.
func (drv *Driver) RebootDomain(ctx context.Context, uuid string) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if !d.State.Active() {
			return fmt.Errorf("domain '%s': domain is not running: %w", d.Name(), virt.ErrFailedPrecondition)
		}
		drv.log.Info("domain rebooted", "name", d.Name(), "uuid", d.UUID())
		if d.Live.xml.OnReboot == "destroy" {
			drv.emitLocked(d, virt.EventShutdown, virt.ShutdownFinished)
			drv.stopLocked(d, virt.ShutoffShutdown, virt.StoppedShutdown)
			return nil
		}
		if d.State == virt.StatePaused {
			d.Priv.runningSince = time.Now()
		}
		d.State, d.Reason = virt.StateRunning, virt.RunningBooted
		// The guest reset and runs on: libvirt's reboot event.
		drv.emitLocked(d, virt.EventReboot, 0)
		return nil
	})
}

// DestroyDomain pulls the plug: the domain is shut off (reason destroyed);
// the definition stays (a transient domain vanishes).
func (drv *Driver) DestroyDomain(ctx context.Context, uuid string) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if !d.State.Active() {
			return fmt.Errorf("domain '%s': domain is not running: %w", d.Name(), virt.ErrFailedPrecondition)
		}
		drv.log.Info("domain destroyed", "name", d.Name(), "uuid", d.UUID())
		drv.stopLocked(d, virt.ShutoffDestroyed, virt.StoppedDestroyed)
		return nil
	})
}

// SuspendDomain pauses a running domain (paused, reason user).
func (drv *Driver) SuspendDomain(ctx context.Context, uuid string) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if d.State != virt.StateRunning {
			return fmt.Errorf("domain '%s': domain is not running (%s): %w", d.Name(), d.State, virt.ErrFailedPrecondition)
		}
		d.Priv.cpuTime += time.Since(d.Priv.runningSince)
		d.State, d.Reason = virt.StatePaused, virt.PausedUser
		drv.log.Info("domain suspended", "name", d.Name(), "uuid", d.UUID())
		drv.emitLocked(d, virt.EventSuspended, virt.SuspendedPaused)
		return nil
	})
}

// ResumeDomain resumes a paused domain (running, reason unpaused).
func (drv *Driver) ResumeDomain(ctx context.Context, uuid string) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if d.State != virt.StatePaused {
			return fmt.Errorf("domain '%s': domain is not paused (%s): %w", d.Name(), d.State, virt.ErrFailedPrecondition)
		}
		d.Priv.runningSince = time.Now()
		d.State, d.Reason = virt.StateRunning, virt.RunningUnpaused
		drv.log.Info("domain resumed", "name", d.Name(), "uuid", d.UUID())
		drv.emitLocked(d, virt.EventResumed, virt.ResumedUnpaused)
		return nil
	})
}

// DomainInfo returns state, memory, vCPUs and CPU time. The CPU time of a
// test domain is the wall time it has spent running.
func (drv *Driver) DomainInfo(ctx context.Context, uuid string) (*virt.DomainInfo, error) {
	var info virt.DomainInfo
	err := drv.withDomain(ctx, uuid, func(d *domain) error {
		c := d.Current()
		info = virt.DomainInfo{
			State:        d.State,
			MaxMemoryKiB: c.maxMemKiB,
			MemoryKiB:    c.memKiB,
			VCPUs:        c.vcpus,
			CPUTime:      d.Priv.cpuTime,
		}
		if d.State == virt.StateRunning {
			info.CPUTime += time.Since(d.Priv.runningSince)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &info, nil
}

// DomainState returns the state and its reason.
func (drv *Driver) DomainState(ctx context.Context, uuid string) (virt.State, int32, error) {
	var st virt.State
	var reason int32
	err := drv.withDomain(ctx, uuid, func(d *domain) error {
		st, reason = d.State, d.Reason
		return nil
	})
	return st, reason, err
}

// DomainXML returns the live XML (with id='N' while running), or the
// persistent definition when inactive is true. A transient domain has no
// persistent definition; its inactive XML is the live one without the id.
func (drv *Driver) DomainXML(ctx context.Context, uuid string, inactive bool) (string, error) {
	var c *config
	var id int32
	err := drv.withDomain(ctx, uuid, func(d *domain) error {
		c = d.Current()
		if inactive && d.IsPersistent() {
			c = d.Persistent
		}
		if !inactive && d.State.Active() {
			id = d.ID()
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return c.marshal(id) // configs are immutable: no lock needed
}

// DomainAutostart reports whether the domain is marked for autostart.
func (drv *Driver) DomainAutostart(ctx context.Context, uuid string) (bool, error) {
	var a bool
	err := drv.withDomain(ctx, uuid, func(d *domain) error {
		a = d.Autostart
		return nil
	})
	return a, err
}

// SetDomainAutostart marks a persistent domain for autostart (which, in a
// driver that starts empty, only shows in lists and dominfo).
func (drv *Driver) SetDomainAutostart(ctx context.Context, uuid string, autostart bool) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if !d.IsPersistent() {
			return fmt.Errorf("domain '%s': cannot set autostart for a transient domain: %w", d.Name(), virt.ErrFailedPrecondition)
		}
		d.Autostart = autostart
		return nil
	})
}

// startLocked makes an inactive domain run the definition c (its
// persistent one, or the one CreateDomain was given), with the next ID.
func (drv *Driver) startLocked(d *domain, c *config, now time.Time) {
	d.Live = c
	d.SetID(drv.lastID.Add(1))
	d.State, d.Reason = virt.StateRunning, virt.RunningBooted
	d.Priv.cpuTime, d.Priv.runningSince = 0, now
}

// stopLocked shuts an active domain off with the given reason and emits
// Stopped with detail. A transient domain is forgotten.
func (drv *Driver) stopLocked(d *domain, reason, detail int32) {
	d.SetID(-1)
	d.State, d.Reason = virt.StateShutoff, reason
	d.Priv.cpuTime, d.Priv.runningSince = 0, time.Time{}
	if !d.IsPersistent() {
		// Gone; Live stays set so the Stopped event still describes it.
		drv.doms.Remove(d)
	} else {
		d.Live = nil
	}
	drv.emitLocked(d, virt.EventStopped, detail)
}
