// Package core is virtd's core: the one place that decides which driver
// serves a connection's URI, what a connection may do, and how events
// reach their watchers. Front ends (virtd's gRPC API in package daemon,
// later libvirt's RPC protocol) only translate their wire format to calls
// on a Core and its Conns.
//
// The core reaches drivers through Drivers: the supervised driver
// processes of package host in the daemon (FromHost), or drivers served in
// this process (package core/inproc) in tests and embedders.
package core

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/host"
	"github.com/virtd/virtd/virt"
)

// Drivers is the set of drivers the core routes to.
type Drivers interface {
	// Lookup returns the driver that serves a URI scheme, or an error of
	// kind virt.ErrNotFound that names the scheme.
	Lookup(scheme string) (Backend, error)
	// Status, Rejected and Dirs describe the drivers for the admin API.
	Status() []host.Status
	Rejected() []host.Rejected
	Dirs() []string
	// Rescan reads the driver directories again.
	Rescan() (added, removed []string, rejected []host.Rejected)
	// Busy reports whether any driver has a connection or runs a guest.
	Busy() bool
}

// Backend is one driver as the core reaches it.
type Backend interface {
	Name() string
	// Open counts a connection to the driver, starting it if needed;
	// Release undoes it.
	Open(ctx context.Context) error
	Release()
	// Do runs fn against the driver. read says that fn changes nothing,
	// so it may run again on a new driver process if the first one died
	// under it.
	Do(ctx context.Context, read bool, fn func(driver.Driver) error) error
	// Subscribe returns the driver's events from now on, until ctx ends.
	Subscribe(ctx context.Context) (Events, error)
	// Instance names the driver process calls go to now: id increases with
	// each process; live is false while none runs.
	Instance() (id uint64, live bool)
}

// Recording is a Backend whose driver's replies carry no records (see
// Views): the core tells it which domain a call may have changed, before
// the call returns, so that it can hand the view the domain's record.
type Recording interface {
	Changed(ctx context.Context, uuid string)
}

// Events is a subscription to a driver's lifecycle events.
type Events interface {
	// Next returns the next queued event, if there is one.
	Next() (virt.Event, bool)
	// Ready has a token when events may be queued.
	Ready() <-chan struct{}
	// Done is closed when the subscription ends; events queued before
	// may still be read with Next. Err then says why it ended (nil when
	// its context ended).
	Done() <-chan struct{}
	Err() error
}

// Access is what a connection may do.
type Access int

// Access levels. The zero value is the safe one.
const (
	// ReadOnly connections may only read (libvirt's VIR_CONNECT_RO).
	ReadOnly Access = iota
	ReadWrite
)

// Config is what a Core is made of.
type Config struct {
	Drivers Drivers
	// Views, when set, are the views the drivers' records go to (see
	// Views); plain reads are answered from them. Nil: every read goes to
	// the driver.
	Views *Views
	// Version is the daemon's version, as Conn.Version reports it.
	Version string
	// DefaultURI is the URI of a connection opened with none (libvirt's
	// uri_default); empty: the first of DefaultURIs whose driver is
	// installed and can run guests here.
	DefaultURI string
	Logger     hclog.Logger
}

// DefaultURIs are the URIs a connection opened with no URI tries, in
// this order, when no default is configured: as libvirt probes its
// hypervisor drivers (the test driver never).
var DefaultURIs = []string{"qemu:///system", "xen:///system", "lxc:///system"}

// Core serves connections over a set of drivers.
type Core struct {
	drivers    Drivers
	views      *Views
	version    string
	defaultURI string
	log        hclog.Logger

	// closing is closed by Close: event streams end then.
	closing   chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	conns map[*Conn]struct{}
}

// New returns a core over cfg.Drivers.
func New(cfg Config) *Core {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	return &Core{drivers: cfg.Drivers, views: cfg.Views, version: cfg.Version, defaultURI: cfg.DefaultURI, log: cfg.Logger, closing: make(chan struct{}), conns: map[*Conn]struct{}{}}
}

// ErrShuttingDown is how event streams end when the core closes.
var ErrShuttingDown = fmt.Errorf("virtd is shutting down: %w", virt.ErrUnavailable)

// Close ends every event stream with ErrShuttingDown. Connections stay
// usable for the calls in flight; drivers are left as they are.
func (c *Core) Close() {
	c.closeOnce.Do(func() { close(c.closing) })
}

// ParseURI checks a connection URI and returns its driver scheme. A
// transport suffix ("qemu+unix") belongs to the client; the core routes
// only on the scheme.
func ParseURI(raw string) (scheme string, err error) {
	if raw == "" {
		return "", fmt.Errorf("empty connection URI: %w", virt.ErrInvalidArgument)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", virt.Errorf(virt.ErrInvalidArgument, "malformed URI %q: %w", raw, err)
	}
	if u.Scheme == "" || u.Opaque != "" {
		return "", fmt.Errorf("malformed URI %q: want scheme:///path, e.g. qemu:///system: %w", raw, virt.ErrInvalidArgument)
	}
	scheme, _, _ = strings.Cut(u.Scheme, "+")
	return scheme, nil
}

// Open opens a connection on uri with the given access: it finds the
// driver that serves the URI's scheme, starts it if needed, and asks it
// whether it serves this URI.
//
// An empty uri opens the configured default, else the first of
// DefaultURIs whose driver is installed and available.
func (c *Core) Open(ctx context.Context, uri string, access Access) (*Conn, error) {
	if uri == "" {
		return c.openDefault(ctx, access)
	}
	scheme, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	b, err := c.drivers.Lookup(scheme)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", uri, err)
	}
	if err := b.Open(ctx); err != nil {
		return nil, err
	}
	if err := b.Do(ctx, true, func(d driver.Driver) error { return d.CheckURI(ctx, uri) }); err != nil {
		b.Release()
		return nil, err
	}
	conn := &Conn{core: c, uri: uri, access: access, drv: b}
	if c.views != nil {
		conn.v = c.views.get(b.Name())
	}
	c.mu.Lock()
	c.conns[conn] = struct{}{}
	c.mu.Unlock()
	c.log.Debug("connection opened", "uri", uri, "driver", b.Name(), "read_only", access == ReadOnly)
	return conn, nil
}

func (c *Core) openDefault(ctx context.Context, access Access) (*Conn, error) {
	if c.defaultURI != "" {
		return c.Open(ctx, c.defaultURI, access)
	}
	var tried []string
	for _, uri := range DefaultURIs {
		scheme, _ := ParseURI(uri)
		if _, err := c.drivers.Lookup(scheme); err != nil {
			continue
		}
		conn, err := c.Open(ctx, uri, access)
		if err == nil {
			var info *driver.Info
			err = conn.drv.Do(ctx, true, func(d driver.Driver) (err error) {
				info, err = d.Info(ctx)
				return err
			})
			if err == nil && info.Health == driver.HealthAvailable {
				return conn, nil
			}
			conn.Close()
		}
		tried = append(tried, uri)
	}
	if len(tried) == 0 {
		return nil, fmt.Errorf("no URI given, no default configured (uri_default), and no hypervisor driver (%s) installed: %w",
			strings.Join(DefaultURIs, ", "), virt.ErrNotFound)
	}
	return nil, fmt.Errorf("no URI given, no default configured (uri_default), and no hypervisor driver can run guests here (tried %s): %w",
		strings.Join(tried, ", "), virt.ErrNotFound)
}

// Conns returns how many connections are open.
func (c *Core) Conns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}

// Busy reports whether the core has work: an open connection, or a
// driver with a connection or a running guest.
func (c *Core) Busy() bool { return c.Conns() > 0 || c.drivers.Busy() }

// DriverStatus is what the admin API shows of one driver.
type DriverStatus struct {
	host.Status
	// ViewReady: plain reads of this driver's domains are answered from
	// the core's view (it holds the running process's snapshot), not by
	// the driver.
	ViewReady bool
}

// Rejected is a driver file a scan refused, and why.
type Rejected = host.Rejected

// DriverList is the admin view of the drivers.
type DriverList struct {
	Drivers     []DriverStatus
	Rejected    []Rejected
	Directories []string
}

// Drivers describes every driver, the files refused and the directories
// searched.
func (c *Core) Drivers() DriverList {
	l := DriverList{Rejected: c.drivers.Rejected(), Directories: c.drivers.Dirs()}
	for _, s := range c.drivers.Status() {
		st := DriverStatus{Status: s}
		if b, err := c.drivers.Lookup(s.Name); err == nil && c.views != nil {
			id, live := b.Instance()
			st.ViewReady = live && c.views.get(s.Name).usable(id, true)
		}
		l.Drivers = append(l.Drivers, st)
	}
	return l
}

// Rescan reads the driver directories again.
func (c *Core) Rescan() (added, removed []string, rejected []Rejected) {
	return c.drivers.Rescan()
}
