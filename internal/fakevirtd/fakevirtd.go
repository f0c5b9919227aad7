// Package fakevirtd is a small in-process stand-in for the virtd daemon,
// for the tests of the client library and of virtsh. It serves the public
// API's VirtService on a read-write and a read-only unix socket and the
// AdminService on an admin socket, with the three default socket names in
// one directory, and keeps a few domains in memory the way libvirt's test
// driver does (test:///default has a running domain named "test").
//
// It is not the daemon: it checks little, and the real end-to-end tests run
// against the real virtd.
package fakevirtd

import (
	"crypto/rand"
	"encoding/xml"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
)

// Socket names, the daemon's.
const (
	SocketName         = "virtd-sock"
	ReadOnlySocketName = "virtd-sock-ro"
	AdminSocketName    = "virtd-admin-sock"
)

// Server is a running fake daemon.
type Server struct {
	Dir         string
	Socket      string
	ROSocket    string
	AdminSocket string

	servers []*grpc.Server

	mu       sync.Mutex
	conns    map[string]bool // id -> read-only
	nextConn int
	domains  map[string]*domain // by UUID
	nextID   int32
	seq      uint64
	subs     map[chan *apiv1.Event]struct{}
	subCond  *sync.Cond
	watches  int
	calls    []string
	native   []string
	endSubs  chan struct{}

	drivers  []*apiv1.DriverStatus
	rejected []*apiv1.RejectedFile
	dirs     []string
	rescan   *apiv1.RescanResponse
}

type domain struct {
	Name       string
	Uuid       string
	Id         int32
	State      apiv1.DomainState
	Reason     int32
	Persistent bool
	Autostart  bool
	xml        string
	memoryKiB  uint64
	vcpus      uint32
}

// Start serves the fake on dir/virtd-sock, dir/virtd-sock-ro and
// dir/virtd-admin-sock. Stop it with Stop.
func Start(dir string) (*Server, error) {
	s := &Server{
		Dir:         dir,
		Socket:      filepath.Join(dir, SocketName),
		ROSocket:    filepath.Join(dir, ReadOnlySocketName),
		AdminSocket: filepath.Join(dir, AdminSocketName),
		conns:       map[string]bool{},
		domains:     map[string]*domain{},
		subs:        map[chan *apiv1.Event]struct{}{},
		endSubs:     make(chan struct{}),
		drivers: []*apiv1.DriverStatus{{
			Name: "test", Path: "/usr/libexec/virtd/drivers/virtd-driver-test", Version: "0.1.0",
			ApiVersion: 1, Schemes: []string{"test"}, State: "running", Health: "available", Pid: 4242,
		}},
		dirs: []string{"/usr/libexec/virtd/drivers"},
	}
	s.subCond = sync.NewCond(&s.mu)
	s.addDomain(testXML, "11111111-2222-3333-4444-555555555555", true)
	for _, l := range []struct {
		path     string
		register func(*grpc.Server)
	}{
		{s.Socket, func(g *grpc.Server) { apiv1.RegisterVirtServiceServer(g, &virtService{s: s}) }},
		{s.ROSocket, func(g *grpc.Server) { apiv1.RegisterVirtServiceServer(g, &virtService{s: s, ro: true}) }},
		{s.AdminSocket, func(g *grpc.Server) { apiv1.RegisterAdminServiceServer(g, &adminService{s: s}) }},
	} {
		ln, err := net.Listen("unix", l.path)
		if err != nil {
			s.Stop()
			return nil, err
		}
		g := grpc.NewServer()
		l.register(g)
		s.servers = append(s.servers, g)
		go g.Serve(ln)
	}
	return s, nil
}

// Stop stops serving at once.
func (s *Server) Stop() {
	for _, g := range s.servers {
		g.Stop()
	}
}

const testXML = `<domain type='test'>
  <name>test</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <memory unit='KiB'>8388608</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu>2</vcpu>
  <os><type arch='i686'>hvm</type></os>
</domain>
`

// Calls returns the RPC methods called so far, in order, with their key
// argument ("StartDomain 1111...").
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// NativeConfigs returns the configurations sent to DomainXMLFromNative,
// in order.
func (s *Server) NativeConfigs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.native...)
}

// WaitWatches blocks until WatchEvents has registered n event streams in
// total since Start (streams that ended count too), so that a test knows
// events emitted from now on reach the n-th stream.
func (s *Server) WaitWatches(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.watches < n {
		s.subCond.Wait()
	}
}

// EndWatches ends every event stream cleanly, as a daemon does when the
// connection closes.
func (s *Server) EndWatches() { close(s.endSubs) }

// SetDrivers sets what ListDrivers answers.
func (s *Server) SetDrivers(drivers []*apiv1.DriverStatus, rejected []*apiv1.RejectedFile, dirs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drivers, s.rejected, s.dirs = drivers, rejected, dirs
}

// SetRescan sets what Rescan answers.
func (s *Server) SetRescan(r *apiv1.RescanResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rescan = r
}

// Emit sends an event to every watcher, as the driver would.
func (s *Server) Emit(name string, typ apiv1.EventType, detail int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.byName(name)
	if d == nil {
		d = &domain{Name: name, Id: -1}
	}
	s.emitLocked(d, typ, detail)
}

func (s *Server) emitLocked(d *domain, typ apiv1.EventType, detail int32) {
	s.seq++
	ev := &apiv1.Event{
		Domain: cloneDomain(d), Type: typ, Detail: detail, Seq: s.seq,
		TimeUnixNano: time.Now().UnixNano(),
	}
	for ch := range s.subs {
		select {
		case ch <- ev:
		default: // a slow watcher loses events; tests keep up
		}
	}
}

func cloneDomain(d *domain) *apiv1.Domain {
	return &apiv1.Domain{
		Name: d.Name, Uuid: d.Uuid, Id: d.Id, State: d.State, Reason: d.Reason,
		Persistent: d.Persistent, Autostart: d.Autostart,
	}
}

func (s *Server) byName(name string) *domain {
	for _, d := range s.domains {
		if d.Name == name {
			return d
		}
	}
	return nil
}

type domainXML struct {
	XMLName       xml.Name `xml:"domain"`
	Name          string   `xml:"name"`
	UUID          string   `xml:"uuid"`
	Memory        uint64   `xml:"memory"`
	CurrentMemory uint64   `xml:"currentMemory"`
	VCPU          uint32   `xml:"vcpu"`
}

// addDomain defines a domain from XML; running starts it too.
func (s *Server) addDomain(x, uuid string, running bool) (*domain, bool, error) {
	var dx domainXML
	if err := xml.Unmarshal([]byte(x), &dx); err != nil {
		return nil, false, status.Errorf(codes.InvalidArgument, "cannot parse domain XML: %v", err)
	}
	if dx.Name == "" {
		return nil, false, status.Error(codes.InvalidArgument, "domain XML has no <name>")
	}
	if dx.UUID == "" {
		dx.UUID = uuid
	}
	if dx.UUID == "" {
		dx.UUID = newUUID()
	}
	if old := s.byName(dx.Name); old != nil {
		if old.Uuid != dx.UUID {
			return nil, false, status.Errorf(codes.AlreadyExists, "domain '%s' already exists with uuid %s", dx.Name, old.Uuid)
		}
		old.xml, old.memoryKiB, old.vcpus, old.Persistent = x, dx.Memory, dx.VCPU, true
		return old, true, nil
	}
	if old := s.domains[dx.UUID]; old != nil {
		return nil, false, status.Errorf(codes.AlreadyExists, "domain '%s' already exists with uuid %s", old.Name, old.Uuid)
	}
	d := &domain{
		Name: dx.Name, Uuid: dx.UUID, Id: -1, State: apiv1.DomainState_DOMAIN_STATE_SHUTOFF, Persistent: true,
		xml: x, memoryKiB: dx.Memory, vcpus: dx.VCPU,
	}
	if running {
		s.nextID++
		d.Id, d.State, d.Reason = s.nextID, apiv1.DomainState_DOMAIN_STATE_RUNNING, 1
	}
	s.domains[d.Uuid] = d
	return d, false, nil
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func (s *Server) sortedDomains() []*domain {
	out := make([]*domain, 0, len(s.domains))
	for _, d := range s.domains {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Server) record(call string, key ...string) {
	s.calls = append(s.calls, strings.TrimSpace(call+" "+strings.Join(key, " ")))
}
