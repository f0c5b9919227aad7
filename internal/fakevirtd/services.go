package fakevirtd

import (
	"context"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
	"github.com/virtd/virtd/virt"
)

type virtService struct {
	apiv1.UnimplementedVirtServiceServer
	s  *Server
	ro bool
}

const (
	stRunning = apiv1.DomainState_DOMAIN_STATE_RUNNING
	stPaused  = apiv1.DomainState_DOMAIN_STATE_PAUSED
	stShutoff = apiv1.DomainState_DOMAIN_STATE_SHUTOFF
)

// conn checks the connection id; the caller holds s.mu.
func (v *virtService) conn(id string, mutates bool) error {
	ro, ok := v.s.conns[id]
	if !ok {
		return status.Errorf(codes.InvalidArgument, "no open connection %q (open one first)", id) // as the real daemon
	}
	if mutates && (ro || v.ro) {
		return status.Error(codes.PermissionDenied, "operation forbidden: read only access prevents this")
	}
	return nil
}

// dom finds a domain by UUID; the caller holds s.mu.
func (v *virtService) dom(conn, uuid string, mutates bool) (*domain, error) {
	if err := v.conn(conn, mutates); err != nil {
		return nil, err
	}
	d := v.s.domains[uuid]
	if d == nil {
		return nil, status.Errorf(codes.NotFound, "domain not found: no domain with matching uuid '%s'", uuid)
	}
	return d, nil
}

func (v *virtService) Open(_ context.Context, r *apiv1.OpenRequest) (*apiv1.OpenResponse, error) {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("Open", r.GetUri(), strconv.FormatBool(r.GetReadOnly()))
	if r.GetUri() != "test:///default" {
		scheme, _, _ := strings.Cut(r.GetUri(), ":")
		return nil, status.Errorf(codes.NotFound, "no driver installed for URI scheme %q (fake daemon; URI %q)", scheme, r.GetUri())
	}
	s.nextConn++
	id := "conn-" + strconv.Itoa(s.nextConn)
	s.conns[id] = r.GetReadOnly() || v.ro
	return &apiv1.OpenResponse{Connection: id, Uri: r.GetUri(), Driver: "test"}, nil
}

func (v *virtService) Close(_ context.Context, r *apiv1.CloseRequest) (*apiv1.CloseResponse, error) {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("Close", r.GetConnection())
	if err := v.conn(r.GetConnection(), false); err != nil {
		return nil, err
	}
	delete(s.conns, r.GetConnection())
	return &apiv1.CloseResponse{}, nil
}

func (v *virtService) GetVersion(_ context.Context, r *apiv1.GetVersionRequest) (*apiv1.GetVersionResponse, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	v.s.record("GetVersion")
	if err := v.conn(r.GetConnection(), false); err != nil {
		return nil, err
	}
	return &apiv1.GetVersionResponse{DaemonVersion: "0.1.0", DriverVersion: "0.1.0", HypervisorType: "Test", HypervisorVersion: 2000003}, nil
}

func (v *virtService) GetHostname(_ context.Context, r *apiv1.GetHostnameRequest) (*apiv1.GetHostnameResponse, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	v.s.record("GetHostname")
	if err := v.conn(r.GetConnection(), false); err != nil {
		return nil, err
	}
	return &apiv1.GetHostnameResponse{Hostname: "fakehost"}, nil
}

// Capabilities is what GetCapabilities answers.
const Capabilities = "<capabilities>\n  <host>\n    <cpu><arch>i686</arch></cpu>\n  </host>\n</capabilities>\n"

func (v *virtService) GetCapabilities(_ context.Context, r *apiv1.GetCapabilitiesRequest) (*apiv1.GetCapabilitiesResponse, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	v.s.record("GetCapabilities")
	if err := v.conn(r.GetConnection(), false); err != nil {
		return nil, err
	}
	return &apiv1.GetCapabilitiesResponse{Xml: Capabilities}, nil
}

func (v *virtService) GetNodeInfo(_ context.Context, r *apiv1.GetNodeInfoRequest) (*apiv1.GetNodeInfoResponse, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	v.s.record("GetNodeInfo")
	if err := v.conn(r.GetConnection(), false); err != nil {
		return nil, err
	}
	return &apiv1.GetNodeInfoResponse{Info: &apiv1.NodeInfo{
		Model: "i686", MemoryKib: 3145728, Cpus: 16, Mhz: 1400, Nodes: 2, Sockets: 2, Cores: 2, Threads: 2,
	}}, nil
}

func (v *virtService) ListDomains(_ context.Context, r *apiv1.ListDomainsRequest) (*apiv1.ListDomainsResponse, error) {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("ListDomains", strconv.FormatUint(uint64(r.GetFlags()), 10))
	if err := v.conn(r.GetConnection(), false); err != nil {
		return nil, err
	}
	out := &apiv1.ListDomainsResponse{}
	for _, d := range s.sortedDomains() {
		vd := virt.Domain{ID: d.Id, State: virt.State(d.State), Persistent: d.Persistent, Autostart: d.Autostart}
		if virt.ListFlags(r.GetFlags()).Match(&vd) {
			out.Domains = append(out.Domains, cloneDomain(d))
		}
	}
	return out, nil
}

func (v *virtService) LookupDomain(_ context.Context, r *apiv1.LookupDomainRequest) (*apiv1.LookupDomainResponse, error) {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := v.conn(r.GetConnection(), false); err != nil {
		return nil, err
	}
	var found *domain
	switch k := r.GetKey().(type) {
	case *apiv1.LookupDomainRequest_Name:
		s.record("LookupDomain", "name="+k.Name)
		if found = s.byName(k.Name); found == nil {
			return nil, status.Errorf(codes.NotFound, "domain not found: no domain with matching name '%s'", k.Name)
		}
	case *apiv1.LookupDomainRequest_Uuid:
		s.record("LookupDomain", "uuid="+k.Uuid)
		if found = s.domains[k.Uuid]; found == nil {
			return nil, status.Errorf(codes.NotFound, "domain not found: no domain with matching uuid '%s'", k.Uuid)
		}
	case *apiv1.LookupDomainRequest_Id:
		s.record("LookupDomain", "id="+strconv.Itoa(int(k.Id)))
		for _, d := range s.domains {
			if d.Id == k.Id && d.Id >= 0 {
				found = d
			}
		}
		if found == nil {
			return nil, status.Errorf(codes.NotFound, "domain not found: no domain with matching id %d", k.Id)
		}
	default:
		return nil, status.Error(codes.InvalidArgument, "lookup needs a name, uuid or id")
	}
	return &apiv1.LookupDomainResponse{Domain: cloneDomain(found)}, nil
}

func (v *virtService) DefineDomain(_ context.Context, r *apiv1.DefineDomainRequest) (*apiv1.DefineDomainResponse, error) {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("DefineDomain")
	if err := v.conn(r.GetConnection(), true); err != nil {
		return nil, err
	}
	d, updated, err := s.addDomain(r.GetXml(), "", false)
	if err != nil {
		return nil, err
	}
	detail := virt.DefinedAdded
	if updated {
		detail = virt.DefinedUpdated
	}
	s.emitLocked(d, apiv1.EventType_EVENT_TYPE_DEFINED, detail)
	return &apiv1.DefineDomainResponse{Domain: cloneDomain(d)}, nil
}

func (v *virtService) UndefineDomain(_ context.Context, r *apiv1.UndefineDomainRequest) (*apiv1.UndefineDomainResponse, error) {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("UndefineDomain", r.GetUuid())
	d, err := v.dom(r.GetConnection(), r.GetUuid(), true)
	if err != nil {
		return nil, err
	}
	if !d.Persistent {
		return nil, status.Error(codes.FailedPrecondition, "cannot undefine transient domain")
	}
	s.emitLocked(d, apiv1.EventType_EVENT_TYPE_UNDEFINED, virt.UndefinedRemoved)
	if d.Id >= 0 {
		d.Persistent, d.Autostart = false, false
	} else {
		delete(s.domains, d.Uuid)
	}
	return &apiv1.UndefineDomainResponse{}, nil
}

// transition applies one state change under s.mu.
func (v *virtService) transition(call, conn, uuid string, f func(d *domain) error) error {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record(call, uuid)
	d, err := v.dom(conn, uuid, true)
	if err != nil {
		return err
	}
	return f(d)
}

func notRunning(d *domain) error {
	return status.Errorf(codes.FailedPrecondition, "domain '%s' is not running", d.Name)
}

func (v *virtService) StartDomain(_ context.Context, r *apiv1.StartDomainRequest) (*apiv1.StartDomainResponse, error) {
	var out *apiv1.Domain
	err := v.transition("StartDomain", r.GetConnection(), r.GetUuid(), func(d *domain) error {
		if d.Id >= 0 {
			return status.Errorf(codes.FailedPrecondition, "domain '%s' is already active", d.Name)
		}
		v.s.nextID++
		d.Id, d.State, d.Reason = v.s.nextID, stRunning, virt.RunningBooted
		v.s.emitLocked(d, apiv1.EventType_EVENT_TYPE_STARTED, virt.StartedBooted)
		out = cloneDomain(d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &apiv1.StartDomainResponse{Domain: out}, nil
}

func (v *virtService) stop(d *domain, reason int32, detail int32) {
	d.Id, d.State, d.Reason = -1, stShutoff, reason
	v.s.emitLocked(d, apiv1.EventType_EVENT_TYPE_STOPPED, detail)
	if !d.Persistent {
		delete(v.s.domains, d.Uuid)
	}
}

func (v *virtService) ShutdownDomain(_ context.Context, r *apiv1.ShutdownDomainRequest) (*apiv1.ShutdownDomainResponse, error) {
	err := v.transition("ShutdownDomain", r.GetConnection(), r.GetUuid(), func(d *domain) error {
		if d.Id < 0 {
			return notRunning(d)
		}
		v.s.emitLocked(d, apiv1.EventType_EVENT_TYPE_SHUTDOWN, virt.ShutdownFinished)
		v.stop(d, virt.ShutoffShutdown, virt.StoppedShutdown)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &apiv1.ShutdownDomainResponse{}, nil
}

func (v *virtService) RebootDomain(_ context.Context, r *apiv1.RebootDomainRequest) (*apiv1.RebootDomainResponse, error) {
	err := v.transition("RebootDomain", r.GetConnection(), r.GetUuid(), func(d *domain) error {
		if d.Id < 0 {
			return notRunning(d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &apiv1.RebootDomainResponse{}, nil
}

func (v *virtService) DestroyDomain(_ context.Context, r *apiv1.DestroyDomainRequest) (*apiv1.DestroyDomainResponse, error) {
	err := v.transition("DestroyDomain", r.GetConnection(), r.GetUuid(), func(d *domain) error {
		if d.Id < 0 {
			return notRunning(d)
		}
		v.stop(d, virt.ShutoffDestroyed, virt.StoppedDestroyed)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &apiv1.DestroyDomainResponse{}, nil
}

func (v *virtService) SuspendDomain(_ context.Context, r *apiv1.SuspendDomainRequest) (*apiv1.SuspendDomainResponse, error) {
	err := v.transition("SuspendDomain", r.GetConnection(), r.GetUuid(), func(d *domain) error {
		if d.State != stRunning {
			return notRunning(d)
		}
		d.State, d.Reason = stPaused, virt.PausedUser
		v.s.emitLocked(d, apiv1.EventType_EVENT_TYPE_SUSPENDED, virt.SuspendedPaused)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &apiv1.SuspendDomainResponse{}, nil
}

func (v *virtService) ResumeDomain(_ context.Context, r *apiv1.ResumeDomainRequest) (*apiv1.ResumeDomainResponse, error) {
	err := v.transition("ResumeDomain", r.GetConnection(), r.GetUuid(), func(d *domain) error {
		if d.State != stPaused {
			return status.Errorf(codes.FailedPrecondition, "domain '%s' is not paused", d.Name)
		}
		d.State, d.Reason = stRunning, virt.RunningUnpaused
		v.s.emitLocked(d, apiv1.EventType_EVENT_TYPE_RESUMED, virt.ResumedUnpaused)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &apiv1.ResumeDomainResponse{}, nil
}

func (v *virtService) read(call, conn, uuid string) (*domain, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	v.s.record(call, uuid)
	d, err := v.dom(conn, uuid, false)
	if err != nil {
		return nil, err
	}
	cp := *d
	return &cp, nil
}

func (v *virtService) GetDomainInfo(_ context.Context, r *apiv1.GetDomainInfoRequest) (*apiv1.GetDomainInfoResponse, error) {
	d, err := v.read("GetDomainInfo", r.GetConnection(), r.GetUuid())
	if err != nil {
		return nil, err
	}
	info := &apiv1.DomainInfo{State: d.State, MaxMemoryKib: d.memoryKiB, MemoryKib: d.memoryKiB, Vcpus: d.vcpus}
	if d.Id >= 0 {
		info.CpuTimeNs = 1500000000
	}
	return &apiv1.GetDomainInfoResponse{Info: info}, nil
}

func (v *virtService) GetDomainState(_ context.Context, r *apiv1.GetDomainStateRequest) (*apiv1.GetDomainStateResponse, error) {
	d, err := v.read("GetDomainState", r.GetConnection(), r.GetUuid())
	if err != nil {
		return nil, err
	}
	return &apiv1.GetDomainStateResponse{State: d.State, Reason: d.Reason}, nil
}

func (v *virtService) GetDomainXML(_ context.Context, r *apiv1.GetDomainXMLRequest) (*apiv1.GetDomainXMLResponse, error) {
	d, err := v.read("GetDomainXML", r.GetConnection(), r.GetUuid())
	if err != nil {
		return nil, err
	}
	x := d.xml
	if !r.GetInactive() && d.Id >= 0 {
		x = "<!-- live -->\n" + x
	}
	return &apiv1.GetDomainXMLResponse{Xml: x}, nil
}

func (v *virtService) GetDomainAutostart(_ context.Context, r *apiv1.GetDomainAutostartRequest) (*apiv1.GetDomainAutostartResponse, error) {
	d, err := v.read("GetDomainAutostart", r.GetConnection(), r.GetUuid())
	if err != nil {
		return nil, err
	}
	return &apiv1.GetDomainAutostartResponse{Autostart: d.Autostart}, nil
}

func (v *virtService) SetDomainAutostart(_ context.Context, r *apiv1.SetDomainAutostartRequest) (*apiv1.SetDomainAutostartResponse, error) {
	err := v.transition("SetDomainAutostart", r.GetConnection(), r.GetUuid(), func(d *domain) error {
		if !d.Persistent {
			return status.Error(codes.FailedPrecondition, "cannot set autostart for transient domain")
		}
		d.Autostart = r.GetAutostart()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &apiv1.SetDomainAutostartResponse{}, nil
}

// DomainXMLFromNative keeps the configuration it was sent (see
// NativeConfigs) and answers as virtd does for the test driver, which
// converts nothing.
func (v *virtService) DomainXMLFromNative(_ context.Context, r *apiv1.DomainXMLFromNativeRequest) (*apiv1.DomainXMLFromNativeResponse, error) {
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("DomainXMLFromNative", r.GetFormat())
	if err := v.conn(r.GetConnection(), false); err != nil {
		return nil, err
	}
	s.native = append(s.native, r.GetConfig())
	return nil, status.Error(codes.Unimplemented, "this driver does not support domxml-from-native")
}

func (v *virtService) WatchEvents(stream grpc.BidiStreamingServer[apiv1.WatchEventsRequest, apiv1.WatchEventsResponse]) error {
	s := v.s
	r, err := stream.Recv()
	if err != nil {
		return err
	}
	// Credit is not counted: the fake's clients read.
	go func() {
		for {
			if _, err := stream.Recv(); err != nil {
				return
			}
		}
	}()
	ch := make(chan *apiv1.Event, 64)
	s.mu.Lock()
	s.record("WatchEvents")
	if err := v.conn(r.GetConnection(), false); err != nil {
		s.mu.Unlock()
		return err
	}
	s.subs[ch] = struct{}{}
	s.watches++
	s.subCond.Broadcast()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}()
	// Like virtd: the header says the watch is registered.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for {
		select {
		case ev := <-ch:
			if err := stream.Send(&apiv1.WatchEventsResponse{Event: ev}); err != nil {
				return err
			}
		case <-s.endSubs:
			return nil
		case <-stream.Context().Done():
			return nil
		}
	}
}

type adminService struct {
	apiv1.UnimplementedAdminServiceServer
	s *Server
}

func (a *adminService) ListDrivers(context.Context, *apiv1.ListDriversRequest) (*apiv1.ListDriversResponse, error) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.s.record("ListDrivers")
	return &apiv1.ListDriversResponse{Drivers: a.s.drivers, Rejected: a.s.rejected, Directories: a.s.dirs}, nil
}

func (a *adminService) Rescan(context.Context, *apiv1.RescanRequest) (*apiv1.RescanResponse, error) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	a.s.record("Rescan")
	if a.s.rescan == nil {
		return &apiv1.RescanResponse{}, nil
	}
	return a.s.rescan, nil
}
