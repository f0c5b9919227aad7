// Package daemon is virtd's public API server: it listens on the unix
// sockets, opens connections on URIs and routes them to the driver that
// serves the scheme (through package host), refuses changes on read-only
// connections, fans driver events out to clients, and serves the admin
// calls. It holds no hypervisor code.
package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/internal/version"
)

// Version is virtd's version.
var Version = version.Version

// Paths are every directory the daemon uses, derived from one root.
type Paths struct {
	RunDir     string // sockets, driver records: /run/virtd
	ConfigDir  string // configuration and definitions: /etc/virtd
	StateDir   string // /var/lib/virtd
	LogDir     string // /var/log/virtd
	DriverDirs []string
}

// DefaultDriverDir is where driver packages install their executables.
const DefaultDriverDir = "/usr/libexec/virtd/drivers"

// PathsFor derives every path from root ("" or "/" for the system paths).
// The driver directories come from driverDirs when given, else from the
// colon list in VIRTD_DRIVER_DIR, else the default under root.
func PathsFor(root string, driverDirs []string) Paths {
	if root == "" {
		root = "/"
	}
	p := Paths{
		RunDir:    filepath.Join(root, "run/virtd"),
		ConfigDir: filepath.Join(root, "etc/virtd"),
		StateDir:  filepath.Join(root, "var/lib/virtd"),
		LogDir:    filepath.Join(root, "var/log/virtd"),
	}
	switch {
	case len(driverDirs) > 0:
		p.DriverDirs = driverDirs
	case os.Getenv("VIRTD_DRIVER_DIR") != "":
		for _, d := range strings.Split(os.Getenv("VIRTD_DRIVER_DIR"), ":") {
			if d != "" {
				p.DriverDirs = append(p.DriverDirs, d)
			}
		}
	default:
		p.DriverDirs = []string{filepath.Join(root, DefaultDriverDir)}
	}
	return p
}

// Socket names under the run directory.
const (
	SocketRW    = "virtd-sock"
	SocketRO    = "virtd-sock-ro"
	SocketAdmin = "virtd-admin-sock"
	// libvirt's RPC protocol, for virsh and the libvirt bindings.
	SocketLibvirt   = "libvirt-sock"
	SocketLibvirtRO = "libvirt-sock-ro"
)

// LibvirtStandardSockets are where libvirt's clients look with no
// ?socket= in their URI; the virtd-libvirt-compat package serves there.
const (
	LibvirtStandardSocket   = "/run/libvirt/libvirt-sock"
	LibvirtStandardSocketRO = "/run/libvirt/libvirt-sock-ro"
)

// NoSocket as a socket path turns that socket off.
const NoSocket = "none"

// Config is the daemon's configuration.
type Config struct {
	Paths
	// UnixGroup, when set, may use the read-write sockets (mode 0660).
	UnixGroup string
	// LibvirtSocket and LibvirtSocketRO are the paths of the sockets that
	// speak libvirt's RPC protocol (read-write, read-only); empty: in the
	// run directory; NoSocket: not served.
	LibvirtSocket, LibvirtSocketRO string
	// DefaultURI is the URI of a connection opened with none (libvirt's
	// uri_default); empty: the first hypervisor driver that can run guests
	// here, in the order of core.DefaultURIs.
	DefaultURI string
	// Timeout, when positive, makes the daemon exit after that long with
	// no client and nothing running, like libvirtd --timeout.
	Timeout time.Duration
	// DriverIdleTimeout stops a driver with no connection and no guest.
	DriverIdleTimeout time.Duration
	// DriverStartTimeout bounds a driver's handshake.
	DriverStartTimeout time.Duration
	// DriverHangTimeout: a driver that leaves a keep-alive unanswered this
	// long is killed as hung and restarted.
	DriverHangTimeout time.Duration
	// DriverRestartWait bounds how long a call waits for a driver that is
	// starting, restarting after a crash, or being replaced.
	DriverRestartWait time.Duration
	// DriverSHA256 pins drivers, by name, to the SHA-256 of their
	// executable: another file is refused.
	DriverSHA256 map[string]string
	// DriverGCPercent is Go's garbage collection percent (what GOGC sets)
	// in the driver processes, which see none of the daemon's
	// environment; zero means driver.DefaultGCPercent.
	DriverGCPercent int
	// DriverMaxProcs bounds GOMAXPROCS in the drivers; zero for every
	// CPU.
	DriverMaxProcs int
	// Limits bound what clients can make the daemon hold; zero values
	// take DefaultLimits'.
	Limits Limits
	// MemoryLimit is a soft limit on the daemon's memory for Go's garbage
	// collector (runtime/debug.SetMemoryLimit): nearing it, the daemon
	// collects garbage more often. Zero leaves the runtime's default.
	MemoryLimit int
	// ShutdownGrace bounds how long SIGTERM waits for calls in flight.
	ShutdownGrace time.Duration
	LogLevel      string
	Logger        hclog.Logger
}
