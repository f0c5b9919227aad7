package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/virtd/virtd/internal/procfs"
	"github.com/virtd/virtd/internal/qemu/qmp"
	"github.com/virtd/virtd/virt"
)

// instance is one running QEMU process of a domain.
type instance struct {
	rec *record
	mon *qmp.Monitor // nil when the monitor could not be reconnected
	cmd *exec.Cmd    // nil for a process found again after a restart
	// procDone is closed when the process has exited; exited once the
	// driver has handled the exit (state, events, files).
	procDone chan struct{}
	exited   chan struct{}

	// Guarded by the domain's lock.
	starting   bool
	destroying bool
	shutdown   *shutdownInfo // QEMU's SHUTDOWN event, once seen
	// expect holds the STOP and RESUME events that the driver's own stop
	// and cont commands will cause. QMP may deliver them after the
	// command's reply, even after the next command: they are not news.
	expect map[string][]*expected
}

// expected is a QMP event the driver's own command will cause, and the
// lifecycle event to emit when QEMU has done it: at the QMP event or at
// the command's reply, whichever comes first (QEMU sends STOP before it
// has finished the stop command).
type expected struct {
	emit    func()
	emitted bool
}

// expectLocked notes that the driver's own command will cause event name;
// emit, if not nil, reports it done.
func (inst *instance) expectLocked(name string, emit func()) *expected {
	if inst.expect == nil {
		inst.expect = map[string][]*expected{}
	}
	e := &expected{emit: emit}
	inst.expect[name] = append(inst.expect[name], e)
	return e
}

// doneLocked emits e's lifecycle event, once.
func (e *expected) doneLocked() {
	if !e.emitted && e.emit != nil {
		e.emit()
	}
	e.emitted = true
}

// unexpectLocked forgets e: its command failed.
func (inst *instance) unexpectLocked(name string, e *expected) {
	inst.expect[name] = slices.DeleteFunc(inst.expect[name], func(x *expected) bool { return x == e })
}

// expectedLocked consumes one expected event, reporting whether there was
// one, and emits its lifecycle event if its command's reply has not yet.
func (inst *instance) expectedLocked(name string) bool {
	q := inst.expect[name]
	if len(q) == 0 {
		return false
	}
	q[0].doneLocked()
	inst.expect[name] = q[1:]
	return true
}

type shutdownInfo struct {
	Guest  bool   `json:"guest"`
	Reason string `json:"reason"`
}

// checkHost checks what a definition needs on this host: the emulator
// (found on PATH when not given), and at start also the kernel, initrd
// and disk files.
func (drv *Driver) checkHost(c *config, starting bool) error {
	x := c.x
	if x.OS.Type.Arch != "x86_64" && x.OS.Type.Arch != "i686" {
		return fmt.Errorf("domain '%s': architecture %q is not supported by the qemu driver (only x86_64 and i686): %w",
			c.Name(), x.OS.Type.Arch, virt.ErrNotSupported)
	}
	if x.Devices.Emulator == "" {
		p := drv.caps.find("qemu-system-" + x.OS.Type.Arch)
		if p == "" {
			return fmt.Errorf("domain '%s': no emulator for arch %s: qemu-system-%s not found in %s: %w",
				c.Name(), x.OS.Type.Arch, x.OS.Type.Arch, drv.caps.searchPath(), virt.ErrNotFound)
		}
		x.Devices.Emulator = p
	}
	if err := checkFile(c, "emulator", x.Devices.Emulator, true); err != nil {
		return err
	}
	if err := drv.checkExtras(c, starting); err != nil {
		return err
	}
	if !starting {
		return nil
	}
	for _, f := range []struct{ what, path string }{{"kernel", x.OS.Kernel}, {"initrd", x.OS.Initrd}} {
		if f.path != "" {
			if err := checkFile(c, f.what, f.path, false); err != nil {
				return err
			}
		}
	}
	for i := range x.Devices.Disks {
		if p := diskPath(&x.Devices.Disks[i]); p != "" {
			if err := checkFile(c, "disk "+x.Devices.Disks[i].Target.Dev, p, false); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkFile(c *config, what, path string, exe bool) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("domain '%s': %s path %q must be absolute: %w", c.Name(), what, path, virt.ErrInvalidArgument)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("domain '%s': %s %s: %w", c.Name(), what, path, errKind(err))
	}
	if exe && (st.IsDir() || st.Mode()&0o111 == 0) {
		return fmt.Errorf("domain '%s': %s %s is not an executable file: %w", c.Name(), what, path, virt.ErrInvalidArgument)
	}
	return nil
}

// errKind gives a failed stat its kind and words. A missing file and a
// refused one stay apart, in kind and text, on purpose: only a read-write
// connection defines or starts a domain, and it can already have QEMU,
// which runs as root, open any host file as a disk or kernel, so the
// difference tells it nothing new; to root, permission denied is worth
// telling apart (a root-squashed NFS export, FUSE, an LSM policy).
func errKind(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no such file: %w", virt.ErrNotFound)
	}
	if errors.Is(err, os.ErrPermission) {
		return virt.Errorf(virt.ErrPermissionDenied, "%w", err)
	}
	return virt.Errorf(virt.ErrInvalidArgument, "%w", err)
}

// StartDomain boots a defined domain: QEMU starts paused, detached in its
// own session; once its monitor answers and the live values are read, it
// is resumed, so the domain is running when StartDomain returns.
func (drv *Driver) StartDomain(ctx context.Context, uuid string) (*virt.Domain, error) {
	d, err := drv.lookupOp(ctx, uuid)
	if err != nil {
		return nil, err
	}
	defer d.Priv.op.Unlock()
	if err := drv.start(ctx, d, nil); err != nil {
		return nil, err
	}
	d.Lock()
	defer d.Unlock()
	v := d.View()
	return &v, nil
}

// CreateDomain starts a domain from XML without a persistent definition,
// under the rules of package domlist (Create): a new transient domain,
// which vanishes when its QEMU exits, or an inactive persistent domain
// of that name and UUID, started with the XML as its live definition.
// It returns, as StartDomain does, once the guest runs.
func (drv *Driver) CreateDomain(ctx context.Context, doc string) (*virt.Domain, error) {
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
	var d *domain
	var added bool
	for {
		if d, added, err = drv.doms.Create(c); err != nil {
			return nil, err
		}
		// The op lock comes first: let go of the domain's lock to take it
		// (nobody else finds a domain Create added), then check that an
		// existing domain is still inactive and listed.
		d.Unlock()
		d.Priv.op.Lock()
		d.Lock()
		if added || !d.Removed() && d.Priv.inst == nil {
			d.Unlock()
			break
		}
		d.Unlock()
		d.Priv.op.Unlock()
	}
	defer d.Priv.op.Unlock()
	if err := drv.start(ctx, d, c); err != nil {
		if added {
			d.Lock()
			drv.doms.Remove(d)
			d.Unlock()
		}
		return nil, err
	}
	d.Lock()
	defer d.Unlock()
	v := d.View()
	return &v, nil
}

// start boots the inactive domain d from live, or from its persistent
// definition when live is nil. The caller holds d's op lock.
func (drv *Driver) start(ctx context.Context, d *domain, live *config) error {
	d.Lock()
	if d.Priv.inst != nil {
		name := d.Name()
		d.Unlock()
		return fmt.Errorf("domain '%s' is already running: %w", name, virt.ErrFailedPrecondition)
	}
	c := live
	if c == nil {
		if !d.IsPersistent() {
			d.Unlock()
			return fmt.Errorf("domain has no definition: %w", virt.ErrNotFound)
		}
		c = d.Persistent.clone()
	}
	id := drv.lastID.Add(1)
	d.Unlock()

	if err := drv.checkHost(c, true); err != nil {
		return err
	}
	if err := drv.checkTuningHost(c); err != nil {
		return err
	}
	began := time.Now()
	rec := &record{
		UUID: c.UUID(), Name: c.Name(), ID: id,
		QMP:        filepath.Join(drv.cfg.RunDir, c.UUID()+".qmp"),
		PidFile:    filepath.Join(drv.cfg.RunDir, c.UUID()+".pid"),
		Log:        filepath.Join(drv.cfg.LogDir, c.UUID()+".log"),
		Persistent: true,
	}
	if len(rec.QMP) >= 108 {
		return fmt.Errorf("domain '%s': QMP socket path %s is longer than a unix socket allows: %w", c.Name(), rec.QMP, virt.ErrInvalidArgument)
	}
	held, err := drv.prepareRuntime(c, rec)
	if err != nil {
		drv.removeRuntimeFiles(rec)
		return err
	}
	// Once QEMU answers on QMP it listens on its ports, or has failed.
	defer drv.ports.release(held)
	inst, err := drv.launch(ctx, d, c, rec)
	if err != nil {
		drv.stopHelpers(rec)
		drv.removeRuntimeFiles(rec)
		if errors.Is(err, virt.ErrInternal) {
			d.Lock()
			d.State, d.Reason = virt.StateShutoff, virt.ShutoffFailed
			d.Unlock()
		}
		return err
	}
	fail := func(err error) error {
		drv.killAndReap(inst)
		drv.deleteTaps(rec.Taps)
		drv.stopHelpers(rec)
		drv.removeRuntimeFiles(rec)
		if inst.mon != nil {
			inst.mon.Close()
		}
		d.Lock()
		if d.Priv.inst == inst {
			d.Priv.inst, d.Live = nil, nil
			d.SetID(-1)
			d.State, d.Reason = virt.StateShutoff, virt.ShutoffFailed
		}
		d.Unlock()
		kind := virt.KindOf(err)
		if kind == nil {
			kind = virt.ErrInternal
		}
		return virt.Errorf(kind, "domain '%s': %w%s", c.Name(), err, logTail(rec.Log))
	}

	if err := drv.applyTuning(ctx, c, inst); err != nil {
		return fail(err)
	}
	if err := drv.readLiveValues(ctx, inst.mon, c); err != nil {
		return fail(err)
	}
	if err := setBalloonPeriod(ctx, inst.mon, c); err != nil {
		return fail(err)
	}
	doc, err := c.marshal(id)
	if err != nil {
		return fail(err)
	}
	rec.XML = doc
	rec.State, rec.Reason = virt.StateRunning, virt.RunningBooted

	d.Lock()
	d.Priv.inst, d.Live = inst, c
	rec.Persistent = d.IsPersistent()
	inst.expectLocked("RESUME", nil)
	d.Unlock()
	if err := drv.saveRecord(rec); err != nil {
		return fail(virt.Errorf(virt.ErrInternal, "writing the runtime record: %w", err))
	}
	if err := inst.mon.Execute(ctx, "cont", nil, nil); err != nil {
		return fail(virt.Errorf(virt.ErrInternal, "resuming QEMU: %w", err))
	}
	d.Lock()
	inst.starting = false
	d.State, d.Reason = virt.StateRunning, virt.RunningBooted
	d.SetID(id)
	drv.doms.Show(d)
	drv.emitLocked(d, virt.EventStarted, virt.StartedBooted)
	d.Unlock()
	go drv.watchExit(d, inst)
	drv.log.Info("domain started", "name", c.Name(), "pid", rec.Pid, "id", id, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// launch starts QEMU paused and connects its monitor. The QMP socket is
// created by the driver and handed over as fd 3, so the driver can connect
// at once, without polling for the socket to appear.
func (drv *Driver) launch(ctx context.Context, d *domain, c *config, rec *record) (*instance, error) {
	name := c.Name()
	if err := drv.createTaps(c, rec); err != nil {
		return nil, err
	}
	os.Remove(rec.QMP)
	os.Remove(rec.PidFile)
	lnFile, err := listenFile(rec.QMP)
	if err != nil {
		drv.deleteTaps(rec.Taps)
		return nil, virt.Errorf(virt.ErrInternal, "domain '%s': QMP socket: %w", name, err)
	}
	defer lnFile.Close()

	argv, err := buildArgv(c, runtimePaths{Monitor: "fd=3", PidFile: rec.PidFile})
	if err != nil {
		drv.deleteTaps(rec.Taps)
		return nil, err
	}
	if err := drv.startHelpers(c, rec); err != nil {
		drv.deleteTaps(rec.Taps)
		return nil, err
	}
	logf, err := os.OpenFile(rec.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		drv.deleteTaps(rec.Taps)
		return nil, virt.Errorf(virt.ErrInternal, "domain '%s': log file: %w", name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "%s: starting up\n%s\n", time.Now().Format(time.RFC3339Nano), shellQuote(argv))

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + drv.cfg.RunDir}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own session: QEMU outlives the driver, and no signal meant for
	// the driver's process group reaches it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := startListening(cmd, lnFile); err != nil {
		drv.deleteTaps(rec.Taps)
		return nil, virt.Errorf(virt.ErrInternal, "domain '%s': starting %s: %w", name, argv[0], err)
	}
	inst := &instance{rec: rec, cmd: cmd, procDone: make(chan struct{}), exited: make(chan struct{}), starting: true}
	go func() {
		_ = cmd.Wait()
		close(inst.procDone)
	}()
	rec.Pid = cmd.Process.Pid
	if st, err := procfs.ReadStat(rec.Pid); err == nil {
		rec.StartTime = st.StartTime
	}

	dctx, cancel := context.WithTimeout(ctx, drv.cfg.StartTimeout)
	defer cancel()
	go func() {
		select {
		case <-inst.procDone:
			cancel()
		case <-dctx.Done():
		}
	}()
	mon, err := qmp.Dial(dctx, rec.QMP, func(ev qmp.Event) { drv.onEvent(d, inst, ev) })
	if err != nil {
		drv.killAndReap(inst)
		drv.deleteTaps(rec.Taps)
		select {
		case <-inst.procDone:
			err = fmt.Errorf("QEMU exited at start (%s)", cmd.ProcessState)
		default:
		}
		return nil, virt.Errorf(virt.ErrInternal, "domain '%s': %w%s", name, err, logTail(rec.Log))
	}
	inst.mon = mon
	return inst, nil
}

// readLiveValues fills in what only the running QEMU knows: pty paths
// and the VNC port.
func (drv *Driver) readLiveValues(ctx context.Context, mon *qmp.Monitor, c *config) error {
	var chardevs []struct {
		Label    string `json:"label"`
		Filename string `json:"filename"`
	}
	if err := mon.Execute(ctx, "query-chardev", nil, &chardevs); err != nil {
		return virt.Errorf(virt.ErrInternal, "query-chardev: %w", err)
	}
	x := c.x
	for i := range x.Devices.Serials {
		s := &x.Devices.Serials[i]
		if s.Source.Pty == nil {
			continue
		}
		label := fmt.Sprintf("charserial%d", *s.Target.Port)
		for _, cd := range chardevs {
			if cd.Label == label {
				s.Source.Pty.Path = strings.TrimPrefix(cd.Filename, "pty:")
			}
		}
		for j := range x.Devices.Consoles {
			if con := &x.Devices.Consoles[j]; *con.Target.Port == *s.Target.Port {
				con.Source = s.Source
				con.TTY = s.Source.Pty.Path
			}
		}
	}
	for _, g := range x.Devices.Graphics {
		if g.VNC == nil || g.VNC.AutoPort != "yes" {
			continue
		}
		var vnc struct {
			Service string `json:"service"`
		}
		if err := mon.Execute(ctx, "query-vnc", nil, &vnc); err != nil {
			return virt.Errorf(virt.ErrInternal, "query-vnc: %w", err)
		}
		if p, err := strconv.Atoi(vnc.Service); err == nil {
			g.VNC.Port = p
		}
	}
	return nil
}

// killAndReap pulls the plug and waits for the process to be gone.
func (drv *Driver) killAndReap(inst *instance) {
	signalProcess(inst, syscall.SIGKILL)
	select {
	case <-inst.procDone:
	case <-time.After(10 * time.Second):
		drv.log.Error("QEMU did not exit after SIGKILL", "pid", inst.rec.Pid)
	}
}

func signalProcess(inst *instance, sig syscall.Signal) {
	if inst.cmd != nil {
		_ = inst.cmd.Process.Signal(sig)
		return
	}
	// Not our child: check it is still the same process first.
	if procfs.Alive(inst.rec.Pid, inst.rec.StartTime) {
		if p, err := os.FindProcess(inst.rec.Pid); err == nil {
			_ = p.Signal(sig)
		}
	}
}

// watchExit handles the end of a QEMU process: the reason (destroyed,
// shut down, crashed), events, runtime files, and on_poweroff /
// on_crash restarts.
func (drv *Driver) watchExit(d *domain, inst *instance) {
	<-inst.procDone
	if inst.mon != nil {
		// Let the events QEMU sent before exiting (SHUTDOWN) be handled.
		select {
		case <-inst.mon.EventsHandled():
		case <-time.After(2 * time.Second):
		}
		inst.mon.Close()
	}
	d.Lock()
	if drv.closed.Load() {
		d.Unlock()
		return
	}
	rec := inst.rec
	// Files first: whoever sees the stop event finds them gone.
	drv.removeRuntimeFiles(rec)
	var reason int32
	var restart bool
	c := d.Live
	switch {
	case inst.destroying:
		reason = virt.ShutoffDestroyed
	case inst.shutdown != nil:
		reason = virt.ShutoffShutdown
		restart = c != nil && c.x.OnPoweroff == "restart"
	default:
		reason = virt.ShutoffCrashed
		restart = c != nil && c.x.OnCrash == "restart"
	}
	if reason == virt.ShutoffShutdown {
		detail := virt.ShutdownHost
		if inst.shutdown.Guest {
			detail = virt.ShutdownGuest
		}
		drv.emitLocked(d, virt.EventShutdown, detail)
	}
	d.Priv.inst, d.Live = nil, nil
	d.SetID(-1)
	d.State, d.Reason = virt.StateShutoff, reason
	detail := map[int32]int32{
		virt.ShutoffDestroyed: virt.StoppedDestroyed,
		virt.ShutoffShutdown:  virt.StoppedShutdown,
		virt.ShutoffCrashed:   virt.StoppedCrashed,
	}[reason]
	// A transient domain vanishes: the event still shows its identity,
	// now shut off, and no Undefined event follows (as in libvirt).
	if !d.IsPersistent() {
		d.Live = c
		drv.emitLocked(d, virt.EventStopped, detail)
		d.Live = nil
		drv.doms.Remove(d)
		restart = false
		if c != nil {
			defer drv.removeDomainState(c)
		}
	} else {
		drv.emitLocked(d, virt.EventStopped, detail)
	}
	d.Unlock()

	drv.deleteTaps(rec.Taps)
	drv.stopHelpers(rec)
	drv.log.Info("domain stopped", "name", rec.Name, "pid", rec.Pid, "reason", virt.ReasonString(virt.StateShutoff, reason))
	close(inst.exited)
	if restart {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*drv.cfg.StartTimeout)
			defer cancel()
			if _, err := drv.StartDomain(ctx, rec.UUID); err != nil {
				drv.log.Error("restarting the domain failed", "name", rec.Name, "error", err)
			}
		}()
	}
}

// onEvent turns QMP events from inst, d's QEMU, into state changes and
// lifecycle events. Changes the driver made itself (suspend, resume,
// start) are already in the state when their events arrive, and are not
// reported twice.
func (drv *Driver) onEvent(d *domain, inst *instance, ev qmp.Event) {
	d.Lock()
	defer d.Unlock()
	drv.log.Debug("qmp event", "domain", inst.rec.Name, "event", ev.Name, "data", string(ev.Data))
	switch ev.Name {
	case "SHUTDOWN":
		var s shutdownInfo
		_ = json.Unmarshal(ev.Data, &s)
		inst.shutdown = &s
		return
	case "POWERDOWN":
		return
	case "RESET":
		// The guest reset and runs on (a reset that ends it comes as
		// SHUTDOWN): libvirt's reboot event.
		if d.Priv.inst == inst && !inst.starting && !inst.destroying && inst.shutdown == nil {
			drv.emitLocked(d, virt.EventReboot, 0)
		}
		return
	}
	if (ev.Name == "STOP" || ev.Name == "RESUME") && inst.expectedLocked(ev.Name) {
		return
	}
	if d.Priv.inst != inst || inst.starting || inst.destroying || inst.shutdown != nil {
		return
	}
	switch ev.Name {
	case "STOP":
		if d.State == virt.StateRunning {
			d.State, d.Reason = virt.StatePaused, virt.PausedUnknown
			drv.saveRecordLocked(d)
			drv.emitLocked(d, virt.EventSuspended, virt.SuspendedPaused)
		}
	case "RESUME":
		if d.State == virt.StatePaused {
			d.State, d.Reason = virt.StateRunning, virt.RunningUnpaused
			drv.saveRecordLocked(d)
			drv.emitLocked(d, virt.EventResumed, virt.ResumedUnpaused)
		}
	}
}

// saveRecordLocked writes a running domain's state to its record.
func (drv *Driver) saveRecordLocked(d *domain) {
	if d.Priv.inst == nil {
		return
	}
	r := d.Priv.inst.rec
	r.State, r.Reason = d.State, d.Reason
	if err := drv.saveRecord(r); err != nil {
		drv.log.Error("cannot write a runtime record", "name", r.Name, "error", err)
	}
}

// ShutdownDomain presses the ACPI power button and returns at once; the
// domain becomes shut off (shutdown) when the guest powers off.
func (drv *Driver) ShutdownDomain(ctx context.Context, uuid string) error {
	return drv.command(ctx, uuid, "system_powerdown")
}

// RebootDomain resets the guest (system_reset).
func (drv *Driver) RebootDomain(ctx context.Context, uuid string) error {
	return drv.command(ctx, uuid, "system_reset")
}

func (drv *Driver) command(ctx context.Context, uuid, cmd string) error {
	d, err := drv.lookupOp(ctx, uuid)
	if err != nil {
		return err
	}
	defer d.Priv.op.Unlock()
	_, mon, err := drv.monitor(d)
	if err != nil {
		return err
	}
	if err := mon.Execute(ctx, cmd, nil, nil); err != nil {
		return virt.Errorf(virt.ErrInternal, "domain '%s': %w", d.Name(), err)
	}
	return nil
}

// SuspendDomain pauses the guest's vCPUs (QMP stop).
func (drv *Driver) SuspendDomain(ctx context.Context, uuid string) error {
	return drv.pause(ctx, uuid, true)
}

// ResumeDomain resumes a suspended guest (QMP cont).
func (drv *Driver) ResumeDomain(ctx context.Context, uuid string) error {
	return drv.pause(ctx, uuid, false)
}

func (drv *Driver) pause(ctx context.Context, uuid string, pause bool) error {
	d, err := drv.lookupOp(ctx, uuid)
	if err != nil {
		return err
	}
	defer d.Priv.op.Unlock()
	_, mon, err := drv.monitor(d)
	if err != nil {
		return err
	}
	from, to, reason, cmd := virt.StateRunning, virt.StatePaused, virt.PausedUser, "stop"
	evType, detail := virt.EventSuspended, virt.SuspendedPaused
	if !pause {
		from, to, reason, cmd = virt.StatePaused, virt.StateRunning, virt.RunningUnpaused, "cont"
		evType, detail = virt.EventResumed, virt.ResumedUnpaused
	}
	d.Lock()
	if d.State != from {
		st, name := d.State, d.Name()
		d.Unlock()
		return fmt.Errorf("domain '%s' is %s, not %s: %w", name, st, from, virt.ErrFailedPrecondition)
	}
	oldReason := d.Reason
	d.State, d.Reason = to, reason
	qmpEvent := map[string]string{"stop": "STOP", "cont": "RESUME"}[cmd]
	inst := d.Priv.inst
	exp := inst.expectLocked(qmpEvent, func() { drv.emitLocked(d, evType, detail) })
	d.Unlock()
	// Not the caller's ctx: once sent, QEMU acts whether or not the caller
	// still waits, and the state must follow what QEMU did.
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err = mon.Execute(qctx, cmd, nil, nil)
	// QEMU's event (STOP, RESUME) most often came just before its answer,
	// and readied the goroutine that streams it to the host; the answer
	// then readied this one, which the runtime runs first with one P.
	// Let the event go out before the reply is built.
	runtime.Gosched()
	if err != nil {
		d.Lock()
		defer d.Unlock()
		if exp.emitted {
			// QEMU said it did it: the state stays.
			drv.saveRecordLocked(d)
			return virt.Errorf(virt.ErrInternal, "domain '%s': %w", d.Name(), err)
		}
		inst.unexpectLocked(qmpEvent, exp)
		if d.State == to {
			d.State, d.Reason = from, oldReason
		}
		return virt.Errorf(virt.ErrInternal, "domain '%s': %w", d.Name(), err)
	}
	d.Lock()
	exp.doneLocked()
	drv.saveRecordLocked(d)
	d.Unlock()
	return nil
}

// DestroyDomain stops QEMU at once (SIGTERM, then SIGKILL after a grace
// period) and returns when it is gone. The definition stays.
func (drv *Driver) DestroyDomain(ctx context.Context, uuid string) error {
	d, err := drv.lookupOp(ctx, uuid)
	if err != nil {
		return err
	}
	defer d.Priv.op.Unlock()
	d.Lock()
	inst := d.Priv.inst
	if inst == nil {
		name := d.Name()
		d.Unlock()
		return fmt.Errorf("domain '%s' is not running: %w", name, virt.ErrFailedPrecondition)
	}
	inst.destroying = true
	d.Unlock()

	signalProcess(inst, syscall.SIGTERM)
	select {
	case <-inst.procDone:
	case <-time.After(3 * time.Second):
		drv.log.Warn("QEMU ignored SIGTERM; killing it", "pid", inst.rec.Pid)
		drv.killAndReap(inst)
	}
	select {
	case <-inst.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// logTail returns the last lines of a QEMU log, to explain a failed start.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	var keep []string
	for i := len(lines) - 1; i >= 0 && len(keep) < 3; i-- {
		l := string(lines[i])
		if strings.Contains(l, ": starting up") || strings.HasPrefix(l, "LC_ALL") || strings.Contains(l, " -name guest=") {
			break
		}
		keep = append([]string{l}, keep...)
	}
	if len(keep) == 0 {
		return ""
	}
	return " (QEMU log " + path + ": " + strings.Join(keep, " | ") + ")"
}

func shellQuote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " '\"\\$`!*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// pidfdWatch closes procDone when a process that is not the driver's
// child exits.
func pidfdWatch(inst *instance) error {
	fd, err := unix.PidfdOpen(inst.rec.Pid, 0)
	if err != nil {
		return err
	}
	if !procfs.Alive(inst.rec.Pid, inst.rec.StartTime) {
		unix.Close(fd)
		return os.ErrProcessDone
	}
	go func() {
		defer unix.Close(fd)
		_ = waitPidfd(fd)
		close(inst.procDone)
	}()
	return nil
}
