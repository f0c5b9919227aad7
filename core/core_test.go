package core_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/core/inproc"
	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/testdriver"
	"github.com/virtd/virtd/virt"
)

func TestParseURI(t *testing.T) {
	for uri, scheme := range map[string]string{
		"test:///default":                 "test",
		"qemu:///system":                  "qemu",
		"qemu+unix:///system?socket=/x/y": "qemu",
		"xen://host/system":               "xen",
	} {
		got, err := core.ParseURI(uri)
		if err != nil || got != scheme {
			t.Errorf("ParseURI(%q) = %q, %v; want %q", uri, got, err, scheme)
		}
	}
	for _, bad := range []string{"", "test", "::x", "test:default", "%zz:///"} {
		if _, err := core.ParseURI(bad); !errors.Is(err, virt.ErrInvalidArgument) {
			t.Errorf("ParseURI(%q): %v, want invalid argument", bad, err)
		}
	}
}

func newCore(t *testing.T, drivers ...driver.Driver) (*core.Core, *inproc.Drivers) {
	t.Helper()
	if len(drivers) == 0 {
		drivers = []driver.Driver{testdriver.New(driver.Env{})}
	}
	views := core.NewViews()
	ds, err := inproc.New(context.Background(), views, drivers...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	return core.New(core.Config{Drivers: ds, Views: views, Version: "9.9.9"}), ds
}

// posing is a test driver that serves another scheme, available or not.
type posing struct {
	driver.Driver
	scheme    string
	available bool
}

func (p posing) Info(ctx context.Context) (*driver.Info, error) {
	i, err := p.Driver.Info(ctx)
	if err != nil {
		return nil, err
	}
	i.Name, i.Schemes, i.Health = p.scheme, []string{p.scheme}, driver.HealthUnavailable
	if p.available {
		i.Health = driver.HealthAvailable
	}
	return i, nil
}

func (p posing) CheckURI(_ context.Context, uri string) error {
	if uri != p.scheme+":///system" {
		return fmt.Errorf("%s serves %s:///system only: %w", p.scheme, p.scheme, virt.ErrInvalidArgument)
	}
	return nil
}

func TestOpenWithNoURI(t *testing.T) {
	ctx := ctxFor(t)
	drivers := []driver.Driver{
		testdriver.New(driver.Env{}),
		posing{testdriver.New(driver.Env{}), "xen", false},
		posing{testdriver.New(driver.Env{}), "lxc", true},
	}
	views := core.NewViews()
	ds, err := inproc.New(ctx, views, drivers...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	// No qemu driver, xen cannot run guests: the first of the order that
	// can is lxc.
	c := core.New(core.Config{Drivers: ds, Views: views})
	conn, err := c.Open(ctx, "", core.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	if conn.URI() != "lxc:///system" || conn.Driver() != "lxc" || !conn.ReadOnly() {
		t.Errorf("no URI opened %s on %s (read-only %v), want lxc:///system", conn.URI(), conn.Driver(), conn.ReadOnly())
	}
	conn.Close()
	if n := c.Conns(); n != 0 {
		t.Errorf("%d connections left open by the probe", n)
	}
	// A configured default wins.
	c = core.New(core.Config{Drivers: ds, Views: views, DefaultURI: "test:///default"})
	if conn, err = c.Open(ctx, "", core.ReadWrite); err != nil || conn.URI() != "test:///default" {
		t.Fatalf("with uri_default: %v, %v", conn, err)
	}
	conn.Close()
	// None that can run guests: the error says which were tried.
	ds2, err := inproc.New(ctx, nil, posing{testdriver.New(driver.Env{}), "xen", false})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds2.Close)
	_, err = core.New(core.Config{Drivers: ds2}).Open(ctx, "", core.ReadWrite)
	if !errors.Is(err, virt.ErrNotFound) || !strings.Contains(err.Error(), "tried xen:///system") {
		t.Errorf("no available driver: %v", err)
	}
}

// openConn opens test:///default on c with access, closed when t ends.
func openConn(t *testing.T, c *core.Core, access core.Access) *core.Conn {
	t.Helper()
	conn, err := c.Open(ctxFor(t), "test:///default", access)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return conn
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestOpen(t *testing.T) {
	c, ds := newCore(t)
	ctx := ctxFor(t)
	for _, tt := range []struct {
		uri, want string
		kind      error
	}{
		{"", "no hypervisor driver (qemu:///system, xen:///system, lxc:///system) installed", virt.ErrNotFound},
		{"test:default", `malformed URI "test:default"`, virt.ErrInvalidArgument},
		{"qemu:///system", `cannot open qemu:///system: no driver in this process serves URI scheme "qemu"`, virt.ErrNotFound},
		{"test:///nowhere", `test:///nowhere`, virt.ErrInvalidArgument},
	} {
		conn, err := c.Open(ctx, tt.uri, core.ReadWrite)
		if conn != nil || !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%q) = %v, %v; want %v naming %q", tt.uri, conn, err, tt.kind, tt.want)
		}
	}
	// A refused URI leaves no connection counted.
	if n := c.Conns(); n != 0 || ds.Busy() {
		t.Errorf("after refusals: %d connections, driver busy %v", n, ds.Busy())
	}
	conn, err := c.Open(ctx, "test+unix:///default?socket=/x", core.ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	if conn.Driver() != "test" || conn.ReadOnly() || c.Conns() != 1 || !ds.Busy() || !c.Busy() {
		t.Errorf("open: driver %q read-only %v conns %d busy %v", conn.Driver(), conn.ReadOnly(), c.Conns(), ds.Busy())
	}
	conn.Close()
	conn.Close()
	if c.Conns() != 0 || ds.Busy() {
		t.Errorf("after Close (twice): %d connections, driver busy %v", c.Conns(), ds.Busy())
	}
	if _, err := conn.Hostname(ctx); !errors.Is(err, virt.ErrInvalidArgument) || !strings.Contains(err.Error(), "closed") {
		t.Errorf("call after Close: %v", err)
	}
	if _, err := conn.Events(ctx); !errors.Is(err, virt.ErrInvalidArgument) {
		t.Errorf("events after Close: %v", err)
	}
}

// TestReadOnly: a read-only connection reads, and every call that changes
// anything is refused before the driver sees it.
func TestReadOnly(t *testing.T) {
	c, _ := newCore(t)
	ctx := ctxFor(t)
	ro := openConn(t, c, core.ReadOnly)
	u := mustUUID(t, ro)
	if _, err := ro.DomainXML(ctx, u, false); err != nil {
		t.Errorf("read-only DomainXML: %v", err)
	}
	for name, call := range map[string]func() error{
		"define": func() error {
			_, err := ro.DefineDomain(ctx, "<domain type='test'><name>x</name><memory>1</memory></domain>")
			return err
		},
		"create": func() error {
			_, err := ro.CreateDomain(ctx, "<domain type='test'><name>x</name><memory>1</memory></domain>")
			return err
		},
		"undefine":  func() error { return ro.UndefineDomain(ctx, u) },
		"start":     func() error { _, err := ro.StartDomain(ctx, u); return err },
		"shutdown":  func() error { return ro.ShutdownDomain(ctx, u) },
		"reboot":    func() error { return ro.RebootDomain(ctx, u) },
		"destroy":   func() error { return ro.DestroyDomain(ctx, u) },
		"suspend":   func() error { return ro.SuspendDomain(ctx, u) },
		"resume":    func() error { return ro.ResumeDomain(ctx, u) },
		"autostart": func() error { return ro.SetDomainAutostart(ctx, u, true) },
		"console":   func() error { _, err := ro.OpenConsole(ctx, u, ""); return err },
	} {
		err := call()
		if !errors.Is(err, virt.ErrPermissionDenied) || !strings.HasPrefix(err.Error(), name+" refused: the connection is read-only") {
			t.Errorf("%s on a read-only connection: %v", name, err)
		}
	}
	// Nothing changed.
	if st, _, err := ro.DomainState(ctx, u); err != nil || st != virt.StateRunning {
		t.Errorf("state after refusals: %v, %v", st, err)
	}
	if doms, _ := ro.ListDomains(ctx, 0); len(doms) != 1 {
		t.Errorf("domains after refusals: %+v", doms)
	}
}

func TestNameChecked(t *testing.T) {
	c, _ := newCore(t)
	ctx := ctxFor(t)
	rw := openConn(t, c, core.ReadWrite)
	if _, err := rw.LookupDomain(ctx, virt.ByName("a/b")); !errors.Is(err, virt.ErrInvalidArgument) {
		t.Errorf("lookup of a bad name: %v", err)
	}
	if _, err := rw.DefineDomain(ctx, "<domain type='test'><name>a/b</name><memory>1</memory></domain>"); !errors.Is(err, virt.ErrInvalidArgument) {
		t.Errorf("define of a bad name: %v", err)
	}
	if _, err := rw.CreateDomain(ctx, "<domain type='test'><name>a/b</name><memory>1</memory></domain>"); !errors.Is(err, virt.ErrInvalidArgument) {
		t.Errorf("create of a bad name: %v", err)
	}
}

func TestVersion(t *testing.T) {
	c, _ := newCore(t)
	ctx := ctxFor(t)
	conn := openConn(t, c, core.ReadOnly)
	v, err := conn.Version(ctx)
	if err != nil || v.Daemon != "9.9.9" || v.HypervisorType != "Test" || v.Driver == "" {
		t.Errorf("Version = %+v, %v", v, err)
	}
}

// TestOptionalFeatures: a driver without a converter or a console gets a
// clean not-supported that names the feature.
func TestOptionalFeatures(t *testing.T) {
	c, _ := newCore(t)
	ctx := ctxFor(t)
	conn := openConn(t, c, core.ReadWrite)
	if _, err := conn.DomainXMLToNative(ctx, "x", "<domain/>"); !errors.Is(err, virt.ErrNotSupported) || !strings.Contains(err.Error(), driver.FeatureToNative) {
		t.Errorf("to-native: %v", err)
	}
	if _, err := conn.DomainXMLFromNative(ctx, "x", ""); !errors.Is(err, virt.ErrNotSupported) || !strings.Contains(err.Error(), driver.FeatureFromNative) {
		t.Errorf("from-native: %v", err)
	}
}

func TestEventsEndWhenCoreCloses(t *testing.T) {
	c, _ := newCore(t)
	ctx := ctxFor(t)
	conn := openConn(t, c, core.ReadWrite)
	ev, err := conn.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.SuspendDomain(ctx, mustUUID(t, conn)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ev.Ready():
	case <-ctx.Done():
		t.Fatal("no event")
	}
	if e, ok := ev.Next(); !ok || e.Type != virt.EventSuspended || e.Domain.Name != "test" {
		t.Errorf("event %+v, %v", e, ok)
	}
	c.Close()
	select {
	case <-ev.Done():
	case <-ctx.Done():
		t.Fatal("events did not end when the core closed")
	}
	if err := ev.Err(); !errors.Is(err, core.ErrShuttingDown) || !errors.Is(err, virt.ErrUnavailable) {
		t.Errorf("Err = %v", err)
	}
}

func mustUUID(t *testing.T, conn *core.Conn) string {
	t.Helper()
	d, err := conn.LookupDomain(context.Background(), virt.ByName("test"))
	if err != nil {
		t.Fatal(err)
	}
	return d.UUID
}

func TestAdminView(t *testing.T) {
	c, _ := newCore(t)
	l := c.Drivers()
	if len(l.Drivers) != 1 || l.Drivers[0].Name != "test" || l.Drivers[0].State != "running" || l.Drivers[0].Health != "available" {
		t.Errorf("Drivers = %+v", l)
	}
	if _, err := inproc.New(context.Background(), nil, testdriver.New(driver.Env{}), testdriver.New(driver.Env{})); !errors.Is(err, virt.ErrAlreadyExists) {
		t.Errorf("two drivers for one scheme: %v", err)
	}
}
