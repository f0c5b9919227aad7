package testdriver

import (
	"fmt"
	"slices"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/driver/domxml"
	"github.com/virtd/virtd/virt"
)

// config is one parsed, checked domain definition. It is never changed once
// built: a redefinition builds a new one, so a running domain can keep the
// definition it was started with.
type config struct {
	xml       *libvirtxml.Domain
	maxMemKiB uint64
	memKiB    uint64
	vcpus     uint32
}

// honoured is what the test driver honours: everything libvirtxml knows.
// It runs nothing, keeps the whole definition and gives it back in
// DomainXML, as libvirt's test driver does.
var honoured = domxml.NewFields("test", "*")

// parseConfig parses libvirt domain XML and checks it the way the test
// driver needs: what every driver refuses (package domxml: malformed or
// unknown XML, an invalid name), type 'test', a valid (or generated)
// UUID, memory, vCPUs and an hvm OS on an architecture the capabilities
// offer. The returned XML is normalised (memory in KiB, uuid filled in, no
// id).
func parseConfig(doc string) (*config, error) {
	px, err := domxml.Parse(doc)
	if err != nil {
		return nil, err
	}
	x := *px
	if x.Type != domainType {
		return nil, fmt.Errorf("domain type %q is not served by the test driver (only type='%s'): %w",
			x.Type, domainType, virt.ErrInvalidArgument)
	}
	if err := honoured.Check(&x); err != nil {
		return nil, err
	}
	name := x.Name
	if strings.TrimSpace(x.UUID) == "" {
		x.UUID = domutil.NewUUID()
	} else {
		u, err := domutil.ParseUUID(x.UUID)
		if err != nil {
			return nil, fmt.Errorf("domain '%s': %w", name, err)
		}
		x.UUID = u
	}
	x.ID = nil

	c := &config{xml: &x}
	if x.Memory == nil {
		return nil, fmt.Errorf("domain '%s': memory size must be given with <memory>: %w", name, virt.ErrInvalidArgument)
	}
	maxKiB, err := domutil.ScaleToKiB(uint64(x.Memory.Value), x.Memory.Unit)
	if err != nil {
		return nil, fmt.Errorf("domain '%s': <memory>: %w", name, err)
	}
	if maxKiB == 0 {
		return nil, fmt.Errorf("domain '%s': <memory> must be greater than zero: %w", name, virt.ErrInvalidArgument)
	}
	curKiB := maxKiB
	if x.CurrentMemory != nil {
		if curKiB, err = domutil.ScaleToKiB(uint64(x.CurrentMemory.Value), x.CurrentMemory.Unit); err != nil {
			return nil, fmt.Errorf("domain '%s': <currentMemory>: %w", name, err)
		}
		// libvirt clamps a current memory above the maximum, and takes
		// zero to mean "the maximum".
		if curKiB == 0 || curKiB > maxKiB {
			curKiB = maxKiB
		}
	}
	c.maxMemKiB, c.memKiB = maxKiB, curKiB
	x.Memory = &libvirtxml.DomainMemory{Value: uint(maxKiB), Unit: "KiB", DumpCore: x.Memory.DumpCore}
	x.CurrentMemory = &libvirtxml.DomainCurrentMemory{Value: uint(curKiB), Unit: "KiB"}

	c.vcpus = 1
	if x.VCPU != nil {
		if x.VCPU.Value == 0 {
			return nil, fmt.Errorf("domain '%s': <vcpu> must be at least 1: %w", name, virt.ErrInvalidArgument)
		}
		if x.VCPU.Current > x.VCPU.Value {
			return nil, fmt.Errorf("domain '%s': <vcpu current='%d'> exceeds the maximum %d: %w",
				name, x.VCPU.Current, x.VCPU.Value, virt.ErrInvalidArgument)
		}
		c.vcpus = uint32(x.VCPU.Value)
		if x.VCPU.Current != 0 {
			c.vcpus = uint32(x.VCPU.Current)
		}
	} else {
		x.VCPU = &libvirtxml.DomainVCPU{Placement: "static", Value: 1}
	}

	if x.OS == nil {
		x.OS = &libvirtxml.DomainOS{}
	}
	if x.OS.Type == nil {
		x.OS.Type = &libvirtxml.DomainOSType{}
	}
	if x.OS.Type.Type == "" {
		x.OS.Type.Type = "hvm"
	}
	if x.OS.Type.Type != "hvm" {
		return nil, fmt.Errorf("domain '%s': os type %q is not supported by the test driver (only hvm): %w",
			name, x.OS.Type.Type, virt.ErrInvalidArgument)
	}
	if x.OS.Type.Arch == "" {
		x.OS.Type.Arch = guestArches[0]
	}
	if !slices.Contains(guestArches, x.OS.Type.Arch) {
		return nil, fmt.Errorf("domain '%s': architecture %q is not supported by the test driver: %w",
			name, x.OS.Type.Arch, virt.ErrInvalidArgument)
	}
	return c, nil
}

// Name and UUID of the definition (domlist.Def).
func (c *config) Name() string { return c.xml.Name }
func (c *config) UUID() string { return c.xml.UUID }

// marshal writes the definition, with id='N' when id > 0 (live XML).
func (c *config) marshal(id int32) (string, error) {
	x := *c.xml // shallow: only the top-level ID changes
	if id > 0 {
		n := int(id)
		x.ID = &n
	}
	s, err := x.Marshal()
	if err != nil {
		return "", virt.Errorf(virt.ErrInternal, "domain '%s': writing XML: %w", c.Name(), err)
	}
	return s, nil
}
