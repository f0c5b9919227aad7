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
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/procfs"
	"github.com/virtd/virtd/internal/rpcerr"
	"github.com/virtd/virtd/virt"
)

// testHookChecked, when set (by tests), runs between the check of a
// driver's file and the start of the process from it.
var testHookChecked func(path string)

// launcher starts a driver's process, or reattaches to one a previous
// daemon left running, and checks that it is the driver it should be. It
// hands the process over as an instance and knows nothing of supervision.
type launcher struct {
	name  string
	cfg   *Config
	trust *Trust
	log   hclog.Logger
}

// instance is one driver process: launched by this host, or reattached.
type instance struct {
	// id names the process among the driver's processes, increasing.
	id        uint64
	rpc       plugin.ClientProtocol
	drv       *driver.Client
	ident     *driver.Identity
	pid       int
	startTime uint64
	apiVer    int
	stderr    *ring
	exit      *procfs.Exit // tells when it exits; kills it
	launched  bool
	// Of a launched process: its command, and reaped, closed once
	// go-plugin has read the last of its stderr and reaped it.
	cmd    *exec.Cmd
	reaped <-chan struct{}
	// dead is closed once the process's exit has been handled; cause then
	// says how it ended, for the calls it broke.
	dead  chan struct{}
	cause string

	// Under Proc.mu:
	inflight int           // calls running on it
	drained  chan struct{} // closed when stopping and inflight is zero
	pumpCtx  context.Context
	pumpStop context.CancelFunc
	pumping  bool // its event stream is open
	// records: its event stream is the record stream, which feeds
	// Proc.sink.
	records bool
}

func newInstance(rpc plugin.ClientProtocol, pid, apiVer int, stderr *ring) *instance {
	return &instance{rpc: rpc, pid: pid, apiVer: apiVer, stderr: stderr, dead: make(chan struct{})}
}

// brokenError is a failure to start that a retry will not mend: a refused
// file, a failed handshake, a process that is not the driver it should be.
type brokenError struct{ error }

func (e brokenError) Unwrap() error { return e.error }

func (l *launcher) recordPath() string { return filepath.Join(l.cfg.RunDir, "drivers", l.name+".json") }

// env is the whole environment of a driver process: nothing of the
// daemon's own environment passes through.
func (l *launcher) env() []string {
	c := l.cfg
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"TMPDIR=" + filepath.Join(c.RunDir, l.name),
		"PLUGIN_UNIX_SOCKET_DIR=" + filepath.Join(c.RunDir, "drivers"),
		driver.EnvConfigDir + "=" + filepath.Join(c.ConfigDir, l.name),
		driver.EnvStateDir + "=" + filepath.Join(c.StateDir, l.name),
		driver.EnvRunDir + "=" + filepath.Join(c.RunDir, l.name),
		driver.EnvLogDir + "=" + filepath.Join(c.LogDir, l.name),
		driver.EnvLogFile + "=" + filepath.Join(c.LogDir, l.name+".log"),
		driver.EnvOrphanTimeout + "=" + c.IdleTimeout.String(),
		driver.EnvLogLevel + "=" + c.LogLevel,
		driver.EnvMaxMessageSize + "=" + strconv.Itoa(c.MaxMessageSize),
		driver.EnvGCPercent + "=" + strconv.Itoa(c.GCPercent),
	}
	if c.MaxProcs > 0 {
		env = append(env, driver.EnvMaxProcs+"="+strconv.Itoa(c.MaxProcs))
	}
	return env
}

func (l *launcher) mkdirs() error {
	c := l.cfg
	for _, d := range []string{
		filepath.Join(c.RunDir, "drivers"),
		filepath.Join(c.ConfigDir, l.name), filepath.Join(c.StateDir, l.name),
		filepath.Join(c.RunDir, l.name), filepath.Join(c.LogDir, l.name),
	} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	return nil
}

// launch starts the driver executable at path and completes the
// handshake. A failure that a retry will not mend is a brokenError.
//
// What runs is the file the checks passed, through the descriptor they
// opened (/proc/self/fd/N), never the path looked up again: a file
// swapped in after the check is not run.
func (l *launcher) launch(path string) (*instance, error) {
	if err := l.mkdirs(); err != nil {
		return nil, virt.Errorf(virt.ErrInternal, "driver %q: preparing directories: %w", l.name, err)
	}
	exe, err := l.trust.open(l.name, path)
	if err != nil {
		return nil, brokenError{virt.Errorf(virt.ErrUnavailable, "driver %q (%s) refused: %w", l.name, path, err)}
	}
	defer exe.Close()
	if testHookChecked != nil {
		testHookChecked(path)
	}
	stderr := newRing(10)
	cmd := exec.Command("/proc/self/fd/" + strconv.Itoa(int(exe.Fd())))
	cmd.Args[0] = path // what ps shows
	cmd.Env = l.env()
	// Its own session: a terminal's hangup or ^C does not reach drivers,
	// which outlive the daemon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	logger := &pluginLogger{Logger: l.log, reaped: make(chan struct{})}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  driver.Handshake,
		VersionedPlugins: driver.PluginSets(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		Stderr:           stderr,
		SyncStderr:       stderr,
		SyncStdout:       stderr,
		StartTimeout:     l.cfg.StartTimeout,
		SkipHostEnv:      true,
		GRPCDialOptions:  l.dialOptions(),
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill() // returns once the child is reaped and its stderr read
		return nil, brokenError{fmt.Errorf("driver %q (%s) failed to start: %s; %s: %w",
			l.name, path, explainHandshake(err, cmd, l.cfg.StartTimeout), stderr.quote(), virt.ErrUnavailable)}
	}
	rc := client.ReattachConfig()
	in := newInstance(rpc, rc.Pid, client.NegotiatedVersion(), stderr)
	in.launched, in.cmd, in.reaped = true, cmd, logger.reaped
	if err := l.attach(in, rc.Addr, "", path); err != nil {
		client.Kill()
		return nil, brokenError{fmt.Errorf("driver %q (%s): %v; %s: %w", l.name, path, err, stderr.quote(), virt.ErrUnavailable)}
	}
	return in, nil
}

// pluginLogger is the logger go-plugin gets for a launched driver.
//
// go-plugin names the driver's stderr lines after the base name of the
// path it ran, here the descriptor's number, which says nothing; they go
// under the driver's own name instead.
//
// go-plugin reaps the child once it has read the last of its stderr, then
// says "plugin process exited" through this logger: the one sign it gives
// of either. Seeing it closes reaped.
type pluginLogger struct {
	hclog.Logger
	reaped chan struct{}
	once   sync.Once
}

// exitMessage is what go-plugin logs once it has reaped a child.
const exitMessage = "plugin process exited"

func (l *pluginLogger) Named(name string) hclog.Logger {
	if _, err := strconv.Atoi(name); err == nil {
		return l.Logger
	}
	return l.Logger.Named(name)
}

func (l *pluginLogger) Info(msg string, args ...any) {
	l.Logger.Info(msg, args...)
	l.saw(msg)
}

func (l *pluginLogger) Error(msg string, args ...any) {
	l.Logger.Error(msg, args...)
	l.saw(msg)
}

func (l *pluginLogger) saw(msg string) {
	if msg == exitMessage {
		l.once.Do(func() { close(l.reaped) })
	}
}

// attach confirms the process's identity with a call, opens a handle on
// it that tells when it exits, and records it for a later daemon to
// reattach to.
func (l *launcher) attach(in *instance, addr net.Addr, wantInstance, path string) error {
	raw, err := in.rpc.Dispense(driver.PluginName)
	if err != nil {
		return fmt.Errorf("dispensing the driver interface: %v", err)
	}
	drv, ok := raw.(*driver.Client)
	if !ok {
		return fmt.Errorf("unexpected driver client type %T", raw)
	}
	in.drv = drv
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.StartTimeout)
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
	if ident.Name != l.name {
		return fmt.Errorf("executable calls itself %q, not %q", ident.Name, l.name)
	}
	in.ident = ident
	st, err := procfs.ReadStat(in.pid)
	if err != nil {
		return fmt.Errorf("reading process %d: %v", in.pid, err)
	}
	in.startTime = st.StartTime
	if in.exit, err = watchExit(in.pid, in.startTime); err != nil {
		return err
	}
	fail := func(err error) error {
		in.exit.Close()
		return err
	}
	if _, err := drv.KeepAlive(ctx, l.cfg.IdleTimeout); err != nil {
		return fail(fmt.Errorf("keep-alive call failed: %v", err))
	}
	rec := &record{
		Name: l.name, Path: path, PID: in.pid, StartTime: in.startTime,
		Network: addr.Network(), Addr: addr.String(), APIVersion: in.apiVer, InstanceID: ident.InstanceID,
	}
	if err := writeRecord(l.recordPath(), rec); err != nil {
		return fail(fmt.Errorf("writing %s: %v", l.recordPath(), err))
	}
	return nil
}

// watchExit opens a pidfd on process pid, which started at startTime.
func watchExit(pid int, startTime uint64) (*procfs.Exit, error) {
	e, err := procfs.WatchExit(pid, startTime)
	if errors.Is(err, syscall.ENOSYS) {
		return nil, fmt.Errorf("watching process %d: %w (virtd needs Linux 5.3 or later)", pid, err)
	}
	return e, err
}

// reattach connects to a driver process a previous daemon left running,
// as its record describes it; path is where the driver's file is now.
func (l *launcher) reattach(rec *record, path string) (*instance, error) {
	if !procfs.Alive(rec.PID, rec.StartTime) {
		return nil, fmt.Errorf("process %d is gone", rec.PID)
	}
	set, ok := driver.PluginSets()[rec.APIVersion]
	if !ok {
		return nil, fmt.Errorf("recorded driver API version %d is not spoken by this virtd", rec.APIVersion)
	}
	addr, err := net.ResolveUnixAddr("unix", rec.Addr)
	if err != nil || rec.Network != "unix" {
		return nil, fmt.Errorf("recorded address %s %q is not a unix socket", rec.Network, rec.Addr)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  driver.Handshake,
		Plugins:          set,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           l.log,
		GRPCDialOptions:  l.dialOptions(),
		Reattach: &plugin.ReattachConfig{
			Protocol: plugin.ProtocolGRPC, ProtocolVersion: rec.APIVersion, Addr: addr, Pid: rec.PID,
			ReattachFunc: func() (runner.AttachedRunner, error) { return attachedProcess(rec.PID, rec.StartTime) },
		},
	})
	rpc, err := client.Client()
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %v", rec.Addr, err)
	}
	in := newInstance(rpc, rec.PID, rec.APIVersion, newRing(10))
	if err := l.attach(in, addr, rec.InstanceID, path); err != nil {
		// Hang up without go-plugin's Close, which would ask whatever
		// answered, not verified as ours, to shut down.
		if g, ok := rpc.(*plugin.GRPCClient); ok {
			_ = g.Conn.Close()
		}
		return nil, err
	}
	return in, nil
}

// attached is go-plugin's handle on a driver process it did not start.
// go-plugin's own looks every second whether the process still runs; this
// one waits on a pidfd.
type attached struct {
	pid  int
	exit *procfs.Exit
}

func attachedProcess(pid int, startTime uint64) (runner.AttachedRunner, error) {
	e, err := watchExit(pid, startTime)
	if err != nil {
		return nil, err
	}
	return &attached{pid: pid, exit: e}, nil
}

func (a *attached) Wait(context.Context) error {
	a.exit.Wait()
	return a.exit.Close()
}

func (a *attached) Kill(context.Context) error { return a.exit.Kill() }
func (a *attached) ID() string                 { return strconv.Itoa(a.pid) }

func (a *attached) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (a *attached) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (l *launcher) dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(l.cfg.MaxMessageSize), grpc.MaxCallSendMsgSize(l.cfg.MaxMessageSize)),
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
