package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/procfs"
	"github.com/virtd/virtd/internal/rpcerr"
	"github.com/virtd/virtd/virt"
)

// State is where a driver process is in its life.
type State string

// Driver states.
const (
	StateStopped  State = "stopped"
	StateStarting State = "starting"
	StateRunning  State = "running"
	// StateBroken: the driver failed in a way a retry will not mend (bad
	// handshake, crash loop, refused file). A rescan, or a new file,
	// clears it.
	StateBroken State = "broken"
)

// Proc supervises one driver executable: it launches the process on
// demand, reattaches to one a previous daemon left running, notices when it
// dies, restarts it with backoff, routes calls to the current process and
// fans its events out.
type Proc struct {
	name string
	h    *Host
	log  hclog.Logger

	mu    sync.Mutex
	path  string
	state State
	cur   *instance // the running process, when state is running
	// changed is closed, and replaced, at every change of state or of
	// cur: whoever waits for one re-checks then.
	changed   chan struct{}
	ident     *driver.Identity
	restarts  int
	crashes   int // consecutive crashes
	nextStart time.Time
	lastErr   string
	conns     int
	lastUsed  time.Time
	removed   bool
}

// instance is one driver process: launched by this host, or reattached.
type instance struct {
	client    *plugin.Client
	rpc       plugin.ClientProtocol
	drv       *driver.Client
	launched  bool
	cmd       *exec.Cmd
	pid       int
	startTime uint64
	apiVer    int
	startedAt time.Time
	stderr    *ring
	exit      *procfs.Exit // nil when pidfds are not available
	// dead is closed once the process's exit has been handled; cause then
	// says how it ended, for the calls it broke.
	dead  chan struct{}
	cause string

	// Under Proc.mu:
	inflight  int           // calls running on it
	drained   chan struct{} // closed when stopping and inflight is zero
	stopping  bool          // no new call is routed to it
	stopWhy   string
	killedWhy string // why the host killed it
	guests    int    // running guests, from the last keep-alive
	pumpCtx   context.Context
	pumpStop  context.CancelFunc
	pumping   bool // its event stream is open
}

func newProc(h *Host, c Candidate) *Proc {
	return &Proc{
		name: c.Name, h: h, path: c.Path, state: StateStopped,
		log:     h.log.Named(c.Name),
		changed: make(chan struct{}),
	}
}

// Name returns the driver's name.
func (p *Proc) Name() string { return p.name }

func (p *Proc) recordPath() string { return filepath.Join(p.h.cfg.RunDir, "drivers", p.name+".json") }

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
		if p.removed {
			p.mu.Unlock()
			return nil, fmt.Errorf("driver %q was removed from %s: %w", p.name, filepath.Dir(p.path), virt.ErrUnavailable)
		}
		var wait time.Duration // 0: until the next change
		switch p.state {
		case StateRunning:
			if in := p.cur; !in.stopping {
				in.inflight++
				p.lastUsed = time.Now()
				p.mu.Unlock()
				return in, nil
			}
		case StateBroken:
			err := fmt.Errorf("driver %q (%s) is broken: %s: %w", p.name, p.path, p.lastErr, virt.ErrUnavailable)
			p.mu.Unlock()
			return nil, err
		case StateStopped:
			wait = time.Until(p.nextStart)
			if wait <= 0 {
				p.state = StateStarting
				p.broadcastLocked()
				p.mu.Unlock()
				if err := p.launch(); err != nil {
					return nil, err
				}
				continue
			}
			if deadline.IsZero() {
				deadline = time.Now().Add(p.h.cfg.RestartWait)
			}
			if time.Now().Add(wait).After(deadline) {
				err := fmt.Errorf("driver %q crashed (%s); next restart in %s: %w",
					p.name, p.lastErr, wait.Round(time.Millisecond), virt.ErrUnavailable)
				p.mu.Unlock()
				return nil, err
			}
		}
		ch := p.changed
		p.mu.Unlock()
		var timer *time.Timer
		var expired <-chan time.Time
		if wait > 0 {
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
		if !p.awaitExit(in) {
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

// awaitExit waits for in's exit to be handled (so that in.cause is set)
// and reports whether it was, within exitWait.
func (p *Proc) awaitExit(in *instance) bool {
	t := time.NewTimer(exitWait)
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
	p.conns++
	p.mu.Unlock()
	p.release(in)
	return nil
}

// Release undoes one Open.
func (p *Proc) Release() {
	p.mu.Lock()
	if p.conns > 0 {
		p.conns--
	}
	p.lastUsed = time.Now()
	p.mu.Unlock()
}

// Status returns the driver's status.
func (p *Proc) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := Status{
		Name: p.name, Path: p.path, State: p.state, Restarts: p.restarts,
		LastError: p.lastErr, Connections: p.conns,
	}
	if p.ident != nil {
		s.Version, s.Schemes = p.ident.Version, p.ident.Schemes
		s.Health, s.HealthReason = p.ident.Health.String(), p.ident.HealthReason
	}
	if p.state == StateRunning {
		s.PID, s.APIVersion, s.Guests = p.cur.pid, p.cur.apiVer, p.cur.guests
	}
	return s
}

// watch waits for in's process to exit and handles the exit.
func (p *Proc) watch(in *instance) {
	if in.exit != nil {
		if !in.exit.Wait() {
			return // the handle was closed: the host is closing
		}
	} else {
		// No pidfd (an old kernel): look every 100 ms.
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for range t.C {
			select {
			case <-p.h.stop:
				return
			default:
			}
			if !procfs.Alive(in.pid, in.startTime) {
				break
			}
		}
	}
	p.exited(in, p.exitStatus(in))
}

// exitStatus says how in's process ended, as far as the host can know:
// only of its own children. For those it waits for go-plugin to have read
// the last of their stderr, which the crash report quotes, and reaped them.
func (p *Proc) exitStatus(in *instance) string {
	if !in.launched {
		return "process gone"
	}
	waitExited(in.client)
	if in.client.Exited() && in.cmd.ProcessState != nil {
		return in.cmd.ProcessState.String()
	}
	return "process gone"
}

// exited handles the end of in's process: expected after a stop, a crash
// otherwise.
func (p *Proc) exited(in *instance, status string) {
	p.mu.Lock()
	if p.cur != in {
		p.mu.Unlock()
		return
	}
	in.pumpStop()
	if in.exit != nil {
		in.exit.Close()
	}
	_ = os.Remove(p.recordPath())
	p.cur = nil
	if in.stopping || p.removed {
		p.state, p.crashes = StateStopped, 0
		in.cause = fmt.Sprintf("was stopped during the call (%s)", in.stopWhy)
		p.broadcastLocked()
		close(in.dead)
		p.mu.Unlock()
		p.endSubscriptions(fmt.Errorf("driver %q was stopped: %w", p.name, virt.ErrUnavailable))
		return
	}
	if time.Since(in.startedAt) < p.h.cfg.StableAfter {
		p.crashes++
	} else {
		p.crashes = 1
	}
	cause := fmt.Sprintf("exited unexpectedly (%s); %s", status, in.stderr.quote())
	in.cause = fmt.Sprintf("exited during the call (%s)", status)
	if in.killedWhy != "" {
		cause = "was killed as hung: it " + in.killedWhy
		in.cause = in.killedWhy + " and is being restarted"
	}
	if p.crashes >= p.h.cfg.MaxCrashes {
		p.state = StateBroken
		p.lastErr = fmt.Sprintf("crashed %d times in a row; the last time it %s", p.crashes, cause)
	} else {
		p.state = StateStopped
		p.lastErr = cause
		p.nextStart = time.Now().Add(p.h.backoff(p.crashes))
	}
	wanted := p.conns > 0
	state, next, crashes := p.state, time.Until(p.nextStart), p.crashes
	p.broadcastLocked()
	close(in.dead)
	p.mu.Unlock()

	p.log.Error("driver exited unexpectedly", "pid", in.pid, "status", status, "crashes", crashes, "state", state)
	p.endSubscriptions(fmt.Errorf("driver %q %s: %w", p.name, cause, virt.ErrUnavailable))
	if state == StateStopped && wanted {
		// Someone is using the driver: bring it back without waiting for
		// their next call.
		time.AfterFunc(max(next, 0), func() {
			ctx, cancel := context.WithTimeout(context.Background(), p.h.cfg.StartTimeout+time.Second)
			defer cancel()
			if _, err := p.Client(ctx); err != nil {
				p.log.Warn("restart failed", "error", err)
			}
		})
	}
}

// drainTimeout bounds how long a stop waits for the calls in flight on
// the process it stops.
const drainTimeout = 10 * time.Second

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
	if p.state != StateRunning || in.stopping || (cond != nil && !cond()) {
		p.mu.Unlock()
		return
	}
	in.stopping, in.stopWhy = true, why
	var drained chan struct{}
	if in.inflight > 0 {
		drained = make(chan struct{})
		in.drained = drained
	}
	p.broadcastLocked()
	p.mu.Unlock()

	p.log.Info("stopping driver", "pid", in.pid, "reason", why)
	if drained != nil {
		select {
		case <-drained:
		case <-time.After(drainTimeout):
			p.log.Warn("calls still in flight; stopping the driver anyway", "pid", in.pid, "waited", drainTimeout)
		}
	}
	in.pumpStop()
	_ = in.rpc.Close() // asks the plugin to shut down
	select {
	case <-in.dead:
		return
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(in.pid, syscall.SIGKILL)
	select {
	case <-in.dead:
	case <-time.After(5 * time.Second):
		// Not our child and not watched: say it is gone.
		p.exited(in, "killed")
	}
}

// killHung kills in's process, which is alive but does not answer: its
// exit is then handled as a crash, with why as the cause.
func (p *Proc) killHung(in *instance, why string) {
	p.mu.Lock()
	if p.cur != in || in.stopping || !procfs.Alive(in.pid, in.startTime) {
		p.mu.Unlock()
		return
	}
	in.killedWhy = why
	p.mu.Unlock()
	p.log.Error("driver hung; killing it", "pid", in.pid, "why", why)
	_ = syscall.Kill(in.pid, syscall.SIGKILL)
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
		p.stopIf("idle", func() bool {
			return p.cur == in && p.conns == 0 && in.guests == 0 && time.Since(p.lastUsed) >= p.h.cfg.IdleTimeout
		})
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
		in.guests = guests
		p.mu.Unlock()
	}
	return err
}

// waitExited gives a child that exited a moment to be reaped by go-plugin,
// which first reads the rest of its stderr, so that both can be reported.
func waitExited(c *plugin.Client) {
	for i := 0; i < 50 && !c.Exited(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

// current returns the running process, if any.
func (p *Proc) current() *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != StateRunning {
		return nil
	}
	return p.cur
}
