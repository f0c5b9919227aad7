package qemu

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/internal/qemu/qmp"
	"github.com/virtd/virtd/virt"
)

// Graphics ports come from libvirt's range for consoles.
const (
	graphicsPortMin = 5900
	graphicsPortMax = 65535
)

// portPool hands out TCP ports for SPICE consoles with autoport (QEMU
// picks VNC's itself). A port is free when nobody listens on it; the
// ones handed out are held until the QEMU that got them listens, so
// that two starts at once never get the same.
type portPool struct {
	mu   sync.Mutex
	held map[int]bool
}

// take finds a free port on addr and holds it.
func (p *portPool) take(addr string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held == nil {
		p.held = map[int]bool{}
	}
	for port := graphicsPortMin; port <= graphicsPortMax; port++ {
		if p.held[port] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		p.held[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("no free port from %d to %d on %s", graphicsPortMin, graphicsPortMax, addr)
}

func (p *portPool) release(ports []int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, port := range ports {
		delete(p.held, port)
	}
}

// prepareRuntime fills in what a domain about to start gets from the
// host, in its live definition: the sockets of unix channels defined
// without a path (in a directory of its own under the run directory), a
// port for a SPICE console with autoport, and a vsock context id. The
// ports it returns are held until the caller releases them, once QEMU
// listens.
func (drv *Driver) prepareRuntime(c *config, rec *record) (held []int, err error) {
	x := c.x
	dev := x.Devices
	for i := range dev.Channels {
		src := dev.Channels[i].Source
		if src.UNIX == nil || src.UNIX.Path != "" {
			continue
		}
		rec.ChannelDir = filepath.Join(drv.cfg.RunDir, "channel", c.UUID())
		if err := os.MkdirAll(rec.ChannelDir, 0o700); err != nil {
			return nil, virt.Errorf(virt.ErrInternal, "domain '%s': channel directory: %w", c.Name(), err)
		}
		src.UNIX.Path = filepath.Join(rec.ChannelDir, dev.Channels[i].Target.VirtIO.Name)
		src.UNIX.Mode = "bind"
		if len(src.UNIX.Path) >= 108 {
			return nil, fmt.Errorf("domain '%s': channel socket path %s is longer than a unix socket allows: %w", c.Name(), src.UNIX.Path, virt.ErrInvalidArgument)
		}
	}
	for i := range dev.Graphics {
		s := dev.Graphics[i].Spice
		if s == nil || s.AutoPort != "yes" {
			continue
		}
		port, err := drv.ports.take(graphicsListen(s.Listen))
		if err != nil {
			drv.ports.release(held)
			return nil, virt.Errorf(virt.ErrInternal, "domain '%s': SPICE console: %w", c.Name(), err)
		}
		held = append(held, port)
		s.Port = port
	}
	if v := dev.VSock; v != nil {
		if _, err := os.Stat("/dev/vhost-vsock"); err != nil {
			drv.ports.release(held)
			return nil, fmt.Errorf("domain '%s': <vsock> needs /dev/vhost-vsock (the vhost_vsock kernel module): %w", c.Name(), virt.ErrNotSupported)
		}
		if v.CID.Auto == "yes" {
			v.CID.Address = strconv.Itoa(drv.freeCID(c.UUID()))
		}
	}
	return held, nil
}

// freeCID is the lowest vsock context id from 3 on that no other running
// domain of the driver has.
func (drv *Driver) freeCID(self string) int {
	used := map[string]bool{}
	drv.doms.Each(func(d *domain) {
		if d.Live != nil && d.Live.UUID() != self {
			if v := d.Live.x.Devices.VSock; v != nil && v.CID != nil {
				used[v.CID.Address] = true
			}
		}
	})
	cid := 3
	for used[strconv.Itoa(cid)] {
		cid++
	}
	return cid
}

// channelSource is what a unix channel without a path listens on in a
// command line written for reading only (domxml-to-native).
func channelSource(src *libvirtxml.DomainChardevSource, dir, name string) *libvirtxml.DomainChardevSource {
	u := *src.UNIX
	u.Path = filepath.Join(dir, name)
	return &libvirtxml.DomainChardevSource{UNIX: &u}
}

// balloonPath is the QOM path of the balloon device (id balloon0).
const balloonPath = "/machine/peripheral/balloon0"

// setBalloonPeriod turns on the guest's memory statistics every
// <stats period> seconds, as libvirt does once QEMU runs: QEMU takes it
// as a property of the balloon, not on its command line.
func setBalloonPeriod(ctx context.Context, mon *qmp.Monitor, c *config) error {
	b := c.x.Devices.MemBalloon
	if b == nil || b.Model != "virtio" || b.Stats == nil || b.Stats.Period == 0 {
		return nil
	}
	args := map[string]any{"path": balloonPath, "property": "guest-stats-polling-interval", "value": b.Stats.Period}
	if err := mon.Execute(ctx, "qom-set", args, nil); err != nil {
		return virt.Errorf(virt.ErrInternal, "setting the balloon's statistics period: %w", err)
	}
	return nil
}
