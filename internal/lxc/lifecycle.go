package lxc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/atomicfile"
	"github.com/virtd/virtd/internal/defdir"
	"github.com/virtd/virtd/internal/lxc/controller"
	"github.com/virtd/virtd/internal/procfs"
	"github.com/virtd/virtd/virt"
)

// controllerTimeout bounds one call to a controller.
const controllerTimeout = 30 * time.Second

// DefineDomain makes a persistent definition from domain XML, or replaces
// the one with the same UUID, under the rules of package domlist. A
// running domain keeps the definition it was started with until it stops.
func (drv *Driver) DefineDomain(ctx context.Context, xml string) (*virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := parseConfig(xml)
	if err != nil {
		return nil, err
	}
	doc, err := c.marshal(0, nil)
	if err != nil {
		return nil, err
	}
	d, detail, err := drv.doms.Define(c, func(d *domain) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := atomicfile.Rewrite(drv.configPath(d.UUID()), []byte(doc), 0o600); err != nil {
			return virt.Errorf(virt.ErrInternal, "domain '%s': save definition: %w", d.Name(), err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer d.Unlock()
	drv.log.Debug("domain defined", "name", d.Name(), "uuid", d.UUID())
	drv.emitLocked(d, virt.EventDefined, detail)
	v := d.View()
	return &v, nil
}

// UndefineDomain removes the persistent definition; a running domain
// becomes transient and vanishes when it stops.
func (drv *Driver) UndefineDomain(ctx context.Context, uuid string) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if !d.IsPersistent() {
			return fmt.Errorf("domain '%s': cannot undefine a transient domain: %w", d.Name(), virt.ErrFailedPrecondition)
		}
		if err := defdir.Remove(drv.configPath(d.UUID())); err != nil {
			return virt.Errorf(virt.ErrInternal, "domain '%s': remove definition: %w", d.Name(), err)
		}
		_ = defdir.Remove(drv.autostartPath(d.UUID()))
		d.Persistent, d.Autostart = nil, false
		drv.log.Debug("domain undefined", "name", d.Name(), "uuid", d.UUID())
		drv.emitLocked(d, virt.EventUndefined, virt.UndefinedRemoved)
		if !d.State.Active() && !d.Priv.starting {
			drv.doms.Remove(d)
		}
		return nil
	})
}

// StartDomain starts the container: it returns once its init runs.
func (drv *Driver) StartDomain(ctx context.Context, uuid string) (*virt.Domain, error) {
	var c *config
	var d *domain
	err := drv.withDomain(ctx, uuid, func(dd *domain) error {
		if dd.State.Active() || dd.Priv.starting {
			return fmt.Errorf("domain '%s': domain is already running: %w", dd.Name(), virt.ErrFailedPrecondition)
		}
		if err := drv.canStart(dd); err != nil {
			return err
		}
		dd.Priv.starting = true
		d, c = dd, dd.Persistent
		return nil
	})
	if err != nil {
		return nil, err
	}
	return drv.start(ctx, d, c)
}

// CreateDomain starts a container from XML without a persistent
// definition, under the rules of package domlist (Create): a new
// transient domain, which vanishes when it stops, or an inactive
// persistent domain of that name and UUID, started with the XML as its
// live definition. It returns once the container's init runs.
func (drv *Driver) CreateDomain(ctx context.Context, xml string) (*virt.Domain, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := parseConfig(xml)
	if err != nil {
		return nil, err
	}
	d, added, err := drv.doms.Create(c)
	if err != nil {
		return nil, err
	}
	if d.Priv.starting {
		err = fmt.Errorf("domain '%s': domain is already running: %w", d.Name(), virt.ErrFailedPrecondition)
	} else {
		err = drv.canStart(d)
	}
	if err != nil {
		if added {
			drv.doms.Remove(d)
		}
		d.Unlock()
		return nil, err
	}
	d.Priv.starting = true
	d.Unlock()
	return drv.start(ctx, d, c)
}

// canStart refuses to start the locked domain d where containers cannot
// run.
func (drv *Driver) canStart(d *domain) error {
	if drv.hier == nil || drv.health != driver.HealthAvailable {
		return fmt.Errorf("domain '%s': cannot start containers on this host: %s: %w", d.Name(), drv.healthWhy, virt.ErrUnavailable)
	}
	return nil
}

// start runs d, marked starting, from c, and returns it running. A
// transient domain whose start fails is gone.
func (drv *Driver) start(ctx context.Context, d *domain, c *config) (*virt.Domain, error) {
	start := time.Now()
	r, err := drv.spawn(ctx, c)
	d.Lock()
	defer d.Unlock()
	d.Priv.starting = false
	if err != nil {
		if !d.IsPersistent() {
			drv.doms.Remove(d)
		}
		return nil, fmt.Errorf("domain '%s': %w", d.Name(), err)
	}
	d.Live, d.Priv.run = c, r
	d.State, d.Reason = virt.StateRunning, virt.RunningBooted
	d.SetID(int32(r.ctlPID))
	drv.doms.Show(d)
	drv.log.Info("domain started", "name", d.Name(), "uuid", d.UUID(), "id", r.ctlPID, "init_pid", r.initPID, "took", time.Since(start))
	drv.emitLocked(d, virt.EventStarted, virt.StartedBooted)
	go drv.watchRun(d, r)
	v := d.View()
	return &v, nil
}

// activeRun returns the run of an active domain.
func (drv *Driver) activeRun(ctx context.Context, uuid string) (*domain, *run, error) {
	var d *domain
	var r *run
	err := drv.withDomain(ctx, uuid, func(dd *domain) error {
		if !dd.State.Active() || dd.Priv.run == nil {
			return fmt.Errorf("domain '%s': domain is not running: %w", dd.Name(), virt.ErrFailedPrecondition)
		}
		d, r = dd, dd.Priv.run
		return nil
	})
	return d, r, err
}

// call sends op to the domain's controller.
func (drv *Driver) call(ctx context.Context, d *domain, r *run, op string) (*controller.Response, error) {
	conn, err := controller.Dial(ctx, r.sock)
	if err != nil {
		return nil, virt.Errorf(virt.ErrUnavailable, "domain '%s': controller unreachable: %w", d.Name(), err)
	}
	defer conn.Close()
	resp, err := conn.Call(ctx, op, controllerTimeout)
	if err != nil {
		return nil, fmt.Errorf("domain '%s': %s: %w", d.Name(), op, remoteErr(err))
	}
	return resp, nil
}

// remoteErr gives a controller's error its virt kind back.
func remoteErr(err error) error {
	var re *controller.RemoteError
	if errors.As(err, &re) {
		return re.Err()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return virt.Errorf(virt.ErrUnavailable, "%w", err)
}

// ShutdownDomain asks the container's init to power off (SIGTERM, as
// libvirt's signal method) and returns at once.
func (drv *Driver) ShutdownDomain(ctx context.Context, uuid string) error {
	d, r, err := drv.activeRun(ctx, uuid)
	if err != nil {
		return err
	}
	_, err = drv.call(ctx, d, r, controller.OpShutdown)
	return err
}

// RebootDomain asks the container's init to reboot (SIGHUP); when it exits
// the controller starts it again (on_reboot restart), keeping the ID.
func (drv *Driver) RebootDomain(ctx context.Context, uuid string) error {
	d, r, err := drv.activeRun(ctx, uuid)
	if err != nil {
		return err
	}
	_, err = drv.call(ctx, d, r, controller.OpReboot)
	return err
}

// DestroyDomain kills every process of the container and removes its
// cgroup, mounts and interfaces; it returns when nothing is left. The
// definition stays.
func (drv *Driver) DestroyDomain(ctx context.Context, uuid string) error {
	d, r, err := drv.activeRun(ctx, uuid)
	if err != nil {
		return err
	}
	if _, err := drv.call(ctx, d, r, controller.OpDestroy); err != nil && !errors.Is(err, virt.ErrUnavailable) {
		return err
	}
	select {
	case <-r.stopped:
		waitGone(r.ctlPID, 5*time.Second)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(controllerTimeout):
		return fmt.Errorf("domain '%s': the controller did not report the stop: %w", d.Name(), virt.ErrInternal)
	}
}

// SuspendDomain freezes every process of the container.
func (drv *Driver) SuspendDomain(ctx context.Context, uuid string) error {
	return drv.pause(ctx, uuid, true)
}

// ResumeDomain thaws a suspended container.
func (drv *Driver) ResumeDomain(ctx context.Context, uuid string) error {
	return drv.pause(ctx, uuid, false)
}

func (drv *Driver) pause(ctx context.Context, uuid string, freeze bool) error {
	d, r, err := drv.activeRun(ctx, uuid)
	if err != nil {
		return err
	}
	d.Lock()
	st := d.State
	d.Unlock()
	op := controller.OpSuspend
	if freeze && st != virt.StateRunning {
		return fmt.Errorf("domain '%s': domain is not running (%s): %w", d.Name(), st, virt.ErrFailedPrecondition)
	}
	if !freeze {
		op = controller.OpResume
		if st != virt.StatePaused {
			return fmt.Errorf("domain '%s': domain is not paused (%s): %w", d.Name(), st, virt.ErrFailedPrecondition)
		}
	}
	if _, err := drv.call(ctx, d, r, op); err != nil {
		return err
	}
	d.Lock()
	defer d.Unlock()
	if d.Priv.run != r {
		return nil
	}
	if freeze {
		d.State, d.Reason = virt.StatePaused, virt.PausedUser
		drv.emitLocked(d, virt.EventSuspended, virt.SuspendedPaused)
	} else {
		d.State, d.Reason = virt.StateRunning, virt.RunningUnpaused
		drv.emitLocked(d, virt.EventResumed, virt.ResumedUnpaused)
	}
	return nil
}

// DomainInfo returns state, memory (in use, from the cgroup, when
// running), vCPUs and CPU time (from cpuacct).
func (drv *Driver) DomainInfo(ctx context.Context, uuid string) (*virt.DomainInfo, error) {
	var info virt.DomainInfo
	var d *domain
	var r *run
	err := drv.withDomain(ctx, uuid, func(dd *domain) error {
		c := dd.Current()
		info = virt.DomainInfo{State: dd.State, MaxMemoryKiB: c.maxMemKiB, MemoryKiB: c.maxMemKiB, VCPUs: c.vcpus}
		if dd.State.Active() {
			d, r = dd, dd.Priv.run
		}
		return nil
	})
	if err != nil || r == nil {
		return &info, err
	}
	resp, err := drv.call(ctx, d, r, controller.OpStatus)
	if err != nil {
		return nil, err
	}
	kib := (resp.Status.MemoryBytes + 1023) / 1024
	info.MemoryKiB = min(max(kib, 1), info.MaxMemoryKiB)
	info.CPUTime = time.Duration(resp.Status.CPUTime)
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

// DomainXML returns the live XML (with id, console pty and host interface
// names while running), or the persistent definition when inactive.
func (drv *Driver) DomainXML(ctx context.Context, uuid string, inactive bool) (string, error) {
	var c *config
	var id int32
	var st *controller.Status
	err := drv.withDomain(ctx, uuid, func(d *domain) error {
		c = d.Current()
		if inactive && d.IsPersistent() {
			c = d.Persistent
		}
		if !inactive && d.State.Active() && d.Priv.run != nil {
			id, st = d.ID(), d.Priv.run.status
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return c.marshal(id, st)
}

// DomainAutostart reports whether the domain starts with the host.
func (drv *Driver) DomainAutostart(ctx context.Context, uuid string) (bool, error) {
	var a bool
	err := drv.withDomain(ctx, uuid, func(d *domain) error {
		a = d.Autostart
		return nil
	})
	return a, err
}

// SetDomainAutostart marks a persistent domain to start with the host (on
// the driver's first start after boot).
func (drv *Driver) SetDomainAutostart(ctx context.Context, uuid string, autostart bool) error {
	return drv.withDomain(ctx, uuid, func(d *domain) error {
		if !d.IsPersistent() {
			return fmt.Errorf("domain '%s': cannot set autostart for a transient domain: %w", d.Name(), virt.ErrFailedPrecondition)
		}
		p := drv.autostartPath(d.UUID())
		var err error
		if autostart {
			err = atomicfile.WriteFile(p, []byte(d.UUID()+"\n"), 0o600)
		} else {
			err = defdir.Remove(p)
		}
		if err != nil {
			return virt.Errorf(virt.ErrInternal, "domain '%s': autostart: %w", d.Name(), err)
		}
		d.Autostart = autostart
		return nil
	})
}

// waitGone waits until process pid has exited (a zombie counts as gone).
func waitGone(pid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && !procfs.Gone(pid) {
		time.Sleep(2 * time.Millisecond)
	}
}
