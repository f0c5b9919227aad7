package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/internal/procs"
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
)

// Server is virtd's gRPC front end over a core: VirtService on the
// read-write and the read-only socket, AdminService on the admin socket.
// It translates; every decision is the core's.
type Server struct {
	core    *core.Core
	reg     *registry
	lim     *limiter
	servers []*grpc.Server
	errc    chan error
}

// NewServer returns a front end over c with the given limits (zero values
// take DefaultLimits').
func NewServer(c *core.Core, l Limits) (*Server, error) {
	lim, err := newLimiter(l)
	if err != nil {
		return nil, err
	}
	return newServer(c, lim), nil
}

func newServer(c *core.Core, lim *limiter) *Server {
	return &Server{core: c, reg: newRegistry(), lim: lim, errc: make(chan error, 3)}
}

// Listeners are the three sockets a Server serves.
type Listeners struct{ RW, RO, Admin net.Listener }

// Serve starts serving ls; Err reports a listener that fails.
func (s *Server) Serve(ls Listeners) {
	for _, l := range []struct {
		l   net.Listener
		reg func(*grpc.Server)
	}{
		{ls.Admin, func(g *grpc.Server) { apiv1.RegisterAdminServiceServer(g, &admin{core: s.core}) }},
		{ls.RO, func(g *grpc.Server) {
			apiv1.RegisterVirtServiceServer(g, &service{core: s.core, reg: s.reg, readOnly: true})
		}},
		{ls.RW, func(g *grpc.Server) { apiv1.RegisterVirtServiceServer(g, &service{core: s.core, reg: s.reg}) }},
	} {
		g := s.grpcServer()
		l.reg(g)
		s.servers = append(s.servers, g)
		go func() {
			if err := g.Serve(l.l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				s.errc <- err
			}
		}()
	}
}

// Err delivers the error of a listener that failed.
func (s *Server) Err() <-chan error { return s.errc }

// Transports returns how many socket connections are open.
func (s *Server) Transports() int64 { return s.reg.transports.Load() }

// Stop ends the event streams (the core closes), stops accepting, and
// waits up to grace for the calls in flight before it cuts them off.
func (s *Server) Stop(grace time.Duration) {
	s.core.Close()
	done := make(chan struct{})
	go func() {
		for _, g := range s.servers {
			g.GracefulStop()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		for _, g := range s.servers {
			g.Stop()
		}
		<-done
	}
}

func (s *Server) grpcServer() *grpc.Server {
	return grpc.NewServer(append(s.lim.serverOptions(),
		grpc.StatsHandler(statsHandler{s.reg, s.lim}),
		// Fixed windows: no bandwidth-delay probing on a local socket.
		grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(1<<20),
		// Small per-connection buffers, lent from pools only while
		// reading or writing (gRPC shares write buffers by default): an
		// idle connection costs little.
		grpc.ReadBufferSize(8<<10), grpc.WriteBufferSize(8<<10),
		grpc.NumStreamWorkers(procs.StreamWorkers()),
	)...)
}

// ListenDir opens virtd's three sockets in dir, with their usual names
// and modes (read-write 0600, read-only 0666, admin 0600).
func ListenDir(dir string) (Listeners, error) {
	ls, _, err := listenAll(dir, nil, 0o600, "")
	return ls, err
}

// listenAll opens the three sockets in dir, taking those systemd passed
// (activated, by name) as they are, and returns the paths of those it
// created. The read-write socket comes last: once it is in place, every
// socket is, and a client that waited for it finds the others.
func listenAll(dir string, activated map[string]net.Listener, rwMode os.FileMode, group string) (ls Listeners, own []string, err error) {
	for _, sk := range []struct {
		name  string
		mode  os.FileMode
		group string
		l     *net.Listener
	}{
		{SocketAdmin, 0o600, "", &ls.Admin},
		{SocketRO, 0o666, "", &ls.RO},
		{SocketRW, rwMode, group, &ls.RW},
	} {
		if l, ok := activated[sk.name]; ok {
			*sk.l = l
			continue
		}
		path := filepath.Join(dir, sk.name)
		l, err := listen(path, sk.mode, sk.group)
		if err != nil {
			for _, l := range []net.Listener{ls.Admin, ls.RO} {
				if l != nil {
					l.Close()
				}
			}
			return ls, own, fmt.Errorf("listening on %s: %w", path, err)
		}
		*sk.l = l
		own = append(own, path)
	}
	return ls, own, nil
}
