package core

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/driver/domxml"
	"github.com/virtd/virtd/virt"
)

// Conn is one client connection, opened on a URI. Its calls are safe for
// concurrent use.
type Conn struct {
	core   *Core
	uri    string
	access Access
	drv    Backend
	v      *view // the driver's view; nil without views
	closed atomic.Bool
}

// URI returns the URI the connection was opened on.
func (c *Conn) URI() string { return c.uri }

// Driver returns the name of the driver that serves the connection.
func (c *Conn) Driver() string { return c.drv.Name() }

// ReadOnly reports whether the connection may only read.
func (c *Conn) ReadOnly() bool { return c.access == ReadOnly }

// Close closes the connection; closing it again does nothing.
func (c *Conn) Close() {
	if c.closed.Swap(true) {
		return
	}
	c.core.mu.Lock()
	delete(c.core.conns, c)
	c.core.mu.Unlock()
	c.drv.Release()
}

// read runs fn, which changes nothing, against the connection's driver.
func read[T any](c *Conn, ctx context.Context, fn func(driver.Driver) (T, error)) (T, error) {
	return do(c, ctx, "", fn)
}

// write runs fn, the change op, against the connection's driver, if the
// connection may write.
func write[T any](c *Conn, ctx context.Context, op string, fn func(driver.Driver) (T, error)) (T, error) {
	return do(c, ctx, op, fn)
}

func do[T any](c *Conn, ctx context.Context, writeOp string, fn func(driver.Driver) (T, error)) (T, error) {
	var v T
	if c.closed.Load() {
		return v, fmt.Errorf("the connection to %s is closed: %w", c.uri, virt.ErrInvalidArgument)
	}
	if writeOp != "" && c.access != ReadWrite {
		return v, fmt.Errorf("%s refused: the connection is read-only: %w", writeOp, virt.ErrPermissionDenied)
	}
	err := c.drv.Do(ctx, writeOp == "", func(d driver.Driver) (err error) {
		v, err = fn(d)
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// view returns the driver's view when it may answer now, else nil (see
// Views). A closed connection gets none: do() refuses its calls.
func (c *Conn) view() *view {
	if c.v == nil || c.closed.Load() || !c.v.usable(c.drv.Instance()) {
		return nil
	}
	return c.v
}

// record returns what the view holds of the domain uuid, if it may answer:
// found is false when the view cannot answer and the driver must.
// A UUID the view does not know is not found, in the driver's words.
func (c *Conn) record(uuid string) (r *driver.Record, found bool, err error) {
	v := c.view()
	if v == nil {
		return nil, false, nil
	}
	canon, perr := domutil.ParseUUID(uuid)
	if perr != nil {
		return nil, false, nil // the driver's words for a bad UUID
	}
	if r = v.lookup(virt.ByUUID(canon)); r == nil {
		return nil, true, domutil.NotFound(virt.ByUUID(uuid))
	}
	return r, true, nil
}

// facts returns the driver's host facts: those kept, while they hold,
// else read from the driver (and kept, with a view).
func (c *Conn) facts(ctx context.Context) (*driver.Facts, error) {
	v := c.v
	var id uint64
	if v != nil && !c.closed.Load() {
		id, _ = c.drv.Instance()
		if f := v.cachedFacts(id); f != nil {
			return f, nil
		}
	}
	at := time.Now()
	return read(c, ctx, func(d driver.Driver) (*driver.Facts, error) {
		var f *driver.Facts
		var err error
		if fs, ok := d.(factsSource); ok {
			f, err = fs.Facts(ctx)
		} else {
			f, err = driver.ReadFacts(ctx, d)
		}
		if err == nil && v != nil {
			v.keepFacts(id, at, f)
		}
		return f, err
	})
}

// factsSource is a driver that reads its facts in one call: the gRPC shim.
type factsSource interface {
	Facts(ctx context.Context) (*driver.Facts, error)
}

// act runs one of the calls that act on a domain and return nothing.
func (c *Conn) act(ctx context.Context, op, uuid string, fn func(driver.Driver, context.Context, string) error) error {
	_, err := write(c, ctx, op, func(d driver.Driver) (struct{}, error) {
		defer c.changed(ctx, uuid)
		return struct{}{}, fn(d, ctx, uuid)
	})
	return err
}

// changed tells a Recording backend that a call, done or failed, may have
// changed the domain uuid.
func (c *Conn) changed(ctx context.Context, uuid string) {
	if r, ok := c.drv.(Recording); ok {
		r.Changed(ctx, uuid)
	}
}

// Version is what `virsh version` shows.
type Version struct {
	Daemon, Driver    string
	HypervisorType    string
	HypervisorVersion uint64
}

// Version returns the daemon's, the driver's and the hypervisor's
// versions.
func (c *Conn) Version(ctx context.Context) (*Version, error) {
	f, err := c.facts(ctx)
	if err != nil {
		return nil, err
	}
	return &Version{Daemon: c.core.version, Driver: f.Info.Version, HypervisorType: f.Info.HypervisorType, HypervisorVersion: f.Info.HypervisorVersion}, nil
}

// Hostname returns the host's name, as the driver sees it.
func (c *Conn) Hostname(ctx context.Context) (string, error) {
	f, err := c.facts(ctx)
	if err != nil || !f.Has(driver.FactHostname) {
		return read(c, ctx, func(d driver.Driver) (string, error) { return d.Hostname(ctx) })
	}
	return f.Hostname, nil
}

// Capabilities returns libvirt's capabilities XML.
func (c *Conn) Capabilities(ctx context.Context) (string, error) {
	f, err := c.facts(ctx)
	if err != nil || !f.Has(driver.FactCapabilities) {
		return read(c, ctx, func(d driver.Driver) (string, error) { return d.Capabilities(ctx) })
	}
	return f.Capabilities, nil
}

// NodeInfo returns the host's processors and memory.
func (c *Conn) NodeInfo(ctx context.Context) (*virt.NodeInfo, error) {
	f, err := c.facts(ctx)
	if err != nil || !f.Has(driver.FactNodeInfo) {
		return read(c, ctx, func(d driver.Driver) (*virt.NodeInfo, error) { return d.NodeInfo(ctx) })
	}
	n := f.NodeInfo
	return &n, nil
}

// ListDomains lists the domains that match libvirt's filter flags.
func (c *Conn) ListDomains(ctx context.Context, flags virt.ListFlags) ([]virt.Domain, error) {
	if v := c.view(); v != nil {
		return v.list(flags), nil
	}
	return read(c, ctx, func(d driver.Driver) ([]virt.Domain, error) { return d.ListDomains(ctx, flags) })
}

// LookupDomain finds a domain by name, UUID or id.
func (c *Conn) LookupDomain(ctx context.Context, key virt.Lookup) (*virt.Domain, error) {
	if key.Name != "" {
		if err := domxml.CheckName(key.Name); err != nil {
			return nil, err
		}
	}
	if v := c.view(); v != nil {
		if key.UUID != "" {
			if _, err := domutil.ParseUUID(key.UUID); err != nil {
				return nil, err
			}
		}
		r := v.lookup(key)
		if r == nil {
			return nil, domutil.NotFound(key)
		}
		d := r.Domain
		return &d, nil
	}
	return read(c, ctx, func(d driver.Driver) (*virt.Domain, error) { return d.LookupDomain(ctx, key) })
}

// DefineDomain makes or updates a persistent definition from domain XML.
func (c *Conn) DefineDomain(ctx context.Context, xml string) (*virt.Domain, error) {
	return write(c, ctx, "define", func(d driver.Driver) (*virt.Domain, error) {
		// One rule for names, whatever the driver: checked before any
		// sees it.
		if _, err := domxml.CheckDocName(xml); err != nil {
			return nil, err
		}
		dom, err := d.DefineDomain(ctx, xml)
		if err == nil {
			c.changed(ctx, dom.UUID)
		}
		return dom, err
	})
}

// UndefineDomain removes a persistent definition.
func (c *Conn) UndefineDomain(ctx context.Context, uuid string) error {
	return c.act(ctx, "undefine", uuid, driver.Driver.UndefineDomain)
}

// StartDomain starts a defined domain and returns it running.
func (c *Conn) StartDomain(ctx context.Context, uuid string) (*virt.Domain, error) {
	return write(c, ctx, "start", func(d driver.Driver) (*virt.Domain, error) {
		defer c.changed(ctx, uuid)
		return d.StartDomain(ctx, uuid)
	})
}

// CreateDomain starts a domain from domain XML without a persistent
// definition (virsh create): the domain is transient, and vanishes when
// it stops. The name and UUID of an inactive persistent domain start that
// domain, with the XML as its live definition.
func (c *Conn) CreateDomain(ctx context.Context, xml string) (*virt.Domain, error) {
	return write(c, ctx, "create", func(d driver.Driver) (*virt.Domain, error) {
		name, err := domxml.CheckDocName(xml)
		if err != nil {
			return nil, err
		}
		dom, err := d.CreateDomain(ctx, xml)
		if err != nil {
			// A create that failed half way may have changed the domain
			// of its name (an inactive persistent one it was starting).
			// A process driver's reply carries its record; a Recording
			// backend is told.
			if _, ok := c.drv.(Recording); ok {
				if x, lerr := d.LookupDomain(context.WithoutCancel(ctx), virt.ByName(name)); lerr == nil {
					c.changed(ctx, x.UUID)
				}
			}
			return nil, err
		}
		c.changed(ctx, dom.UUID)
		return dom, nil
	})
}

// ShutdownDomain asks the guest to power off.
func (c *Conn) ShutdownDomain(ctx context.Context, uuid string) error {
	return c.act(ctx, "shutdown", uuid, driver.Driver.ShutdownDomain)
}

// RebootDomain asks the guest to reboot.
func (c *Conn) RebootDomain(ctx context.Context, uuid string) error {
	return c.act(ctx, "reboot", uuid, driver.Driver.RebootDomain)
}

// DestroyDomain powers the guest off at once; the definition stays.
func (c *Conn) DestroyDomain(ctx context.Context, uuid string) error {
	return c.act(ctx, "destroy", uuid, driver.Driver.DestroyDomain)
}

// SuspendDomain pauses the guest's processors.
func (c *Conn) SuspendDomain(ctx context.Context, uuid string) error {
	return c.act(ctx, "suspend", uuid, driver.Driver.SuspendDomain)
}

// ResumeDomain lets a paused guest run again.
func (c *Conn) ResumeDomain(ctx context.Context, uuid string) error {
	return c.act(ctx, "resume", uuid, driver.Driver.ResumeDomain)
}

// DomainInfo returns a domain's state, memory, processors and CPU time.
func (c *Conn) DomainInfo(ctx context.Context, uuid string) (*virt.DomainInfo, error) {
	if r, ok, err := c.record(uuid); ok && (err != nil || r.Info != nil) {
		if err != nil {
			return nil, err
		}
		i := *r.Info
		return &i, nil
	}
	return read(c, ctx, func(d driver.Driver) (*virt.DomainInfo, error) { return d.DomainInfo(ctx, uuid) })
}

// StateReason is a domain's state and the reason for it.
type StateReason struct {
	State  virt.State
	Reason int32
}

// DomainState returns a domain's state and the reason for it.
func (c *Conn) DomainState(ctx context.Context, uuid string) (virt.State, int32, error) {
	if r, ok, err := c.record(uuid); ok {
		if err != nil {
			return 0, 0, err
		}
		return r.Domain.State, r.Domain.Reason, nil
	}
	sr, err := read(c, ctx, func(d driver.Driver) (StateReason, error) {
		st, reason, err := d.DomainState(ctx, uuid)
		return StateReason{st, reason}, err
	})
	return sr.State, sr.Reason, err
}

// DomainXML returns the live XML, or the persistent definition when
// inactive is true.
func (c *Conn) DomainXML(ctx context.Context, uuid string, inactive bool) (string, error) {
	if r, ok, err := c.record(uuid); ok {
		switch {
		case err != nil:
			return "", err
		case !inactive || !r.Domain.Active():
			return r.XML, nil
		case r.InactiveXML != "":
			return r.InactiveXML, nil
		}
	}
	return read(c, ctx, func(d driver.Driver) (string, error) { return d.DomainXML(ctx, uuid, inactive) })
}

// DomainAutostart reports whether the domain starts with the host.
func (c *Conn) DomainAutostart(ctx context.Context, uuid string) (bool, error) {
	if r, ok, err := c.record(uuid); ok {
		return r != nil && r.Domain.Autostart, err
	}
	return read(c, ctx, func(d driver.Driver) (bool, error) { return d.DomainAutostart(ctx, uuid) })
}

// SetDomainAutostart sets whether the domain starts with the host.
func (c *Conn) SetDomainAutostart(ctx context.Context, uuid string, autostart bool) error {
	_, err := write(c, ctx, "autostart", func(d driver.Driver) (struct{}, error) {
		defer c.changed(ctx, uuid)
		return struct{}{}, d.SetDomainAutostart(ctx, uuid, autostart)
	})
	return err
}

func notSupported(feature string) error {
	return fmt.Errorf("this driver does not implement %s: %w", feature, virt.ErrNotSupported)
}

// DomainXMLToNative converts domain XML to the hypervisor's own
// configuration format. It changes nothing, so read-only connections may.
func (c *Conn) DomainXMLToNative(ctx context.Context, format, xml string) (string, error) {
	return read(c, ctx, func(d driver.Driver) (string, error) {
		conv, ok := d.(driver.NativeConverter)
		if !ok {
			return "", notSupported(driver.FeatureToNative)
		}
		return conv.DomainXMLToNative(ctx, format, xml)
	})
}

// DomainXMLFromNative converts the hypervisor's own configuration format
// to domain XML.
func (c *Conn) DomainXMLFromNative(ctx context.Context, format, config string) (string, error) {
	return read(c, ctx, func(d driver.Driver) (string, error) {
		conv, ok := d.(driver.NativeConverter)
		if !ok {
			return "", notSupported(driver.FeatureFromNative)
		}
		return conv.DomainXMLFromNative(ctx, format, config)
	})
}

// OpenConsole attaches to a domain's text console; devName "" is the
// first. A console can type into the guest, so read-only connections may
// not open one.
func (c *Conn) OpenConsole(ctx context.Context, uuid, devName string) (io.ReadWriteCloser, error) {
	return write(c, ctx, "console", func(d driver.Driver) (io.ReadWriteCloser, error) {
		con, ok := d.(driver.Consoler)
		if !ok {
			return nil, notSupported(driver.FeatureConsole)
		}
		return con.OpenConsole(ctx, uuid, devName)
	})
}

// Events returns the lifecycle events of the connection's driver from now
// on, in order, until ctx ends, the driver goes away, or the core closes
// (then Err is ErrShuttingDown).
func (c *Conn) Events(ctx context.Context) (Events, error) {
	if c.closed.Load() {
		return nil, fmt.Errorf("the connection to %s is closed: %w", c.uri, virt.ErrInvalidArgument)
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-c.core.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	ev, err := c.drv.Subscribe(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	return &subscription{Events: ev, core: c.core}, nil
}

// subscription ends with ErrShuttingDown when the core closes.
type subscription struct {
	Events
	core *Core
}

func (s *subscription) Err() error {
	select {
	case <-s.core.closing:
		return ErrShuttingDown
	default:
		return s.Events.Err()
	}
}
