package client_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/virtd/virtd/client"
	"github.com/virtd/virtd/internal/fakevirtd"
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
	"github.com/virtd/virtd/virt"
)

// startFake serves a fake daemon in a short temporary directory (unix
// socket paths are limited to about 100 bytes, which t.TempDir can exceed).
func startFake(t *testing.T) *fakevirtd.Server {
	t.Helper()
	dir, err := os.MkdirTemp("", "vdc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := fakevirtd.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openTest(t *testing.T, s *fakevirtd.Server) *client.Conn {
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
	s := startFake(t)
	ctx := testCtx(t)

	t.Run("socket param, transport stripped", func(t *testing.T) {
		c, err := client.Open(ctx, "test+unix:///default?socket="+s.Socket)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if c.URI() != "test:///default" || c.Driver() != "test" || c.Socket() != s.Socket {
			t.Errorf("got uri %q driver %q socket %q", c.URI(), c.Driver(), c.Socket())
		}
		calls := s.Calls()
		if calls[len(calls)-1] != "Open test:///default false" {
			t.Errorf("daemon saw %q", calls[len(calls)-1])
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
		calls := s.Calls()
		if calls[len(calls)-1] != "Open test:///default true" {
			t.Errorf("daemon saw %q", calls[len(calls)-1])
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
	s := startFake(t)
	ctx := testCtx(t)
	missing := filepath.Join(s.Dir, "nothing-here")

	_, err := client.Open(ctx, "test:///default", client.WithSocket(missing))
	want := "cannot connect to virtd at " + missing + ": no such file (is virtd running?)"
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

func TestHostCalls(t *testing.T) {
	s := startFake(t)
	c := openTest(t, s)
	ctx := testCtx(t)

	v, err := c.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if *v != (client.VersionInfo{Daemon: "0.1.0", Driver: "0.1.0", HypervisorType: "Test", Hypervisor: 2000003}) {
		t.Errorf("Version = %+v", v)
	}
	if h, err := c.Hostname(ctx); err != nil || h != "fakehost" {
		t.Errorf("Hostname = %q, %v", h, err)
	}
	if x, err := c.Capabilities(ctx); err != nil || x != fakevirtd.Capabilities {
		t.Errorf("Capabilities = %q, %v", x, err)
	}
	n, err := c.NodeInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := virt.NodeInfo{Model: "i686", MemoryKiB: 3145728, CPUs: 16, MHz: 1400, Nodes: 2, Sockets: 2, Cores: 2, Threads: 2}
	if *n != want {
		t.Errorf("NodeInfo = %+v", n)
	}
	if err := c.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestDomainLifecycle(t *testing.T) {
	s := startFake(t)
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
	if calls := s.Calls(); calls[len(calls)-1] != "ListDomains 2" {
		t.Errorf("flags sent: %q", calls[len(calls)-1])
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
		{"reboot", d.Reboot, virt.StateRunning, virt.RunningUnpaused},
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
	if x, err := d.XML(ctx, true); err != nil || x != webXML {
		t.Errorf("XML = %q, %v", x, err)
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

func TestCallsMapToDaemon(t *testing.T) {
	s := startFake(t)
	c := openTest(t, s)
	ctx := testCtx(t)
	d, err := c.LookupByName(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	u := d.UUID()
	before := len(s.Calls())
	d.XML(ctx, false)
	d.Info(ctx)
	d.Autostart(ctx)
	d.Suspend(ctx)
	d.Resume(ctx)
	d.Shutdown(ctx)
	c.LookupByID(ctx, 7)
	c.LookupByUUID(ctx, u)
	want := []string{
		"GetDomainXML " + u, "GetDomainInfo " + u, "GetDomainAutostart " + u,
		"SuspendDomain " + u, "ResumeDomain " + u, "ShutdownDomain " + u,
		"LookupDomain id=7", "LookupDomain uuid=" + u,
	}
	got := s.Calls()[before:]
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEventsArriveInOrder(t *testing.T) {
	s := startFake(t)
	c := openTest(t, s)
	ctx := testCtx(t)
	stream, err := c.WatchEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.WaitWatches(1)

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
	s.EndWatches()
	for range stream.Events() {
	}
	if err := stream.Err(); !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("Err after daemon ended the stream: %v", err)
	}
}

func TestEventsEndWithContext(t *testing.T) {
	s := startFake(t)
	c := openTest(t, s)
	ctx, cancel := context.WithCancel(testCtx(t))
	ch, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.WaitWatches(1)
	s.Emit("test", apiv1.EventType_EVENT_TYPE_CRASHED, virt.EventCrashedPanicked)
	ev := <-ch
	if ev.Type != virt.EventCrashed {
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
	s := startFake(t)
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
	s := startFake(t)
	ctx := testCtx(t)
	s.SetDrivers([]*apiv1.DriverStatus{{
		Name: "qemu", Path: "/d/virtd-driver-qemu", Version: "1.2.3", ApiVersion: 1, Schemes: []string{"qemu"},
		State: "running", Health: "available", Pid: 99, Restarts: 2, LastError: "exit status 2",
	}}, []*apiv1.RejectedFile{{Path: "/d/virtd-driver-evil", Reason: "writable by others"}}, []string{"/d", "/e"})
	s.SetRescan(&apiv1.RescanResponse{Added: []string{"lxc"}, Removed: []string{"xen"}})

	t.Setenv(client.RunDirEnv, s.Dir)
	a, err := client.OpenAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Socket() != s.AdminSocket {
		t.Errorf("admin socket %q", a.Socket())
	}
	l, err := a.Drivers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := client.DriverStatus{
		Name: "qemu", Path: "/d/virtd-driver-qemu", Version: "1.2.3", APIVersion: 1, Schemes: []string{"qemu"},
		State: "running", Health: "available", PID: 99, Restarts: 2, LastError: "exit status 2",
	}
	if len(l.Drivers) != 1 || strings.Join(l.Drivers[0].Schemes, ",") != "qemu" {
		t.Fatalf("Drivers = %+v", l.Drivers)
	}
	if got := l.Drivers[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("driver = %+v, want %+v", got, want)
	}
	if len(l.Rejected) != 1 || l.Rejected[0] != (client.RejectedFile{Path: "/d/virtd-driver-evil", Reason: "writable by others"}) {
		t.Errorf("Rejected = %+v", l.Rejected)
	}
	if strings.Join(l.Directories, ":") != "/d:/e" {
		t.Errorf("Directories = %v", l.Directories)
	}
	r, err := a.Rescan(ctx)
	if err != nil || strings.Join(r.Added, ",") != "lxc" || strings.Join(r.Removed, ",") != "xen" {
		t.Errorf("Rescan = %+v, %v", r, err)
	}
}

func TestDaemonGoneIsUnavailable(t *testing.T) {
	s := startFake(t)
	c := openTest(t, s)
	s.Stop()
	_, err := c.Hostname(testCtx(t))
	if !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("call after daemon stopped: %v", err)
	}
}
