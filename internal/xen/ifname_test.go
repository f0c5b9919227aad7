package xen

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/virt"
)

// A bridge or vif name from the XML reaches Xen's hotplug scripts, which
// run as root: define refuses a bad one, naming its XML path, and neither
// stores a definition nor asks the hypervisor for anything.
func TestDefineRefusesBadInterfaceNames(t *testing.T) {
	hv := newFake()
	cfgDir := t.TempDir()
	d := newDriver(hclog.NewNullLogger(), hv, "", cfgDir, t.TempDir())
	ctx := t.Context()
	cases := []struct {
		name, iface, path, ifname string
	}{
		{"bridge leaves /sys/class/net", `<interface type='bridge'><source bridge='../../../etc'/></interface>`,
			"domain/devices/interface[1]/source/@bridge", "../../../etc"},
		{"vif of 16 bytes", `<interface type='bridge'><source bridge='xenbr0'/><target dev='vif0123456789abc'/></interface>`,
			"domain/devices/interface[1]/target/@dev", "vif0123456789abc"},
		{"second interface", `<interface type='ethernet'/><interface type='bridge'><source bridge='xenbr0 up'/></interface>`,
			"domain/devices/interface[2]/source/@bridge", "xenbr0 up"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := fmt.Sprintf(`<domain type='xen'><name>bad%d</name><memory unit='MiB'>128</memory>
<os><type>linux</type><kernel>/boot/vmlinuz</kernel></os><devices>%s</devices></domain>`, i, tc.iface)
			_, err := d.DefineDomain(ctx, doc)
			if !errors.Is(err, virt.ErrInvalidArgument) {
				t.Fatalf("DefineDomain = %v, want an invalid argument", err)
			}
			for _, want := range []string{tc.path, fmt.Sprintf("%q", tc.ifname)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			if stored, _ := os.ReadDir(cfgDir); len(stored) != 0 {
				t.Errorf("files stored after a refused define: %v", stored)
			}
			if doms, _ := hv.List(); len(doms) != 1 {
				t.Errorf("the hypervisor has %d domains, want Domain-0 alone", len(doms))
			}
			if _, err := d.LookupDomain(ctx, virt.ByName(fmt.Sprint("bad", i))); !errors.Is(err, virt.ErrNotFound) {
				t.Errorf("a refused definition is known: %v", err)
			}
		})
	}
}
