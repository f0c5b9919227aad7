package daemon

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/metadata"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domxml"
	"github.com/virtd/virtd/host"
	"github.com/virtd/virtd/internal/rpcerr"
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
	"github.com/virtd/virtd/virt"
)

// service serves VirtService on one socket. The read-only socket's service
// refuses every call that changes anything.
type service struct {
	apiv1.UnimplementedVirtServiceServer
	host     *host.Host
	reg      *registry
	readOnly bool
	log      hclog.Logger
	// closing is closed when the daemon shuts down: event streams end then.
	closing <-chan struct{}
}

var _ apiv1.VirtServiceServer = (*service)(nil)

// call runs fn against the connection's driver: it checks the connection
// and, for a change, that it may write; it keeps the error's kind.
func call[T any](s *service, ctx context.Context, id, op string, write bool, fn func(d *driver.Client) (T, error)) (T, error) {
	var zero T
	c, err := s.reg.get(ctx, id)
	if err != nil {
		return zero, rpcerr.ToStatus(err)
	}
	if write && (c.readOnly || s.readOnly) {
		return zero, rpcerr.ToStatus(fmt.Errorf("%s refused: the connection is read-only: %w", op, virt.ErrPermissionDenied))
	}
	var v T
	err = c.proc.Do(ctx, !write, func(d *driver.Client) (err error) {
		v, err = fn(d)
		return err
	})
	if err != nil {
		return zero, rpcerr.ToStatus(err)
	}
	return v, nil
}

// parseURI checks a connection URI and returns its driver scheme. A
// transport suffix ("qemu+unix") belongs to the client; the daemon only
// routes on the scheme.
func parseURI(raw string) (scheme string, err error) {
	if raw == "" {
		return "", fmt.Errorf("empty connection URI: %w", virt.ErrInvalidArgument)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("malformed URI %q: %v: %w", raw, err, virt.ErrInvalidArgument)
	}
	if u.Scheme == "" || u.Opaque != "" {
		return "", fmt.Errorf("malformed URI %q: want scheme:///path, e.g. qemu:///system: %w", raw, virt.ErrInvalidArgument)
	}
	scheme, _, _ = strings.Cut(u.Scheme, "+")
	return scheme, nil
}

func (s *service) Open(ctx context.Context, req *apiv1.OpenRequest) (*apiv1.OpenResponse, error) {
	if s.readOnly && !req.GetReadOnly() {
		return nil, rpcerr.ToStatus(fmt.Errorf("the read-only socket accepts only read-only connections: %w", virt.ErrPermissionDenied))
	}
	scheme, err := parseURI(req.GetUri())
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	p, err := s.host.Lookup(scheme)
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	if err := p.Open(ctx); err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	if err := p.Do(ctx, true, func(d *driver.Client) error { return d.CheckURI(ctx, req.GetUri()) }); err != nil {
		p.Release()
		return nil, rpcerr.ToStatus(err)
	}
	c := &conn{uri: req.GetUri(), readOnly: req.GetReadOnly() || s.readOnly, transport: clientOf(ctx).id, proc: p}
	s.reg.add(c)
	if ctx.Err() != nil {
		// The client went away during Open: its socket's end may already
		// have closed its connections, so this one must not stay behind.
		if s.reg.remove(c.id) != nil {
			p.Release()
		}
		return nil, rpcerr.ToStatus(ctx.Err())
	}
	s.log.Debug("connection opened", "uri", c.uri, "driver", p.Name(), "read_only", c.readOnly)
	return &apiv1.OpenResponse{Connection: c.id, Uri: c.uri, Driver: p.Name()}, nil
}

func (s *service) Close(ctx context.Context, req *apiv1.CloseRequest) (*apiv1.CloseResponse, error) {
	if _, err := s.reg.get(ctx, req.GetConnection()); err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	if c := s.reg.remove(req.GetConnection()); c != nil {
		c.proc.Release()
	}
	return &apiv1.CloseResponse{}, nil
}

func (s *service) GetVersion(ctx context.Context, req *apiv1.GetVersionRequest) (*apiv1.GetVersionResponse, error) {
	return call(s, ctx, req.GetConnection(), "version", false, func(d *driver.Client) (*apiv1.GetVersionResponse, error) {
		info, err := d.Info(ctx)
		if err != nil {
			return nil, err
		}
		return &apiv1.GetVersionResponse{
			DaemonVersion: Version, DriverVersion: info.Version,
			HypervisorType: info.HypervisorType, HypervisorVersion: info.HypervisorVersion,
		}, nil
	})
}

func (s *service) GetHostname(ctx context.Context, req *apiv1.GetHostnameRequest) (*apiv1.GetHostnameResponse, error) {
	return call(s, ctx, req.GetConnection(), "hostname", false, func(d *driver.Client) (*apiv1.GetHostnameResponse, error) {
		h, err := d.Hostname(ctx)
		return &apiv1.GetHostnameResponse{Hostname: h}, err
	})
}

func (s *service) GetCapabilities(ctx context.Context, req *apiv1.GetCapabilitiesRequest) (*apiv1.GetCapabilitiesResponse, error) {
	return call(s, ctx, req.GetConnection(), "capabilities", false, func(d *driver.Client) (*apiv1.GetCapabilitiesResponse, error) {
		x, err := d.Capabilities(ctx)
		return &apiv1.GetCapabilitiesResponse{Xml: x}, err
	})
}

func (s *service) GetNodeInfo(ctx context.Context, req *apiv1.GetNodeInfoRequest) (*apiv1.GetNodeInfoResponse, error) {
	return call(s, ctx, req.GetConnection(), "nodeinfo", false, func(d *driver.Client) (*apiv1.GetNodeInfoResponse, error) {
		n, err := d.NodeInfo(ctx)
		if err != nil {
			return nil, err
		}
		return &apiv1.GetNodeInfoResponse{Info: nodeInfoToAPI(n)}, nil
	})
}

func (s *service) ListDomains(ctx context.Context, req *apiv1.ListDomainsRequest) (*apiv1.ListDomainsResponse, error) {
	return call(s, ctx, req.GetConnection(), "list", false, func(d *driver.Client) (*apiv1.ListDomainsResponse, error) {
		doms, err := d.ListDomains(ctx, virt.ListFlags(req.GetFlags()))
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
	if name, ok := req.GetKey().(*apiv1.LookupDomainRequest_Name); ok {
		if err := domxml.CheckName(name.Name); err != nil {
			return nil, rpcerr.ToStatus(err)
		}
	}
	return call(s, ctx, req.GetConnection(), "lookup", false, func(d *driver.Client) (*apiv1.LookupDomainResponse, error) {
		dom, err := d.LookupDomain(ctx, lookupFromAPI(req))
		if err != nil {
			return nil, err
		}
		return &apiv1.LookupDomainResponse{Domain: domainToAPI(dom)}, nil
	})
}

func (s *service) DefineDomain(ctx context.Context, req *apiv1.DefineDomainRequest) (*apiv1.DefineDomainResponse, error) {
	// One rule for names, whatever the driver: checked before any sees it.
	if _, err := domxml.CheckDocName(req.GetXml()); err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return call(s, ctx, req.GetConnection(), "define", true, func(d *driver.Client) (*apiv1.DefineDomainResponse, error) {
		dom, err := d.DefineDomain(ctx, req.GetXml())
		if err != nil {
			return nil, err
		}
		return &apiv1.DefineDomainResponse{Domain: domainToAPI(dom)}, nil
	})
}

// domainOp is the shape of the calls that act on one domain and return
// nothing.
func domainOp[R any](s *service, ctx context.Context, conn, uuid, op string, fn func(*driver.Client, context.Context, string) error, resp *R) (*R, error) {
	return call(s, ctx, conn, op, true, func(d *driver.Client) (*R, error) {
		return resp, fn(d, ctx, uuid)
	})
}

func (s *service) UndefineDomain(ctx context.Context, req *apiv1.UndefineDomainRequest) (*apiv1.UndefineDomainResponse, error) {
	return domainOp(s, ctx, req.GetConnection(), req.GetUuid(), "undefine", (*driver.Client).UndefineDomain, &apiv1.UndefineDomainResponse{})
}

func (s *service) StartDomain(ctx context.Context, req *apiv1.StartDomainRequest) (*apiv1.StartDomainResponse, error) {
	return call(s, ctx, req.GetConnection(), "start", true, func(d *driver.Client) (*apiv1.StartDomainResponse, error) {
		dom, err := d.StartDomain(ctx, req.GetUuid())
		if err != nil {
			return nil, err
		}
		return &apiv1.StartDomainResponse{Domain: domainToAPI(dom)}, nil
	})
}

func (s *service) ShutdownDomain(ctx context.Context, req *apiv1.ShutdownDomainRequest) (*apiv1.ShutdownDomainResponse, error) {
	return domainOp(s, ctx, req.GetConnection(), req.GetUuid(), "shutdown", (*driver.Client).ShutdownDomain, &apiv1.ShutdownDomainResponse{})
}

func (s *service) RebootDomain(ctx context.Context, req *apiv1.RebootDomainRequest) (*apiv1.RebootDomainResponse, error) {
	return domainOp(s, ctx, req.GetConnection(), req.GetUuid(), "reboot", (*driver.Client).RebootDomain, &apiv1.RebootDomainResponse{})
}

func (s *service) DestroyDomain(ctx context.Context, req *apiv1.DestroyDomainRequest) (*apiv1.DestroyDomainResponse, error) {
	return domainOp(s, ctx, req.GetConnection(), req.GetUuid(), "destroy", (*driver.Client).DestroyDomain, &apiv1.DestroyDomainResponse{})
}

func (s *service) SuspendDomain(ctx context.Context, req *apiv1.SuspendDomainRequest) (*apiv1.SuspendDomainResponse, error) {
	return domainOp(s, ctx, req.GetConnection(), req.GetUuid(), "suspend", (*driver.Client).SuspendDomain, &apiv1.SuspendDomainResponse{})
}

func (s *service) ResumeDomain(ctx context.Context, req *apiv1.ResumeDomainRequest) (*apiv1.ResumeDomainResponse, error) {
	return domainOp(s, ctx, req.GetConnection(), req.GetUuid(), "resume", (*driver.Client).ResumeDomain, &apiv1.ResumeDomainResponse{})
}

func (s *service) GetDomainInfo(ctx context.Context, req *apiv1.GetDomainInfoRequest) (*apiv1.GetDomainInfoResponse, error) {
	return call(s, ctx, req.GetConnection(), "dominfo", false, func(d *driver.Client) (*apiv1.GetDomainInfoResponse, error) {
		i, err := d.DomainInfo(ctx, req.GetUuid())
		if err != nil {
			return nil, err
		}
		return &apiv1.GetDomainInfoResponse{Info: domainInfoToAPI(i)}, nil
	})
}

func (s *service) GetDomainState(ctx context.Context, req *apiv1.GetDomainStateRequest) (*apiv1.GetDomainStateResponse, error) {
	return call(s, ctx, req.GetConnection(), "domstate", false, func(d *driver.Client) (*apiv1.GetDomainStateResponse, error) {
		st, reason, err := d.DomainState(ctx, req.GetUuid())
		return &apiv1.GetDomainStateResponse{State: apiv1.DomainState(st), Reason: reason}, err
	})
}

func (s *service) GetDomainXML(ctx context.Context, req *apiv1.GetDomainXMLRequest) (*apiv1.GetDomainXMLResponse, error) {
	return call(s, ctx, req.GetConnection(), "dumpxml", false, func(d *driver.Client) (*apiv1.GetDomainXMLResponse, error) {
		x, err := d.DomainXML(ctx, req.GetUuid(), req.GetInactive())
		return &apiv1.GetDomainXMLResponse{Xml: x}, err
	})
}

func (s *service) GetDomainAutostart(ctx context.Context, req *apiv1.GetDomainAutostartRequest) (*apiv1.GetDomainAutostartResponse, error) {
	return call(s, ctx, req.GetConnection(), "autostart", false, func(d *driver.Client) (*apiv1.GetDomainAutostartResponse, error) {
		a, err := d.DomainAutostart(ctx, req.GetUuid())
		return &apiv1.GetDomainAutostartResponse{Autostart: a}, err
	})
}

func (s *service) SetDomainAutostart(ctx context.Context, req *apiv1.SetDomainAutostartRequest) (*apiv1.SetDomainAutostartResponse, error) {
	return call(s, ctx, req.GetConnection(), "autostart", true, func(d *driver.Client) (*apiv1.SetDomainAutostartResponse, error) {
		return &apiv1.SetDomainAutostartResponse{}, d.SetDomainAutostart(ctx, req.GetUuid(), req.GetAutostart())
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
	sub, err := c.proc.Subscribe(ctx)
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
		case <-s.closing:
			return rpcerr.ToStatus(fmt.Errorf("virtd is shutting down: %w", virt.ErrUnavailable))
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
