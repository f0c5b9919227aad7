package qemu

import (
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/internal/netdev"
)

// createTaps creates a tap device for each bridge interface of a domain
// about to start, attaches it to its bridge, and records its name in the
// live definition (<target dev='vnetN'/>) and in rec.
//
// A target that is empty or starts with "vnet" (libvirt keeps those names
// for the ones it picks) gets a name the kernel picks, the first free
// vnetN, atomically: two domains starting at once never get the same.
// Another target is made with that name, or the start fails.
//
// The names were checked at define; they are checked again here, before
// any of them reaches the kernel, and before any tap is made.
func (drv *Driver) createTaps(c *config, rec *record) error {
	for i := range c.x.Devices.Interfaces {
		if c.x.Devices.Interfaces[i].Source.Bridge == nil {
			continue
		}
		if err := checkInterfaceNames(c.x, i); err != nil {
			return err
		}
	}
	for i := range c.x.Devices.Interfaces {
		n := &c.x.Devices.Interfaces[i]
		if n.Source.Bridge == nil {
			continue
		}
		br := n.Source.Bridge.Bridge
		name := netdev.TapTemplate
		if n.Target != nil && n.Target.Dev != "" && !strings.HasPrefix(n.Target.Dev, "vnet") {
			name = n.Target.Dev
		}
		name, err := netdev.AddTap(name, br)
		if err != nil {
			drv.deleteTaps(rec.Taps)
			return fmt.Errorf("domain '%s': interface %d: %w", c.Name(), i, err)
		}
		rec.Taps = append(rec.Taps, name)
		n.Target = &libvirtxml.DomainInterfaceTarget{Dev: name}
	}
	return nil
}

func (drv *Driver) deleteTaps(taps []string) {
	for _, t := range taps {
		if err := netdev.Delete(t); err != nil {
			drv.log.Warn("cannot delete a tap device", "tap", t, "error", err)
		}
	}
}
