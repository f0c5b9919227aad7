package qemu

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtd/virtd/internal/netdev/netdevtest"
	"github.com/virtd/virtd/virt"
)

func interfacesXML(name, interfaces string) string {
	return fmt.Sprintf(`<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64'>hvm</type></os><devices>%s</devices></domain>`, name, interfaces)
}

// A host interface name from the XML goes to the kernel at start: define
// refuses a bad one, naming its XML path, and nothing is stored.
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
// first tap is made, whatever define checked: a bad name never reaches
// the kernel, and a good interface before it gets no tap.
func TestCreateTapsChecksNamesBeforeUse(t *testing.T) {
	drv, _ := newTestDriver(t)
	ns := netdevtest.NewNS(t)
	h := netdevtest.Handle(t, ns)
	netdevtest.AddBridge(t, h, "br0")
	cases := []struct {
		name, bridge, dev, path, ifname string
	}{
		{"bridge leaves /sys/class/net", "../../../etc", "", "domain/devices/interface[2]/source/@bridge", "../../../etc"},
		{"tap of 16 bytes", "br0", "tap0123456789abc", "domain/devices/interface[2]/target/@dev", "tap0123456789abc"},
		{"template tap", "br0", "tap%d", "domain/devices/interface[2]/target/@dev", "tap%d"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(interfacesXML("taps", `<interface type='bridge'><source bridge='br0'/></interface>
<interface type='bridge'><source bridge='br0'/><target dev='tap0'/></interface>`))
			if err != nil {
				t.Fatal(err)
			}
			n := &c.x.Devices.Interfaces[1]
			n.Source.Bridge.Bridge, n.Target.Dev = tc.bridge, tc.dev
			rec := &record{}
			netdevtest.Do(t, ns, func() { err = drv.createTaps(c, rec) })
			if !errors.Is(err, virt.ErrInvalidArgument) {
				t.Fatalf("createTaps: %v, want an invalid argument", err)
			}
			for _, want := range []string{tc.path, fmt.Sprintf("%q", tc.ifname)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			if len(rec.Taps) != 0 {
				t.Errorf("taps recorded: %v", rec.Taps)
			}
			if got := netdevtest.Links(t, h); fmt.Sprint(got) != "[br0 lo]" {
				t.Errorf("devices after a refused start: %v", got)
			}
		})
	}
}

// createTaps makes a tap on its bridge for each bridge interface, named
// by the kernel unless the XML names it (other than vnet...), and records
// the names; deleteTaps removes them. A failure removes the taps made so
// far, and leaves alone a device whose name the XML took.
func TestCreateTaps(t *testing.T) {
	drv, _ := newTestDriver(t)
	ns := netdevtest.NewNS(t)
	h := netdevtest.Handle(t, ns)
	br0, br1 := netdevtest.AddBridge(t, h, "br0"), netdevtest.AddBridge(t, h, "br1")
	c, err := parseConfig(interfacesXML("taps", `<interface type='bridge'><source bridge='br0'/></interface>
<interface type='user'/>
<interface type='bridge'><source bridge='br1'/><target dev='vnet7'/></interface>
<interface type='bridge'><source bridge='br0'/><target dev='mytap'/></interface>`))
	if err != nil {
		t.Fatal(err)
	}
	rec := &record{}
	netdevtest.Do(t, ns, func() { err = drv.createTaps(c, rec) })
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rec.Taps) != "[vnet0 vnet1 mytap]" {
		t.Errorf("taps recorded: %v, want [vnet0 vnet1 mytap]", rec.Taps)
	}
	for i, want := range []struct {
		dev    string
		master int
	}{{"vnet0", br0.Index}, {"", 0}, {"vnet1", br1.Index}, {"mytap", br0.Index}} {
		n := c.x.Devices.Interfaces[i]
		if want.dev == "" {
			if n.Target != nil {
				t.Errorf("user interface got a target %+v", n.Target)
			}
			continue
		}
		if n.Target == nil || n.Target.Dev != want.dev {
			t.Errorf("interface %d: target %+v, want dev %s", i, n.Target, want.dev)
		}
		l, err := h.LinkByName(want.dev)
		if err != nil {
			t.Errorf("%s: %v", want.dev, err)
			continue
		}
		if l.Type() != "tuntap" || l.Attrs().MasterIndex != want.master || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s: a %s, master %d, flags %v; want a tap on %d, up", want.dev, l.Type(), l.Attrs().MasterIndex, l.Attrs().Flags, want.master)
		}
	}

	// Another start: mytap is taken, so it fails, and removes its own
	// vnet2 but neither the taken mytap nor the first start's taps.
	c2, _ := parseConfig(interfacesXML("taps2", `<interface type='bridge'><source bridge='br0'/></interface>
<interface type='bridge'><source bridge='br0'/><target dev='mytap'/></interface>`))
	rec2 := &record{}
	netdevtest.Do(t, ns, func() { err = drv.createTaps(c2, rec2) })
	if !errors.Is(err, virt.ErrAlreadyExists) || !strings.Contains(err.Error(), `"mytap"`) {
		t.Errorf("second createTaps: %v, want mytap already exists", err)
	}
	if got := netdevtest.Links(t, h); fmt.Sprint(got) != "[br0 br1 lo mytap vnet0 vnet1]" {
		t.Errorf("devices after a failed start: %v", got)
	}
	// A bridge that is not there fails the start the same way.
	c3, _ := parseConfig(interfacesXML("taps3", `<interface type='bridge'><source bridge='br0'/></interface>
<interface type='bridge'><source bridge='br9'/></interface>`))
	rec3 := &record{}
	netdevtest.Do(t, ns, func() { err = drv.createTaps(c3, rec3) })
	if !errors.Is(err, virt.ErrNotFound) || !strings.Contains(err.Error(), `bridge "br9" does not exist`) {
		t.Errorf("createTaps with no br9: %v, want br9 not found", err)
	}
	if got := netdevtest.Links(t, h); fmt.Sprint(got) != "[br0 br1 lo mytap vnet0 vnet1]" {
		t.Errorf("devices after a failed start: %v", got)
	}

	netdevtest.Do(t, ns, func() { drv.deleteTaps(rec.Taps) })
	if got := netdevtest.Links(t, h); fmt.Sprint(got) != "[br0 br1 lo]" {
		t.Errorf("devices after deleteTaps: %v", got)
	}
}
