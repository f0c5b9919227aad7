package client

import (
	"os"
	"path/filepath"
)

// DefaultRunDir is the daemon's runtime directory when VIRTD_RUN_DIR is
// not set.
const DefaultRunDir = "/run/virtd"

// RunDirEnv names the environment variable that overrides DefaultRunDir
// (tests and `make run` point it at a private root; `virtd --root DIR` puts
// its sockets in DIR/run/virtd).
const RunDirEnv = "VIRTD_RUN_DIR"

// Socket file names inside the run directory.
const (
	SocketName         = "virtd-sock"
	ReadOnlySocketName = "virtd-sock-ro"
	AdminSocketName    = "virtd-admin-sock"
)

// RunDir returns the directory holding the daemon's sockets: $VIRTD_RUN_DIR
// when set, else /run/virtd.
func RunDir() string {
	if d := os.Getenv(RunDirEnv); d != "" {
		return d
	}
	return DefaultRunDir
}

// DefaultSocket returns the path of the read-write socket.
func DefaultSocket() string { return filepath.Join(RunDir(), SocketName) }

// DefaultReadOnlySocket returns the path of the read-only socket.
func DefaultReadOnlySocket() string { return filepath.Join(RunDir(), ReadOnlySocketName) }

// DefaultAdminSocket returns the path of the admin socket.
func DefaultAdminSocket() string { return filepath.Join(RunDir(), AdminSocketName) }
