package driver

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/virtd/virtd/internal/atomicfile"
	"github.com/virtd/virtd/internal/procs"
)

// Environment the host sets for a driver process. The host passes none of
// its own environment through; these and a minimal PATH are all a driver
// sees. Serve reads them into an Env (ParseEnv).
const (
	// EnvOrphanTimeout (a Go duration) is how long the driver lives on with
	// no host in contact and no running guest before it exits by itself.
	EnvOrphanTimeout = "VIRTD_DRIVER_ORPHAN_TIMEOUT"
	// EnvLogLevel is the driver's log level (trace, debug, info, ...).
	EnvLogLevel = "VIRTD_DRIVER_LOG_LEVEL"
	// EnvLogFile, when set, receives a copy of the driver's JSON log, so
	// that its lines are kept while no host reads its stderr.
	EnvLogFile = "VIRTD_DRIVER_LOG_FILE"
	// EnvMaxMessageSize (bytes) bounds every message the driver receives
	// or sends, as the host bounds its side: an oversize call is refused
	// as resource exhausted, the same on both hops.
	EnvMaxMessageSize = "VIRTD_DRIVER_MAX_MESSAGE_SIZE"
	// EnvGCPercent is Go's garbage collection percent for the driver
	// process, what GOGC would set (which the host does not pass).
	EnvGCPercent = "VIRTD_DRIVER_GC_PERCENT"
	// EnvMaxProcs bounds how many OS threads may run the driver's Go code
	// at once: the most its GOMAXPROCS governor gives (internal/procs),
	// every CPU when unset. GOMAXPROCS itself is not passed.
	EnvMaxProcs = "VIRTD_DRIVER_MAX_PROCS"
	// The driver's own directories, derived by the host from its --root
	// (system paths shown); the host creates them before launch:
	//   EnvConfigDir: persistent domain definitions, /etc/virtd/<name>
	//   EnvStateDir:  other persistent state, /var/lib/virtd/<name>
	//   EnvRunDir:    runtime state (pids, sockets, live XML), /run/virtd/<name>
	//   EnvLogDir:    logs (e.g. one file per guest), /var/log/virtd/<name>
	EnvConfigDir = "VIRTD_DRIVER_CONFIG_DIR"
	EnvStateDir  = "VIRTD_DRIVER_STATE_DIR"
	EnvRunDir    = "VIRTD_DRIVER_RUN_DIR"
	EnvLogDir    = "VIRTD_DRIVER_LOG_DIR"
)

// Serve runs a driver executable: it reads the Env its host gives
// (ParseEnv), makes the driver's logger, which writes JSON to stderr (the
// host re-logs it under the driver's name), builds the driver from the Env,
// serves it over go-plugin's gRPC transport and never returns. Before the
// driver is built it sets the Env's GC percent and starts the governor of
// its GOMAXPROCS (one P while the driver is not busy). It refuses
// to run unless launched by a virtd host, and exits with the error when
// the Env is incomplete or invalid.
func Serve(newDriver func(Env) Driver) {
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "%s is a virtd driver: virtd starts it when a client needs it; it is not meant to be run by hand\n", os.Args[0])
		os.Exit(1)
	}
	// A host that dies closes our stderr. Writes must then fail quietly,
	// not kill the driver with SIGPIPE: the driver outlives its host.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

	nameProcess()
	env, err := ParseEnv(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", filepath.Base(os.Args[0]), err)
		os.Exit(1)
	}
	setRuntime(env)
	logger := newLogger(env)
	env.Logger = logger
	cleanDirs(env, logger)
	impl := newDriver(env)
	srv := newServer(impl, newInstanceID())
	srv.orphanTimeout.Store(int64(env.OrphanTimeout))
	go watchOrphan(srv, logger)

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{APIVersion: {PluginName: &Plugin{Impl: impl, srv: srv}}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts,
				// Fixed windows: no bandwidth-delay probing on a local socket.
				grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(1<<20),
				grpc.MaxRecvMsgSize(env.MaxMessageSize), grpc.MaxSendMsgSize(env.MaxMessageSize),
				grpc.NumStreamWorkers(procs.StreamWorkers()))...)
		},
		Logger: logger,
	})
	os.Exit(0)
}

// DefaultMaxMessageSize is the message size limit when the host sets none.
const DefaultMaxMessageSize = 4 << 20

// DefaultGCPercent is a driver's GC percent when the host sets none: half
// Go's default of 100, so that the heap grows by half its live size
// between collections instead of doubling. A driver's live heap grows
// with its domains (a QEMU domain's definition keeps about 2 KiB), and
// that much less of it stays resident as garbage: 2 MiB less with 1,000
// QEMU domains. A driver allocates little per call (a hostname call:
// 3.6 KiB, against virtd's 10.7 KiB), so the extra collections cost no
// CPU that a call shows; virtd itself keeps Go's default, where they would
// (GOGC 50 in virtd and its driver costs a fifth more CPU per call).
const DefaultGCPercent = 50

// setRuntime applies the Env's Go runtime settings to this process.
func setRuntime(env Env) {
	debug.SetGCPercent(env.GCPercent)
	governor(env).Start()
}

// governor is the driver's GOMAXPROCS governor, bounded by the Env. A
// driver waits on sockets and processes (QEMU, containers, libxl): most of
// the time one P serves it best. On a 2-core VM a call from virtd to the
// QEMU driver took 250 us at the median with one P and 290 us with two.
func governor(env Env) *procs.Governor {
	g := procs.New()
	if env.MaxProcs > 0 && env.MaxProcs < g.Max {
		g.Max = env.MaxProcs
	}
	return g
}

// nameProcess gives the process the name of its executable. The host runs
// a driver through the descriptor it checked (/proc/self/fd/N), which
// would otherwise leave the process named "N" in ps and /proc/PID/comm.
func nameProcess() {
	name := filepath.Base(os.Args[0])
	if len(name) > 15 {
		name = name[:15] // the kernel's TASK_COMM_LEN, less the NUL
	}
	_ = os.WriteFile("/proc/self/comm", []byte(name), 0)
}

// cleanDirs removes what writers killed in the middle of an atomic write
// left in the driver's directories.
func cleanDirs(env Env, logger hclog.Logger) {
	for _, dir := range []string{env.ConfigDir, env.StateDir, env.RunDir} {
		removed, err := atomicfile.Clean(dir)
		if err != nil {
			logger.Warn("cleaning temporary files", "dir", dir, "error", err)
		}
		for _, f := range removed {
			logger.Info("removed a temporary file left by a writer that was killed", "file", f)
		}
	}
}

// newLogger makes the driver's logger: JSON to stderr, and to the log
// file when there is one.
func newLogger(env Env) hclog.Logger {
	var out io.Writer = os.Stderr
	if env.LogFile != "" {
		if f, err := os.OpenFile(env.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
			out = io.MultiWriter(f, quietWriter{os.Stderr})
		}
	}
	return hclog.New(&hclog.LoggerOptions{Output: out, JSONFormat: true, Level: env.LogLevel})
}

// quietWriter never fails, so that a closed stderr does not stop the
// copy to the log file.
type quietWriter struct{ w io.Writer }

func (q quietWriter) Write(p []byte) (int, error) {
	_, _ = q.w.Write(p)
	return len(p), nil
}

// watchOrphan exits the process when no host has been in contact for the
// orphan timeout and the driver runs no guest.
func watchOrphan(srv *server, logger hclog.Logger) {
	for range time.Tick(500 * time.Millisecond) {
		timeout := time.Duration(srv.orphanTimeout.Load())
		if timeout <= 0 || srv.idleFor() < timeout {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		n, err := srv.impl.RunningGuests(ctx)
		cancel()
		if err == nil && n == 0 {
			logger.Info("no host attached and no running guest; exiting", "idle", srv.idleFor().Round(time.Second))
			os.Exit(0)
		}
	}
}
