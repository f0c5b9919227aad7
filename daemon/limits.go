package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/proto"

	"github.com/virtd/virtd/daemon/libvirtrpc"
	"github.com/virtd/virtd/host"
	"github.com/virtd/virtd/internal/rpcerr"
	"github.com/virtd/virtd/virt"
)

// Limits bound what clients can make the daemon hold: every count and size
// a client controls. The names are the settings' names in virtd.conf; the
// first ones are libvirtd's.
type Limits struct {
	// MaxClients: client connections served at once, on every socket
	// together (max_clients). A connection over it is answered, for a
	// short while, only with resource-exhausted errors, then closed.
	MaxClients int
	// MaxClientRequests: calls one client connection may have in flight
	// (max_client_requests). Further calls wait their turn, as libvirtd
	// stops reading a client that has this many.
	MaxClientRequests int
	// MaxClientStreams: event streams and consoles open at once on one
	// client connection (max_client_streams); they count among its
	// requests too.
	MaxClientStreams int
	// MaxMessageSize: bytes of one message, from a client or a driver,
	// either way (max_message_size).
	MaxMessageSize int
	// MaxInflightBytes: bytes of the requests being handled, of every
	// client together (max_inflight_bytes). A large request (over 64 KiB)
	// is refused once three quarters of it are in use, a small one once
	// all of it is, so that large calls cannot crowd out small ones.
	MaxInflightBytes int
	// Events bound what clients that do not read their event streams make
	// the daemon keep (max_event_backlog, max_event_backlog_bytes,
	// max_event_queue_bytes).
	Events host.EventLimits
}

// DefaultLimits are the limits when the configuration sets none: with
// them virtd stays under 256 MiB whatever its clients do.
var DefaultLimits = Limits{
	MaxClients:        5000,
	MaxClientRequests: 16,
	MaxClientStreams:  8,
	MaxMessageSize:    4 << 20,
	MaxInflightBytes:  32 << 20,
	Events:            host.EventLimits{Backlog: 4096, BacklogBytes: 1 << 20, QueueBytes: 32 << 20},
}

// DefaultMemoryLimit is the daemon's soft memory limit (Config.MemoryLimit)
// when the configuration sets none.
const DefaultMemoryLimit = 192 << 20

func (l *Limits) setDefaults() {
	d := DefaultLimits
	for _, f := range []struct{ v, def *int }{
		{&l.MaxClients, &d.MaxClients}, {&l.MaxClientRequests, &d.MaxClientRequests},
		{&l.MaxClientStreams, &d.MaxClientStreams}, {&l.MaxMessageSize, &d.MaxMessageSize},
		{&l.MaxInflightBytes, &d.MaxInflightBytes}, {&l.Events.Backlog, &d.Events.Backlog},
		{&l.Events.BacklogBytes, &d.Events.BacklogBytes}, {&l.Events.QueueBytes, &d.Events.QueueBytes},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
}

// smallRequest is the size up to which a request may use the last quarter
// of MaxInflightBytes.
const smallRequest = 64 << 10

// Over max_clients: at most maxRefused refused connections are kept open
// at once, each for refusedLinger, to answer their calls with the reason;
// more are closed at once.
const maxRefused = 64

var refusedLinger = 2 * time.Second

// limiter enforces Limits for every socket of a daemon.
type limiter struct {
	l        Limits
	nextConn atomic.Uint64
	clients  atomic.Int64 // connections served
	refused  atomic.Int64 // connections kept only to be refused

	mu       sync.Mutex
	inflight int            // bytes of requests being handled
	streams  map[uint64]int // open streams, by client connection
}

func newLimiter(l Limits) (*limiter, error) {
	l.setDefaults()
	if l.MaxClientStreams >= l.MaxClientRequests {
		return nil, fmt.Errorf("max_client_streams (%d) must be less than max_client_requests (%d): streams hold requests, and a connection must keep room for its calls",
			l.MaxClientStreams, l.MaxClientRequests)
	}
	return &limiter{l: l, streams: map[uint64]int{}}, nil
}

// client is one client connection (a socket connection): its id, whether
// it is over max_clients, and the connection itself. unixCreds makes one
// per connection as gRPC's transport credentials, so that gRPC keeps the
// bare socket (wrapping it would cost gRPC's pooled read buffer) and every
// call finds its client in its context (peer.AuthInfo).
type client struct {
	credentials.CommonAuthInfo
	id   uint64
	conn net.Conn
	// refused is decided when the connection begins (statsHandler),
	// before any call on it.
	refused bool
}

func (*client) AuthType() string { return "unix" }

// unixCreds are the transport credentials of virtd's unix sockets: no
// handshake, an identity per connection.
type unixCreds struct{ lim *limiter }

func (c unixCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return conn, &client{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}, id: c.lim.nextConn.Add(1), conn: conn}, nil
}

func (unixCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("virtd's unix socket credentials are for the server side")
}

func (unixCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "insecure"}
}

func (c unixCreds) Clone() credentials.TransportCredentials { return c }

func (unixCreds) OverrideServerName(string) error { return nil }

// begin counts a connection that begins against max_clients; one over it
// is marked refused: it is kept refusedLinger to answer its calls with
// the reason, unless maxRefused are kept already, then it is closed.
func (lim *limiter) begin(c *client) {
	if lim.clients.Add(1) <= int64(lim.l.MaxClients) {
		return
	}
	lim.clients.Add(-1)
	c.refused = true
	if lim.refused.Add(1) > maxRefused {
		_ = c.conn.Close()
		return
	}
	_ = c.conn.SetDeadline(time.Now().Add(refusedLinger))
}

// end undoes begin when the connection ends.
func (lim *limiter) end(c *client) {
	if c.refused {
		lim.refused.Add(-1)
	} else {
		lim.clients.Add(-1)
	}
}

// refusedErr is what a connection over max_clients gets.
func (lim *limiter) refusedErr() error { return rpcerr.ToStatus(lim.overClients()) }

func (lim *limiter) overClients() error {
	return fmt.Errorf("virtd already serves %d client connections (max_clients = %d); close some or raise max_clients: %w",
		lim.l.MaxClients, lim.l.MaxClients, virt.ErrResourceExhausted)
}

// libvirt returns the limits as the libvirt front end applies them:
// connections count against the same max_clients, packets against the
// same max_inflight_bytes.
func (lim *limiter) libvirt() libvirtrpc.Limits {
	return libvirtrpc.Limits{
		MaxClientRequests: lim.l.MaxClientRequests,
		MaxClientStreams:  lim.l.MaxClientStreams,
		MaxMessageSize:    lim.l.MaxMessageSize,
		Admit: func() (func(), error) {
			if lim.clients.Add(1) > int64(lim.l.MaxClients) {
				lim.clients.Add(-1)
				return nil, lim.overClients()
			}
			return func() { lim.clients.Add(-1) }, nil
		},
		Reserve: lim.reserve,
	}
}

// reserve takes n bytes of max_inflight_bytes for a request, or says why
// it cannot.
func (lim *limiter) reserve(n int) (release func(), err error) {
	max := lim.l.MaxInflightBytes
	limit := max
	if n > smallRequest {
		limit = max / 4 * 3
	}
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if lim.inflight+n > limit {
		return nil, fmt.Errorf("the calls in flight hold %d bytes and this request of %d bytes would take them past %d (max_inflight_bytes = %d, of which requests over %d bytes may use three quarters): %w",
			lim.inflight, n, limit, max, smallRequest, virt.ErrResourceExhausted)
	}
	lim.inflight += n
	return func() {
		lim.mu.Lock()
		lim.inflight -= n
		lim.mu.Unlock()
	}, nil
}

// openStream counts a stream on client connection id, or says why it may
// not open.
func (lim *limiter) openStream(id uint64) (release func(), err error) {
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if lim.streams[id] >= lim.l.MaxClientStreams {
		return nil, fmt.Errorf("this client connection already has %d event streams and consoles open (max_client_streams = %d): %w",
			lim.streams[id], lim.l.MaxClientStreams, virt.ErrResourceExhausted)
	}
	lim.streams[id]++
	return func() {
		lim.mu.Lock()
		if lim.streams[id]--; lim.streams[id] <= 0 {
			delete(lim.streams, id)
		}
		lim.mu.Unlock()
	}, nil
}

// clientOf returns the client connection a call came on.
func clientOf(ctx context.Context) *client {
	if p, ok := peer.FromContext(ctx); ok {
		if c, ok := p.AuthInfo.(*client); ok {
			return c
		}
	}
	return &client{} // not through virtd's sockets: no identity
}

func (lim *limiter) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if clientOf(ctx).refused {
		return nil, lim.refusedErr()
	}
	n := 0
	if m, ok := req.(proto.Message); ok {
		n = proto.Size(m)
	}
	release, err := lim.reserve(n)
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	defer release()
	return handler(ctx, req)
}

func (lim *limiter) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	c := clientOf(ss.Context())
	if c.refused {
		return lim.refusedErr()
	}
	release, err := lim.openStream(c.id)
	if err != nil {
		return rpcerr.ToStatus(err)
	}
	defer release()
	return handler(srv, ss)
}

// serverOptions are the gRPC options that carry the limits out.
func (lim *limiter) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.Creds(unixCreds{lim}),
		grpc.MaxRecvMsgSize(lim.l.MaxMessageSize), grpc.MaxSendMsgSize(lim.l.MaxMessageSize),
		grpc.MaxConcurrentStreams(uint32(lim.l.MaxClientRequests)),
		grpc.ChainUnaryInterceptor(lim.unary), grpc.ChainStreamInterceptor(lim.stream),
	}
}
