package client

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/virtd/virtd/internal/rpcerr"
	"github.com/virtd/virtd/internal/streamio"
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
	"github.com/virtd/virtd/virt"
)

// Domain is a handle on one domain, like libvirt's virDomainPtr: the
// connection it came from, the domain's name and UUID, and what the daemon
// last said about it (ID, state, persistence, autostart). Calls name the
// domain by UUID. The last-seen record is a snapshot: Refresh renews it,
// Start updates it; State, Info and Autostart ask the daemon now.
//
// A Domain is safe for concurrent use.
type Domain struct {
	conn *Conn
	name string
	uuid string

	mu   sync.Mutex
	last virt.Domain
}

func (c *Conn) handle(d *apiv1.Domain) *Domain {
	v := fromProtoDomain(d)
	return &Domain{conn: c, name: v.Name, uuid: v.UUID, last: v}
}

// Conn returns the connection the handle belongs to.
func (d *Domain) Conn() *Conn { return d.conn }

// Name returns the domain's name.
func (d *Domain) Name() string { return d.name }

// UUID returns the domain's UUID.
func (d *Domain) UUID() string { return d.uuid }

// ID returns the domain's ID as last seen: -1 when it was not running.
// IDs change every time a domain starts.
func (d *Domain) ID() int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last.ID
}

// Snapshot returns what the daemon last said about the domain: from the
// list or lookup that made the handle, or from the latest Refresh or Start.
func (d *Domain) Snapshot() virt.Domain {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

func (d *Domain) update(v virt.Domain) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.last = v
}

func (d *Domain) conid() string { return d.conn.id }

// Refresh looks the domain up again by UUID, renews the snapshot and
// returns it.
func (d *Domain) Refresh(ctx context.Context) (virt.Domain, error) {
	nd, err := d.conn.LookupByUUID(ctx, d.uuid)
	if err != nil {
		return virt.Domain{}, err
	}
	v := nd.Snapshot()
	d.update(v)
	return v, nil
}

// Undefine removes the persistent definition. A running domain keeps
// running and becomes transient; it disappears when it stops.
func (d *Domain) Undefine(ctx context.Context) error {
	_, err := d.conn.api.UndefineDomain(ctx, &apiv1.UndefineDomainRequest{Connection: d.conid(), Uuid: d.uuid})
	return rpcerr.FromStatus(err)
}

// Start boots a defined, inactive domain (libvirt's virDomainCreate) and
// updates the handle's snapshot (its new ID, its state).
func (d *Domain) Start(ctx context.Context) error {
	r, err := d.conn.api.StartDomain(ctx, &apiv1.StartDomainRequest{Connection: d.conid(), Uuid: d.uuid})
	if err != nil {
		return rpcerr.FromStatus(err)
	}
	if r.GetDomain() != nil {
		d.update(fromProtoDomain(r.GetDomain()))
	}
	return nil
}

// Shutdown asks the guest to power itself off (an ACPI power button press)
// and returns at once; the guest may take its time, or ignore it. Watch
// for the Stopped event, or use Destroy.
func (d *Domain) Shutdown(ctx context.Context) error {
	_, err := d.conn.api.ShutdownDomain(ctx, &apiv1.ShutdownDomainRequest{Connection: d.conid(), Uuid: d.uuid})
	return rpcerr.FromStatus(err)
}

// Reboot asks the guest to reboot.
func (d *Domain) Reboot(ctx context.Context) error {
	_, err := d.conn.api.RebootDomain(ctx, &apiv1.RebootDomainRequest{Connection: d.conid(), Uuid: d.uuid})
	return rpcerr.FromStatus(err)
}

// Destroy powers the guest off at once, like pulling the plug. Despite the
// name, nothing is deleted: the definition stays (that is Undefine). A
// transient domain does disappear, having no definition.
func (d *Domain) Destroy(ctx context.Context) error {
	_, err := d.conn.api.DestroyDomain(ctx, &apiv1.DestroyDomainRequest{Connection: d.conid(), Uuid: d.uuid})
	return rpcerr.FromStatus(err)
}

// Suspend pauses the guest's CPUs; its memory stays allocated (it is not
// saved to disk, unlike what "suspend" means on a laptop).
func (d *Domain) Suspend(ctx context.Context) error {
	_, err := d.conn.api.SuspendDomain(ctx, &apiv1.SuspendDomainRequest{Connection: d.conid(), Uuid: d.uuid})
	return rpcerr.FromStatus(err)
}

// Resume lets a suspended guest run again.
func (d *Domain) Resume(ctx context.Context) error {
	_, err := d.conn.api.ResumeDomain(ctx, &apiv1.ResumeDomainRequest{Connection: d.conid(), Uuid: d.uuid})
	return rpcerr.FromStatus(err)
}

// Info returns the domain's state, memory, vCPUs and CPU time now.
func (d *Domain) Info(ctx context.Context) (*virt.DomainInfo, error) {
	r, err := d.conn.api.GetDomainInfo(ctx, &apiv1.GetDomainInfoRequest{Connection: d.conid(), Uuid: d.uuid})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	i := r.GetInfo()
	return &virt.DomainInfo{
		State: virt.State(i.GetState()), MaxMemoryKiB: i.GetMaxMemoryKib(), MemoryKiB: i.GetMemoryKib(),
		VCPUs: i.GetVcpus(), CPUTime: time.Duration(i.GetCpuTimeNs()),
	}, nil
}

// State returns the domain's state now and the reason for it; see
// virt.ReasonString for the reason's meaning, which depends on the state.
func (d *Domain) State(ctx context.Context) (virt.State, int32, error) {
	r, err := d.conn.api.GetDomainState(ctx, &apiv1.GetDomainStateRequest{Connection: d.conid(), Uuid: d.uuid})
	if err != nil {
		return 0, 0, rpcerr.FromStatus(err)
	}
	return virt.State(r.GetState()), r.GetReason(), nil
}

// XML returns the domain's libvirt XML: the live configuration of a
// running domain, or with inactive set the persistent definition that the
// next start will use.
func (d *Domain) XML(ctx context.Context, inactive bool) (string, error) {
	r, err := d.conn.api.GetDomainXML(ctx, &apiv1.GetDomainXMLRequest{Connection: d.conid(), Uuid: d.uuid, Inactive: inactive})
	if err != nil {
		return "", rpcerr.FromStatus(err)
	}
	return r.GetXml(), nil
}

// Autostart reports whether the domain starts when its driver starts.
func (d *Domain) Autostart(ctx context.Context) (bool, error) {
	r, err := d.conn.api.GetDomainAutostart(ctx, &apiv1.GetDomainAutostartRequest{Connection: d.conid(), Uuid: d.uuid})
	if err != nil {
		return false, rpcerr.FromStatus(err)
	}
	return r.GetAutostart(), nil
}

// SetAutostart marks or unmarks the domain for starting with its driver.
// Only persistent domains can be marked.
func (d *Domain) SetAutostart(ctx context.Context, autostart bool) error {
	_, err := d.conn.api.SetDomainAutostart(ctx, &apiv1.SetDomainAutostartRequest{Connection: d.conid(), Uuid: d.uuid, Autostart: autostart})
	return rpcerr.FromStatus(err)
}

// OpenConsole attaches to the domain's text console (virsh console):
// reads return what the guest writes, writes are typed into it, Close
// detaches. devName "" picks the first console or serial port. It needs a
// read-write connection.
func (d *Domain) OpenConsole(ctx context.Context, devName string) (io.ReadWriteCloser, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := d.conn.api.OpenConsole(ctx)
	if err != nil {
		cancel()
		return nil, rpcerr.FromStatus(err)
	}
	open := &apiv1.OpenConsoleRequest{Msg: &apiv1.OpenConsoleRequest_Open{Open: &apiv1.ConsoleTarget{Connection: d.conid(), Uuid: d.uuid, DevName: devName}}}
	if err := stream.Send(open); err != nil {
		cancel()
		return nil, rpcerr.FromStatus(err)
	}
	// The first response says the console is open, or carries the error.
	if _, err := stream.Recv(); err != nil {
		cancel()
		return nil, rpcerr.FromStatus(err)
	}
	return streamio.New(
		func(p []byte) error {
			return stream.Send(&apiv1.OpenConsoleRequest{Msg: &apiv1.OpenConsoleRequest_Input{Input: p}})
		},
		func() ([]byte, error) {
			m, err := stream.Recv()
			return m.GetOutput(), err
		},
		cancel,
	), nil
}
