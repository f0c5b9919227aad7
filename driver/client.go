package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/virtd/virtd/internal/rpcerr"
	driverv1 "github.com/virtd/virtd/proto/virtd/driver/v1"
	"github.com/virtd/virtd/virt"
)

// Client is the host-side shim: a Driver that forwards every call over
// gRPC to a driver process. Errors come back with their kind.
type Client struct {
	rpc driverv1.DriverServiceClient
	// onRecord takes the records that replies carry.
	onRecord func(Record)
}

var _ Driver = (*Client)(nil)

// NewClient returns a Client speaking on conn.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{rpc: driverv1.NewDriverServiceClient(conn)}
}

// OnRecord makes every record a reply carries (see Record) go to fn, which
// must not block: the call returns after fn. Set it before the first call.
func (c *Client) OnRecord(fn func(Record)) { c.onRecord = fn }

// took hands a reply's record to onRecord.
func (c *Client) took(p *driverv1.Record) {
	if p != nil && c.onRecord != nil {
		c.onRecord(recordFromProto(p))
	}
}

// failed is rpcerr.FromStatus for a call that changes a domain: the record
// a failed call carries goes to onRecord first.
func (c *Client) failed(err error) error {
	if st, ok := status.FromError(err); ok {
		for _, d := range st.Details() {
			if p, ok := d.(*driverv1.Record); ok {
				c.took(p)
			}
		}
	}
	return rpcerr.FromStatus(err)
}

// Identity is who a driver process says it is.
type Identity struct {
	Info
	PID         int
	InstanceID  string
	APIVersions []int
}

// Identify asks the driver process who it is; the host uses it to confirm a
// process before use, after launch and after reattach.
func (c *Client) Identify(ctx context.Context) (*Identity, error) {
	r, err := c.rpc.GetInfo(ctx, &driverv1.GetInfoRequest{})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	p := r.GetInfo()
	id := &Identity{Info: *infoFromProto(p), PID: int(p.GetPid()), InstanceID: p.GetInstanceId()}
	for _, v := range p.GetApiVersions() {
		id.APIVersions = append(id.APIVersions, int(v))
	}
	return id, nil
}

// KeepAlive tells the driver a host is attached, sets how long it should
// wait for the next keep-alive before it considers itself orphaned, and
// returns how many guests it runs.
func (c *Client) KeepAlive(ctx context.Context, orphanTimeout time.Duration) (int, error) {
	r, err := c.rpc.KeepAlive(ctx, &driverv1.KeepAliveRequest{OrphanTimeoutMs: orphanTimeout.Milliseconds()})
	if err != nil {
		return 0, rpcerr.FromStatus(err)
	}
	return int(r.GetRunningGuests()), nil
}

func (c *Client) Info(ctx context.Context) (*Info, error) {
	id, err := c.Identify(ctx)
	if err != nil {
		return nil, err
	}
	return &id.Info, nil
}

func (c *Client) RunningGuests(ctx context.Context) (int, error) {
	return c.KeepAlive(ctx, 0)
}

func (c *Client) CheckURI(ctx context.Context, uri string) error {
	_, err := c.rpc.CheckURI(ctx, &driverv1.CheckURIRequest{Uri: uri})
	return rpcerr.FromStatus(err)
}

func (c *Client) Hostname(ctx context.Context) (string, error) {
	r, err := c.rpc.GetHostname(ctx, &driverv1.GetHostnameRequest{})
	return r.GetHostname(), rpcerr.FromStatus(err)
}

func (c *Client) Capabilities(ctx context.Context) (string, error) {
	r, err := c.rpc.GetCapabilities(ctx, &driverv1.GetCapabilitiesRequest{})
	return r.GetXml(), rpcerr.FromStatus(err)
}

func (c *Client) NodeInfo(ctx context.Context) (*virt.NodeInfo, error) {
	r, err := c.rpc.GetNodeInfo(ctx, &driverv1.GetNodeInfoRequest{})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	return nodeInfoFromProto(r.GetInfo()), nil
}

func (c *Client) ListDomains(ctx context.Context, flags virt.ListFlags) ([]virt.Domain, error) {
	r, err := c.rpc.ListDomains(ctx, &driverv1.ListDomainsRequest{Flags: uint32(flags)})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	out := make([]virt.Domain, len(r.GetDomains()))
	for i, d := range r.GetDomains() {
		out[i] = *domainFromProto(d)
	}
	return out, nil
}

func (c *Client) LookupDomain(ctx context.Context, key virt.Lookup) (*virt.Domain, error) {
	r, err := c.rpc.LookupDomain(ctx, lookupToProto(key))
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	return domainFromProto(r.GetDomain()), nil
}

func (c *Client) DefineDomain(ctx context.Context, xml string) (*virt.Domain, error) {
	r, err := c.rpc.DefineDomain(ctx, &driverv1.DefineDomainRequest{Xml: xml})
	if err != nil {
		return nil, c.failed(err)
	}
	c.took(r.GetRecord())
	return domainFromProto(r.GetDomain()), nil
}

func (c *Client) UndefineDomain(ctx context.Context, uuid string) error {
	r, err := c.rpc.UndefineDomain(ctx, &driverv1.UndefineDomainRequest{Uuid: uuid})
	if err != nil {
		return c.failed(err)
	}
	c.took(r.GetRecord())
	return nil
}

func (c *Client) StartDomain(ctx context.Context, uuid string) (*virt.Domain, error) {
	r, err := c.rpc.StartDomain(ctx, &driverv1.StartDomainRequest{Uuid: uuid})
	if err != nil {
		return nil, c.failed(err)
	}
	c.took(r.GetRecord())
	return domainFromProto(r.GetDomain()), nil
}

func (c *Client) CreateDomain(ctx context.Context, xml string) (*virt.Domain, error) {
	r, err := c.rpc.CreateDomain(ctx, &driverv1.CreateDomainRequest{Xml: xml})
	if err != nil {
		err = c.failed(err)
		if errors.Is(err, virt.ErrNotSupported) && !rpcerr.FromPeer(err) {
			// gRPC's own answer, not the driver's: the driver's API
			// predates the call.
			return nil, fmt.Errorf("the driver was built without CreateDomain (its driver API predates it): %w", virt.ErrNotSupported)
		}
		return nil, err
	}
	c.took(r.GetRecord())
	return domainFromProto(r.GetDomain()), nil
}

func (c *Client) ShutdownDomain(ctx context.Context, uuid string) error {
	r, err := c.rpc.ShutdownDomain(ctx, &driverv1.ShutdownDomainRequest{Uuid: uuid})
	if err != nil {
		return c.failed(err)
	}
	c.took(r.GetRecord())
	return nil
}

func (c *Client) RebootDomain(ctx context.Context, uuid string) error {
	r, err := c.rpc.RebootDomain(ctx, &driverv1.RebootDomainRequest{Uuid: uuid})
	if err != nil {
		return c.failed(err)
	}
	c.took(r.GetRecord())
	return nil
}

func (c *Client) DestroyDomain(ctx context.Context, uuid string) error {
	r, err := c.rpc.DestroyDomain(ctx, &driverv1.DestroyDomainRequest{Uuid: uuid})
	if err != nil {
		return c.failed(err)
	}
	c.took(r.GetRecord())
	return nil
}

func (c *Client) SuspendDomain(ctx context.Context, uuid string) error {
	r, err := c.rpc.SuspendDomain(ctx, &driverv1.SuspendDomainRequest{Uuid: uuid})
	if err != nil {
		return c.failed(err)
	}
	c.took(r.GetRecord())
	return nil
}

func (c *Client) ResumeDomain(ctx context.Context, uuid string) error {
	r, err := c.rpc.ResumeDomain(ctx, &driverv1.ResumeDomainRequest{Uuid: uuid})
	if err != nil {
		return c.failed(err)
	}
	c.took(r.GetRecord())
	return nil
}

func (c *Client) DomainInfo(ctx context.Context, uuid string) (*virt.DomainInfo, error) {
	r, err := c.rpc.GetDomainInfo(ctx, &driverv1.GetDomainInfoRequest{Uuid: uuid})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	return domainInfoFromProto(r.GetInfo()), nil
}

func (c *Client) DomainState(ctx context.Context, uuid string) (virt.State, int32, error) {
	r, err := c.rpc.GetDomainState(ctx, &driverv1.GetDomainStateRequest{Uuid: uuid})
	if err != nil {
		return 0, 0, rpcerr.FromStatus(err)
	}
	return virt.State(r.GetState()), r.GetReason(), nil
}

func (c *Client) DomainXML(ctx context.Context, uuid string, inactive bool) (string, error) {
	r, err := c.rpc.GetDomainXML(ctx, &driverv1.GetDomainXMLRequest{Uuid: uuid, Inactive: inactive})
	return r.GetXml(), rpcerr.FromStatus(err)
}

func (c *Client) DomainAutostart(ctx context.Context, uuid string) (bool, error) {
	r, err := c.rpc.GetDomainAutostart(ctx, &driverv1.GetDomainAutostartRequest{Uuid: uuid})
	return r.GetAutostart(), rpcerr.FromStatus(err)
}

func (c *Client) SetDomainAutostart(ctx context.Context, uuid string, autostart bool) error {
	r, err := c.rpc.SetDomainAutostart(ctx, &driverv1.SetDomainAutostartRequest{Uuid: uuid, Autostart: autostart})
	if err != nil {
		return c.failed(err)
	}
	c.took(r.GetRecord())
	return nil
}

// WatchEvents opens the driver's event stream. The channel closes when ctx
// ends or the stream breaks (the driver went away).
func (c *Client) WatchEvents(ctx context.Context) (<-chan virt.Event, error) {
	stream, err := c.rpc.WatchEvents(ctx, &driverv1.WatchEventsRequest{})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	// The driver sends the header once it has subscribed: from here on no
	// event is missed.
	if err := rpcerr.Subscribed(stream); err != nil {
		return nil, err
	}
	out := make(chan virt.Event, 64)
	go func() {
		defer close(out)
		for {
			r, err := stream.Recv()
			if err != nil {
				// EOF, a cancelled ctx or a broken stream: the host learns
				// of a driver's exit from the process itself.
				return
			}
			select {
			case out <- eventFromProto(r.GetEvent()):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// WatchRecords opens the driver's record stream (FeatureRecords). It
// returns once the driver has subscribed to its events, so no change made
// afterwards is missed; the snapshot is the channel's first message, the
// changes follow. The channel closes when ctx ends or the stream breaks.
func (c *Client) WatchRecords(ctx context.Context) (<-chan RecordMsg, error) {
	stream, err := c.rpc.WatchRecords(ctx, &driverv1.WatchRecordsRequest{})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	if err := rpcerr.Subscribed(stream); err != nil {
		return nil, err
	}
	out := make(chan RecordMsg, 64)
	go func() {
		defer close(out)
		for first := true; ; first = false {
			r, err := stream.Recv()
			if err != nil {
				return // as WatchEvents
			}
			var m RecordMsg
			if first {
				snap := &Snapshot{Gen: r.GetSnapshotGen(), Records: make([]Record, len(r.GetSnapshot()))}
				for i, p := range r.GetSnapshot() {
					snap.Records[i] = recordFromProto(p)
				}
				m.Snapshot = snap
			} else {
				m.Change = Change{Event: eventFromProto(r.GetEvent()), Record: recordFromProto(r.GetRecord())}
			}
			select {
			case out <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// Facts reads the driver's host facts in one call (FeatureRecords).
func (c *Client) Facts(ctx context.Context) (*Facts, error) {
	r, err := c.rpc.GetFacts(ctx, &driverv1.GetFactsRequest{})
	if status.Code(err) == codes.Unimplemented && !rpcerr.FromPeer(rpcerr.FromStatus(err)) {
		// A driver from before FeatureRecords: one call per fact, and
		// nothing kept.
		f, err := ReadFacts(ctx, c)
		if f != nil {
			f.Cacheable = false
		}
		return f, err
	}
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	f := &Facts{
		Hostname: r.GetHostname(), Capabilities: r.GetCapabilities(),
		Stamps: stampsFromProto(r.GetStamps()), Cacheable: r.GetCacheable(),
		Missing: r.GetMissing(),
	}
	if i := infoFromProto(r.GetInfo()); i != nil {
		f.Info = *i
	}
	if n := nodeInfoFromProto(r.GetNodeInfo()); n != nil {
		f.NodeInfo = *n
	}
	return f, nil
}
