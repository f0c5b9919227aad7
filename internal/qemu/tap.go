package qemu

import (
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/internal/netdev"
)

// createTaps creates a tap device for each bridge and ethernet interface
// of a domain about to start, attaches a bridge interface's to its bridge,
// and records its name in the live definition (<target dev='vnetN'/>) and
// in rec. An ethernet interface with <target managed='no'> uses the tap
// the host made, which must exist, and is never deleted by the driver.
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
		if c.x.Devices.Interfaces[i].Source.User != nil {
			continue
		}
		if err := checkInterfaceNames(c.x, i); err != nil {
			return err
		}
	}
	for i := range c.x.Devices.Interfaces {
		n := &c.x.Devices.Interfaces[i]
		if n.Source.User != nil {
			continue
		}
		if n.Target != nil && n.Target.Managed == "no" {
			// <interface type='ethernet'><target dev='X' managed='no'/>:
			// a tap the host made; QEMU opens it, the driver keeps it.
			if err := netdev.CheckTap(n.Target.Dev); err != nil {
				drv.deleteTaps(rec.Taps)
				return fmt.Errorf("domain '%s': interface %d: %w", c.Name(), i, err)
			}
			continue
		}
		br := "" // type='ethernet': a tap on its own
		if n.Source.Bridge != nil {
			br = n.Source.Bridge.Bridge
		}
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
		if n.Source.Ethernet != nil {
			n.Target.Managed = "yes"
		}
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
