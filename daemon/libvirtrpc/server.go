// Package libvirtrpc is virtd's second front end: libvirt's RPC protocol
// (the one libvirtd speaks on /run/libvirt/libvirt-sock), so that virsh,
// the libvirt bindings and go-libvirt work against virtd unchanged. It
// translates packets to calls on the core and their results back; access,
// routing, supervision and events stay the core's.
//
// A connection's calls are read one after another and served
// concurrently, up to max_client_requests at once (then the connection is
// not read until one ends, as libvirtd does); each is answered by its
// serial when it ends, with events and console data between.
package libvirtrpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/internal/xdr"
	"github.com/virtd/virtd/virt"
)

// Limits are the daemon's limits as this front end applies them; the
// daemon shares them with its other front end.
type Limits struct {
	// MaxClientRequests: calls one connection may have in flight.
	MaxClientRequests int
	// MaxClientStreams: consoles open at once on one connection.
	MaxClientStreams int
	// MaxMessageSize bounds one packet (max_message_size), within the
	// protocol's own limit of 32 MiB: a bigger one is read past and
	// answered with an error.
	MaxMessageSize int
	// Admit counts a new connection against max_clients, or says why it
	// is refused; done undoes it.
	Admit func() (done func(), err error)
	// Reserve takes n bytes of max_inflight_bytes for a packet being
	// read and handled, or says why it cannot.
	Reserve func(n int) (release func(), err error)
}

// Config is what a Server is made of.
type Config struct {
	Core   *core.Core
	Limits Limits
	Logger hclog.Logger
}

// Server serves libvirt's RPC protocol over a core.
type Server struct {
	core *core.Core
	lim  Limits
	log  hclog.Logger

	mu        sync.Mutex
	listeners []net.Listener
	clients   map[*client]struct{}
	closed    bool
	conns     atomic.Int64
	wg        sync.WaitGroup
	workers   *workers
}

// workerIdle is how long a worker (see workers) outlives its last call.
const workerIdle = 10 * time.Second

// New returns a Server over cfg.Core.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	l := &cfg.Limits
	if l.MaxClientRequests <= 0 {
		l.MaxClientRequests = 16
	}
	if l.MaxClientStreams <= 0 {
		l.MaxClientStreams = l.MaxClientRequests / 2
	}
	if l.Admit == nil {
		l.Admit = func() (func(), error) { return func() {}, nil }
	}
	if l.MaxMessageSize <= 0 || l.MaxMessageSize > maxPacket {
		l.MaxMessageSize = maxPacket
	}
	if l.Reserve == nil {
		l.Reserve = func(int) (func(), error) { return func() {}, nil }
	}
	return &Server{core: cfg.Core, lim: cfg.Limits, log: cfg.Logger, clients: map[*client]struct{}{}, workers: newWorkers(workerIdle)}
}

// Serve accepts connections on l until it is closed; readOnly makes every
// connection opened through it read-only, whatever the client asks.
func (s *Server) Serve(l net.Listener, readOnly bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.start(nc, readOnly)
	}
}

// Conns returns how many socket connections are open.
func (s *Server) Conns() int64 { return s.conns.Load() }

// Close stops accepting and closes every connection; their calls in
// flight end with their connections.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	ls := s.listeners
	cs := make([]*client, 0, len(s.clients))
	for c := range s.clients {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, l := range ls {
		_ = l.Close()
	}
	for _, c := range cs {
		c.close()
	}
	s.wg.Wait()
}

func (s *Server) start(nc net.Conn, readOnly bool) {
	done, err := s.lim.Admit()
	if err != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			refuse(nc, err)
		}()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &client{
		s: s, nc: nc, readOnly: readOnly, ctx: ctx, cancel: cancel,
		reqs: make(chan struct{}, s.lim.MaxClientRequests), streams: map[uint32]*stream{},
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		nc.Close()
		done()
		return
	}
	s.clients[c] = struct{}{}
	s.conns.Add(1)
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer done()
		c.serve()
		s.mu.Lock()
		delete(s.clients, c)
		s.mu.Unlock()
		s.conns.Add(-1)
	}()
}

// refuse answers the first call of a connection over max_clients with the
// reason, then closes it.
func refuse(nc net.Conn, reason error) {
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
	var lb [lenSize]byte
	n, err := readLength(nc, &lb)
	if err != nil || n > 64<<10 {
		return
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(nc, p); err != nil {
		return
	}
	h := parseHeader(p)
	if h.typ != typeCall {
		return
	}
	e := newPacket(replyTo(h, statusError), nil)
	encodeError(e, toRemote(reason, errDomainProc))
	_, _ = nc.Write(finish(e))
}

// client is one socket connection.
type client struct {
	s        *Server
	nc       net.Conn
	readOnly bool
	ctx      context.Context
	cancel   context.CancelFunc
	// reqs holds a token per call in flight.
	reqs  chan struct{}
	calls sync.WaitGroup

	wmu sync.Mutex // one packet written at a time

	mu      sync.Mutex
	conn    *core.Conn
	events  *events
	streams map[uint32]*stream
	// kindCBs are the event registrations of object kinds no driver
	// serves, by callback ID.
	kindCBs    map[int32]*kind
	nextKindCB int32
}

func (c *client) close() {
	c.cancel()
	_ = c.nc.Close()
}

// serve reads packets until the connection ends, then ends what the
// connection holds.
func (c *client) serve() {
	defer func() {
		c.close()
		c.calls.Wait()
		c.mu.Lock()
		conn, st := c.conn, c.streams
		c.conn, c.streams = nil, nil
		c.mu.Unlock()
		for _, s := range st {
			s.close()
		}
		if conn != nil {
			conn.Close()
		}
	}()
	br := bufio.NewReaderSize(c.nc, 16<<10)
	var lb [lenSize]byte
	for {
		n, err := readLength(br, &lb)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && c.ctx.Err() == nil {
				c.s.log.Debug("libvirt client connection ends", "error", err)
			}
			return
		}
		release, err := c.s.reserve(n)
		if err != nil {
			// Too big for now: read its header, skip its body, and say
			// why.
			if !c.skip(br, n, err) {
				return
			}
			continue
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(br, p); err != nil {
			release()
			return
		}
		if !c.packet(parseHeader(p), p[headerSize:], release) {
			return
		}
	}
}

// reserve takes n bytes for a packet being read, within max_message_size
// and max_inflight_bytes.
func (s *Server) reserve(n int) (func(), error) {
	if n+lenSize > s.lim.MaxMessageSize {
		return nil, fmt.Errorf("a packet of %d bytes is over max_message_size (%d): %w", n+lenSize, s.lim.MaxMessageSize, virt.ErrResourceExhausted)
	}
	return s.lim.Reserve(n)
}

// skip reads and drops a packet of n bytes that may not be handled, and
// answers it with reason if it is a call.
func (c *client) skip(r io.Reader, n int, reason error) bool {
	var hb [headerSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return false
	}
	if _, err := io.CopyN(io.Discard, r, int64(n-headerSize)); err != nil {
		return false
	}
	if h := parseHeader(hb[:]); h.typ == typeCall {
		c.replyError(h, toRemote(reason, errDomainProc))
	}
	return true
}

// packet handles one packet; false ends the connection. release gives
// back the packet's bytes of max_inflight_bytes.
func (c *client) packet(h header, body []byte, release func()) bool {
	switch {
	case h.prog == programKeepalive:
		release()
		if h.vers == keepaliveVersion && h.proc == procPing && h.typ == typeMessage {
			c.write(newPacket(header{prog: programKeepalive, vers: keepaliveVersion, proc: procPong, typ: typeMessage}, nil))
		}
		return true
	case h.typ == typeStream || h.typ == typeStreamHole:
		defer release()
		return c.streamPacket(h, body)
	case h.typ == typeCallWithFDs:
		release()
		c.replyError(h, rpcErr(errRPC, "virtd does not take file descriptors over this socket (procedure %d)", h.proc))
		return true
	case h.typ != typeCall:
		release()
		c.s.log.Debug("libvirt client sent an unexpected packet; closing", "packet", h.String())
		return false
	case h.prog != programRemote:
		release()
		c.replyError(h, unknownProgram(h.prog))
		return true
	case h.vers != remoteVersion:
		release()
		c.replyError(h, rpcErr(errRPC, "program %#x version %d is not served (virtd serves version %d)", h.prog, h.vers, remoteVersion))
		return true
	}
	p := procs[h.proc]
	if p == nil {
		release()
		c.replyError(h, unknownProc(h.proc))
		return true
	}
	select {
	case c.reqs <- struct{}{}:
	case <-c.ctx.Done():
		release()
		return false
	}
	if p.inline {
		// Calls that change what later calls see (open, close) run
		// before the next packet is read.
		c.call(p, h, body, release)
		return true
	}
	c.calls.Add(1)
	c.s.workers.run(func() {
		defer c.calls.Done()
		c.call(p, h, body, release)
	})
	return true
}

// call runs one call and sends its reply.
func (c *client) call(p *proc, h header, body []byte, release func()) {
	defer func() { <-c.reqs }()
	defer release()
	cl := &call{c: c, name: p.name, h: h, conn: c.connection(), d: xdr.NewDecoder(body), e: newPacket(replyTo(h, statusOK), getBuf())}
	var err error
	if p.needConn && cl.conn == nil {
		err = rpcErr(errInvalidConn, "this connection is not open: call CONNECT_OPEN first")
	} else {
		err = p.fn(c.ctx, cl)
	}
	e := cl.e
	if err != nil {
		e.B = e.B[:lenSize+headerSize]
		setStatus(e, statusError)
		r := toRemote(err, p.errs)
		if r.domain == fromNone && cl.conn != nil {
			r.domain = fromDriver(cl.conn.Driver())
		}
		encodeError(e, r)
	}
	c.write(e)
	putBuf(e.B)
	if err == nil && cl.after != nil {
		cl.after()
	}
}

func (c *client) connection() *core.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// write sends one packet.
func (c *client) write(e *xdr.Encoder) {
	p := finish(e)
	c.wmu.Lock()
	_, err := c.nc.Write(p)
	c.wmu.Unlock()
	if err != nil {
		c.close()
	}
}

func (c *client) replyError(h header, err *remoteError) {
	e := newPacket(replyTo(h, statusError), nil)
	encodeError(e, err)
	c.write(e)
}

func replyTo(h header, status int32) header {
	h.typ = typeReply
	h.status = status
	return h
}

func setStatus(e *xdr.Encoder, status int32) {
	b := e.B[lenSize+20:]
	b[0], b[1], b[2], b[3] = byte(status>>24), byte(status>>16), byte(status>>8), byte(status)
}

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf() []byte { return (*bufs.Get().(*[]byte))[:0] }

func putBuf(b []byte) {
	if cap(b) <= 64<<10 {
		bufs.Put(&b)
	}
}
