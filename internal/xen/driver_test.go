package xen

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/drivertest"
	"github.com/virtd/virtd/internal/xen/domconfig"
	"github.com/virtd/virtd/internal/xen/libxl"
	"github.com/virtd/virtd/virt"
)

const domainXML = `<domain type='xen'>
  <name>%s</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type>linux</type><kernel>/boot/vmlinuz</kernel></os>
</domain>`

// unsupported are the optional calls the driver does not have: of the
// statistics, what libxl's domain list gives makes DomainStats, and the
// others are not read.
var unsupported = map[drivertest.Op]bool{
	drivertest.OpBlockStats: true, drivertest.OpInterfaceStats: true, drivertest.OpMemoryStats: true,
	drivertest.OpNodeStats: true, drivertest.OpDomainCapabilities: true,
}

// TestConformance runs the conformance suite against the driver's own
// logic (definitions on disk, states and reasons, events, on_poweroff)
// over fakeHypervisor, an in-memory stand-in for libxl. What it does not
// check is libxl itself: see TestUnavailable and package libxl.
func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Config{
		New: func(t *testing.T) driver.Driver {
			return newDriver(hclog.NewNullLogger(), newFake(), "", t.TempDir(), t.TempDir())
		},
		DomainXML:     func(name string) string { return fmt.Sprintf(domainXML, name) },
		URI:           "xen:///system",
		SettleTimeout: 5 * time.Second,
		RebootNewID:   true,
		Unsupported:   unsupported,
	})
}

// TestUnavailable drives the driver as it runs on this kind of host: libxl
// cannot be opened, so Info says why, every domain call fails at once with
// ErrUnavailable and that reason, and what needs no hypervisor still works.
func TestUnavailable(t *testing.T) {
	if ctx, err := libxl.Open(); err == nil {
		ctx.Close()
		t.Skip("a Xen hypervisor is usable here; the unavailable path cannot be shown")
	}
	d := New(driver.Env{})
	drv := drivertest.Pair(t, d)
	ctx := t.Context()
	info, err := drv.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Health != driver.HealthUnavailable || !strings.Contains(info.HealthReason, "no Xen hypervisor on this host") {
		t.Fatalf("Info = %+v; want unavailable, no Xen hypervisor", info)
	}
	if info.Name != "xen" || info.HypervisorType != "Xen" || len(info.Schemes) != 1 || info.Schemes[0] != "xen" {
		t.Errorf("Info = %+v", info)
	}
	t.Logf("reason: %s", info.HealthReason)
	for _, uri := range []string{"xen:///system", "xen:///", "xen+unix:///system"} {
		if err := drv.CheckURI(ctx, uri); err != nil {
			t.Errorf("CheckURI(%s): %v", uri, err)
		}
	}
	if err := drv.CheckURI(ctx, "xen:///session"); !errors.Is(err, virt.ErrInvalidArgument) {
		t.Errorf("CheckURI(xen:///session) = %v", err)
	}
	if h, err := drv.Hostname(ctx); err != nil || h == "" {
		t.Errorf("Hostname = %q, %v", h, err)
	}
	uuid := "3f1c2a4e-8b6d-4d0e-9a51-7c2e0b9d4f11"
	calls := map[string]func() error{
		"ListDomains":  func() error { _, err := drv.ListDomains(ctx, 0); return err },
		"LookupDomain": func() error { _, err := drv.LookupDomain(ctx, virt.ByName("x")); return err },
		"DefineDomain": func() error { _, err := drv.DefineDomain(ctx, fmt.Sprintf(domainXML, "x")); return err },
		"StartDomain":  func() error { _, err := drv.StartDomain(ctx, uuid); return err },
		"CreateDomain": func() error { _, err := drv.CreateDomain(ctx, fmt.Sprintf(domainXML, "x")); return err },
		"Shutdown":     func() error { return drv.ShutdownDomain(ctx, uuid) },
		"Destroy":      func() error { return drv.DestroyDomain(ctx, uuid) },
		"Suspend":      func() error { return drv.SuspendDomain(ctx, uuid) },
		"DomainXML":    func() error { _, err := drv.DomainXML(ctx, uuid, false); return err },
		"NodeInfo":     func() error { _, err := drv.NodeInfo(ctx); return err },
		"Capabilities": func() error { _, err := drv.Capabilities(ctx); return err },
		"DomainStats":  func() error { _, err := drv.(driver.Stats).DomainStats(ctx, nil, 0, 0); return err },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if !errors.Is(err, virt.ErrUnavailable) || !strings.Contains(err.Error(), "no Xen hypervisor") {
			t.Errorf("%s = %v; want unavailable with the reason", name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s took %v", name, d)
		}
	}
	// A stream's refusal shows when it is read: the channel closes at once.
	if ch, err := drv.WatchEvents(ctx); err == nil {
		select {
		case ev, ok := <-ch:
			if ok {
				t.Errorf("WatchEvents sent %+v without a hypervisor", ev)
			}
		case <-time.After(2 * time.Second):
			t.Error("WatchEvents stayed open without a hypervisor")
		}
	} else if !errors.Is(err, virt.ErrUnavailable) {
		t.Errorf("WatchEvents = %v", err)
	}
	if n, err := drv.RunningGuests(ctx); err != nil || n != 0 {
		t.Errorf("RunningGuests = %d, %v", n, err)
	}
	// The xl.cfg conversion is pure Go and works anyway.
	conv := drv.(driver.NativeConverter)
	cfg, err := conv.DomainXMLToNative(ctx, "xen-xl", fmt.Sprintf(domainXML, "conv"))
	if err != nil || !strings.Contains(cfg, `name = "conv"`) {
		t.Fatalf("DomainXMLToNative = %q, %v", cfg, err)
	}
	x, err := conv.DomainXMLFromNative(ctx, "xen-xl", cfg)
	if err != nil || !strings.Contains(x, "<name>conv</name>") {
		t.Fatalf("DomainXMLFromNative = %q, %v", x, err)
	}
	if _, err := conv.DomainXMLToNative(ctx, "xen-sxpr", "<domain/>"); !errors.Is(err, virt.ErrNotSupported) {
		t.Errorf("format xen-sxpr: %v, want not supported", err)
	}
}

// TestRestartFindsDomains checks that a new driver process finds the
// domains Xen still runs, with their live XML.
func TestRestartFindsDomains(t *testing.T) {
	hv := newFake()
	cfgDir, runDir := t.TempDir(), t.TempDir()
	ctx := t.Context()
	d1 := newDriver(hclog.NewNullLogger(), hv, "", cfgDir, runDir)
	dom, err := d1.DefineDomain(ctx, fmt.Sprintf(domainXML, "survivor"))
	if err != nil {
		t.Fatal(err)
	}
	started, err := d1.StartDomain(ctx, dom.UUID)
	if err != nil {
		t.Fatal(err)
	}
	d2 := newDriver(hclog.NewNullLogger(), hv, "", cfgDir, runDir)
	got, err := d2.LookupDomain(ctx, virt.ByName("survivor"))
	if err != nil || got.ID != started.ID || got.State != virt.StateRunning || !got.Persistent {
		t.Fatalf("after restart: %+v, %v; want running with ID %d", got, err, started.ID)
	}
	x, err := d2.DomainXML(ctx, dom.UUID, false)
	if err != nil || !strings.Contains(x, fmt.Sprintf("id=\"%d\"", started.ID)) {
		t.Fatalf("live XML after restart: %v\n%s", err, x)
	}
}

// TestRestartFindsCreated: a domain created from XML (transient) is found
// again by a new driver process, transient, and vanishes when it stops.
func TestRestartFindsCreated(t *testing.T) {
	hv := newFake()
	cfgDir, runDir := t.TempDir(), t.TempDir()
	ctx := t.Context()
	d1 := newDriver(hclog.NewNullLogger(), hv, "", cfgDir, runDir)
	created, err := d1.CreateDomain(ctx, fmt.Sprintf(domainXML, "passing"))
	if err != nil {
		t.Fatal(err)
	}
	if created.Persistent || created.State != virt.StateRunning {
		t.Fatalf("CreateDomain = %+v, want running and transient", created)
	}
	d2 := newDriver(hclog.NewNullLogger(), hv, "", cfgDir, runDir)
	got, err := d2.LookupDomain(ctx, virt.ByName("passing"))
	if err != nil || got.ID != created.ID || got.State != virt.StateRunning || got.Persistent {
		t.Fatalf("after restart: %+v, %v; want running and transient with ID %d", got, err, created.ID)
	}
	x, err := d2.DomainXML(ctx, created.UUID, false)
	if err != nil || !strings.Contains(x, fmt.Sprintf("id=\"%d\"", created.ID)) || !strings.Contains(x, "/boot/vmlinuz") {
		t.Fatalf("live XML after restart: %v\n%s", err, x)
	}
	if err := d2.DestroyDomain(ctx, created.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := d2.LookupDomain(ctx, virt.ByUUID(created.UUID)); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("after destroy: %v, want not found", err)
	}
}

// fakeHypervisor stands in for Xen: domains with domids, flags, and the
// shutdown and death events libxl would report. A guest powers off 20 ms
// after a shutdown request, and goes down for a reboot 20 ms after a
// reboot request, as a Linux guest on Xen does: the toolstack (the driver)
// must make the domain again. A guest that runs uses all of its CPU time.
type fakeHypervisor struct {
	mu     sync.Mutex
	next   uint32
	doms   map[uint32]*libxl.DomInfo
	events chan libxl.Event
	// counted is when each domain's CPU time was last counted.
	counted map[uint32]time.Time
}

func newFake() *fakeHypervisor {
	return &fakeHypervisor{next: 1, doms: map[uint32]*libxl.DomInfo{
		0: {DomID: 0, UUID: "00000000-0000-0000-0000-000000000000", Name: "Domain-0", Running: true, MaxMemKiB: 1 << 20, CurrentMemKiB: 1 << 20, VCPUsOnline: 2},
	}, events: make(chan libxl.Event, 1024), counted: map[uint32]time.Time{}}
}

// countLocked adds to each running domain's CPU time the time since it
// was last counted.
func (f *fakeHypervisor) countLocked() {
	now := time.Now()
	for id, d := range f.doms {
		if last, ok := f.counted[id]; ok && d.Running && !d.Paused {
			d.CPUTime += now.Sub(last)
		}
		f.counted[id] = now
	}
}

func (f *fakeHypervisor) Version() uint64 { return 4017000 }
func (f *fakeHypervisor) PhysInfo() (*libxl.PhysInfo, error) {
	return &libxl.PhysInfo{CPUs: 2, MHz: 2000, Nodes: 1, CoresPerSocket: 2, ThreadsPerCore: 1, MemoryKiB: 8 << 20}, nil
}
func (f *fakeHypervisor) Events() <-chan libxl.Event { return f.events }
func (f *fakeHypervisor) Watch(uint32) error         { return nil }

func (f *fakeHypervisor) List() ([]libxl.DomInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.countLocked()
	out := make([]libxl.DomInfo, 0, len(f.doms))
	for _, d := range f.doms {
		out = append(out, *d)
	}
	return out, nil
}

func (f *fakeHypervisor) Create(c *domconfig.Config) (uint32, error) {
	if _, err := libxl.Build(c); err != nil { // what libxl would be given
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.next
	f.next++
	f.doms[id] = &libxl.DomInfo{DomID: id, UUID: c.UUID, Name: c.Name, Running: true,
		MaxMemKiB: c.MaxMemKiB, CurrentMemKiB: c.MemKiB, VCPUsOnline: uint32(c.VCPUs)}
	return id, nil
}

func (f *fakeHypervisor) with(domid uint32, fn func(d *libxl.DomInfo)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.countLocked()
	d := f.doms[domid]
	if d == nil {
		return &libxl.Error{Op: "fake", Code: -21}
	}
	fn(d)
	return nil
}

func (f *fakeHypervisor) Shutdown(domid uint32) error { return f.goDown(domid, libxl.ShutdownPoweroff) }
func (f *fakeHypervisor) Reboot(domid uint32) error   { return f.goDown(domid, libxl.ShutdownReboot) }

// goDown is the guest answering a shutdown or reboot request.
func (f *fakeHypervisor) goDown(domid uint32, why libxl.ShutdownReason) error {
	return f.with(domid, func(d *libxl.DomInfo) {
		time.AfterFunc(20*time.Millisecond, func() {
			_ = f.with(domid, func(d *libxl.DomInfo) { d.Shutdown, d.Running, d.ShutdownReason = true, false, why })
			f.events <- libxl.Event{Kind: libxl.EventShutdown, DomID: domid, Reason: why}
		})
	})
}
func (f *fakeHypervisor) Pause(domid uint32) error {
	return f.with(domid, func(d *libxl.DomInfo) { d.Paused = true })
}
func (f *fakeHypervisor) Unpause(domid uint32) error {
	return f.with(domid, func(d *libxl.DomInfo) { d.Paused = false })
}

func (f *fakeHypervisor) Destroy(domid uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.doms[domid] == nil {
		return &libxl.Error{Op: "fake", Code: -21}
	}
	delete(f.doms, domid)
	f.events <- libxl.Event{Kind: libxl.EventDeath, DomID: domid}
	return nil
}

var _ hypervisor = (*fakeHypervisor)(nil)

// TestDomainsXenRuns: the domains Xen runs that the driver did not start
// (Domain-0, one made with xl create) are listed as transient, with Xen's
// IDs; their names and UUIDs are taken, under the list's rules; defining
// one with its own name and UUID makes it persistent; one that stops is
// shut off if defined, else gone.
func TestDomainsXenRuns(t *testing.T) {
	hv := newFake()
	const xlUUID, tmpUUID = "5a1e0c3d-2b4f-4e6a-8c9d-0f1e2d3c4b5a", "6b2f1d4e-3c5a-4f7b-9d0e-1a2b3c4d5e6f"
	hv.doms[7] = &libxl.DomInfo{DomID: 7, UUID: xlUUID, Name: "by-xl", Running: true, MaxMemKiB: 1 << 17}
	hv.doms[8] = &libxl.DomInfo{DomID: 8, UUID: tmpUUID, Name: "tmp", Running: true, MaxMemKiB: 1 << 17}
	d := newDriver(hclog.NewNullLogger(), hv, "", t.TempDir(), t.TempDir())
	ctx := t.Context()
	doms, err := d.ListDomains(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range doms {
		got = append(got, fmt.Sprintf("%s/%d/%s/persistent=%v", x.Name, x.ID, x.State, x.Persistent))
	}
	if want := "[Domain-0/0/running/persistent=false by-xl/7/running/persistent=false tmp/8/running/persistent=false]"; fmt.Sprint(got) != want {
		t.Errorf("ListDomains = %v, want %s", got, want)
	}
	if dom0, err := d.LookupDomain(ctx, virt.ByID(0)); err != nil || dom0.Name != "Domain-0" {
		t.Errorf("LookupDomain(ID 0) = %+v, %v", dom0, err)
	}
	_, err = d.DefineDomain(ctx, fmt.Sprintf(domainXML, "Domain-0"))
	if !errors.Is(err, virt.ErrAlreadyExists) || !strings.Contains(err.Error(), "domain 'Domain-0' already exists with uuid 00000000-0000-0000-0000-000000000000") {
		t.Errorf("define Domain-0 = %v, want already exists", err)
	}
	_, err = d.DefineDomain(ctx, strings.Replace(fmt.Sprintf(domainXML, "other"), "<name>", "<uuid>"+xlUUID+"</uuid><name>", 1))
	if !errors.Is(err, virt.ErrAlreadyExists) || !strings.Contains(err.Error(), "domain 'by-xl' is already defined with uuid "+xlUUID) {
		t.Errorf("define by-xl's UUID under another name = %v, want already exists", err)
	}
	def, err := d.DefineDomain(ctx, strings.Replace(fmt.Sprintf(domainXML, "by-xl"), "<name>", "<uuid>"+xlUUID+"</uuid><name>", 1))
	if err != nil || !def.Persistent || def.ID != 7 || def.State != virt.StateRunning {
		t.Fatalf("define by-xl with its UUID = %+v, %v; want persistent, running with ID 7", def, err)
	}
	// xl destroy, behind the driver's back.
	hv.mu.Lock()
	delete(hv.doms, 7)
	delete(hv.doms, 8)
	hv.mu.Unlock()
	if x, err := d.LookupDomain(ctx, virt.ByName("by-xl")); err != nil || x.State != virt.StateShutoff || x.ID != -1 || !x.Persistent {
		t.Errorf("by-xl after xl destroy = %+v, %v; want shut off, persistent", x, err)
	}
	if _, err := d.LookupDomain(ctx, virt.ByName("tmp")); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("tmp after xl destroy: %v, want not found", err)
	}
	if _, err := d.LookupDomain(ctx, virt.ByID(8)); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("ID 8 after xl destroy: %v, want not found", err)
	}
}
