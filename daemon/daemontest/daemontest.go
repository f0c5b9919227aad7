// Package daemontest serves virtd's real core and both front ends (gRPC on
// the three sockets of virtd, libvirt's RPC protocol on its two) in a
// temporary directory, with drivers in this process
// (package core/inproc), for the tests of the client library, of virtsh and
// of whatever else speaks to virtd's sockets. Only the driver processes
// are left out: supervision has its own tests (package host and test/e2e).
package daemontest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/core/inproc"
	"github.com/virtd/virtd/daemon"
	"github.com/virtd/virtd/daemon/libvirtrpc"
	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/testdriver"
)

// Daemon is a running front end over an in-process core.
type Daemon struct {
	// Dir holds the sockets, under their usual names.
	Dir                           string
	Socket, ROSocket, AdminSocket string
	// LibvirtSocket and LibvirtROSocket speak libvirt's RPC protocol.
	LibvirtSocket, LibvirtROSocket string
	Core                           *core.Core
	srv                            *daemon.Server
	lv                             *libvirtrpc.Server
	stopped                        bool
}

// Start serves drivers, or a fresh test driver when none is given, until
// the test ends or Stop is called.
func Start(t testing.TB, drivers ...driver.Driver) *Daemon {
	t.Helper()
	if len(drivers) == 0 {
		drivers = []driver.Driver{testdriver.New(driver.Env{})}
	}
	// Unix socket paths are limited to about 100 bytes, which t.TempDir
	// can exceed.
	dir, err := os.MkdirTemp("", "virtd-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	views := core.NewViews()
	ds, err := inproc.New(context.Background(), views, drivers...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	c := core.New(core.Config{Drivers: ds, Views: views, Version: daemon.Version})
	srv, err := daemon.NewServer(c, daemon.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := daemon.ListenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve(ls)
	d := &Daemon{
		Dir: dir, Socket: filepath.Join(dir, daemon.SocketRW), ROSocket: filepath.Join(dir, daemon.SocketRO),
		AdminSocket: filepath.Join(dir, daemon.SocketAdmin), Core: c, srv: srv,
		LibvirtSocket: filepath.Join(dir, daemon.SocketLibvirt), LibvirtROSocket: filepath.Join(dir, daemon.SocketLibvirtRO),
		lv: libvirtrpc.New(libvirtrpc.Config{Core: c}),
	}
	for _, s := range []struct {
		path     string
		readOnly bool
	}{{d.LibvirtSocket, false}, {d.LibvirtROSocket, true}} {
		l, err := net.Listen("unix", s.path)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = d.lv.Serve(l, s.readOnly) }()
	}
	t.Cleanup(d.Stop)
	return d
}

// Stop ends the event streams as a daemon that shuts down does, then stops
// serving at once.
func (d *Daemon) Stop() {
	if d.stopped {
		return
	}
	d.stopped = true
	d.lv.Close()
	d.srv.Stop(2 * time.Second)
	for _, p := range []string{d.Socket, d.ROSocket, d.AdminSocket, d.LibvirtSocket, d.LibvirtROSocket} {
		os.Remove(p)
	}
}
