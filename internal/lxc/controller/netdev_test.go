package controller

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/virtd/virtd/internal/netdev/netdevtest"
	"github.com/virtd/virtd/virt"
)

// The controller checks the names of its spec before any reaches the
// kernel, even though the driver checked them at define.
func TestSetupChecksNamesFirst(t *testing.T) {
	for _, ifc := range []Interface{
		{HostName: "vx0", GuestName: "eth0", Bridge: "../../../etc"},
		{HostName: "tap0123456789abc", GuestName: "eth0"},
		{HostName: "vx0", GuestName: "eth0 up"},
		{HostName: "vx0", GuestName: "eth0", Bridge: "br%d"},
	} {
		c := &controller{spec: &Spec{RootFS: "/nonexistent", Interfaces: []Interface{ifc}}}
		err := c.setup()
		if err == nil || virt.KindOf(err) != virt.ErrInvalidArgument {
			t.Fatalf("setup with %+v: %v, want an invalid argument", ifc, err)
		}
		if !strings.Contains(err.Error(), "interface name") {
			t.Errorf("setup with %+v: %q does not come from the name check", ifc, err)
		}
	}
}

// addNetworkAt makes the veths, host ends on their bridges and up, and
// names, addresses and routes the container ends inside; deleteVeths
// removes what it made. A failure returns what was made so far, and never
// a device of the same name that was there before.
func TestAddNetwork(t *testing.T) {
	hostNS, ctNS := netdevtest.NewNS(t), netdevtest.NewNS(t)
	h, ch := netdevtest.Handle(t, hostNS), netdevtest.Handle(t, ctNS)
	br := netdevtest.AddBridge(t, h, "br0")
	// The container's loopback starts down, as in a new namespace.
	if err := ch.LinkSetDown(netdevtest.Link(t, ch, "lo")); err != nil {
		t.Fatal(err)
	}
	ifs := []Interface{
		{HostName: "vh0", GuestName: "eth0", MAC: "52:54:00:aa:bb:cc", Bridge: "br0",
			Addrs: []string{"10.9.0.2/24", "fd00::2/64"},
			Routes: []Route{
				{Dest: "default", Gateway: "10.9.0.1"},
				{Dest: "10.10.0.0/16", Gateway: "10.9.0.254"},
				{Dest: "default", Gateway: "fd00::1"},
			}},
		// Names ip(8) would misread (a comment, a quote) or that a
		// temporary peer name "<host>p" would not fit.
		{HostName: "'vh#1.12345678", GuestName: "#net1"},
	}
	var made []string
	var err error
	netdevtest.Do(t, hostNS, func() { made, err = addNetworkAt(ctNS, ifs) })
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(made) != "[vh0 'vh#1.12345678]" {
		t.Errorf("made %v, want [vh0 'vh#1.12345678]", made)
	}
	if got := netdevtest.Links(t, h); fmt.Sprint(got) != "['vh#1.12345678 br0 lo vh0]" {
		t.Errorf("host devices: %v", got)
	}
	if got := netdevtest.Links(t, ch); fmt.Sprint(got) != "[#net1 eth0 lo]" {
		t.Errorf("container devices: %v", got)
	}
	for name, master := range map[string]int{"vh0": br.Index, "'vh#1.12345678": 0} {
		l := netdevtest.Link(t, h, name)
		if l.Attrs().MasterIndex != master || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s: master %d, flags %v; want master %d, up", name, l.Attrs().MasterIndex, l.Attrs().Flags, master)
		}
	}
	for _, name := range []string{"lo", "eth0", "#net1"} {
		if l := netdevtest.Link(t, ch, name); l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("container's %s is down", name)
		}
	}
	eth0 := netdevtest.Link(t, ch, "eth0")
	if a := eth0.Attrs().HardwareAddr.String(); a != "52:54:00:aa:bb:cc" {
		t.Errorf("eth0 address %s, want 52:54:00:aa:bb:cc", a)
	}
	addrs, err := ch.AddrList(eth0, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		if a.IP.IsGlobalUnicast() {
			got = append(got, a.IPNet.String())
		}
	}
	sort.Strings(got)
	if fmt.Sprint(got) != "[10.9.0.2/24 fd00::2/64]" {
		t.Errorf("eth0 addresses %v, want [10.9.0.2/24 fd00::2/64]", got)
	}
	routes, err := ch.RouteList(eth0, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, r := range routes {
		if r.Gw != nil {
			got = append(got, fmt.Sprintf("%v via %v", r.Dst, r.Gw))
		}
	}
	sort.Strings(got)
	if want := "[0.0.0.0/0 via 10.9.0.1 10.10.0.0/16 via 10.9.0.254 ::/0 via fd00::1]"; fmt.Sprint(got) != want {
		t.Errorf("eth0 routes %v, want %s", got, want)
	}

	// A host name that is taken: nothing made, the device left alone.
	ct2NS := netdevtest.NewNS(t)
	netdevtest.Do(t, hostNS, func() { made, err = addNetworkAt(ct2NS, []Interface{{HostName: "vh0", GuestName: "eth0"}}) })
	if !errors.Is(err, virt.ErrAlreadyExists) || len(made) != 0 {
		t.Errorf("addNetworkAt with vh0 taken: made %v, %v; want nothing made, already exists", made, err)
	}
	// The second of two fails: the first is returned, for deleteVeths.
	netdevtest.Do(t, hostNS, func() {
		made, err = addNetworkAt(ct2NS, []Interface{{HostName: "vh2", GuestName: "eth0", Bridge: "br0"}, {HostName: "vh3", GuestName: "eth1", Bridge: "br9"}})
	})
	if !errors.Is(err, virt.ErrNotFound) || fmt.Sprint(made) != "[vh2]" {
		t.Errorf("addNetworkAt with no br9: made %v, %v; want [vh2], br9 not found", made, err)
	}
	netdevtest.Do(t, hostNS, func() { deleteVeths(made) })
	if got := netdevtest.Links(t, h); fmt.Sprint(got) != "['vh#1.12345678 br0 lo vh0]" {
		t.Errorf("host devices after the failures: %v", got)
	}
	if l := netdevtest.Link(t, h, "vh0"); l.Attrs().MasterIndex != br.Index {
		t.Errorf("vh0 left br0")
	}

	netdevtest.Do(t, hostNS, func() { deleteVeths([]string{"vh0", "'vh#1.12345678", "vh9"}) })
	if got := netdevtest.Links(t, h); fmt.Sprint(got) != "[br0 lo]" {
		t.Errorf("host devices after deleteVeths: %v", got)
	}
	if got := netdevtest.Links(t, ch); fmt.Sprint(got) != "[lo]" {
		t.Errorf("container devices after deleteVeths: %v", got)
	}
}
