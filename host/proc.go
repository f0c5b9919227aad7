package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/procfs"
	"github.com/virtd/virtd/internal/rpcerr"
	"github.com/virtd/virtd/virt"
)

// Proc supervises one driver executable: it launches the process on
// demand, reattaches to one a previous daemon left running, notices when it
// dies, restarts it with backoff, routes calls to the current process and
// fans its events out. The rules are the machine's (state.go); starting a
// process is the launcher's (launch.go); Proc holds them together and
// carries out what the machine decides.
type Proc struct {
	launcher
	h *Host
	// sink takes the driver's records (nil: none kept).
	sink driver.RecordSink

	mu    sync.Mutex
	path  string
	m     machine
	cur   *instance // the process calls go to, while m.state is running
	ident *driver.Identity
	insts uint64 // processes installed so far
	// changed is closed, and replaced, at every change of the machine's
	// state or of cur: whoever waits for one re-checks then.
	changed chan struct{}
	// restartTimer brings the driver back after a crash (see exited).
	restartTimer *time.Timer
}

func newProc(h *Host, c Candidate) *Proc {
	p := &Proc{
		launcher: launcher{name: c.Name, cfg: &h.cfg, trust: &h.trust, log: h.log.Named(c.Name)},
		h:        h, path: c.Path,
		m:       newMachine(&h.cfg, h.clock),
		changed: make(chan struct{}),
	}
	if h.cfg.Sinks != nil {
		p.sink = h.cfg.Sinks(c.Name)
	}
	return p
}

// Instance names the process calls go to now: id increases with each new
// process; live is false while none runs (it crashed and is not back yet,
// it is stopped, or it is being replaced).
func (p *Proc) Instance() (id uint64, live bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return p.insts, false
	}
	return p.cur.id, p.m.state == StateRunning
}

// Name returns the driver's name.
func (p *Proc) Name() string { return p.name }

// broadcastLocked wakes everyone waiting for a change. p.mu is held.
func (p *Proc) broadcastLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Client returns the running driver, launching it first if needed, as
// acquire does. Calls made on it are not tracked: use Do for calls.
func (p *Proc) Client(ctx context.Context) (*driver.Client, error) {
	in, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	p.release(in)
	return in.drv, nil
}

// acquire returns the process to send a call to and counts the call on
// it; release undoes that. It launches the driver if none runs. While the
// driver starts, restarts after a crash, or while the process that served
// so far is being stopped (replaced, removed, idle), it waits for the next
// process, up to the host's RestartWait; a restart due later than that
// fails at once, naming the last crash.
func (p *Proc) acquire(ctx context.Context) (*instance, error) {
	var deadline time.Time // of waiting for a restart
	for {
		p.mu.Lock()
		v, until := p.m.call(&deadline)
		var err error
		switch v {
		case callIt:
			in := p.cur
			in.inflight++
			p.mu.Unlock()
			return in, nil
		case launchIt:
			p.broadcastLocked()
			p.mu.Unlock()
			if err := p.start(); err != nil {
				return nil, err
			}
			continue
		case refuseRemoved:
			err = fmt.Errorf("driver %q was removed from %s: %w", p.name, filepath.Dir(p.path), virt.ErrUnavailable)
		case refuseBroken:
			err = fmt.Errorf("driver %q (%s) is broken: %s: %w", p.name, p.path, p.m.lastErr, virt.ErrUnavailable)
		case refuseLate:
			err = fmt.Errorf("driver %q crashed (%s); next restart in %s: %w",
				p.name, p.m.lastErr, until.Sub(p.m.clock.Now()).Round(time.Millisecond), virt.ErrUnavailable)
		}
		wait := until.Sub(p.m.clock.Now()) // when until is set
		ch := p.changed
		p.mu.Unlock()
		if err != nil {
			return nil, err
		}
		var timer *time.Timer
		var expired <-chan time.Time
		if !until.IsZero() {
			timer = time.NewTimer(wait)
			expired = timer.C
		}
		select {
		case <-ch:
		case <-expired:
		case <-ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting for driver %q to start: %w", p.name, ctx.Err())
		}
	}
}

// release ends a call acquire counted.
func (p *Proc) release(in *instance) {
	p.mu.Lock()
	in.inflight--
	if in.inflight == 0 && in.drained != nil {
		close(in.drained)
		in.drained = nil
	}
	p.mu.Unlock()
}

// Do runs fn on the current driver process (see acquire for the waiting).
// When the call fails as unavailable because that process went away under
// it (it crashed, was killed as hung, or was stopped), the error says so
// and that the call may or may not have taken effect; a call that only
// reads (retry) is then made again on the next process, as long as the
// driver is not marked broken for crashing (MaxCrashes in a row). An
// unavailable error the driver sent ("no Xen hypervisor on this host") is
// its own and passes unchanged.
func (p *Proc) Do(ctx context.Context, retry bool, fn func(*driver.Client) error) error {
	for attempt := 0; ; attempt++ {
		in, err := p.acquire(ctx)
		if err != nil {
			return err
		}
		err = fn(in.drv)
		p.release(in)
		if err == nil || !errors.Is(err, virt.ErrUnavailable) || ctx.Err() != nil || rpcerr.FromPeer(err) {
			return err
		}
		// gRPC's own failure: the connection to the process broke,
		// most likely because it is exiting.
		if !awaitDeath(in, exitWait) {
			return fmt.Errorf("driver %q (pid %d): the connection broke during the call (%v); the call may or may not have taken effect: %w",
				p.name, in.pid, err, virt.ErrUnavailable)
		}
		if retry && attempt < p.h.cfg.MaxCrashes {
			continue
		}
		return fmt.Errorf("driver %q (pid %d) %s; the call may or may not have taken effect: %w",
			p.name, in.pid, in.cause, virt.ErrUnavailable)
	}
}

// exitWait bounds how long a call whose connection broke waits for the
// process's exit to be handled.
const exitWait = 5 * time.Second

// awaitDeath waits for in's exit to be handled (in.cause is then set) and
// reports whether it was within d.
func awaitDeath(in *instance, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-in.dead:
		return true
	case <-t.C:
		return false
	}
}

// Open counts a client connection on the driver, launching the driver if
// needed. A driver with connections is never stopped as idle.
func (p *Proc) Open(ctx context.Context) error {
	in, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.m.open()
	p.mu.Unlock()
	p.release(in)
	return nil
}

// Release undoes one Open.
func (p *Proc) Release() {
	p.mu.Lock()
	p.m.release()
	p.mu.Unlock()
}

// Status returns the driver's status.
func (p *Proc) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := &p.m
	s := Status{
		Name: p.name, Path: p.path, State: m.state, Restarts: m.restarts,
		LastError: m.lastErr, Connections: m.conns,
	}
	if p.ident != nil {
		s.Version, s.Schemes = p.ident.Version, p.ident.Schemes
		s.Health, s.HealthReason = p.ident.Health.String(), p.ident.HealthReason
	}
	if m.state == StateRunning {
		s.PID, s.APIVersion, s.Guests = p.cur.pid, p.cur.apiVer, m.guests
	}
	return s
}

// start launches the driver, which the machine has marked starting, and
// makes the new process the current one.
func (p *Proc) start() error {
	p.mu.Lock()
	path := p.path
	p.mu.Unlock()
	in, err := p.launch(path)
	if err != nil {
		var b brokenError
		reason := strings.TrimSuffix(err.Error(), ": "+virt.ErrUnavailable.Error())
		p.mu.Lock()
		p.m.startFailed(reason, errors.As(err, &b))
		p.broadcastLocked()
		p.mu.Unlock()
		p.log.Error("driver failed to start", "error", reason)
		return err
	}
	p.install(in)
	return nil
}

// reattach takes over a driver process a previous daemon left running.
func (p *Proc) reattach(rec *record) error {
	p.mu.Lock()
	p.m.reattaching()
	path := p.path
	p.broadcastLocked()
	p.mu.Unlock()
	in, err := p.launcher.reattach(rec, path)
	if err != nil {
		p.mu.Lock()
		p.m.notStarted()
		p.broadcastLocked()
		p.mu.Unlock()
		return err
	}
	p.install(in)
	return nil
}

// install makes in, a process just launched or reattached, the one calls
// go to, and starts watching it: its events, its exit, its keep-alives.
func (p *Proc) install(in *instance) {
	in.pumpCtx, in.pumpStop = context.WithCancel(context.Background())
	p.mu.Lock()
	p.insts++
	in.id = p.insts
	if p.sink != nil && slices.Contains(in.ident.Features, driver.FeatureRecords) {
		in.records = true
		in.drv.OnRecord(func(r driver.Record) { p.sink.Apply(in.id, r) })
	}
	removed := p.m.started(in.launched)
	p.cur, p.ident = in, in.ident
	p.broadcastLocked()
	p.mu.Unlock()

	if err := p.pump(in); err != nil {
		// Subscribe tries again and fails clearly if it still cannot.
		p.log.Warn("event stream not available", "error", err)
	}
	go p.watchExit(in)
	go p.keepAlive(in)
	if removed {
		// Rescan dropped the driver while it was starting.
		go p.stop("its executable was removed")
	}
	p.log.Info("driver running", "pid", in.pid, "api", in.apiVer, "version", in.ident.Version,
		"health", in.ident.Health.String(), "launched", in.launched)
}

// watchExit waits, on its pidfd, for in's process to exit, and handles the
// exit. A closed handle ends it without a word: the host is closing, and
// leaves its drivers running.
func (p *Proc) watchExit(in *instance) {
	if in.exit.Wait() {
		p.exited(in)
	}
}

// exited handles the end of in's process: expected after a stop, a crash
// otherwise.
func (p *Proc) exited(in *instance) {
	p.mu.Lock()
	crashed := p.cur == in && !p.m.stopping && !p.m.removed
	p.mu.Unlock()
	status := ""
	if crashed {
		status = exitStatus(in) // it may wait a moment: not under p.mu
	}
	p.mu.Lock()
	if p.cur != in {
		p.mu.Unlock()
		return
	}
	in.pumpStop()
	in.exit.Close()
	_ = os.Remove(p.recordPath())
	p.cur = nil
	note := p.m.exited(status, in.stderr.quote())
	in.cause = note.cause
	state, crashes, now := p.m.state, p.m.crashes, p.m.clock.Now()
	p.broadcastLocked()
	close(in.dead)
	p.mu.Unlock()

	if note.crashed {
		p.log.Error("driver exited unexpectedly", "pid", in.pid, "status", status, "crashes", crashes, "state", state)
		p.endSubscriptions(fmt.Errorf("driver %q %s: %w", p.name, note.report, virt.ErrUnavailable))
	} else {
		p.endSubscriptions(fmt.Errorf("driver %q was stopped: %w", p.name, virt.ErrUnavailable))
	}
	if note.restart {
		// Someone is using the driver: bring it back without waiting for
		// their next call (reads may not make one: the core's view
		// answers them).
		t := time.AfterFunc(max(note.restartAt.Sub(now), 0), func() {
			if !p.h.beginRestart() {
				return // the host is closing
			}
			defer p.h.endRestart()
			ctx, cancel := context.WithTimeout(context.Background(), p.h.cfg.StartTimeout+time.Second)
			defer cancel()
			if _, err := p.Client(ctx); err != nil {
				p.log.Warn("restart failed", "error", err)
			}
		})
		p.mu.Lock()
		p.restartTimer = t
		p.mu.Unlock()
	}
}

// reapWait bounds how long a crash report waits for go-plugin to have read
// the last of a child's stderr and reaped it.
const reapWait = 500 * time.Millisecond

// exitStatus says how in's process ended, as far as the host can know:
// only of its own children. For those it waits for go-plugin to have read
// the last of their stderr, which the crash report quotes, and reaped them.
func exitStatus(in *instance) string {
	if !in.launched {
		return "process gone"
	}
	t := time.NewTimer(reapWait)
	defer t.Stop()
	select {
	case <-in.reaped:
		if in.cmd.ProcessState != nil {
			return in.cmd.ProcessState.String()
		}
	case <-t.C:
	}
	return "process gone"
}

// drainTimeout bounds how long a stop waits for the calls in flight on
// the process it stops; stopWait how long it then waits for the process
// to exit, once asked, and once killed.
const (
	drainTimeout = 10 * time.Second
	stopWait     = 5 * time.Second
)

// stop ends the driver process gracefully: no new call goes to it (they
// wait for the next process), the calls in flight finish, then go-plugin's
// controller shutdown; it is killed if it does not exit in time.
func (p *Proc) stop(why string) { p.stopIf(why, nil) }

// stopIf is stop when cond, checked under p.mu, holds: the check and the
// decision to stop are one step, so a connection opened meanwhile keeps
// the driver.
func (p *Proc) stopIf(why string, cond func() bool) {
	p.mu.Lock()
	in := p.cur
	if (cond != nil && !cond()) || !p.m.stop(why) {
		p.mu.Unlock()
		return
	}
	var drained chan struct{}
	if in.inflight > 0 {
		drained = make(chan struct{})
		in.drained = drained
	}
	p.broadcastLocked()
	p.mu.Unlock()

	p.log.Info("stopping driver", "pid", in.pid, "reason", why)
	if drained != nil {
		t := time.NewTimer(drainTimeout)
		select {
		case <-drained:
		case <-t.C:
			p.log.Warn("calls still in flight; stopping the driver anyway", "pid", in.pid, "waited", drainTimeout)
		}
		t.Stop()
	}
	in.pumpStop()
	// go-plugin's shutdown call waits for an answer a hung process never
	// gives: the stop waits for the exit instead, and kills in time.
	go func() { _ = in.rpc.Close() }()
	if awaitDeath(in, stopWait) {
		return
	}
	_ = in.exit.Kill()
	if !awaitDeath(in, stopWait) {
		// Killed, and still not gone (stuck in the kernel): let the
		// next process start rather than wait on this one for ever.
		p.log.Warn("driver did not exit after SIGKILL; no longer waiting for it", "pid", in.pid)
		p.exited(in)
	}
}

// killHung kills in's process, which is alive but does not answer: its
// exit is then handled as a crash, with why as the cause.
func (p *Proc) killHung(in *instance, why string) {
	p.mu.Lock()
	kill := p.cur == in && procfs.Alive(in.pid, in.startTime) && p.m.hangs(why)
	p.mu.Unlock()
	if kill {
		p.log.Error("driver hung; killing it", "pid", in.pid, "why", why)
		_ = in.exit.Kill()
	}
}

// keepAlive sends in's process a keep-alive every interval, learning how
// many guests it runs; one left unanswered for the hang timeout gets the
// process killed as hung, so that the calls waiting on it fail. It also
// stops the driver once idle.
func (p *Proc) keepAlive(in *instance) {
	t := time.NewTimer(p.h.keepAliveInterval())
	defer t.Stop()
	for {
		select {
		case <-in.dead:
			return
		case <-p.h.stop:
			return
		case <-t.C:
		}
		hang := p.h.cfg.HangTimeout
		if err := p.refresh(in, hang); errors.Is(err, context.DeadlineExceeded) {
			p.killHung(in, fmt.Sprintf("did not answer within %s", hang))
		}
		p.stopIf("idle", func() bool { return p.cur == in && p.m.idle() })
		t.Reset(p.h.keepAliveInterval())
	}
}

// refresh sends in's process a keep-alive and records how many guests it
// runs.
func (p *Proc) refresh(in *instance, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	guests, err := in.drv.KeepAlive(ctx, p.h.cfg.IdleTimeout)
	if ctx.Err() == context.DeadlineExceeded {
		return ctx.Err()
	}
	if err == nil {
		p.mu.Lock()
		if p.cur == in {
			p.m.keptAlive(guests)
		}
		p.mu.Unlock()
	}
	return err
}

// current returns the running process, if any.
func (p *Proc) current() *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m.state != StateRunning {
		return nil
	}
	return p.cur
}

// rescanned applies a scan that found the driver's file at path: a broken
// driver gets another chance. It reports whether the running process runs
// another file than path (the file was replaced).
func (p *Proc) rescanned(path string) (replaced bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m.rescanned() {
		p.broadcastLocked()
	}
	p.path = path
	return p.m.state == StateRunning && !p.m.stopping && !runs(p.cur.pid, path)
}

// remove stops the driver, whose file is gone, for good.
func (p *Proc) remove() {
	p.mu.Lock()
	p.m.remove() // no new launch from here on
	p.broadcastLocked()
	p.mu.Unlock()
	p.stop("its executable was removed")
}
