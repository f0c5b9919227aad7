package lxc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/virtd/virtd/internal/atomicfile"
	"github.com/virtd/virtd/internal/lxc/controller"
	"github.com/virtd/virtd/virt"
)

// run is one running instance of a domain: its controller.
type run struct {
	uuid    string
	ctlPID  int
	initPID int
	sock    string
	// watch carries the controller's events.
	watch  *controller.Conn
	status *controller.Status
	// stopped is closed once the driver has recorded the stop.
	stopped chan struct{}
}

func (drv *Driver) runPath(uuid, ext string) string {
	return filepath.Join(drv.opts.RunDir, uuid+ext)
}

// removeRunFiles removes what a run keeps in the run directory.
func (drv *Driver) removeRunFiles(uuid string) {
	for _, ext := range []string{".xml", ".spec", ".sock", ".state", ".exit"} {
		_ = os.Remove(drv.runPath(uuid, ext))
	}
}

// spawn starts a controller for c and waits until the container's init
// runs (or the controller reports why it could not start it).
func (drv *Driver) spawn(ctx context.Context, c *config) (*run, error) {
	spec := c.spec(drv.opts.CgroupParent)
	if st, err := os.Stat(spec.RootFS); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("root filesystem %s does not exist or is not a directory: %w", spec.RootFS, virt.ErrInvalidArgument)
	}
	uuid := c.UUID()
	sock := drv.runPath(uuid, ".sock")
	if len(sock) >= 108 {
		return nil, fmt.Errorf("controller socket path %s is too long: %w", sock, virt.ErrInternal)
	}
	doc, err := c.marshal(0, nil)
	if err != nil {
		return nil, err
	}
	specJSON, err := spec.Marshal()
	if err != nil {
		return nil, virt.Errorf(virt.ErrInternal, "spec: %w", err)
	}
	drv.removeRunFiles(uuid)
	fail := func(err error) (*run, error) {
		drv.removeRunFiles(uuid)
		return nil, err
	}
	if err := atomicfile.Replace(drv.runPath(uuid, ".xml"), []byte(doc), 0o600); err != nil {
		return fail(virt.Errorf(virt.ErrInternal, "live XML: %w", err))
	}
	if err := atomicfile.Replace(drv.runPath(uuid, ".spec"), specJSON, 0o600); err != nil {
		return fail(virt.Errorf(virt.ErrInternal, "spec: %w", err))
	}
	logPath := filepath.Join(drv.opts.LogDir, c.UUID()+".log")
	ctl, warm, err := drv.takeController()
	if err != nil {
		return fail(err)
	}
	if warm {
		go drv.startSpare()
	} else {
		defer func() { go drv.startSpare() }()
	}
	cmd, conn, exited := ctl.cmd, ctl.conn, ctl.exited
	// A controller that failed exits at once: wait for it, so that
	// nothing is left when the error is returned.
	reap := func() {
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	// A controller killed after it made the container leaves the
	// container behind (its own pid namespace, cgroup, veths): clean it up
	// too, or nothing would ever find it again.
	abandon := func() {
		_ = cmd.Process.Kill()
		<-exited
		if err := controller.Cleanup(spec); err != nil {
			drv.log.Warn("cleaning up after a failed start", "name", c.Name(), "error", err)
		}
	}
	args := controller.Args{Name: c.Name(), Spec: drv.runPath(uuid, ".spec"), Socket: sock,
		Exit: drv.runPath(uuid, ".exit"), State: drv.runPath(uuid, ".state"), Log: logPath}
	if err := conn.Send(args); err != nil {
		conn.Close()
		abandon()
		return fail(virt.Errorf(virt.ErrInternal, "the controller exited before it was told what to run: %w", err))
	}
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	resp, err := conn.ReadResponse()
	var rerr *controller.RemoteError
	switch {
	case errors.As(err, &rerr):
		conn.Close()
		reap()
		return fail(remoteErr(rerr))
	case err == nil && resp.Status == nil:
		err = errors.New("no status")
		fallthrough
	case err != nil:
		conn.Close()
		abandon()
		return fail(virt.Errorf(virt.ErrInternal, "the controller exited before the container started (see %s): %w", logPath, err))
	}
	// The start connection goes on as the watch of the container.
	st := resp.Status
	return &run{uuid: uuid, ctlPID: st.ControllerPID, initPID: st.InitPID, sock: sock,
		watch: conn, status: st, stopped: make(chan struct{})}, nil
}

// attach connects to the controller of uuid and subscribes to its events.
func (drv *Driver) attach(ctx context.Context, uuid string) (*run, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	sock := drv.runPath(uuid, ".sock")
	conn, err := controller.Dial(ctx, sock)
	if err != nil {
		return nil, virt.Errorf(virt.ErrUnavailable, "controller socket %s: %w", sock, err)
	}
	resp, err := conn.Call(ctx, controller.OpWatch, 5*time.Second)
	if err != nil || resp.Status == nil {
		conn.Close()
		return nil, virt.Errorf(virt.ErrUnavailable, "controller socket %s: %w", sock, err)
	}
	st := resp.Status
	return &run{uuid: uuid, ctlPID: st.ControllerPID, initPID: st.InitPID, sock: sock,
		watch: conn, status: st, stopped: make(chan struct{})}, nil
}

// watchRun follows a run's events until it stops.
func (drv *Driver) watchRun(d *domain, r *run) {
	for {
		ev, err := r.watch.NextEvent()
		if err != nil {
			drv.mu.Lock()
			closed := drv.closed
			drv.mu.Unlock()
			if closed {
				return
			}
			drv.stop(d, r, drv.exitReason(r.uuid, r.ctlPID))
			return
		}
		switch ev.Type {
		case "rebooted":
			d.Lock()
			if d.Priv.run == r {
				r.initPID = ev.InitPID
				st := *r.status
				st.InitPID = ev.InitPID
				r.status = &st
				d.State, d.Reason = virt.StateRunning, virt.RunningBooted
			}
			d.Unlock()
			drv.log.Info("domain rebooted", "name", d.Name(), "init_pid", ev.InitPID)
		case "stopped":
			r.watch.Close()
			drv.stop(d, r, ev.Reason)
			return
		}
	}
}

// exitReason reads why a controller stopped. A controller that left no
// reason died: what it left behind is cleaned up.
func (drv *Driver) exitReason(uuid string, ctlPID int) string {
	for i := 0; i < 100; i++ {
		var ex controller.Exit
		if b, err := os.ReadFile(drv.runPath(uuid, ".exit")); err == nil && json.Unmarshal(b, &ex) == nil {
			return ex.Reason
		}
		if ctlPID <= 0 || syscall.Kill(ctlPID, 0) != nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // still exiting
	}
	if spec, err := controller.ReadSpec(drv.runPath(uuid, ".spec")); err == nil {
		if err := controller.Cleanup(spec); err != nil {
			drv.log.Error("clean up after a dead controller", "uuid", uuid, "error", err)
		}
	}
	return "failed"
}

// stop records that run r of d has stopped, for reason.
func (drv *Driver) stop(d *domain, r *run, reason string) {
	d.Lock()
	defer d.Unlock()
	if d.Priv.run != r {
		return
	}
	drv.removeRunFiles(r.uuid)
	d.SetID(-1)
	d.Priv.run = nil
	d.State = virt.StateShutoff
	detail := virt.StoppedShutdown
	switch reason {
	case "shutdown":
		d.Reason = virt.ShutoffShutdown
	case "destroyed":
		d.Reason, detail = virt.ShutoffDestroyed, virt.StoppedDestroyed
	case "crashed":
		d.Reason, detail = virt.ShutoffCrashed, virt.StoppedCrashed
	default:
		d.Reason, detail = virt.ShutoffFailed, virt.StoppedFailed
	}
	drv.log.Info("domain stopped", "name", d.Name(), "uuid", d.UUID(), "reason", reason)
	if !d.IsPersistent() {
		drv.doms.Remove(d)
	} else {
		d.Live = nil
	}
	drv.emitLocked(d, virt.EventStopped, detail)
	close(r.stopped)
}

// recover finds the containers whose controllers run (after a driver or
// daemon restart) and takes them up again; it cleans up after those that
// stopped meanwhile.
func (drv *Driver) recover() {
	specs, _ := filepath.Glob(filepath.Join(drv.opts.RunDir, "*.spec"))
	for _, sp := range specs {
		uuid := strings.TrimSuffix(filepath.Base(sp), ".spec")
		b, err := os.ReadFile(drv.runPath(uuid, ".xml"))
		var c *config
		if err == nil {
			c, err = parseConfig(string(b))
		}
		if err != nil {
			drv.log.Error("unreadable live XML; cleaning up", "uuid", uuid, "error", err)
			drv.exitReason(uuid, 0)
			drv.removeRunFiles(uuid)
			continue
		}
		r, err := drv.attach(context.Background(), uuid)
		if err != nil {
			var st controller.State
			if b, err := os.ReadFile(drv.runPath(uuid, ".state")); err == nil {
				_ = json.Unmarshal(b, &st)
			}
			reason := drv.exitReason(uuid, st.ControllerPID)
			drv.log.Info("container stopped while the driver was away", "name", c.Name(), "reason", reason)
			drv.removeRunFiles(uuid)
			continue
		}
		// The container's definition, or a transient domain for it.
		d, err := drv.doms.Find(virt.ByUUID(uuid))
		if err != nil {
			d, err = drv.doms.Add(c.Name(), uuid)
		}
		if err != nil {
			// Only files edited by hand get here: leave it running.
			drv.log.Error("running container left unmanaged", "name", c.Name(), "uuid", uuid, "error", err)
			r.watch.Close()
			continue
		}
		d.Live, d.Priv.run = c, r
		d.State, d.Reason = virt.StateRunning, virt.RunningBooted
		if r.status.Paused {
			d.State, d.Reason = virt.StatePaused, virt.PausedUser
		}
		d.SetID(int32(r.ctlPID))
		drv.log.Info("reconnected to running container", "name", d.Name(), "id", r.ctlPID, "init_pid", r.initPID)
		go drv.watchRun(d, r)
		d.Unlock()
	}
}

// autostartOnce starts the autostart domains on the driver's first start
// after the host booted (the run directory is empty then).
func (drv *Driver) autostartOnce() {
	marker := filepath.Join(drv.opts.RunDir, "autostarted")
	f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	f.Close()
	var todo []string
	drv.doms.Each(func(d *domain) {
		if d.Autostart && !d.State.Active() {
			todo = append(todo, d.UUID())
		}
	})
	for _, u := range todo {
		go func() {
			if _, err := drv.StartDomain(context.Background(), u); err != nil {
				drv.log.Error("autostart", "uuid", u, "error", err)
			}
		}()
	}
}

// OpenConsole attaches to the container's console: the stream carries the
// pty master's bytes both ways. devName "" or "console0" is the only
// console.
func (drv *Driver) OpenConsole(ctx context.Context, uuid, devName string) (io.ReadWriteCloser, error) {
	d, r, err := drv.activeRun(ctx, uuid)
	if err != nil {
		return nil, err
	}
	if devName != "" && devName != "console0" && devName != "serial0" {
		return nil, fmt.Errorf("domain '%s': no console %q (only console0): %w", d.Name(), devName, virt.ErrNotFound)
	}
	conn, err := controller.Dial(ctx, r.sock)
	if err != nil {
		return nil, virt.Errorf(virt.ErrUnavailable, "domain '%s': controller unreachable: %w", d.Name(), err)
	}
	if _, err := conn.Call(ctx, controller.OpConsole, controllerTimeout); err != nil {
		conn.Close()
		return nil, fmt.Errorf("domain '%s': console: %w", d.Name(), remoteErr(err))
	}
	return conn.Stream(), nil
}
