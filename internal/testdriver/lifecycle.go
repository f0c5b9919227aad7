package testdriver

import (
	"context"
	"fmt"
	"time"

	"github.com/virtd/virtd/virt"
)

// DefineDomain makes a persistent definition from domain XML, or replaces
// the one with the same UUID. A running domain keeps the definition it was
// started with until it stops; its inactive XML shows the new one at once.
func (drv *Driver) DefineDomain(ctx context.Context, xml string) (*virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := parseConfig(xml)
	if err != nil {
		return nil, err
	}
	drv.mu.Lock()
	defer drv.mu.Unlock()
	name, uuid := c.name(), c.uuid()
	if d := drv.byName[name]; d != nil && d.uuid != uuid {
		return nil, fmt.Errorf("domain '%s' already exists with uuid %s: %w", name, d.uuid, virt.ErrAlreadyExists)
	}
	d := drv.byUUID[uuid]
	if d != nil && d.name != name {
		return nil, fmt.Errorf("domain '%s' is already defined with uuid %s (renaming is not supported): %w",
			d.name, uuid, virt.ErrAlreadyExists)
	}
	detail := virt.DefinedUpdated
	if d == nil {
		d = &domain{name: name, uuid: uuid, state: virt.StateShutoff, reason: virt.ShutoffUnknown, id: -1}
		drv.byUUID[uuid] = d
		drv.byName[name] = d
	}
	if d.persistent == nil {
		detail = virt.DefinedAdded
	}
	d.persistent = c
	drv.log.Info("domain defined", "name", name, "uuid", uuid, "detail", virt.EventDetailString(virt.EventDefined, detail))
	drv.emitLocked(d, virt.EventDefined, detail)
	v := d.view()
	return &v, nil
}

// UndefineDomain removes the persistent definition. An inactive domain is
// gone; a running one becomes transient and vanishes when it stops.
func (drv *Driver) UndefineDomain(ctx context.Context, uuid string) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if d.persistent == nil {
			return fmt.Errorf("domain '%s': cannot undefine a transient domain: %w", d.name, virt.ErrFailedPrecondition)
		}
		d.persistent = nil
		d.autostart = false
		drv.log.Info("domain undefined", "name", d.name, "uuid", d.uuid, "active", d.state.Active())
		drv.emitLocked(d, virt.EventUndefined, virt.UndefinedRemoved)
		if !d.state.Active() {
			drv.removeLocked(d)
		}
		return nil
	})
}

// StartDomain boots an inactive domain with the next free ID.
func (drv *Driver) StartDomain(ctx context.Context, uuid string) (*virt.Domain, error) {
	var v virt.Domain
	err := drv.withDomain(ctx, uuid, func(d *domain) error {
		if d.state.Active() {
			return fmt.Errorf("domain '%s': domain is already running: %w", d.name, virt.ErrFailedPrecondition)
		}
		drv.startLocked(d, time.Now())
		drv.log.Info("domain started", "name", d.name, "uuid", d.uuid, "id", d.id)
		drv.emitLocked(d, virt.EventStarted, virt.StartedBooted)
		v = d.view()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// ShutdownDomain powers the domain off. The test guest always cooperates at
// once, as in libvirt's test driver: the domain is shut off (reason
// shutdown) when the call returns, after a Shutdown/Finished and a
// Stopped/Shutdown event.
func (drv *Driver) ShutdownDomain(ctx context.Context, uuid string) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if !d.state.Active() {
			return fmt.Errorf("domain '%s': domain is not running: %w", d.name, virt.ErrFailedPrecondition)
		}
		drv.log.Info("domain shut down", "name", d.name, "uuid", d.uuid)
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
		if !d.state.Active() {
			return fmt.Errorf("domain '%s': domain is not running: %w", d.name, virt.ErrFailedPrecondition)
		}
		drv.log.Info("domain rebooted", "name", d.name, "uuid", d.uuid)
		if d.live.xml.OnReboot == "destroy" {
			drv.emitLocked(d, virt.EventShutdown, virt.ShutdownFinished)
			drv.stopLocked(d, virt.ShutoffShutdown, virt.StoppedShutdown)
			return nil
		}
		if d.state == virt.StatePaused {
			d.runningSince = time.Now()
		}
		d.state, d.reason = virt.StateRunning, virt.RunningBooted
		return nil
	})
}

// DestroyDomain pulls the plug: the domain is shut off (reason destroyed);
// the definition stays (a transient domain vanishes).
func (drv *Driver) DestroyDomain(ctx context.Context, uuid string) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if !d.state.Active() {
			return fmt.Errorf("domain '%s': domain is not running: %w", d.name, virt.ErrFailedPrecondition)
		}
		drv.log.Info("domain destroyed", "name", d.name, "uuid", d.uuid)
		drv.stopLocked(d, virt.ShutoffDestroyed, virt.StoppedDestroyed)
		return nil
	})
}

// SuspendDomain pauses a running domain (paused, reason user).
func (drv *Driver) SuspendDomain(ctx context.Context, uuid string) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if d.state != virt.StateRunning {
			return fmt.Errorf("domain '%s': domain is not running (%s): %w", d.name, d.state, virt.ErrFailedPrecondition)
		}
		d.cpuTime += time.Since(d.runningSince)
		d.state, d.reason = virt.StatePaused, virt.PausedUser
		drv.log.Info("domain suspended", "name", d.name, "uuid", d.uuid)
		drv.emitLocked(d, virt.EventSuspended, virt.SuspendedPaused)
		return nil
	})
}

// ResumeDomain resumes a paused domain (running, reason unpaused).
func (drv *Driver) ResumeDomain(ctx context.Context, uuid string) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if d.state != virt.StatePaused {
			return fmt.Errorf("domain '%s': domain is not paused (%s): %w", d.name, d.state, virt.ErrFailedPrecondition)
		}
		d.runningSince = time.Now()
		d.state, d.reason = virt.StateRunning, virt.RunningUnpaused
		drv.log.Info("domain resumed", "name", d.name, "uuid", d.uuid)
		drv.emitLocked(d, virt.EventResumed, virt.ResumedUnpaused)
		return nil
	})
}

// DomainInfo returns state, memory, vCPUs and CPU time. The CPU time of a
// test domain is the wall time it has spent running.
func (drv *Driver) DomainInfo(ctx context.Context, uuid string) (*virt.DomainInfo, error) {
	var info virt.DomainInfo
	err := drv.withDomain(ctx, uuid, func(d *domain) error {
		c := d.current()
		info = virt.DomainInfo{
			State:        d.state,
			MaxMemoryKiB: c.maxMemKiB,
			MemoryKiB:    c.memKiB,
			VCPUs:        c.vcpus,
			CPUTime:      d.cpuTime,
		}
		if d.state == virt.StateRunning {
			info.CPUTime += time.Since(d.runningSince)
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
		st, reason = d.state, d.reason
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
		c = d.current()
		if inactive && d.persistent != nil {
			c = d.persistent
		}
		if !inactive && d.state.Active() {
			id = d.id
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
		a = d.autostart
		return nil
	})
	return a, err
}

// SetDomainAutostart marks a persistent domain for autostart (which, in a
// driver that starts empty, only shows in lists and dominfo).
func (drv *Driver) SetDomainAutostart(ctx context.Context, uuid string, autostart bool) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if d.persistent == nil {
			return fmt.Errorf("domain '%s': cannot set autostart for a transient domain: %w", d.name, virt.ErrFailedPrecondition)
		}
		d.autostart = autostart
		return nil
	})
}

// startLocked makes an inactive domain run its persistent definition.
func (drv *Driver) startLocked(d *domain, now time.Time) {
	d.live = d.persistent
	d.id = drv.nextID
	drv.nextID++
	drv.byID[d.id] = d
	d.state, d.reason = virt.StateRunning, virt.RunningBooted
	d.cpuTime, d.runningSince = 0, now
}

// stopLocked shuts an active domain off with the given reason and emits
// Stopped with detail. A transient domain is forgotten.
func (drv *Driver) stopLocked(d *domain, reason, detail int32) {
	delete(drv.byID, d.id)
	d.id = -1
	d.state, d.reason = virt.StateShutoff, reason
	d.cpuTime, d.runningSince = 0, time.Time{}
	if d.persistent == nil {
		// Gone; live stays set so the Stopped event still describes it.
		drv.removeLocked(d)
	} else {
		d.live = nil
	}
	drv.emitLocked(d, virt.EventStopped, detail)
}

// removeLocked forgets a domain.
func (drv *Driver) removeLocked(d *domain) {
	delete(drv.byUUID, d.uuid)
	delete(drv.byName, d.name)
}
