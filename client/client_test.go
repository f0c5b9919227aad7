package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virtd/virtd/client"
	"github.com/virtd/virtd/daemon"
	"github.com/virtd/virtd/daemon/daemontest"
	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/testdriver"
	"github.com/virtd/virtd/virt"
	"google.golang.org/grpc/peer"
	"libvirt.org/go/libvirtxml"
)

// start serves virtd's core and gRPC front end with the test driver in
// this process.
func start(t *testing.T, drivers ...driver.Driver) *daemontest.Daemon {
	return daemontest.Start(t, drivers...)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openTest(t *testing.T, s *daemontest.Daemon) *client.Conn {
	t.Helper()
	ctx := testCtx(t)
	c, err := client.Open(ctx, "test:///default", client.WithSocket(s.Socket))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

const webXML = `<domain type='test'><name>web</name><uuid>aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee</uuid><memory>1024</memory><vcpu>1</vcpu></domain>`

func TestOpenPicksSocket(t *testing.T) {
	s := start(t)
	ctx := testCtx(t)

	t.Run("socket param, transport stripped", func(t *testing.T) {
		c, err := client.Open(ctx, "test+unix:///default?socket="+s.Socket)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		// The URI is the one the daemon opened, transport stripped.
		if c.URI() != "test:///default" || c.Driver() != "test" || c.Socket() != s.Socket || c.ReadOnly() {
			t.Errorf("got uri %q driver %q socket %q read-only %v", c.URI(), c.Driver(), c.Socket(), c.ReadOnly())
		}
	})
	t.Run("run dir from environment", func(t *testing.T) {
		t.Setenv(client.RunDirEnv, s.Dir)
		c, err := client.Open(ctx, "test:///default")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if c.Socket() != s.Socket {
			t.Errorf("socket %q, want %q", c.Socket(), s.Socket)
		}
	})
	t.Run("read-only socket", func(t *testing.T) {
		t.Setenv(client.RunDirEnv, s.Dir)
		c, err := client.OpenReadOnly(ctx, "test:///default")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if c.Socket() != s.ROSocket || !c.ReadOnly() {
			t.Errorf("socket %q readonly %v", c.Socket(), c.ReadOnly())
		}
		d, err := c.LookupByName(ctx, "test")
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Destroy(ctx); !errors.Is(err, client.ErrPermissionDenied) {
			t.Errorf("Destroy on read-only connection: %v", err)
		}
	})
	t.Run("option beats param", func(t *testing.T) {
		c, err := client.Open(ctx, "test:///default?socket=/nonexistent", client.WithSocket(s.Socket))
		if err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	})
}

func TestOpenErrors(t *testing.T) {
	s := start(t)
	ctx := testCtx(t)
	missing := filepath.Join(s.Dir, "nothing-here")

	_, err := client.Open(ctx, "test:///default", client.WithSocket(missing))
	want := "cannot connect to virtd at " + missing + ": no such file (is virtd running?): unavailable"
	if !errors.Is(err, client.ErrUnavailable) || err.Error() != want {
		t.Errorf("missing socket: got %v, want %q (unavailable)", err, want)
	}

	// A socket file nobody listens on.
	stale := filepath.Join(s.Dir, "stale")
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = client.Open(ctx, "test:///default", client.WithSocket(stale))
	if !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), stale) {
		t.Errorf("stale socket: %v", err)
	}

	_, err = client.Open(ctx, "qemu+tls://host/system")
	if !errors.Is(err, client.ErrNotSupported) || !strings.Contains(err.Error(), "TLS transport not supported yet") {
		t.Errorf("tls: %v", err)
	}
	_, err = client.Open(ctx, "qemu+ssh://host/system")
	if !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("ssh: %v", err)
	}
	_, err = client.Open(ctx, "xen:///system", client.WithSocket(s.Socket))
	if !errors.Is(err, client.ErrNotFound) || !strings.Contains(err.Error(), "xen:///system") {
		t.Errorf("unknown driver: %v", err)
	}
	_, err = client.OpenAdmin(ctx, client.WithSocket(missing))
	if !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("admin on missing socket: %v", err)
	}
}

// TestHostCalls checks that the host calls bring the driver's answers
// unchanged.
func TestHostCalls(t *testing.T) {
	drv := testdriver.New(driver.Env{})
	s := start(t, drv)
	c := openTest(t, s)
	ctx := testCtx(t)

	v, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := drv.Info(ctx)
	if *v != (client.VersionInfo{Daemon: daemon.Version, Driver: info.Version, HypervisorType: info.HypervisorType, Hypervisor: info.HypervisorVersion}) || v.HypervisorType != "Test" {
		t.Errorf("Version = %+v", v)
	}
	host, _ := drv.Hostname(ctx)
	if h, err := c.Hostname(ctx); err != nil || h != host || h == "" {
		t.Errorf("Hostname = %q, %v; want %q", h, err, host)
	}
	caps, _ := drv.Capabilities(ctx)
	if x, err := c.Capabilities(ctx); err != nil || x != caps || !strings.Contains(x, "<capabilities>") {
		t.Errorf("Capabilities = %q, %v", x, err)
	}
	n, err := c.NodeInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := drv.NodeInfo(ctx)
	if *n != *want || n.CPUs == 0 {
		t.Errorf("NodeInfo = %+v, want %+v", n, want)
	}
	if err := c.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestDomainLifecycle(t *testing.T) {
	s := start(t)
	c := openTest(t, s)
	ctx := testCtx(t)

	d, err := c.DefineXML(ctx, webXML)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != "web" || d.UUID() != "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee" || d.ID() != -1 {
		t.Fatalf("defined %+v", d.Snapshot())
	}
	if _, err := c.DefineXML(ctx, strings.Replace(webXML, "aaaaaaaa", "ffffffff", 1)); !errors.Is(err, client.ErrAlreadyExists) {
		t.Errorf("redefine with another uuid: %v", err)
	}

	list, err := c.ListDomains(ctx, virt.ListInactive)
	if err != nil || len(list) != 1 || list[0].Name() != "web" {
		t.Fatalf("ListDomains(inactive) = %v, %v", list, err)
	}
	all, err := c.ListDomains(ctx, 0)
	if err != nil || len(all) != 2 {
		t.Fatalf("ListDomains(0) = %d domains, %v", len(all), err)
	}

	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if d.ID() < 1 || d.Snapshot().State != virt.StateRunning {
		t.Errorf("after Start: %+v", d.Snapshot())
	}
	if err := d.Start(ctx); !errors.Is(err, client.ErrFailedPrecondition) {
		t.Errorf("second Start: %v", err)
	}
	byID, err := c.LookupByID(ctx, d.ID())
	if err != nil || byID.UUID() != d.UUID() {
		t.Errorf("LookupByID: %v %v", byID, err)
	}
	byUUID, err := c.LookupByUUID(ctx, d.UUID())
	if err != nil || byUUID.Name() != "web" {
		t.Errorf("LookupByUUID: %v %v", byUUID, err)
	}

	for _, step := range []struct {
		name   string
		do     func(context.Context) error
		state  virt.State
		reason int32
	}{
		{"suspend", d.Suspend, virt.StatePaused, virt.PausedUser},
		{"resume", d.Resume, virt.StateRunning, virt.RunningUnpaused},
		{"reboot", d.Reboot, virt.StateRunning, virt.RunningBooted},
		{"destroy", d.Destroy, virt.StateShutoff, virt.ShutoffDestroyed},
	} {
		if err := step.do(ctx); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		st, reason, err := d.State(ctx)
		if err != nil || st != step.state || reason != step.reason {
			t.Errorf("after %s: state %v (%s), %v", step.name, st, virt.ReasonString(st, reason), err)
		}
	}
	snap, err := d.Refresh(ctx)
	if err != nil || snap.ID != -1 || snap.State != virt.StateShutoff || d.ID() != -1 {
		t.Errorf("Refresh = %+v, %v", snap, err)
	}

	info, err := d.Info(ctx)
	if err != nil || info.MaxMemoryKiB != 1024 || info.VCPUs != 1 || info.State != virt.StateShutoff {
		t.Errorf("Info = %+v, %v", info, err)
	}
	var x libvirtxml.Domain
	if doc, err := d.XML(ctx, true); err != nil || x.Unmarshal(doc) != nil || x.Name != "web" || x.UUID != d.UUID() || x.Memory.Value != 1024 {
		t.Errorf("XML = %q, %v", doc, err)
	}
	if err := d.SetAutostart(ctx, true); err != nil {
		t.Fatal(err)
	}
	if on, err := d.Autostart(ctx); err != nil || !on {
		t.Errorf("Autostart = %v, %v", on, err)
	}
	if err := d.Shutdown(ctx); !errors.Is(err, client.ErrFailedPrecondition) {
		t.Errorf("Shutdown of a shut off domain: %v", err)
	}
	if err := d.Undefine(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = c.LookupByName(ctx, "web")
	if !errors.Is(err, client.ErrNotFound) || !strings.Contains(err.Error(), "'web'") {
		t.Errorf("lookup after undefine: %v", err)
	}
	if err := d.Start(ctx); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Start after undefine: %v", err)
	}
}

// TestCreateXML: a domain created from XML runs, is transient, and is
// gone once destroyed, with a Started and a Stopped event and no
// Undefined one; names in use, autostart and a read-only connection are
// refused with their kinds.
func TestCreateXML(t *testing.T) {
	s := start(t)
	c := openTest(t, s)
	ctx := testCtx(t)
	stream, err := c.WatchEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}

	d, err := c.CreateXML(ctx, webXML)
	if err != nil {
		t.Fatal(err)
	}
	snap := d.Snapshot()
	if d.Name() != "web" || d.UUID() != "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee" || d.ID() < 1 || snap.Persistent || snap.State != virt.StateRunning {
		t.Fatalf("created %+v, want web running and transient", snap)
	}
	transient, err := c.ListDomains(ctx, virt.ListTransient)
	if err != nil || len(transient) != 1 || transient[0].UUID() != d.UUID() {
		t.Errorf("ListDomains(transient) = %v, %v", transient, err)
	}
	if _, err := c.CreateXML(ctx, webXML); !errors.Is(err, client.ErrFailedPrecondition) || !strings.Contains(err.Error(), "domain 'web' is already active") {
		t.Errorf("create of a running domain's name and UUID: %v", err)
	}
	if _, err := c.CreateXML(ctx, strings.Replace(webXML, "aaaaaaaa", "ffffffff", 1)); !errors.Is(err, client.ErrAlreadyExists) {
		t.Errorf("create with a running domain's name: %v", err)
	}
	if err := d.SetAutostart(ctx, true); !errors.Is(err, client.ErrFailedPrecondition) {
		t.Errorf("autostart of a transient domain: %v", err)
	}
	ro, err := client.OpenReadOnly(ctx, "test:///default", client.WithSocket(s.ROSocket))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close(ctx)
	if _, err := ro.CreateXML(ctx, strings.Replace(webXML, "web", "ro", 1)); !errors.Is(err, client.ErrPermissionDenied) {
		t.Errorf("create on a read-only connection: %v", err)
	}

	if err := d.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LookupByName(ctx, "web"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("lookup after destroy: %v", err)
	}
	if _, err := d.Refresh(ctx); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Refresh after destroy: %v", err)
	}
	// The next events of web: Started, Stopped, then those of a domain
	// defined afterwards; nothing else (no Undefined).
	fence, err := c.DefineXML(ctx, `<domain type='test'><name>fence</name><memory>1024</memory></domain>`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for done := false; !done; {
		select {
		case ev := <-stream.Events():
			if ev.Domain.UUID == fence.UUID() {
				done = true
			} else {
				got = append(got, ev.Type.String()+" "+virt.EventDetailString(ev.Type, ev.Detail))
			}
		case <-ctx.Done():
			t.Fatalf("no event of the fence domain; got %v", got)
		}
	}
	if want := "[Started Booted Stopped Destroyed]"; fmt.Sprint(got) != want {
		t.Errorf("events of web: %v, want %s", got, want)
	}
}

// recorder is a driver that records the domain calls it gets for a
// client. A call made for a client carries the client's gRPC peer in its
// context; the core's own calls do not: those that fill its view with the
// record of a domain an event named, which come at any time after the
// event.
type recorder struct {
	driver.Driver
	mu    sync.Mutex
	calls []string
}

func (r *recorder) record(ctx context.Context, call string) {
	if _, ok := peer.FromContext(ctx); !ok {
		return
	}
	r.mu.Lock()
	r.calls = append(r.calls, call)
	r.mu.Unlock()
}

func (r *recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *recorder) DomainXML(ctx context.Context, uuid string, inactive bool) (string, error) {
	r.record(ctx, fmt.Sprintf("DomainXML %s inactive=%v", uuid, inactive))
	return r.Driver.DomainXML(ctx, uuid, inactive)
}

func (r *recorder) DomainInfo(ctx context.Context, uuid string) (*virt.DomainInfo, error) {
	r.record(ctx, "DomainInfo "+uuid)
	return r.Driver.DomainInfo(ctx, uuid)
}

func (r *recorder) DomainAutostart(ctx context.Context, uuid string) (bool, error) {
	r.record(ctx, "DomainAutostart "+uuid)
	return r.Driver.DomainAutostart(ctx, uuid)
}

func (r *recorder) SuspendDomain(ctx context.Context, uuid string) error {
	r.record(ctx, "SuspendDomain "+uuid)
	return r.Driver.SuspendDomain(ctx, uuid)
}

func (r *recorder) ResumeDomain(ctx context.Context, uuid string) error {
	r.record(ctx, "ResumeDomain "+uuid)
	return r.Driver.ResumeDomain(ctx, uuid)
}

func (r *recorder) ShutdownDomain(ctx context.Context, uuid string) error {
	r.record(ctx, "ShutdownDomain "+uuid)
	return r.Driver.ShutdownDomain(ctx, uuid)
}

func (r *recorder) ListDomains(ctx context.Context, flags virt.ListFlags) ([]virt.Domain, error) {
	r.record(ctx, fmt.Sprintf("ListDomains %d", flags))
	return r.Driver.ListDomains(ctx, flags)
}

func (r *recorder) LookupDomain(ctx context.Context, key virt.Lookup) (*virt.Domain, error) {
	switch {
	case key.Name != "":
		r.record(ctx, "LookupDomain name="+key.Name)
	case key.UUID != "":
		r.record(ctx, "LookupDomain uuid="+key.UUID)
	default:
		r.record(ctx, fmt.Sprintf("LookupDomain id=%d", key.ID))
	}
	return r.Driver.LookupDomain(ctx, key)
}

// TestCallsMapToDaemon: a call that changes a domain reaches the driver as
// that call; plain reads are answered from the core's view and reach no
// driver, but for the info of a running domain, whose CPU time moves.
func TestCallsMapToDaemon(t *testing.T) {
	r := &recorder{Driver: testdriver.New(driver.Env{})}
	s := start(t, r)
	c := openTest(t, s)
	ctx := testCtx(t)
	d, err := c.LookupByName(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	u := d.UUID()
	// first returns the first driver call fn made ("" for none).
	first := func(fn func()) string {
		before := len(r.Calls())
		fn()
		if calls := r.Calls()[before:]; len(calls) > 0 {
			return calls[0]
		}
		return ""
	}
	for _, tt := range []struct {
		name string
		fn   func()
		want string
	}{
		{"xml", func() { d.XML(ctx, false) }, ""},
		{"xml --inactive", func() { d.XML(ctx, true) }, ""},
		{"autostart", func() { d.Autostart(ctx) }, ""},
		{"lookup by id", func() { c.LookupByID(ctx, 1) }, ""},
		{"lookup by uuid", func() { c.LookupByUUID(ctx, u) }, ""},
		{"list", func() { c.ListDomains(ctx, virt.ListInactive|virt.ListPersistent) }, ""},
		{"info of a running domain", func() { d.Info(ctx) }, "DomainInfo " + u},
		{"suspend", func() { d.Suspend(ctx) }, "SuspendDomain " + u},
		{"resume", func() { d.Resume(ctx) }, "ResumeDomain " + u},
		{"shutdown", func() { d.Shutdown(ctx) }, "ShutdownDomain " + u},
		{"info of a stopped domain", func() { d.Info(ctx) }, ""},
	} {
		if got := first(tt.fn); got != tt.want {
			t.Errorf("%s: the driver got %q first, want %q", tt.name, got, tt.want)
		}
	}
}

func TestEventsArriveInOrder(t *testing.T) {
	s := start(t)
	c := openTest(t, s)
	ctx := testCtx(t)
	stream, err := c.WatchEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}

	d, err := c.LookupByName(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []func(context.Context) error{d.Suspend, d.Resume, d.Destroy, d.Start} {
		if err := f(ctx); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"Suspended Paused", "Resumed Unpaused", "Stopped Destroyed", "Started Booted"}
	var lastSeq uint64
	for i, w := range want {
		select {
		case ev := <-stream.Events():
			got := ev.Type.String() + " " + virt.EventDetailString(ev.Type, ev.Detail)
			if got != w || ev.Domain.Name != "test" {
				t.Errorf("event %d: %s for %q, want %s", i, got, ev.Domain.Name, w)
			}
			if ev.Seq <= lastSeq || ev.Time.IsZero() {
				t.Errorf("event %d: seq %d after %d, time %v", i, ev.Seq, lastSeq, ev.Time)
			}
			lastSeq = ev.Seq
		case <-ctx.Done():
			t.Fatalf("no event %d", i)
		}
	}

	// The daemon ending the stream is reported through Err.
	s.Stop()
	for range stream.Events() {
	}
	if err := stream.Err(); !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("Err after daemon ended the stream: %v", err)
	}
}

func TestEventsEndWithContext(t *testing.T) {
	s := start(t)
	c := openTest(t, s)
	ctx, cancel := context.WithCancel(testCtx(t))
	ch, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.LookupByName(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Suspend(ctx); err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Type != virt.EventSuspended {
		t.Errorf("got %v", ev.Type)
	}
	cancel()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("channel not closed after the context ended")
		}
	}
}

func TestEventStreamCloseGivesNilErr(t *testing.T) {
	s := start(t)
	c := openTest(t, s)
	stream, err := c.WatchEvents(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	stream.Close()
	for range stream.Events() {
	}
	if err := stream.Err(); err != nil {
		t.Errorf("Err after Close = %v", err)
	}
}

func TestAdmin(t *testing.T) {
	s := start(t)
	ctx := testCtx(t)

	t.Setenv(client.RunDirEnv, s.Dir)
	a, err := client.OpenAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Socket() != s.AdminSocket {
		t.Errorf("admin socket %q", a.Socket())
	}
	c := openTest(t, s)
	l, err := a.Drivers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// What the core knows of its in-process driver, which has one
	// connection (c), and whose reads its view answers.
	want := client.DriverStatus{
		Name: "test", Version: testdriver.Version, APIVersion: driver.APIVersion, Schemes: []string{"test"},
		State: "running", Health: "available", PID: int64(os.Getpid()), ViewReady: true,
	}
	if len(l.Drivers) != 1 {
		t.Fatalf("Drivers = %+v", l.Drivers)
	}
	if got := l.Drivers[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("driver = %+v, want %+v", got, want)
	}
	if len(l.Rejected) != 0 || len(l.Directories) != 0 {
		t.Errorf("Rejected = %+v, Directories = %v", l.Rejected, l.Directories)
	}
	r, err := a.Rescan(ctx)
	if err != nil || len(r.Added)+len(r.Removed)+len(r.Rejected) != 0 {
		t.Errorf("Rescan = %+v, %v", r, err)
	}
	c.Close(ctx)
}

func TestDaemonGoneIsUnavailable(t *testing.T) {
	s := start(t)
	c := openTest(t, s)
	s.Stop()
	_, err := c.Hostname(testCtx(t))
	if !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("call after daemon stopped: %v", err)
	}
}
