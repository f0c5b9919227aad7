package qemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtd/virtd/virt"
)

func interfacesXML(name, interfaces string) string {
	return fmt.Sprintf(`<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64'>hvm</type></os><devices>%s</devices></domain>`, name, interfaces)
}

// A host interface name from the XML becomes a path under /sys/class/net
// and an argument of ip(8) at start: define refuses a bad one, naming its
// XML path, and nothing is stored.
func TestDefineRefusesBadInterfaceNames(t *testing.T) {
	drv, dir := newTestDriver(t)
	ctx := ctxT(t)
	cases := []struct {
		name, interfaces, path, ifname string
	}{
		{"bridge leaves /sys/class/net", `<interface type='bridge'><source bridge='../../../etc'/></interface>`,
			"domain/devices/interface[1]/source/@bridge", "../../../etc"},
		{"tap of 16 bytes", `<interface type='bridge'><source bridge='br0'/><target dev='tap0123456789abc'/></interface>`,
			"domain/devices/interface[1]/target/@dev", "tap0123456789abc"},
		{"tap with a space", `<interface type='bridge'><source bridge='br0'/><target dev='tap0 master'/></interface>`,
			"domain/devices/interface[1]/target/@dev", "tap0 master"},
		{"second interface", `<interface type='user'/><interface type='bridge'><source bridge='br0:1'/></interface>`,
			"domain/devices/interface[2]/source/@bridge", "br0:1"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := drv.DefineDomain(ctx, interfacesXML(fmt.Sprint("badif", i), tc.interfaces))
			if !errors.Is(err, virt.ErrInvalidArgument) {
				t.Fatalf("define: %v, want an invalid argument", err)
			}
			for _, want := range []string{tc.path, fmt.Sprintf("%q", tc.ifname)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			if doms, _ := drv.ListDomains(ctx, 0); len(doms) != 0 {
				t.Errorf("domains after a refused define: %v", doms)
			}
			if stored, _ := os.ReadDir(filepath.Join(dir, "state")); len(stored) != 0 {
				t.Errorf("files stored after a refused define: %v", stored)
			}
			if left := runFiles(t, dir); len(left) != 0 {
				t.Errorf("runtime files after a refused define: %v", left)
			}
		})
	}
	// A user interface has no host device: its target is dropped, not
	// checked, as libvirt does.
	if _, err := parseConfig(interfacesXML("u", `<interface type='user'><target dev='x/y'/></interface>`)); err != nil {
		t.Errorf("user interface with a target: %v", err)
	}
}

// createTaps checks the names again before use, all of them before the
// first tap is made, whatever define checked: a bad name never makes the
// driver stat outside /sys/class/net or run ip with it.
func TestCreateTapsChecksNamesBeforeUse(t *testing.T) {
	drv, _ := newTestDriver(t)
	// Were the bridge's name used, /sys/class/net/<it>/bridge would exist
	// and the next step would run ip, which PATH does not hold.
	out := t.TempDir()
	if err := os.Mkdir(filepath.Join(out, "bridge"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	escape := "../../.." + out
	cases := []struct {
		name, bridge, dev, path, ifname string
	}{
		{"bridge leaves /sys/class/net", escape, "", "domain/devices/interface[1]/source/@bridge", escape},
		{"tap of 16 bytes", "br0", "tap0123456789abc", "domain/devices/interface[1]/target/@dev", "tap0123456789abc"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(interfacesXML("taps", `<interface type='bridge'><source bridge='br0'/><target dev='tap0'/></interface>`))
			if err != nil {
				t.Fatal(err)
			}
			n := &c.x.Devices.Interfaces[0]
			n.Source.Bridge.Bridge, n.Target.Dev = tc.bridge, tc.dev
			rec := &record{}
			err = drv.createTaps(c, rec)
			if !errors.Is(err, virt.ErrInvalidArgument) {
				t.Fatalf("createTaps: %v, want an invalid argument", err)
			}
			for _, want := range []string{tc.path, fmt.Sprintf("%q", tc.ifname)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			if len(rec.Taps) != 0 {
				t.Errorf("taps made: %v", rec.Taps)
			}
		})
	}
}
