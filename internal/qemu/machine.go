package qemu

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/virtd/virtd/virt"
)

// resolveMachine writes a definition's machine type as its emulator names
// it, as libvirt does at define: an alias ("pc", "q35") becomes the
// versioned type it stands for ("pc-i440fx-7.2"), so that the guest keeps
// its hardware when QEMU is upgraded. A type the emulator does not have
// is refused. The answer comes from the emulator's probe, cached by the
// binary's identity: one QEMU run the first time, none after.
func (drv *Driver) resolveMachine(ctx context.Context, c *config) error {
	x := c.x
	path := x.Devices.Emulator
	e := emulator{path: path, arch: strings.TrimPrefix(filepath.Base(path), "qemu-system-")}
	p, err := drv.caps.probe(ctx, e)
	if err != nil {
		return virt.Errorf(virt.ErrInternal, "domain '%s': asking %s for its machine types: %w", c.Name(), path, err)
	}
	name, err := canonicalMachine(p.Machines, x.OS.Type.Machine)
	if err != nil {
		return fmt.Errorf("domain '%s': %s: %w", c.Name(), err, virt.ErrInvalidArgument)
	}
	x.OS.Type.Machine = name
	return nil
}

// canonicalMachine is the machine type m names among ms: itself, or the
// type it is an alias of.
func canonicalMachine(ms []machine, m string) (string, error) {
	for _, mt := range ms {
		if mt.Name == m {
			return m, nil
		}
	}
	for _, mt := range ms {
		if mt.Alias == m {
			return mt.Name, nil
		}
	}
	return "", fmt.Errorf("<type machine='%s'>: the emulator has no such machine type", m)
}
