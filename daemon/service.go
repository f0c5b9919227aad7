package daemon

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc/metadata"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/internal/rpcerr"
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
	"github.com/virtd/virtd/virt"
)

// service serves VirtService on one socket: it translates each call to
// the core. The read-only socket's service opens only read-only
// connections.
type service struct {
	apiv1.UnimplementedVirtServiceServer
	core     *core.Core
	reg      *registry
	readOnly bool
}

var _ apiv1.VirtServiceServer = (*service)(nil)

// with runs fn on the open connection id, keeping the error's kind across
// the wire.
func with[T any](s *service, ctx context.Context, id string, fn func(c *core.Conn) (T, error)) (T, error) {
	var zero T
	c, err := s.reg.get(ctx, id)
	if err != nil {
		return zero, rpcerr.ToStatus(err)
	}
	v, err := fn(c)
	if err != nil {
		return zero, rpcerr.ToStatus(err)
	}
	return v, nil
}

func (s *service) Open(ctx context.Context, req *apiv1.OpenRequest) (*apiv1.OpenResponse, error) {
	if s.readOnly && !req.GetReadOnly() {
		return nil, rpcerr.ToStatus(fmt.Errorf("the read-only socket accepts only read-only connections: %w", virt.ErrPermissionDenied))
	}
	access := core.ReadWrite
	if req.GetReadOnly() || s.readOnly {
		access = core.ReadOnly
	}
	c, err := s.core.Open(ctx, req.GetUri(), access)
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	id := s.reg.add(clientOf(ctx).id, c)
	if ctx.Err() != nil {
		// The client went away during Open: its socket's end may already
		// have closed its connections, so this one must not stay behind.
		if c := s.reg.remove(id); c != nil {
			c.Close()
		}
		return nil, rpcerr.ToStatus(ctx.Err())
	}
	return &apiv1.OpenResponse{Connection: id, Uri: c.URI(), Driver: c.Driver()}, nil
}

func (s *service) Close(ctx context.Context, req *apiv1.CloseRequest) (*apiv1.CloseResponse, error) {
	if _, err := s.reg.get(ctx, req.GetConnection()); err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	if c := s.reg.remove(req.GetConnection()); c != nil {
		c.Close()
	}
	return &apiv1.CloseResponse{}, nil
}

func (s *service) GetVersion(ctx context.Context, req *apiv1.GetVersionRequest) (*apiv1.GetVersionResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetVersionResponse, error) {
		v, err := c.Version(ctx)
		if err != nil {
			return nil, err
		}
		return &apiv1.GetVersionResponse{
			DaemonVersion: v.Daemon, DriverVersion: v.Driver,
			HypervisorType: v.HypervisorType, HypervisorVersion: v.HypervisorVersion,
		}, nil
	})
}

func (s *service) GetHostname(ctx context.Context, req *apiv1.GetHostnameRequest) (*apiv1.GetHostnameResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetHostnameResponse, error) {
		h, err := c.Hostname(ctx)
		return &apiv1.GetHostnameResponse{Hostname: h}, err
	})
}

func (s *service) GetCapabilities(ctx context.Context, req *apiv1.GetCapabilitiesRequest) (*apiv1.GetCapabilitiesResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetCapabilitiesResponse, error) {
		x, err := c.Capabilities(ctx)
		return &apiv1.GetCapabilitiesResponse{Xml: x}, err
	})
}

func (s *service) GetNodeInfo(ctx context.Context, req *apiv1.GetNodeInfoRequest) (*apiv1.GetNodeInfoResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetNodeInfoResponse, error) {
		n, err := c.NodeInfo(ctx)
		if err != nil {
			return nil, err
		}
		return &apiv1.GetNodeInfoResponse{Info: nodeInfoToAPI(n)}, nil
	})
}

func (s *service) ListDomains(ctx context.Context, req *apiv1.ListDomainsRequest) (*apiv1.ListDomainsResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.ListDomainsResponse, error) {
		doms, err := c.ListDomains(ctx, virt.ListFlags(req.GetFlags()))
		if err != nil {
			return nil, err
		}
		out := make([]*apiv1.Domain, len(doms))
		for i := range doms {
			out[i] = domainToAPI(&doms[i])
		}
		return &apiv1.ListDomainsResponse{Domains: out}, nil
	})
}

func (s *service) LookupDomain(ctx context.Context, req *apiv1.LookupDomainRequest) (*apiv1.LookupDomainResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.LookupDomainResponse, error) {
		dom, err := c.LookupDomain(ctx, lookupFromAPI(req))
		if err != nil {
			return nil, err
		}
		return &apiv1.LookupDomainResponse{Domain: domainToAPI(dom)}, nil
	})
}

func (s *service) DefineDomain(ctx context.Context, req *apiv1.DefineDomainRequest) (*apiv1.DefineDomainResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.DefineDomainResponse, error) {
		dom, err := c.DefineDomain(ctx, req.GetXml())
		if err != nil {
			return nil, err
		}
		return &apiv1.DefineDomainResponse{Domain: domainToAPI(dom)}, nil
	})
}

// domainOp is the shape of the calls that act on one domain and return
// nothing.
func domainOp[R any](s *service, ctx context.Context, conn, uuid string, fn func(*core.Conn, context.Context, string) error, resp *R) (*R, error) {
	return with(s, ctx, conn, func(c *core.Conn) (*R, error) {
		return resp, fn(c, ctx, uuid)
	})
}

func (s *service) UndefineDomain(ctx context.Context, req *apiv1.UndefineDomainRequest) (*apiv1.UndefineDomainResponse, error) {
	return domainOp(s, ctx, req.GetConnection(), req.GetUuid(), (*core.Conn).UndefineDomain, &apiv1.UndefineDomainResponse{})
}

func (s *service) StartDomain(ctx context.Context, req *apiv1.StartDomainRequest) (*apiv1.StartDomainResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.StartDomainResponse, error) {
		dom, err := c.StartDomain(ctx, req.GetUuid())
		if err != nil {
			return nil, err
		}
		return &apiv1.StartDomainResponse{Domain: domainToAPI(dom)}, nil
	})
}

func (s *service) CreateDomain(ctx context.Context, req *apiv1.CreateDomainRequest) (*apiv1.CreateDomainResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.CreateDomainResponse, error) {
		dom, err := c.CreateDomain(ctx, req.GetXml())
		if err != nil {
			return nil, err
		}
		return &apiv1.CreateDomainResponse{Domain: domainToAPI(dom)}, nil
	})
}

func (s *service) ShutdownDomain(ctx context.Context, req *apiv1.ShutdownDomainRequest) (*apiv1.ShutdownDomainResponse, error) {
	return domainOp(s, ctx, req.GetConnection(), req.GetUuid(), (*core.Conn).ShutdownDomain, &apiv1.ShutdownDomainResponse{})
}

func (s *service) RebootDomain(ctx context.Context, req *apiv1.RebootDomainRequest) (*apiv1.RebootDomainResponse, error) {
	return domainOp(s, ctx, req.GetConnection(), req.GetUuid(), (*core.Conn).RebootDomain, &apiv1.RebootDomainResponse{})
}

func (s *service) DestroyDomain(ctx context.Context, req *apiv1.DestroyDomainRequest) (*apiv1.DestroyDomainResponse, error) {
	return domainOp(s, ctx, req.GetConnection(), req.GetUuid(), (*core.Conn).DestroyDomain, &apiv1.DestroyDomainResponse{})
}

func (s *service) SuspendDomain(ctx context.Context, req *apiv1.SuspendDomainRequest) (*apiv1.SuspendDomainResponse, error) {
	return domainOp(s, ctx, req.GetConnection(), req.GetUuid(), (*core.Conn).SuspendDomain, &apiv1.SuspendDomainResponse{})
}

func (s *service) ResumeDomain(ctx context.Context, req *apiv1.ResumeDomainRequest) (*apiv1.ResumeDomainResponse, error) {
	return domainOp(s, ctx, req.GetConnection(), req.GetUuid(), (*core.Conn).ResumeDomain, &apiv1.ResumeDomainResponse{})
}

func (s *service) GetDomainInfo(ctx context.Context, req *apiv1.GetDomainInfoRequest) (*apiv1.GetDomainInfoResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetDomainInfoResponse, error) {
		i, err := c.DomainInfo(ctx, req.GetUuid())
		if err != nil {
			return nil, err
		}
		return &apiv1.GetDomainInfoResponse{Info: domainInfoToAPI(i)}, nil
	})
}

func (s *service) GetDomainState(ctx context.Context, req *apiv1.GetDomainStateRequest) (*apiv1.GetDomainStateResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetDomainStateResponse, error) {
		st, reason, err := c.DomainState(ctx, req.GetUuid())
		return &apiv1.GetDomainStateResponse{State: apiv1.DomainState(st), Reason: reason}, err
	})
}

func (s *service) GetDomainXML(ctx context.Context, req *apiv1.GetDomainXMLRequest) (*apiv1.GetDomainXMLResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetDomainXMLResponse, error) {
		x, err := c.DomainXML(ctx, req.GetUuid(), req.GetInactive())
		return &apiv1.GetDomainXMLResponse{Xml: x}, err
	})
}

func (s *service) GetDomainAutostart(ctx context.Context, req *apiv1.GetDomainAutostartRequest) (*apiv1.GetDomainAutostartResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.GetDomainAutostartResponse, error) {
		a, err := c.DomainAutostart(ctx, req.GetUuid())
		return &apiv1.GetDomainAutostartResponse{Autostart: a}, err
	})
}

func (s *service) SetDomainAutostart(ctx context.Context, req *apiv1.SetDomainAutostartRequest) (*apiv1.SetDomainAutostartResponse, error) {
	return with(s, ctx, req.GetConnection(), func(c *core.Conn) (*apiv1.SetDomainAutostartResponse, error) {
		return &apiv1.SetDomainAutostartResponse{}, c.SetDomainAutostart(ctx, req.GetUuid(), req.GetAutostart())
	})
}

// maxEventCredit bounds the events a client may have granted and not yet
// received (see WatchEvents in the API): what a client that stops reading
// can make gRPC hold for it.
const maxEventCredit = 32

// credit counts the events a client has granted and not yet received.
type credit struct {
	mu      sync.Mutex
	n       int
	granted chan struct{} // has a token after a grant
}

func (c *credit) add(n uint32) {
	c.mu.Lock()
	c.n = int(min(uint64(c.n)+uint64(n), maxEventCredit))
	c.mu.Unlock()
	select {
	case c.granted <- struct{}{}:
	default:
	}
}

func (c *credit) take() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		return false
	}
	c.n--
	return true
}

func (c *credit) giveBack() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (s *service) WatchEvents(stream apiv1.VirtService_WatchEventsServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	c, err := s.reg.get(ctx, first.GetConnection())
	if err != nil {
		return rpcerr.ToStatus(err)
	}
	sub, err := c.Events(ctx)
	if err != nil {
		return rpcerr.ToStatus(err)
	}
	// The header tells the client it is subscribed: no later event is missed.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	cr := &credit{granted: make(chan struct{}, 1)}
	cr.add(first.GetCredit())
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				return // the stream ended, or the client sends no more credit
			}
			cr.add(m.GetCredit())
		}
	}()
	// send sends queued events as far as the credit goes; the others wait
	// in the subscription, within the event backlog limits.
	send := func() error {
		for cr.take() {
			e, ok := sub.Next()
			if !ok {
				cr.giveBack()
				return nil
			}
			if err := stream.Send(&apiv1.WatchEventsResponse{Event: eventToAPI(&e)}); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		if err := send(); err != nil {
			return err
		}
		select {
		case <-sub.Ready():
		case <-cr.granted:
		case <-sub.Done():
			if err := send(); err != nil {
				return err
			}
			return rpcerr.ToStatus(sub.Err())
		}
	}
}
