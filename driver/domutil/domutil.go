// Package domutil holds what every driver needs around libvirt's domain
// vocabulary: UUIDs and MAC addresses as libvirt writes them, libvirt's
// scaled memory units, the check of a host network interface name, the
// order virsh lists domains in, and a broadcaster for lifecycle events.
// Driver authors may use it; nothing in it is tied to one hypervisor. The
// list of a driver's domains is package domlist.
package domutil

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/virtd/virtd/virt"
)

// ParseUUID accepts a UUID the way libvirt does (32 hex digits, dashes
// anywhere, surrounding space) and returns libvirt's canonical form.
func ParseUUID(s string) (string, error) {
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

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatUUID(b[:])
}

// NewMAC returns a random MAC address with libvirt's 52:54:00 prefix.
func NewMAC() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", b[0], b[1], b[2])
}

// ScaleToKiB converts a libvirt scaled integer to KiB, rounding up. The
// unit is read as libvirt's virScaleInteger reads it: b or bytes; KB, MB,
// ... powers of 1000; k, KiB, M, MiB, ... powers of 1024; none for KiB.
func ScaleToKiB(v uint64, unit string) (uint64, error) {
	u := strings.ToLower(strings.TrimSpace(unit))
	var scale uint64
	switch u {
	case "":
		scale = 1024
	case "b", "byte", "bytes":
		scale = 1
	default:
		exp := strings.IndexByte("kmgtpe", u[0]) + 1
		var base uint64
		switch u[1:] {
		case "", "ib":
			base = 1024
		case "b":
			base = 1000
		}
		if exp == 0 || base == 0 {
			return 0, fmt.Errorf("unknown unit %q: %w", unit, virt.ErrInvalidArgument)
		}
		scale = 1
		for range exp {
			scale *= base
		}
	}
	b := v * scale
	if b/scale != v {
		return 0, fmt.Errorf("value %d %s is too large: %w", v, unit, virt.ErrInvalidArgument)
	}
	return (b + 1023) / 1024, nil
}

// SortDomains puts domains in the order virsh lists them: active ones by
// ID (Xen's Domain-0 has ID 0), then inactive ones (ID -1) by name.
func SortDomains(doms []virt.Domain) {
	sort.Slice(doms, func(i, j int) bool {
		a, b := &doms[i], &doms[j]
		if (a.ID >= 0) != (b.ID >= 0) {
			return a.ID >= 0
		}
		if a.ID >= 0 {
			return a.ID < b.ID
		}
		return a.Name < b.Name
	})
}

// Filter returns the domains that pass flags, in virsh's order: a driver's
// ListDomains is Filter over a snapshot of its domains.
func Filter(doms []virt.Domain, flags virt.ListFlags) []virt.Domain {
	out := make([]virt.Domain, 0, len(doms))
	for i := range doms {
		if flags.Match(&doms[i]) {
			out = append(out, doms[i])
		}
	}
	SortDomains(out)
	return out
}

// NotFound is the error for a lookup that found nothing, naming what was
// looked for in libvirt's words: "no domain with matching name 'x'".
func NotFound(key virt.Lookup) error {
	switch {
	case key.Name != "":
		return fmt.Errorf("no domain with matching name '%s': %w", key.Name, virt.ErrNotFound)
	case key.UUID != "":
		return fmt.Errorf("no domain with matching uuid '%s': %w", key.UUID, virt.ErrNotFound)
	}
	return fmt.Errorf("no domain with matching id %d: %w", key.ID, virt.ErrNotFound)
}
