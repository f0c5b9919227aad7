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

// Bridge, veth and guest names from the XML become paths under
// /sys/class/net and arguments of ip: define refuses a bad one, naming
// its XML path, and stores nothing. Define needs no root filesystem.
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
		{"veth-of-14-bytes", `<interface type='ethernet'><target dev='tap0123456789a'/></interface>`,
			"domain/devices/interface[1]/target/@dev", "tap0123456789a", virt.ErrInvalidArgument},
		{"guest-with-colon", `<interface type='ethernet'><guest dev='eth0:1'/></interface>`,
			"domain/devices/interface[1]/guest/@dev", "eth0:1", virt.ErrInvalidArgument},
		{"second-bridge-with-hash", `<interface type='ethernet'/><interface type='bridge'><source bridge='br#0'/></interface>`,
			"domain/devices/interface[2]/source/@bridge", "br#0", virt.ErrNotSupported},
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
