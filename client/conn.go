package client

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"google.golang.org/grpc"

	"github.com/virtd/virtd/internal/rpcerr"
	"github.com/virtd/virtd/internal/version"
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
	"github.com/virtd/virtd/virt"
)

// LibraryVersion is the version of this client library, what `virsh
// version` calls the library.
var LibraryVersion = version.Version

// Conn is a connection to one driver through the daemon, opened on a URI,
// like libvirt's virConnectPtr. It is safe for concurrent use.
type Conn struct {
	cc       *grpc.ClientConn
	api      apiv1.VirtServiceClient
	id       string
	uri      string
	driver   string
	socket   string
	readOnly bool

	closeOnce sync.Once
	closeErr  error
}

// Open connects to the daemon on the read-write socket and opens a
// connection on uri (test:///default, qemu:///system,
// qemu+unix:///system?socket=PATH). The socket is, in order of preference,
// the one given WithSocket, the URI's ?socket= parameter, or
// DefaultSocket().
//
// When nothing listens on the socket the error wraps ErrUnavailable and
// names the socket; a malformed URI gives ErrInvalidArgument; a tls URI
// gives ErrNotSupported.
func Open(ctx context.Context, uri string, opts ...Option) (*Conn, error) {
	return open(ctx, uri, false, opts)
}

// OpenReadOnly is Open on the read-only socket (DefaultReadOnlySocket()
// unless a socket is given): the daemon refuses every call that changes
// anything with ErrPermissionDenied.
func OpenReadOnly(ctx context.Context, uri string, opts ...Option) (*Conn, error) {
	return open(ctx, uri, true, opts)
}

func open(ctx context.Context, uri string, readOnly bool, opts []Option) (*Conn, error) {
	u, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	if !u.Local() {
		return nil, virt.Errorf(virt.ErrNotSupported, "cannot open %s: TLS transport not supported yet", uri)
	}
	o := buildOptions(opts)
	socket := o.socket
	if socket == "" {
		socket = u.Socket
	}
	if socket == "" {
		if readOnly {
			socket = DefaultReadOnlySocket()
		} else {
			socket = DefaultSocket()
		}
	}
	cc, err := dial(ctx, socket, o)
	if err != nil {
		return nil, err
	}
	api := apiv1.NewVirtServiceClient(cc)
	resp, err := api.Open(ctx, &apiv1.OpenRequest{Uri: u.DaemonURI(), ReadOnly: readOnly})
	if err != nil {
		cc.Close()
		return nil, rpcerr.FromStatus(err)
	}
	c := &Conn{
		cc: cc, api: api, id: resp.GetConnection(), uri: resp.GetUri(),
		driver: resp.GetDriver(), socket: socket, readOnly: readOnly,
	}
	if c.uri == "" {
		c.uri = u.DaemonURI()
	}
	return c, nil
}

// URI returns the URI as the daemon understood it, e.g. "test:///default".
func (c *Conn) URI() string { return c.uri }

// Driver returns the name of the driver serving the connection.
func (c *Conn) Driver() string { return c.driver }

// Socket returns the path of the socket the connection uses.
func (c *Conn) Socket() string { return c.socket }

// ReadOnly reports whether the connection was opened with OpenReadOnly.
func (c *Conn) ReadOnly() bool { return c.readOnly }

// Close closes the connection in the daemon, then the socket. Calling it
// again returns the first result.
func (c *Conn) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		_, err := c.api.Close(ctx, &apiv1.CloseRequest{Connection: c.id})
		c.closeErr = rpcerr.FromStatus(err)
		if err := c.cc.Close(); c.closeErr == nil && err != nil {
			c.closeErr = err
		}
	})
	return c.closeErr
}

// VersionInfo is what Conn.Version returns.
type VersionInfo struct {
	// Daemon is virtd's version.
	Daemon string
	// Driver is the version of the driver serving the connection.
	Driver string
	// HypervisorType is the hypervisor's name as `virsh version` prints
	// it: "QEMU", "Test", "LXC", "Xen".
	HypervisorType string
	// Hypervisor is libvirt's encoding, major*1000000 + minor*1000 +
	// release; see FormatVersion.
	Hypervisor uint64
}

// FormatVersion turns libvirt's version number (major*1000000 +
// minor*1000 + release) into "major.minor.release".
func FormatVersion(v uint64) string {
	return strconv.FormatUint(v/1000000, 10) + "." + strconv.FormatUint(v/1000%1000, 10) + "." + strconv.FormatUint(v%1000, 10)
}

// Version returns the daemon's, the driver's and the hypervisor's versions.
func (c *Conn) Version(ctx context.Context) (*VersionInfo, error) {
	r, err := c.api.GetVersion(ctx, &apiv1.GetVersionRequest{Connection: c.id})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	return &VersionInfo{
		Daemon: r.GetDaemonVersion(), Driver: r.GetDriverVersion(),
		HypervisorType: r.GetHypervisorType(), Hypervisor: r.GetHypervisorVersion(),
	}, nil
}

// Hostname returns the host name of the machine the driver runs on.
func (c *Conn) Hostname(ctx context.Context) (string, error) {
	r, err := c.api.GetHostname(ctx, &apiv1.GetHostnameRequest{Connection: c.id})
	if err != nil {
		return "", rpcerr.FromStatus(err)
	}
	return r.GetHostname(), nil
}

// Capabilities returns libvirt's capabilities XML for the driver.
func (c *Conn) Capabilities(ctx context.Context) (string, error) {
	r, err := c.api.GetCapabilities(ctx, &apiv1.GetCapabilitiesRequest{Connection: c.id})
	if err != nil {
		return "", rpcerr.FromStatus(err)
	}
	return r.GetXml(), nil
}

// NodeInfo returns the host's CPUs and memory, libvirt's virNodeInfo.
func (c *Conn) NodeInfo(ctx context.Context) (*virt.NodeInfo, error) {
	r, err := c.api.GetNodeInfo(ctx, &apiv1.GetNodeInfoRequest{Connection: c.id})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	n := r.GetInfo()
	return &virt.NodeInfo{
		Model: n.GetModel(), MemoryKiB: n.GetMemoryKib(), CPUs: n.GetCpus(), MHz: n.GetMhz(),
		Nodes: n.GetNodes(), Sockets: n.GetSockets(), Cores: n.GetCores(), Threads: n.GetThreads(),
	}, nil
}

// ListDomains returns the domains that pass flags, libvirt's
// virConnectListAllDomains: zero lists every domain, active and inactive
// (unlike `virsh list`, which shows only running ones without --all).
func (c *Conn) ListDomains(ctx context.Context, flags virt.ListFlags) ([]*Domain, error) {
	r, err := c.api.ListDomains(ctx, &apiv1.ListDomainsRequest{Connection: c.id, Flags: uint32(flags)})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	out := make([]*Domain, 0, len(r.GetDomains()))
	for _, d := range r.GetDomains() {
		out = append(out, c.handle(d))
	}
	return out, nil
}

// LookupDomain finds one domain by name, UUID or ID (see virt.Lookup). A
// domain that does not exist gives an error wrapping ErrNotFound.
func (c *Conn) LookupDomain(ctx context.Context, key virt.Lookup) (*Domain, error) {
	req := &apiv1.LookupDomainRequest{Connection: c.id}
	switch {
	case key.Name != "":
		req.Key = &apiv1.LookupDomainRequest_Name{Name: key.Name}
	case key.UUID != "":
		req.Key = &apiv1.LookupDomainRequest_Uuid{Uuid: key.UUID}
	default:
		req.Key = &apiv1.LookupDomainRequest_Id{Id: key.ID}
	}
	r, err := c.api.LookupDomain(ctx, req)
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	return c.handle(r.GetDomain()), nil
}

// LookupByName is LookupDomain by name.
func (c *Conn) LookupByName(ctx context.Context, name string) (*Domain, error) {
	return c.LookupDomain(ctx, virt.ByName(name))
}

// LookupByUUID is LookupDomain by UUID.
func (c *Conn) LookupByUUID(ctx context.Context, uuid string) (*Domain, error) {
	return c.LookupDomain(ctx, virt.ByUUID(uuid))
}

// LookupByID is LookupDomain by the ID of a running domain. IDs change
// every time a domain starts; inactive domains have none.
func (c *Conn) LookupByID(ctx context.Context, id int32) (*Domain, error) {
	return c.LookupDomain(ctx, virt.ByID(id))
}

// DefineXML defines a persistent domain from libvirt domain XML, or
// updates the definition of the domain with that name and UUID. It does
// not start the domain (that is Domain.Start). An element the driver cannot
// honour is refused with an error that names it.
func (c *Conn) DefineXML(ctx context.Context, xml string) (*Domain, error) {
	r, err := c.api.DefineDomain(ctx, &apiv1.DefineDomainRequest{Connection: c.id, Xml: xml})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	return c.handle(r.GetDomain()), nil
}

// CreateXML starts a domain from libvirt domain XML without defining it
// (libvirt's virDomainCreateXML, virsh create): the domain is transient,
// and vanishes when it stops, for whatever reason. The name and UUID of
// an inactive persistent domain start that domain with this XML as its
// live definition. A name or UUID another domain holds is refused with
// ErrAlreadyExists; the name and UUID of a running domain with
// ErrFailedPrecondition.
func (c *Conn) CreateXML(ctx context.Context, xml string) (*Domain, error) {
	r, err := c.api.CreateDomain(ctx, &apiv1.CreateDomainRequest{Connection: c.id, Xml: xml})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	return c.handle(r.GetDomain()), nil
}

func fromProtoDomain(d *apiv1.Domain) virt.Domain {
	return virt.Domain{
		Name: d.GetName(), UUID: d.GetUuid(), ID: d.GetId(),
		State: virt.State(d.GetState()), Reason: d.GetReason(),
		Persistent: d.GetPersistent(), Autostart: d.GetAutostart(),
	}
}

// String names the connection for messages.
func (c *Conn) String() string { return fmt.Sprintf("virtd connection %s (%s)", c.uri, c.socket) }

// DomainXMLToNative converts domain XML into the driver's native
// configuration (virsh domxml-to-native), e.g. format "qemu-argv" or
// "xen-xl". Drivers that cannot answer ErrNotSupported.
func (c *Conn) DomainXMLToNative(ctx context.Context, format, xml string) (string, error) {
	r, err := c.api.DomainXMLToNative(ctx, &apiv1.DomainXMLToNativeRequest{Connection: c.id, Format: format, Xml: xml})
	if err != nil {
		return "", rpcerr.FromStatus(err)
	}
	return r.GetConfig(), nil
}

// DomainXMLFromNative converts a native configuration into domain XML
// (virsh domxml-from-native), e.g. format "lxc-tools" or "xen-xl".
func (c *Conn) DomainXMLFromNative(ctx context.Context, format, config string) (string, error) {
	r, err := c.api.DomainXMLFromNative(ctx, &apiv1.DomainXMLFromNativeRequest{Connection: c.id, Format: format, Config: config})
	if err != nil {
		return "", rpcerr.FromStatus(err)
	}
	return r.GetXml(), nil
}
