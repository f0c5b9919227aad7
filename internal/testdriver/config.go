package testdriver

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"

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

// parseConfig parses libvirt domain XML and checks it the way the test
// driver needs: type 'test', a name without '/', a valid (or generated)
// UUID, memory, vCPUs and an hvm OS on an architecture the capabilities
// offer. The returned XML is normalised (memory in KiB, uuid filled in, no
// id).
func parseConfig(doc string) (*config, error) {
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		return nil, fmt.Errorf("malformed domain XML: %v: %w", err, virt.ErrInvalidArgument)
	}
	if x.Type != domainType {
		return nil, fmt.Errorf("domain type %q is not served by the test driver (only type='%s'): %w",
			x.Type, domainType, virt.ErrInvalidArgument)
	}
	name := strings.TrimSpace(x.Name)
	switch {
	case name == "":
		return nil, fmt.Errorf("domain XML has no <name>: %w", virt.ErrInvalidArgument)
	case strings.Contains(name, "/"):
		return nil, fmt.Errorf("domain name %q must not contain '/': %w", name, virt.ErrInvalidArgument)
	}
	x.Name = name
	if strings.TrimSpace(x.UUID) == "" {
		x.UUID = newUUID()
	} else {
		u, err := parseUUID(x.UUID)
		if err != nil {
			return nil, fmt.Errorf("domain %q: %w", name, err)
		}
		x.UUID = u
	}
	x.ID = nil

	c := &config{xml: &x}
	if x.Memory == nil {
		return nil, fmt.Errorf("domain %q: memory size must be given with <memory>: %w", name, virt.ErrInvalidArgument)
	}
	maxKiB, err := scaleToKiB(x.Memory.Value, x.Memory.Unit)
	if err != nil {
		return nil, fmt.Errorf("domain %q: <memory>: %w", name, err)
	}
	if maxKiB == 0 {
		return nil, fmt.Errorf("domain %q: <memory> must be greater than zero: %w", name, virt.ErrInvalidArgument)
	}
	curKiB := maxKiB
	if x.CurrentMemory != nil {
		if curKiB, err = scaleToKiB(x.CurrentMemory.Value, x.CurrentMemory.Unit); err != nil {
			return nil, fmt.Errorf("domain %q: <currentMemory>: %w", name, err)
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
			return nil, fmt.Errorf("domain %q: <vcpu> must be at least 1: %w", name, virt.ErrInvalidArgument)
		}
		if x.VCPU.Current > x.VCPU.Value {
			return nil, fmt.Errorf("domain %q: <vcpu current='%d'> exceeds the maximum %d: %w",
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
		return nil, fmt.Errorf("domain %q: os type %q is not supported by the test driver (only hvm): %w",
			name, x.OS.Type.Type, virt.ErrInvalidArgument)
	}
	if x.OS.Type.Arch == "" {
		x.OS.Type.Arch = guestArches[0].name
	}
	if !knownArch(x.OS.Type.Arch) {
		return nil, fmt.Errorf("domain %q: architecture %q is not supported by the test driver: %w",
			name, x.OS.Type.Arch, virt.ErrInvalidArgument)
	}
	return c, nil
}

// name and uuid of the definition.
func (c *config) name() string { return c.xml.Name }
func (c *config) uuid() string { return c.xml.UUID }

// marshal writes the definition, with id='N' when id > 0 (live XML).
func (c *config) marshal(id int32) (string, error) {
	x := *c.xml // shallow: only the top-level ID changes
	if id > 0 {
		n := int(id)
		x.ID = &n
	}
	s, err := x.Marshal()
	if err != nil {
		return "", fmt.Errorf("domain %q: writing XML: %v: %w", c.name(), err, virt.ErrInternal)
	}
	return s, nil
}

// scaleToKiB converts a libvirt scaled integer (unit attribute as libvirt's
// virScaleInteger reads it: b/bytes, KB/MB/... powers of 1000, k/KiB/M/MiB/...
// powers of 1024, default KiB) to KiB, rounding up.
func scaleToKiB(v uint, unit string) (uint64, error) {
	var scale uint64
	u := strings.ToLower(strings.TrimSpace(unit))
	switch u {
	case "":
		scale = 1024
	case "b", "byte", "bytes":
		scale = 1
	default:
		exp := strings.IndexByte("kmgtpe", u[0]) + 1
		if exp == 0 {
			return 0, fmt.Errorf("unknown unit %q: %w", unit, virt.ErrInvalidArgument)
		}
		var base uint64
		switch u[1:] {
		case "", "ib":
			base = 1024
		case "b":
			base = 1000
		default:
			return 0, fmt.Errorf("unknown unit %q: %w", unit, virt.ErrInvalidArgument)
		}
		scale = 1
		for range exp {
			scale *= base
		}
	}
	bytes := uint64(v) * scale
	if scale != 0 && bytes/scale != uint64(v) {
		return 0, fmt.Errorf("value %d %s is too large: %w", v, unit, virt.ErrInvalidArgument)
	}
	return (bytes + 1023) / 1024, nil
}

// parseUUID accepts a UUID the way libvirt does (32 hex digits, dashes
// anywhere, surrounding space) and returns libvirt's canonical form.
func parseUUID(s string) (string, error) {
	raw := strings.ReplaceAll(strings.TrimSpace(s), "-", "")
	b, err := hex.DecodeString(raw)
	if err != nil || len(b) != 16 {
		return "", fmt.Errorf("invalid UUID %q: %w", s, virt.ErrInvalidArgument)
	}
	return formatUUID(b), nil
}

func formatUUID(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b[:])
}
