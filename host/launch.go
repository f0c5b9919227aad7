package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// testHookChecked, when set (by tests), runs between the check of a
// driver's file and the start of the process from it.
var testHookChecked func(path string)

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
		driver.EnvMaxMessageSize + "=" + strconv.Itoa(c.MaxMessageSize),
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
//
// What runs is the file the checks passed, through the descriptor they
// opened (/proc/self/fd/N), never the path looked up again: a file
// swapped in after the check is not run.
func (p *Proc) launch() error {
	p.mu.Lock()
	path := p.path
	p.mu.Unlock()
	if err := p.mkdirs(); err != nil {
		return p.failStart(fmt.Errorf("driver %q: preparing directories: %v: %w", p.name, err, virt.ErrInternal), false)
	}
	exe, err := p.h.trust.open(p.name, path)
	if err != nil {
		return p.failStart(fmt.Errorf("driver %q (%s) refused: %v: %w", p.name, path, err, virt.ErrUnavailable), true)
	}
	defer exe.Close()
	if testHookChecked != nil {
		testHookChecked(path)
	}
	stderr := newRing(10)
	cmd := exec.Command("/proc/self/fd/" + strconv.Itoa(int(exe.Fd())))
	cmd.Args[0] = path // what ps shows
	cmd.Env = p.env()
	// Its own session: a terminal's hangup or ^C does not reach drivers,
	// which outlive the daemon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  driver.Handshake,
		VersionedPlugins: driver.PluginSets(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           pluginLogger{p.log},
		Stderr:           stderr,
		SyncStderr:       stderr,
		SyncStdout:       stderr,
		StartTimeout:     p.h.cfg.StartTimeout,
		SkipHostEnv:      true,
		GRPCDialOptions:  p.h.dialOptions(),
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		waitExited(client)
		return p.failStart(fmt.Errorf("driver %q (%s) failed to start: %s; %s: %w",
			p.name, path, explainHandshake(err, cmd, p.h.cfg.StartTimeout), stderr.quote(), virt.ErrUnavailable), true)
	}
	rc := client.ReattachConfig()
	in := newInstance(client, rpc, rc.Pid, client.NegotiatedVersion(), stderr)
	in.launched, in.cmd = true, cmd
	if err := p.attach(in, rc.Addr, ""); err != nil {
		client.Kill()
		return p.failStart(fmt.Errorf("driver %q (%s): %v; %s: %w", p.name, path, err, stderr.quote(), virt.ErrUnavailable), true)
	}
	return nil
}

// pluginLogger is the logger go-plugin gets for a launched driver: go-plugin
// names the driver's stderr lines after the base name of the path it ran,
// here the descriptor's number, which says nothing; they go under the
// driver's own name instead.
type pluginLogger struct{ hclog.Logger }

func (l pluginLogger) Named(name string) hclog.Logger {
	if _, err := strconv.Atoi(name); err == nil {
		return l.Logger
	}
	return l.Logger.Named(name)
}

func newInstance(client *plugin.Client, rpc plugin.ClientProtocol, pid, apiVer int, stderr *ring) *instance {
	return &instance{client: client, rpc: rpc, pid: pid, apiVer: apiVer, stderr: stderr, dead: make(chan struct{})}
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
	p.broadcastLocked()
	p.log.Error("driver failed to start", "error", p.lastErr)
	return err
}

// attach confirms the process's identity with a call and makes it the
// running driver.
func (p *Proc) attach(in *instance, addr net.Addr, wantInstance string) error {
	raw, err := in.rpc.Dispense(driver.PluginName)
	if err != nil {
		return fmt.Errorf("dispensing the driver interface: %v", err)
	}
	drv, ok := raw.(*driver.Client)
	if !ok {
		return fmt.Errorf("unexpected driver client type %T", raw)
	}
	in.drv = drv
	ctx, cancel := context.WithTimeout(context.Background(), p.h.cfg.StartTimeout)
	defer cancel()
	ident, err := drv.Identify(ctx)
	if err != nil {
		return fmt.Errorf("identity call failed: %v", err)
	}
	if ident.PID != in.pid {
		return fmt.Errorf("process %d answers as pid %d", in.pid, ident.PID)
	}
	if wantInstance != "" && ident.InstanceID != wantInstance {
		return fmt.Errorf("process %d is instance %s, not %s", in.pid, ident.InstanceID, wantInstance)
	}
	if ident.Name != p.name {
		return fmt.Errorf("executable calls itself %q, not %q", ident.Name, p.name)
	}
	st, err := procfs.ReadStat(in.pid)
	if err != nil {
		return fmt.Errorf("reading process %d: %v", in.pid, err)
	}
	in.startTime = st.StartTime
	in.exit, err = procfs.WatchExit(in.pid, in.startTime)
	if errors.Is(err, syscall.ENOSYS) {
		in.exit = nil // watched by polling
	} else if err != nil {
		return err
	}
	fail := func(err error) error {
		if in.exit != nil {
			in.exit.Close()
		}
		return err
	}
	if _, err := drv.KeepAlive(ctx, p.h.cfg.IdleTimeout); err != nil {
		return fail(fmt.Errorf("keep-alive call failed: %v", err))
	}
	p.mu.Lock()
	path := p.path
	p.mu.Unlock()
	rec := &record{
		Name: p.name, Path: path, PID: in.pid, StartTime: in.startTime,
		Network: addr.Network(), Addr: addr.String(), APIVersion: in.apiVer, InstanceID: ident.InstanceID,
	}
	if err := writeRecord(p.recordPath(), rec); err != nil {
		return fail(fmt.Errorf("writing %s: %v", p.recordPath(), err))
	}

	in.pumpCtx, in.pumpStop = context.WithCancel(context.Background())
	in.startedAt = time.Now()
	p.mu.Lock()
	if p.crashes > 0 && in.launched {
		p.restarts++
	}
	p.cur, p.ident = in, ident
	p.lastUsed = time.Now()
	p.state = StateRunning
	p.broadcastLocked()
	removed := p.removed
	p.mu.Unlock()

	if err := p.pump(in); err != nil {
		// Subscribe tries again and fails clearly if it still cannot.
		p.log.Warn("event stream not available", "error", err)
	}
	go p.watch(in)
	go p.keepAlive(in)
	if removed {
		// Rescan dropped the driver while it was starting.
		go p.stop("its executable was removed")
	}
	p.log.Info("driver running", "pid", in.pid, "api", in.apiVer, "version", ident.Version, "health", ident.Health.String(), "launched", in.launched)
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
		GRPCDialOptions:  p.h.dialOptions(),
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
	p.broadcastLocked()
	p.mu.Unlock()
	in := newInstance(client, rpc, rec.PID, rec.APIVersion, newRing(10))
	if err := p.attach(in, addr, rec.InstanceID); err != nil {
		// Hang up without go-plugin's Close, which would ask whatever
		// answered, not verified as ours, to shut down.
		if g, ok := rpc.(*plugin.GRPCClient); ok {
			_ = g.Conn.Close()
		}
		p.mu.Lock()
		p.state = StateStopped
		p.broadcastLocked()
		p.mu.Unlock()
		return err
	}
	return nil
}

func (h *Host) dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(h.cfg.MaxMessageSize), grpc.MaxCallSendMsgSize(h.cfg.MaxMessageSize)),
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
