package driver

import (
	"context"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/virtd/virtd/driver/domxml"
	"github.com/virtd/virtd/internal/rpcerr"
	driverv1 "github.com/virtd/virtd/proto/virtd/driver/v1"
	"github.com/virtd/virtd/virt"
)

// server is the driver-side shim: it serves the driver API v1 over gRPC and
// calls the Driver. Every call counts as contact from a host.
type server struct {
	driverv1.UnimplementedDriverServiceServer
	impl       Driver
	rec        *Recorder
	instanceID string
	// lastContact is the time of the last call, in Unix nanoseconds.
	lastContact atomic.Int64
	// orphanTimeout is how long the driver waits without contact, in
	// nanoseconds; zero disables the watchdog.
	orphanTimeout atomic.Int64
	// watchers counts open WatchEvents streams: an open stream is a host
	// that is still attached.
	watchers atomic.Int32
}

var _ driverv1.DriverServiceServer = (*server)(nil)

func newServer(impl Driver, instanceID string) *server {
	s := &server{impl: impl, rec: NewRecorder(impl), instanceID: instanceID}
	s.touch()
	return s
}

func (s *server) touch() { s.lastContact.Store(time.Now().UnixNano()) }

// idleFor returns how long no host has been in contact.
func (s *server) idleFor() time.Duration {
	if s.watchers.Load() > 0 {
		return 0
	}
	return time.Since(time.Unix(0, s.lastContact.Load()))
}

func (s *server) GetInfo(ctx context.Context, _ *driverv1.GetInfoRequest) (*driverv1.GetInfoResponse, error) {
	s.touch()
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	p := infoToProto(info)
	p.Features = withOptionalFeatures(p.Features, s.impl)
	if !slices.Contains(p.Features, FeatureRecords) {
		p.Features = append(p.Features, FeatureRecords)
	}
	p.Pid = int64(os.Getpid())
	p.InstanceId = s.instanceID
	return &driverv1.GetInfoResponse{Info: p}, nil
}

func (s *server) KeepAlive(ctx context.Context, req *driverv1.KeepAliveRequest) (*driverv1.KeepAliveResponse, error) {
	s.touch()
	if ms := req.GetOrphanTimeoutMs(); ms > 0 {
		s.orphanTimeout.Store(int64(time.Duration(ms) * time.Millisecond))
	}
	n, err := s.impl.RunningGuests(ctx)
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.KeepAliveResponse{RunningGuests: int32(n)}, nil
}

func (s *server) CheckURI(ctx context.Context, req *driverv1.CheckURIRequest) (*driverv1.CheckURIResponse, error) {
	s.touch()
	if err := s.impl.CheckURI(ctx, req.GetUri()); err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.CheckURIResponse{}, nil
}

func (s *server) GetHostname(ctx context.Context, _ *driverv1.GetHostnameRequest) (*driverv1.GetHostnameResponse, error) {
	s.touch()
	h, err := s.impl.Hostname(ctx)
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.GetHostnameResponse{Hostname: h}, nil
}

func (s *server) GetCapabilities(ctx context.Context, _ *driverv1.GetCapabilitiesRequest) (*driverv1.GetCapabilitiesResponse, error) {
	s.touch()
	x, err := s.impl.Capabilities(ctx)
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.GetCapabilitiesResponse{Xml: x}, nil
}

func (s *server) GetNodeInfo(ctx context.Context, _ *driverv1.GetNodeInfoRequest) (*driverv1.GetNodeInfoResponse, error) {
	s.touch()
	n, err := s.impl.NodeInfo(ctx)
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.GetNodeInfoResponse{Info: nodeInfoToProto(n)}, nil
}

func (s *server) ListDomains(ctx context.Context, req *driverv1.ListDomainsRequest) (*driverv1.ListDomainsResponse, error) {
	s.touch()
	doms, err := s.impl.ListDomains(ctx, virt.ListFlags(req.GetFlags()))
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	out := make([]*driverv1.Domain, len(doms))
	for i := range doms {
		out[i] = domainToProto(&doms[i])
	}
	return &driverv1.ListDomainsResponse{Domains: out}, nil
}

func (s *server) LookupDomain(ctx context.Context, req *driverv1.LookupDomainRequest) (*driverv1.LookupDomainResponse, error) {
	s.touch()
	d, err := s.impl.LookupDomain(ctx, lookupFromProto(req))
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.LookupDomainResponse{Domain: domainToProto(d)}, nil
}

func (s *server) DefineDomain(ctx context.Context, req *driverv1.DefineDomainRequest) (*driverv1.DefineDomainResponse, error) {
	s.touch()
	d, err := s.impl.DefineDomain(ctx, req.GetXml())
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.DefineDomainResponse{Domain: domainToProto(d), Record: s.record(ctx, d.UUID)}, nil
}

func (s *server) UndefineDomain(ctx context.Context, req *driverv1.UndefineDomainRequest) (*driverv1.UndefineDomainResponse, error) {
	s.touch()
	if err := s.impl.UndefineDomain(ctx, req.GetUuid()); err != nil {
		return nil, s.failed(ctx, req.GetUuid(), err)
	}
	return &driverv1.UndefineDomainResponse{Record: s.record(ctx, req.GetUuid())}, nil
}

func (s *server) StartDomain(ctx context.Context, req *driverv1.StartDomainRequest) (*driverv1.StartDomainResponse, error) {
	s.touch()
	d, err := s.impl.StartDomain(ctx, req.GetUuid())
	if err != nil {
		return nil, s.failed(ctx, req.GetUuid(), err)
	}
	return &driverv1.StartDomainResponse{Domain: domainToProto(d), Record: s.record(ctx, d.UUID)}, nil
}

func (s *server) CreateDomain(ctx context.Context, req *driverv1.CreateDomainRequest) (*driverv1.CreateDomainResponse, error) {
	s.touch()
	d, err := s.impl.CreateDomain(ctx, req.GetXml())
	if err != nil {
		return nil, s.createFailed(ctx, req.GetXml(), err)
	}
	return &driverv1.CreateDomainResponse{Domain: domainToProto(d), Record: s.record(ctx, d.UUID)}, nil
}

// createFailed is the status of a failed CreateDomain. A create that
// failed half way may have changed the domain of its name (an inactive
// persistent domain it was starting): the status carries that domain's
// record, if there is one. (A new domain that failed to start was never
// shown: there is nothing to record of it.)
func (s *server) createFailed(ctx context.Context, xml string, err error) error {
	name, perr := domxml.PeekName(xml)
	if perr != nil || name == "" {
		return rpcerr.ToStatus(err)
	}
	d, lerr := s.impl.LookupDomain(context.WithoutCancel(ctx), virt.ByName(name))
	if lerr != nil {
		return rpcerr.ToStatus(err)
	}
	return s.failed(ctx, d.UUID, err)
}

func (s *server) ShutdownDomain(ctx context.Context, req *driverv1.ShutdownDomainRequest) (*driverv1.ShutdownDomainResponse, error) {
	s.touch()
	if err := s.impl.ShutdownDomain(ctx, req.GetUuid()); err != nil {
		return nil, s.failed(ctx, req.GetUuid(), err)
	}
	return &driverv1.ShutdownDomainResponse{Record: s.record(ctx, req.GetUuid())}, nil
}

func (s *server) RebootDomain(ctx context.Context, req *driverv1.RebootDomainRequest) (*driverv1.RebootDomainResponse, error) {
	s.touch()
	if err := s.impl.RebootDomain(ctx, req.GetUuid()); err != nil {
		return nil, s.failed(ctx, req.GetUuid(), err)
	}
	return &driverv1.RebootDomainResponse{Record: s.record(ctx, req.GetUuid())}, nil
}

func (s *server) DestroyDomain(ctx context.Context, req *driverv1.DestroyDomainRequest) (*driverv1.DestroyDomainResponse, error) {
	s.touch()
	if err := s.impl.DestroyDomain(ctx, req.GetUuid()); err != nil {
		return nil, s.failed(ctx, req.GetUuid(), err)
	}
	return &driverv1.DestroyDomainResponse{Record: s.record(ctx, req.GetUuid())}, nil
}

func (s *server) SuspendDomain(ctx context.Context, req *driverv1.SuspendDomainRequest) (*driverv1.SuspendDomainResponse, error) {
	s.touch()
	if err := s.impl.SuspendDomain(ctx, req.GetUuid()); err != nil {
		return nil, s.failed(ctx, req.GetUuid(), err)
	}
	return &driverv1.SuspendDomainResponse{Record: s.record(ctx, req.GetUuid())}, nil
}

func (s *server) ResumeDomain(ctx context.Context, req *driverv1.ResumeDomainRequest) (*driverv1.ResumeDomainResponse, error) {
	s.touch()
	if err := s.impl.ResumeDomain(ctx, req.GetUuid()); err != nil {
		return nil, s.failed(ctx, req.GetUuid(), err)
	}
	return &driverv1.ResumeDomainResponse{Record: s.record(ctx, req.GetUuid())}, nil
}

func (s *server) GetDomainInfo(ctx context.Context, req *driverv1.GetDomainInfoRequest) (*driverv1.GetDomainInfoResponse, error) {
	s.touch()
	i, err := s.impl.DomainInfo(ctx, req.GetUuid())
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.GetDomainInfoResponse{Info: domainInfoToProto(i)}, nil
}

func (s *server) GetDomainState(ctx context.Context, req *driverv1.GetDomainStateRequest) (*driverv1.GetDomainStateResponse, error) {
	s.touch()
	st, reason, err := s.impl.DomainState(ctx, req.GetUuid())
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.GetDomainStateResponse{State: driverv1.DomainState(st), Reason: reason}, nil
}

func (s *server) GetDomainXML(ctx context.Context, req *driverv1.GetDomainXMLRequest) (*driverv1.GetDomainXMLResponse, error) {
	s.touch()
	x, err := s.impl.DomainXML(ctx, req.GetUuid(), req.GetInactive())
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.GetDomainXMLResponse{Xml: x}, nil
}

func (s *server) GetDomainAutostart(ctx context.Context, req *driverv1.GetDomainAutostartRequest) (*driverv1.GetDomainAutostartResponse, error) {
	s.touch()
	a, err := s.impl.DomainAutostart(ctx, req.GetUuid())
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.GetDomainAutostartResponse{Autostart: a}, nil
}

func (s *server) SetDomainAutostart(ctx context.Context, req *driverv1.SetDomainAutostartRequest) (*driverv1.SetDomainAutostartResponse, error) {
	s.touch()
	if err := s.impl.SetDomainAutostart(ctx, req.GetUuid(), req.GetAutostart()); err != nil {
		return nil, s.failed(ctx, req.GetUuid(), err)
	}
	return &driverv1.SetDomainAutostartResponse{Record: s.record(ctx, req.GetUuid())}, nil
}

// watching counts an open stream as a host in contact, until the function
// it returns is called.
func (s *server) watching() (done func()) {
	s.touch()
	s.watchers.Add(1)
	return func() {
		s.touch()
		s.watchers.Add(-1)
	}
}

func (s *server) WatchEvents(_ *driverv1.WatchEventsRequest, stream driverv1.DriverService_WatchEventsServer) error {
	defer s.watching()()
	ctx := stream.Context()
	events, err := s.impl.WatchEvents(ctx)
	if err != nil {
		return rpcerr.ToStatus(err)
	}
	// Tell the caller it is subscribed (see Client.WatchEvents).
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-events:
			if !ok {
				return nil
			}
			if err := stream.Send(&driverv1.WatchEventsResponse{Event: eventToProto(&e)}); err != nil {
				return err
			}
		}
	}
}

// record is the record of uuid after a call that may have changed it.
func (s *server) record(ctx context.Context, uuid string) *driverv1.Record {
	r := s.rec.Record(ctx, uuid)
	return recordToProto(&r)
}

// failed is the status of a failed call on the domain uuid, carrying the
// domain's record: a call that failed half way may still have changed it.
func (s *server) failed(ctx context.Context, uuid string, err error) error {
	err = rpcerr.ToStatus(err)
	st, _ := status.FromError(err)
	if withRec, derr := st.WithDetails(s.record(ctx, uuid)); derr == nil {
		return withRec.Err()
	}
	return err
}

func (s *server) WatchRecords(_ *driverv1.WatchRecordsRequest, stream driverv1.DriverService_WatchRecordsServer) error {
	defer s.watching()()
	ctx := stream.Context()
	msgs, err := s.rec.Watch(ctx)
	if err != nil {
		return rpcerr.ToStatus(err)
	}
	// Tell the caller it is subscribed (see Client.WatchRecords); the
	// snapshot follows.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for m := range msgs {
		var r *driverv1.WatchRecordsResponse
		if snap := m.Snapshot; snap != nil {
			r = &driverv1.WatchRecordsResponse{SnapshotGen: snap.Gen, Snapshot: make([]*driverv1.Record, len(snap.Records))}
			for i := range snap.Records {
				r.Snapshot[i] = recordToProto(&snap.Records[i])
			}
		} else {
			r = &driverv1.WatchRecordsResponse{Event: eventToProto(&m.Change.Event), Record: recordToProto(&m.Change.Record)}
		}
		if err := stream.Send(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *server) GetFacts(ctx context.Context, _ *driverv1.GetFactsRequest) (*driverv1.GetFactsResponse, error) {
	s.touch()
	f, err := ReadFacts(ctx, s.impl)
	if err != nil {
		return nil, rpcerr.ToStatus(err)
	}
	return &driverv1.GetFactsResponse{
		Info: infoToProto(&f.Info), Hostname: f.Hostname, Capabilities: f.Capabilities,
		NodeInfo: nodeInfoToProto(&f.NodeInfo), Stamps: stampsToProto(f.Stamps), Cacheable: f.Cacheable,
		Missing: f.Missing,
	}, nil
}
