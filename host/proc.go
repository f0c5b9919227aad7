package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

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
	// handshake, crash loop). A rescan, or a new file, clears it.
	StateBroken State = "broken"
)

// Proc supervises one driver executable: it launches the process on
// demand, reattaches to one a previous daemon left running, notices when it
// dies, restarts it with backoff, and fans its events out.
type Proc struct {
	name string
	h    *Host
	log  hclog.Logger

	mu        sync.Mutex
	path      string
	state     State
	gen       int // bumped per launch or reattach; stale watchers check it
	client    *plugin.Client
	rpc       plugin.ClientProtocol
	drv       *driver.Client
	launched  bool // launched by us (a child), not reattached
	cmd       *exec.Cmd
	ident     *driver.Identity
	pid       int
	startTime uint64
	apiVer    int
	startedAt time.Time
	restarts  int
	crashes   int // consecutive crashes
	nextStart time.Time
	lastErr   string
	missed    int    // keep-alives in a row left unanswered
	killedWhy string // why the host killed the process, for its exit
	conns     int
	guests    int // running guests, from the last keep-alive
	lastUsed  time.Time
	starting  chan struct{}
	stopping  bool
	removed   bool
	stderr    *ring
	pumpCtx   context.Context
	pumpStop  context.CancelFunc
	pumping   bool // an event stream from the current process is open

	subMu sync.Mutex
	subs  map[*Subscription]struct{}
}

func newProc(h *Host, c Candidate) *Proc {
	return &Proc{
		name: c.Name, h: h, path: c.Path, state: StateStopped,
		log:  h.log.Named(c.Name),
		subs: map[*Subscription]struct{}{},
	}
}

// Name returns the driver's name.
func (p *Proc) Name() string { return p.name }

func (p *Proc) recordPath() string { return filepath.Join(p.h.cfg.RunDir, "drivers", p.name+".json") }

// Client returns the running driver, launching it first if needed. A
// driver that crashed is restarted at once the first time, then with
// exponential backoff while it keeps dying.
func (p *Proc) Client(ctx context.Context) (*driver.Client, error) {
	for {
		p.mu.Lock()
		if p.removed {
			p.mu.Unlock()
			return nil, fmt.Errorf("driver %q was removed from %s: %w", p.name, filepath.Dir(p.path), virt.ErrUnavailable)
		}
		switch p.state {
		case StateRunning:
			d := p.drv
			p.lastUsed = time.Now()
			p.mu.Unlock()
			return d, nil
		case StateBroken:
			err := fmt.Errorf("driver %q (%s) is broken: %s: %w", p.name, p.path, p.lastErr, virt.ErrUnavailable)
			p.mu.Unlock()
			return nil, err
		case StateStarting:
			ch := p.starting
			p.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("driver %q is starting: %w", p.name, ctx.Err())
			}
		}
		if wait := time.Until(p.nextStart); wait > 0 {
			err := fmt.Errorf("driver %q crashed (%s); next restart in %s: %w",
				p.name, p.lastErr, wait.Round(time.Millisecond), virt.ErrUnavailable)
			p.mu.Unlock()
			return nil, err
		}
		p.state = StateStarting
		p.starting = make(chan struct{})
		ch := p.starting
		p.mu.Unlock()

		err := p.launch()
		close(ch)
		if err != nil {
			return nil, err
		}
	}
}

// env is the whole environment of a driver process: nothing of the
// daemon's own environment passes through.
func (p *Proc) env() []string {
	c := p.h.cfg
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"TMPDIR=" + filepath.Join(c.RunDir, p.name),
		"PLUGIN_UNIX_SOCKET_DIR=" + filepath.Join(c.RunDir, "drivers"),
		driver.EnvConfigDir + "=" + filepath.Join(c.ConfigDir, p.name),
		driver.EnvStateDir + "=" + filepath.Join(c.StateDir, p.name),
		driver.EnvRunDir + "=" + filepath.Join(c.RunDir, p.name),
		driver.EnvLogDir + "=" + filepath.Join(c.LogDir, p.name),
		driver.EnvLogFile + "=" + filepath.Join(c.LogDir, p.name+".log"),
		driver.EnvOrphanTimeout + "=" + c.IdleTimeout.String(),
		driver.EnvLogLevel + "=" + c.LogLevel,
	}
}

func (p *Proc) mkdirs() error {
	c := p.h.cfg
	for _, d := range []string{
		filepath.Join(c.RunDir, "drivers"),
		filepath.Join(c.ConfigDir, p.name), filepath.Join(c.StateDir, p.name),
		filepath.Join(c.RunDir, p.name), filepath.Join(c.LogDir, p.name),
	} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// launch starts the driver executable and completes the handshake. It
// leaves the Proc running, or stopped/broken with lastErr set.
func (p *Proc) launch() (err error) {
	p.mu.Lock()
	path := p.path
	p.mu.Unlock()
	if err := p.mkdirs(); err != nil {
		return p.failStart(fmt.Errorf("driver %q: preparing directories: %v: %w", p.name, err, virt.ErrInternal), false)
	}
	stderr := newRing(10)
	cmd := exec.Command(path)
	cmd.Env = p.env()
	// Its own session: a terminal's hangup or ^C does not reach drivers,
	// which outlive the daemon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  driver.Handshake,
		VersionedPlugins: driver.PluginSets(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           p.log,
		Stderr:           stderr,
		SyncStderr:       stderr,
		SyncStdout:       stderr,
		StartTimeout:     p.h.cfg.StartTimeout,
		SkipHostEnv:      true,
		GRPCDialOptions:  dialOptions(),
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		waitExited(client)
		return p.failStart(fmt.Errorf("driver %q (%s) failed to start: %s; %s: %w",
			p.name, path, explainHandshake(err, cmd, p.h.cfg.StartTimeout), stderr.quote(), virt.ErrUnavailable), true)
	}
	rc := client.ReattachConfig()
	if err := p.attach(client, rpc, rc.Pid, client.NegotiatedVersion(), rc.Addr, "", true, cmd, stderr); err != nil {
		client.Kill()
		return p.failStart(fmt.Errorf("driver %q (%s): %v; %s: %w", p.name, path, err, stderr.quote(), virt.ErrUnavailable), true)
	}
	return nil
}

// failStart records a failed start. Handshake failures do not mend by
// retrying, so they mark the driver broken.
func (p *Proc) failStart(err error, broken bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = strings.TrimSuffix(err.Error(), ": "+virt.ErrUnavailable.Error())
	p.state = StateStopped
	if broken {
		p.state = StateBroken
	}
	p.log.Error("driver failed to start", "error", p.lastErr)
	return err
}

// attach confirms the process's identity with a call and makes it the
// running driver.
func (p *Proc) attach(client *plugin.Client, rpc plugin.ClientProtocol, pid, apiVer int, addr net.Addr, wantInstance string, launched bool, cmd *exec.Cmd, stderr *ring) error {
	raw, err := rpc.Dispense(driver.PluginName)
	if err != nil {
		return fmt.Errorf("dispensing the driver interface: %v", err)
	}
	drv, ok := raw.(*driver.Client)
	if !ok {
		return fmt.Errorf("unexpected driver client type %T", raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.h.cfg.StartTimeout)
	defer cancel()
	ident, err := drv.Identify(ctx)
	if err != nil {
		return fmt.Errorf("identity call failed: %v", err)
	}
	if ident.PID != pid {
		return fmt.Errorf("process %d answers as pid %d", pid, ident.PID)
	}
	if wantInstance != "" && ident.InstanceID != wantInstance {
		return fmt.Errorf("process %d is instance %s, not %s", pid, ident.InstanceID, wantInstance)
	}
	if ident.Name != p.name {
		return fmt.Errorf("executable calls itself %q, not %q", ident.Name, p.name)
	}
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return fmt.Errorf("reading process %d: %v", pid, err)
	}
	start := st.StartTime
	if _, err := drv.KeepAlive(ctx, p.h.cfg.IdleTimeout); err != nil {
		return fmt.Errorf("keep-alive call failed: %v", err)
	}
	rec := &record{
		Name: p.name, Path: p.path, PID: pid, StartTime: start,
		Network: addr.Network(), Addr: addr.String(), APIVersion: apiVer, InstanceID: ident.InstanceID,
	}
	if err := writeRecord(p.recordPath(), rec); err != nil {
		return fmt.Errorf("writing %s: %v", p.recordPath(), err)
	}

	p.mu.Lock()
	p.gen++
	p.missed = 0
	gen := p.gen
	if p.crashes > 0 && launched {
		p.restarts++
	}
	p.client, p.rpc, p.drv, p.ident = client, rpc, drv, ident
	p.pid, p.startTime, p.apiVer = pid, start, apiVer
	p.launched, p.cmd, p.stderr = launched, cmd, stderr
	p.startedAt, p.lastUsed = time.Now(), time.Now()
	p.state, p.stopping = StateRunning, false
	p.pumpCtx, p.pumpStop = context.WithCancel(context.Background())
	p.pumping = false
	pumpCtx := p.pumpCtx
	removed := p.removed
	p.mu.Unlock()

	if err := p.pump(pumpCtx, drv); err != nil {
		// Subscribe tries again and fails clearly if it still cannot.
		p.log.Warn("event stream not available", "error", err)
	}
	go p.watch(gen)
	if removed {
		// Rescan dropped the driver while it was starting.
		go p.stop("its executable was removed")
	}
	p.log.Info("driver running", "pid", pid, "api", apiVer, "version", ident.Version, "health", ident.Health.String(), "launched", launched)
	return nil
}

// reattach takes over a driver process a previous daemon left running.
func (p *Proc) reattach(rec *record) error {
	if !procfs.Alive(rec.PID, rec.StartTime) {
		return fmt.Errorf("process %d is gone", rec.PID)
	}
	set, ok := driver.PluginSets()[rec.APIVersion]
	if !ok {
		return fmt.Errorf("recorded driver API version %d is not spoken by this virtd", rec.APIVersion)
	}
	addr, err := net.ResolveUnixAddr("unix", rec.Addr)
	if err != nil || rec.Network != "unix" {
		return fmt.Errorf("recorded address %s %q is not a unix socket", rec.Network, rec.Addr)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  driver.Handshake,
		Plugins:          set,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           p.log,
		GRPCDialOptions:  dialOptions(),
		Reattach: &plugin.ReattachConfig{
			Protocol: plugin.ProtocolGRPC, ProtocolVersion: rec.APIVersion, Addr: addr, Pid: rec.PID,
		},
	})
	rpc, err := client.Client()
	if err != nil {
		return fmt.Errorf("connecting to %s: %v", rec.Addr, err)
	}
	p.mu.Lock()
	p.state = StateStarting
	p.starting = make(chan struct{})
	ch := p.starting
	p.mu.Unlock()
	defer close(ch)
	if err := p.attach(client, rpc, rec.PID, rec.APIVersion, addr, rec.InstanceID, false, nil, newRing(10)); err != nil {
		// Hang up without go-plugin's Close, which would ask whatever
		// answered, not verified as ours, to shut down.
		if g, ok := rpc.(*plugin.GRPCClient); ok {
			_ = g.Conn.Close()
		}
		p.mu.Lock()
		p.state = StateStopped
		p.mu.Unlock()
		return err
	}
	return nil
}

// alive reports whether the current process still runs. A zombie counts
// as dead: our own child not yet reaped, or a reattached driver that init
// does not reap.
func (p *Proc) alive(client *plugin.Client, launched bool, pid int, start uint64) bool {
	if !procfs.Alive(pid, start) {
		return false
	}
	return !launched || !client.Exited()
}

// watch notices when the process of launch gen exits.
func (p *Proc) watch(gen int) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		p.mu.Lock()
		if p.gen != gen || p.state != StateRunning {
			p.mu.Unlock()
			return
		}
		client, launched, pid, start := p.client, p.launched, p.pid, p.startTime
		p.mu.Unlock()
		if !p.alive(client, launched, pid, start) {
			if launched {
				waitExited(client) // so that its exit status is known
			}
			p.exited(gen)
			return
		}
	}
}

// exited handles the end of the process of launch gen: expected after a
// stop, a crash otherwise.
func (p *Proc) exited(gen int) {
	p.mu.Lock()
	// Once per process: stop and the watcher may both get here.
	if p.gen != gen || p.drv == nil {
		p.mu.Unlock()
		return
	}
	p.pumpStop()
	_ = os.Remove(p.recordPath())
	p.drv, p.rpc, p.client = nil, nil, nil
	if p.stopping || p.removed {
		p.state, p.crashes = StateStopped, 0
		p.mu.Unlock()
		p.endSubscriptions(fmt.Errorf("driver %q was stopped: %w", p.name, virt.ErrUnavailable))
		return
	}
	status := "process gone"
	if p.launched && p.cmd != nil && p.cmd.ProcessState != nil {
		status = p.cmd.ProcessState.String()
	}
	if time.Since(p.startedAt) < p.h.cfg.StableAfter {
		p.crashes++
	} else {
		p.crashes = 1
	}
	cause := fmt.Sprintf("exited unexpectedly (%s); %s", status, p.stderr.quote())
	if p.killedWhy != "" {
		cause = "was killed as hung: it " + p.killedWhy
		p.killedWhy = ""
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
	state, next := p.state, time.Until(p.nextStart)
	p.mu.Unlock()

	p.log.Error("driver exited unexpectedly", "status", status, "crashes", p.crashes, "state", state)
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

// stop ends the driver process gracefully (go-plugin's controller
// shutdown), killing it if it does not exit in time.
func (p *Proc) stop(why string) { p.stopIf(why, nil) }

// stopIf is stop when cond, checked under p.mu, holds: the check and the
// decision to stop are one step, so a connection opened meanwhile keeps
// the driver.
func (p *Proc) stopIf(why string, cond func() bool) {
	p.mu.Lock()
	if p.state != StateRunning || p.stopping || (cond != nil && !cond()) {
		p.mu.Unlock()
		return
	}
	p.stopping = true
	rpc, client, launched, pid, start, gen := p.rpc, p.client, p.launched, p.pid, p.startTime, p.gen
	p.pumpStop()
	p.mu.Unlock()

	p.log.Info("stopping driver", "pid", pid, "reason", why)
	_ = rpc.Close() // asks the plugin to shut down
	deadline := time.Now().Add(5 * time.Second)
	for p.alive(client, launched, pid, start) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if p.alive(client, launched, pid, start) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for i := 0; i < 100 && p.alive(client, launched, pid, start); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	p.exited(gen)
}

// killHungLocked kills the running process, which is alive but does not
// answer: the watcher then handles its exit as a crash, with why as the
// cause. p.mu is held.
func (p *Proc) killHungLocked(why string) {
	if p.state != StateRunning || p.stopping || !procfs.Alive(p.pid, p.startTime) {
		return
	}
	p.killedWhy = why
	p.log.Error("driver hung; killing it", "pid", p.pid, "why", why)
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
}

// Explain makes an unavailable error clear when the driver process went
// away under the call (killed, crashed, stopped). An unavailable error from
// a driver that still runs, such as "no Xen hypervisor on this host", is
// the driver's own and passes unchanged.
func (p *Proc) Explain(err error) error {
	if err == nil || !errors.Is(err, virt.ErrUnavailable) {
		return err
	}
	p.mu.Lock()
	client, launched, pid, start, running := p.client, p.launched, p.pid, p.startTime, p.state == StateRunning
	p.mu.Unlock()
	if running && p.alive(client, launched, pid, start) {
		return err
	}
	return fmt.Errorf("driver %q went away during the call (the process died or was stopped): %w", p.name, err)
}

// waitExited gives a failed child a moment to be reaped, so that its exit
// status can be reported.
func waitExited(c *plugin.Client) {
	for i := 0; i < 50 && !c.Exited(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

func dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256 << 20)),
		// Fixed flow-control windows turn off gRPC's bandwidth-delay
		// probing, which costs a PING round per call on a local socket.
		grpc.WithInitialWindowSize(1 << 20), grpc.WithInitialConnWindowSize(1 << 20),
		grpc.WithUnaryInterceptor(rpcerr.ContextInterceptor),
	}
}

// explainHandshake turns go-plugin's handshake errors into the cause a
// person needs.
func explainHandshake(err error, cmd *exec.Cmd, timeout time.Duration) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "exited before we could connect"),
		strings.Contains(msg, "Failed to read any lines from plugin's stdout"):
		status := "exited"
		if cmd.ProcessState != nil {
			status = cmd.ProcessState.String()
		}
		return fmt.Sprintf("it exited before completing the handshake (%s)", status)
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return fmt.Sprintf("it did not complete the handshake within %s", timeout)
	case strings.Contains(msg, "Unrecognized remote plugin message"):
		first, _, _ := strings.Cut(strings.TrimPrefix(msg, "Unrecognized remote plugin message: "), "\n")
		return fmt.Sprintf("it printed %q on stdout instead of the go-plugin handshake (drivers must not write to stdout)", first)
	case strings.Contains(msg, "incompatible API version"):
		var pv string
		if i := strings.Index(msg, "Plugin version: "); i >= 0 {
			pv, _, _ = strings.Cut(msg[i+len("Plugin version: "):], ",")
		}
		return fmt.Sprintf("it speaks driver API version %s, but this virtd speaks version %d", pv, driver.APIVersion)
	case strings.Contains(msg, "unsupported plugin protocol"):
		return "it offers net/rpc, but virtd drivers must speak gRPC"
	}
	return msg
}

// Open counts a client connection on the driver, launching the driver if
// needed. A driver with connections is never stopped as idle.
func (p *Proc) Open(ctx context.Context) (*driver.Client, error) {
	d, err := p.Client(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.conns++
	p.mu.Unlock()
	return d, nil
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
		s.PID, s.APIVersion, s.Guests = p.pid, p.apiVer, p.guests
	}
	return s
}
