package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/stats"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/virt"
)

// conn is a core connection opened through the gRPC API, on one socket
// connection (transport).
type conn struct {
	*core.Conn
	transport uint64
}

// registry holds the open connections by the ids the gRPC API names them
// with, and the socket connections they belong to: when a client goes
// away without Close, its connections close with its socket.
type registry struct {
	// transports counts the socket connections served.
	transports atomic.Int64

	mu    sync.RWMutex // read on every call
	conns map[string]conn
}

func newRegistry() *registry { return &registry{conns: map[string]conn{}} }

// add registers c, opened on socket connection transport, and returns its
// id.
func (r *registry) add(transport uint64, c *core.Conn) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	r.mu.Lock()
	r.conns[id] = conn{c, transport}
	r.mu.Unlock()
	return id
}

// get returns the connection id, if it was opened on the caller's socket
// connection.
func (r *registry) get(ctx context.Context, id string) (*core.Conn, error) {
	r.mu.RLock()
	c, ok := r.conns[id]
	r.mu.RUnlock()
	if !ok || c.transport != clientOf(ctx).id {
		return nil, fmt.Errorf("no open connection %q (open one first): %w", id, virt.ErrInvalidArgument)
	}
	return c.Conn, nil
}

func (r *registry) remove(id string) *core.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.conns[id]
	if !ok {
		return nil
	}
	delete(r.conns, id)
	return c.Conn
}

// closeTransport closes every connection opened on a socket connection.
func (r *registry) closeTransport(t uint64) {
	r.mu.Lock()
	var gone []*core.Conn
	for id, c := range r.conns {
		if c.transport == t {
			gone = append(gone, c.Conn)
			delete(r.conns, id)
		}
	}
	r.mu.Unlock()
	for _, c := range gone {
		c.Close()
	}
}

// statsHandler counts each socket connection against the limits when it
// begins, and closes its client connections when it ends.
type statsHandler struct {
	r   *registry
	lim *limiter
}

func (statsHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (h statsHandler) HandleConn(ctx context.Context, s stats.ConnStats) {
	c := clientOf(ctx)
	switch s.(type) {
	case *stats.ConnBegin:
		h.lim.begin(c)
		if !c.refused {
			h.r.transports.Add(1)
		}
	case *stats.ConnEnd:
		h.lim.end(c)
		if !c.refused {
			h.r.transports.Add(-1)
			h.r.closeTransport(c.id)
		}
	}
}

func (statsHandler) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (statsHandler) HandleRPC(context.Context, stats.RPCStats)                       {}
