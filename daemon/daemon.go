package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/daemon/libvirtrpc"
	"github.com/virtd/virtd/host"
	"github.com/virtd/virtd/internal/procs"
)

// Daemon is a running virtd: the core over the driver processes of
// package host, served on virtd's sockets.
type Daemon struct {
	cfg  Config
	log  hclog.Logger
	host *host.Host
	core *core.Core
	srv  *Server
	lv   *libvirtrpc.Server
	lock *os.File
	// ownSockets are the socket files virtd created (not socket-activated).
	ownSockets []string
	lvErr      chan error
}

// New prepares the daemon: it takes the run directory's lock, scans the
// driver directories and reattaches to running drivers.
func New(cfg Config) (*Daemon, error) {
	// Whatever umask a service manager gave: what virtd and its drivers
	// create is writable by no one else unless they say so.
	syscall.Umask(0o022)
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryLimit))
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "virtd", Level: hclog.LevelFromString(cfg.LogLevel)})
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	for _, d := range []string{cfg.RunDir, cfg.ConfigDir, cfg.StateDir, cfg.LogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	lim, err := newLimiter(cfg.Limits)
	if err != nil {
		return nil, err
	}
	lock, err := lockRunDir(cfg.RunDir)
	if err != nil {
		return nil, err
	}
	views := core.NewViews()
	h, err := host.New(host.Config{
		Dirs: cfg.DriverDirs, RunDir: cfg.RunDir, ConfigDir: cfg.ConfigDir,
		StateDir: cfg.StateDir, LogDir: cfg.LogDir,
		IdleTimeout: cfg.DriverIdleTimeout, StartTimeout: cfg.DriverStartTimeout,
		HangTimeout: cfg.DriverHangTimeout, RestartWait: cfg.DriverRestartWait,
		UID: os.Getuid(), SHA256: cfg.DriverSHA256,
		MaxMessageSize: lim.l.MaxMessageSize, Events: lim.l.Events, Sinks: views.Sink,
		GCPercent: cfg.DriverGCPercent,
		MaxProcs:  cfg.DriverMaxProcs,
		LogLevel:  cfg.LogLevel, Logger: cfg.Logger.Named("driver"),
	})
	if err != nil {
		lock.Close()
		return nil, err
	}
	c := core.New(core.Config{Drivers: core.FromHost(h), Views: views, Version: Version, DefaultURI: cfg.DefaultURI, Logger: cfg.Logger})
	if cfg.LibvirtSocket == "" {
		cfg.LibvirtSocket = filepath.Join(cfg.RunDir, SocketLibvirt)
	}
	if cfg.LibvirtSocketRO == "" {
		cfg.LibvirtSocketRO = filepath.Join(cfg.RunDir, SocketLibvirtRO)
	}
	lv := libvirtrpc.New(libvirtrpc.Config{Core: c, Limits: lim.libvirt(), Logger: cfg.Logger.Named("libvirt")})
	return &Daemon{cfg: cfg, log: cfg.Logger, host: h, core: c, srv: newServer(c, lim), lv: lv, lock: lock, lvErr: make(chan error, 2)}, nil
}

// lockRunDir makes sure one daemon at a time uses a run directory.
func lockRunDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "virtd.pid")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another virtd is running on %s (lock %s held)", dir, path)
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}

// listen opens a unix socket at path with the given mode and group. The
// socket is never reachable with a wider mode, whatever the umask: it is
// bound in a private directory (0700), given its mode and group there, and
// only then renamed into place, replacing what a previous daemon left.
func listen(path string, mode os.FileMode, group string) (net.Listener, error) {
	gid := -1
	if group != "" {
		var err error
		if gid, err = lookupGroup(group); err != nil {
			return nil, err
		}
	}
	private, err := os.MkdirTemp(filepath.Dir(path), ".listen")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(private)
	tmp := filepath.Join(private, filepath.Base(path))
	l, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	// Removing the socket file is the daemon's job (shutdown), at its
	// final path.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if gid >= 0 {
		err = os.Chown(tmp, -1, gid)
	}
	if err == nil {
		err = os.Chmod(tmp, mode)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func lookupGroup(name string) (int, error) {
	if gid, err := strconv.Atoi(name); err == nil {
		return gid, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("unix group %q: %v", name, err)
	}
	return strconv.Atoi(g.Gid)
}

// Run serves until ctx ends, SIGTERM or SIGINT arrives, or the idle
// timeout passes; SIGHUP rescans the driver directories. On the way out it
// stops accepting, lets calls in flight finish, and leaves drivers
// running for the next daemon to reattach.
//
// While it runs, virtd keeps one P while it is not busy, unless
// GOMAXPROCS is in its environment, and hands free memory back once it
// has been quiet for a while (governProcs, internal/procs).
func (d *Daemon) Run(ctx context.Context) error {
	defer d.lock.Close()
	defer governProcs(d.log)()
	rwMode := os.FileMode(0o600)
	if d.cfg.UnixGroup != "" {
		rwMode = 0o660
	}
	activated, err := activatedListeners()
	if err != nil {
		d.shutdown()
		return err
	}
	// libvirt's sockets first: once virtd's read-write socket is in
	// place, every socket is.
	if err := d.serveLibvirt(activated, rwMode); err != nil {
		d.shutdown()
		return err
	}
	ls, own, err := listenAll(d.cfg.RunDir, activated, rwMode, d.cfg.UnixGroup)
	d.ownSockets = append(d.ownSockets, own...)
	if err != nil {
		d.shutdown()
		return err
	}
	d.srv.Serve(ls)
	d.log.Info("virtd ready", "version", Version, "run_dir", d.cfg.RunDir, "driver_dirs", d.cfg.DriverDirs, "socket_activated", len(activated) > 0)
	notify("READY=1")

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	idleSince := time.Now()
	for {
		select {
		case <-ctx.Done():
			d.shutdown()
			return nil
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				notify("RELOADING=1")
				added, removed, _ := d.core.Rescan()
				notify("READY=1")
				d.log.Info("rescanned driver directories on SIGHUP", "added", added, "removed", removed)
				continue
			}
			d.log.Info("shutting down", "signal", sig.String())
			d.shutdown()
			return nil
		case err := <-d.srv.Err():
			d.shutdown()
			return err
		case err := <-d.lvErr:
			d.shutdown()
			return err
		case <-tick.C:
			if d.cfg.Timeout <= 0 {
				continue
			}
			if d.srv.Transports() > 0 || d.lv.Conns() > 0 || d.core.Busy() {
				idleSince = time.Now()
			} else if time.Since(idleSince) >= d.cfg.Timeout {
				d.log.Info("exiting after idle timeout", "timeout", d.cfg.Timeout)
				d.shutdown()
				return nil
			}
		}
	}
}

// shutdown stops accepting, waits up to the grace period for calls in
// flight, and detaches from the drivers without stopping them.
func (d *Daemon) shutdown() {
	notify("STOPPING=1")
	d.lv.Close()
	d.srv.Stop(d.cfg.ShutdownGrace)
	// Sockets systemd passed stay: they are its to remove.
	for _, path := range d.ownSockets {
		_ = os.Remove(path)
	}
	d.host.Close()
}

// serveLibvirt serves libvirt's RPC protocol on its two sockets, those
// systemd passed (by name) or at their configured paths.
func (d *Daemon) serveLibvirt(activated map[string]net.Listener, rwMode os.FileMode) error {
	for _, sk := range []struct {
		name, path string
		mode       os.FileMode
		group      string
		readOnly   bool
	}{
		{SocketLibvirtRO, d.cfg.LibvirtSocketRO, 0o666, "", true},
		{SocketLibvirt, d.cfg.LibvirtSocket, rwMode, d.cfg.UnixGroup, false},
	} {
		l, ok := activated[sk.name]
		if !ok {
			if sk.path == NoSocket {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(sk.path), 0o755); err != nil {
				return err
			}
			var err error
			if l, err = listen(sk.path, sk.mode, sk.group); err != nil {
				return fmt.Errorf("listening on %s: %w", sk.path, err)
			}
			d.ownSockets = append(d.ownSockets, sk.path)
		}
		go func() {
			if err := d.lv.Serve(l, sk.readOnly); err != nil {
				d.lvErr <- err
			}
		}()
	}
	return nil
}

// governProcs starts the governor of virtd's GOMAXPROCS and memory, and
// returns what stops it. GOMAXPROCS in the environment is left as set:
// then the governor only gives memory back.
func governProcs(log hclog.Logger) (stop func()) {
	g := procs.New()
	if os.Getenv("GOMAXPROCS") != "" {
		g.Max = 0
	}
	g.Changed = func(n int, busy float64) { log.Debug("GOMAXPROCS changed", "procs", n, "cores_busy", busy) }
	return g.Start()
}
