package qemu

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

// createTaps creates a tap device for each bridge interface of a domain
// about to start, attaches it to its bridge, and records its name in the
// live definition (<target dev='vnetN'/>) and in rec.
//
// The names were checked at define; they are checked again here, before
// any of them reaches a path or ip(8), and before any tap is made.
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
		if _, err := os.Stat("/sys/class/net/" + br + "/bridge"); err != nil {
			drv.deleteTaps(rec.Taps)
			return fmt.Errorf("domain %q: interface %d: no bridge %q on this host: %w", c.Name(), i, br, virt.ErrNotFound)
		}
		name := ""
		if n.Target != nil && n.Target.Dev != "" && !strings.HasPrefix(n.Target.Dev, "vnet") {
			name = n.Target.Dev
		} else {
			name = freeTapName()
		}
		if err := ip("tuntap", "add", "dev", name, "mode", "tap"); err != nil {
			drv.deleteTaps(rec.Taps)
			return fmt.Errorf("domain %q: creating tap %s: %v: %w", c.Name(), name, err, virt.ErrInternal)
		}
		rec.Taps = append(rec.Taps, name)
		if err := ip("link", "set", "dev", name, "master", br, "up"); err != nil {
			drv.deleteTaps(rec.Taps)
			return fmt.Errorf("domain %q: attaching tap %s to bridge %s: %v: %w", c.Name(), name, br, err, virt.ErrInternal)
		}
		n.Target = &libvirtxml.DomainInterfaceTarget{Dev: name}
	}
	return nil
}

func (drv *Driver) deleteTaps(taps []string) {
	for _, t := range taps {
		if err := ip("link", "del", "dev", t); err != nil {
			drv.log.Warn("cannot delete a tap device", "tap", t, "error", err)
		}
	}
}

// freeTapName returns the first vnetN that does not exist. Two starts at
// once may pick the same one; the second's `ip tuntap add` then fails.
func freeTapName() string {
	for i := 0; ; i++ {
		n := fmt.Sprintf("vnet%d", i)
		if _, err := os.Stat("/sys/class/net/" + n); err != nil {
			return n
		}
	}
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
