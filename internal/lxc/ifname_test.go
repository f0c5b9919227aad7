package lxc

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtd/virtd/virt"
)

// Bridge, veth and guest names from the XML go to the kernel at start:
// define refuses a bad one, naming its XML path, and stores nothing.
// Define needs no root filesystem.
func TestDefineRefusesBadInterfaceNames(t *testing.T) {
	drv, td := newTestDriver(t)
	ctx := context.Background()
	cases := []struct {
		name, iface, path, ifname string
		kind                      error
	}{
		{"bridge-leaves-sys-class-net", `<interface type='bridge'><source bridge='../../../etc'/></interface>`,
			"domain/devices/interface[1]/source/@bridge", "../../../etc", virt.ErrInvalidArgument},
		{"veth-of-16-bytes", `<interface type='ethernet'><target dev='tap0123456789abc'/></interface>`,
			"domain/devices/interface[1]/target/@dev", "tap0123456789abc", virt.ErrInvalidArgument},
		{"guest-with-colon", `<interface type='ethernet'><guest dev='eth0:1'/></interface>`,
			"domain/devices/interface[1]/guest/@dev", "eth0:1", virt.ErrInvalidArgument},
		{"second-bridge-template", `<interface type='ethernet'/><interface type='bridge'><source bridge='br%d'/></interface>`,
			"domain/devices/interface[2]/source/@bridge", "br%d", virt.ErrInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := "ct-" + tc.name
			_, err := drv.DefineDomain(ctx, domainXML("/nonexistent/virtd-rootfs", name, domOpts{devices: "\n    " + tc.iface}))
			if !errors.Is(err, tc.kind) {
				t.Fatalf("DefineDomain = %v, want an error of kind %v", err, tc.kind)
			}
			for _, want := range []string{tc.path, fmt.Sprintf("%q", tc.ifname)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			if _, err := drv.LookupDomain(ctx, virt.ByName(name)); !errors.Is(err, virt.ErrNotFound) {
				t.Errorf("a refused definition is known: %v", err)
			}
			if stored, _ := filepath.Glob(filepath.Join(td.root, "etc", "*.xml")); len(stored) != 0 {
				t.Errorf("definitions stored: %v", stored)
			}
		})
	}
}

// Names the kernel takes are taken at define, also those ip(8) would have
// misread ('#', a leading quote) and host names of 14 and 15 bytes.
func TestDefineAcceptsKernelInterfaceNames(t *testing.T) {
	drv, _ := newTestDriver(t)
	ctx := context.Background()
	for i, iface := range []string{
		`<interface type='bridge'><source bridge='br#0'/></interface>`,
		`<interface type='bridge'><source bridge="'br0"/><guest dev='"eth0'/></interface>`,
		`<interface type='ethernet'><target dev='tap0123456789a'/></interface>`,
		`<interface type='ethernet'><target dev='tap0123456789ab'/><guest dev='eth#0'/></interface>`,
	} {
		name := fmt.Sprintf("ct-ifname-%d", i)
		if _, err := drv.DefineDomain(ctx, domainXML("/nonexistent/virtd-rootfs", name, domOpts{devices: "\n    " + iface})); err != nil {
			t.Errorf("DefineDomain with %s: %v", iface, err)
		}
	}
}
