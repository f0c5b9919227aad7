package domconfig

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/virtd/virtd/virt"
)

// ScaleToKiB converts a libvirt scaled integer (unit as libvirt reads it:
// b/bytes, KB/MB/... powers of 1000, k/KiB/M/MiB/... powers of 1024, none
// meaning KiB) to KiB, rounding up.
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
		return 0, fmt.Errorf("%d %s is too large: %w", v, unit, virt.ErrInvalidArgument)
	}
	return (b + 1023) / 1024, nil
}

// ParseUUID accepts a UUID the way libvirt does (32 hex digits, dashes
// anywhere) and returns the canonical form.
func ParseUUID(s string) (string, error) {
	raw := strings.ReplaceAll(strings.TrimSpace(s), "-", "")
	b, err := hex.DecodeString(raw)
	if err != nil || len(b) != 16 {
		return "", fmt.Errorf("invalid UUID %q: %w", s, virt.ErrInvalidArgument)
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}
