package netdev

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/virtd/virtd/internal/netdev/netdevtest"
	"github.com/virtd/virtd/virt"
)

// Starts at once all get a tap, each its own: the kernel names them, the
// first free number each, so they are vnet0 to vnetN-1 and none is lost.
func TestAddTapConcurrentNamesAreDistinct(t *testing.T) {
	ns := netdevtest.NewNS(t)
	h := netdevtest.Handle(t, ns)
	br := netdevtest.AddBridge(t, h, "br0")
	const n = 16
	names := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := netdevtest.Run(ns, func() {
				<-start
				names[i], errs[i] = AddTap(TapTemplate, "br0")
			})
			if err != nil {
				errs[i] = err
			}
		}()
	}
	close(start)
	wg.Wait()
	want := map[string]bool{}
	for i := range n {
		want[fmt.Sprintf("vnet%d", i)] = true
	}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("AddTap %d: %v", i, errs[i])
			continue
		}
		if !want[names[i]] {
			t.Errorf("AddTap %d made %q: not vnet0 to vnet%d, or twice", i, names[i], n-1)
		}
		delete(want, names[i])
		l := netdevtest.Link(t, h, names[i])
		if l.Attrs().MasterIndex != br.Index || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s: master %d, flags %v; want on br0 (%d) and up", names[i], l.Attrs().MasterIndex, l.Attrs().Flags, br.Index)
		}
	}
}

func TestAddTap(t *testing.T) {
	ns := netdevtest.NewNS(t)
	h := netdevtest.Handle(t, ns)
	var name string
	var err error
	netdevtest.Do(t, ns, func() { name, err = AddTap("tapx", "") })
	if err != nil || name != "tapx" {
		t.Fatalf("AddTap tapx = %q, %v", name, err)
	}
	tap, ok := netdevtest.Link(t, h, "tapx").(*netlink.Tuntap)
	if !ok {
		t.Fatalf("tapx is a %s, not a tap", netdevtest.Link(t, h, "tapx").Type())
	}
	if tap.Mode != netlink.TUNTAP_MODE_TAP || tap.Flags&netlink.TUNTAP_NO_PI == 0 || tap.Flags&netlink.TUNTAP_MULTI_QUEUE != 0 ||
		tap.NonPersist || tap.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("tapx: mode %v, flags %v, persistent %v, up %v; want a persistent single-queue tap with no PI header, up",
			tap.Mode, tap.Flags, !tap.NonPersist, tap.Attrs().Flags&net.FlagUp != 0)
	}
	if tap.Owner != uint32(os.Geteuid()) || tap.Group != uint32(os.Getegid()) {
		t.Errorf("tapx owner %d:%d, want %d:%d", tap.Owner, tap.Group, os.Geteuid(), os.Getegid())
	}
	if tap.MasterIndex != 0 {
		t.Errorf("tapx has master %d", tap.MasterIndex)
	}

	// QEMU attaches to it the way -netdev tap,ifname=tapx does, with a
	// virtio-net header, and leaves it there when it lets go.
	var attachErr error
	netdevtest.Do(t, ns, func() {
		q := &netlink.Tuntap{LinkAttrs: netlink.NewLinkAttrs(), Mode: netlink.TUNTAP_MODE_TAP,
			Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR, Queues: 1, NonPersist: true}
		q.Name = "tapx"
		if attachErr = netlink.LinkAdd(q); attachErr == nil {
			for _, f := range q.Fds {
				f.Close()
			}
		}
	})
	if attachErr != nil {
		t.Errorf("attaching to tapx as QEMU does: %v", attachErr)
	}

	// A taken name is refused, and its device left alone: a tap, or a
	// device of another kind.
	for _, taken := range []string{"tapx", "lo"} {
		netdevtest.Do(t, ns, func() { name, err = AddTap(taken, "") })
		if !errors.Is(err, virt.ErrAlreadyExists) || name != "" {
			t.Errorf("AddTap %s again = %q, %v; want an already exists", taken, name, err)
		}
	}
	if got := netdevtest.Links(t, h); fmt.Sprint(got) != "[lo tapx]" {
		t.Errorf("devices after refused taps: %v", got)
	}
	if l := netdevtest.Link(t, h, "lo"); l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo went down")
	}

	netdevtest.Do(t, ns, func() { err = Delete("tapx") })
	if err != nil {
		t.Errorf("Delete tapx: %v", err)
	}
	netdevtest.Do(t, ns, func() { err = Delete("tapx") })
	if err != nil {
		t.Errorf("Delete tapx a second time: %v", err)
	}
	if got := netdevtest.Links(t, h); fmt.Sprint(got) != "[lo]" {
		t.Errorf("devices after Delete: %v", got)
	}
}

// A missing bridge, or a device that is not a bridge, is refused before
// anything is made.
func TestBridgeErrors(t *testing.T) {
	ns := netdevtest.NewNS(t)
	h := netdevtest.Handle(t, ns)
	peerNS := netdevtest.NewNS(t)
	for _, tc := range []struct {
		bridge, want string
		kind         error
	}{
		{"br9", `bridge "br9" does not exist`, virt.ErrNotFound},
		{"lo", `interface "lo" is not a bridge (it is a device)`, virt.ErrInvalidArgument},
	} {
		var tapErr, vethErr error
		netdevtest.Do(t, ns, func() {
			_, tapErr = AddTap(TapTemplate, tc.bridge)
			vethErr = AddVeth("vh0", tc.bridge, "eth0", nil, int(peerNS))
		})
		for what, err := range map[string]error{"AddTap": tapErr, "AddVeth": vethErr} {
			if !errors.Is(err, tc.kind) || err.Error() != tc.want+": "+tc.kind.Error() {
				t.Errorf("%s on %s: %v; want %q", what, tc.bridge, err, tc.want)
			}
		}
		if got := netdevtest.Links(t, h); fmt.Sprint(got) != "[lo]" {
			t.Errorf("devices after a refused bridge %s: %v", tc.bridge, got)
		}
	}
}

func TestAddVeth(t *testing.T) {
	hostNS, peerNS := netdevtest.NewNS(t), netdevtest.NewNS(t)
	h, ph := netdevtest.Handle(t, hostNS), netdevtest.Handle(t, peerNS)
	br := netdevtest.AddBridge(t, h, "br0")
	mac, _ := net.ParseMAC("52:54:00:12:34:56")
	var err error
	netdevtest.Do(t, hostNS, func() { err = AddVeth("vh0", "br0", "eth0", mac, int(peerNS)) })
	if err != nil {
		t.Fatal(err)
	}
	host := netdevtest.Link(t, h, "vh0")
	if host.Type() != "veth" || host.Attrs().MasterIndex != br.Index || host.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("vh0: a %s, master %d, flags %v; want a veth on br0 (%d), up", host.Type(), host.Attrs().MasterIndex, host.Attrs().Flags, br.Index)
	}
	peer := netdevtest.Link(t, ph, "eth0")
	if peer.Type() != "veth" || peer.Attrs().HardwareAddr.String() != mac.String() || peer.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("peer eth0: a %s, address %s, flags %v; want a veth, %s, down", peer.Type(), peer.Attrs().HardwareAddr, peer.Attrs().Flags, mac)
	}
	if got := netdevtest.Links(t, h); fmt.Sprint(got) != "[br0 lo vh0]" {
		t.Errorf("devices in the host namespace: %v", got)
	}

	// A taken name, on either side, is refused; its device is left
	// alone, and nothing is made.
	for _, tc := range []struct{ host, peer string }{{"vh0", "eth1"}, {"vh1", "eth0"}, {"br0", "eth1"}} {
		netdevtest.Do(t, hostNS, func() { err = AddVeth(tc.host, "", tc.peer, nil, int(peerNS)) })
		if !errors.Is(err, virt.ErrAlreadyExists) {
			t.Errorf("AddVeth %s/%s: %v, want an already exists", tc.host, tc.peer, err)
		}
	}
	if got := netdevtest.Links(t, h); fmt.Sprint(got) != "[br0 lo vh0]" {
		t.Errorf("devices in the host namespace after refused veths: %v", got)
	}
	if got := netdevtest.Links(t, ph); fmt.Sprint(got) != "[eth0 lo]" {
		t.Errorf("devices in the peer namespace after refused veths: %v", got)
	}
	if l := netdevtest.Link(t, h, "vh0"); l.Attrs().MasterIndex != br.Index {
		t.Errorf("vh0 left br0")
	}

	netdevtest.Do(t, hostNS, func() { err = Delete("vh0") })
	if err != nil {
		t.Fatal(err)
	}
	if got := netdevtest.Links(t, h); fmt.Sprint(got) != "[br0 lo]" {
		t.Errorf("devices in the host namespace after Delete: %v", got)
	}
	if got := netdevtest.Links(t, ph); fmt.Sprint(got) != "[lo]" {
		t.Errorf("devices in the peer namespace after Delete: %v", got)
	}
}

// GuestCounters reads a host device's counters as its guest sees them:
// what the container end of a veth sends, its host end receives, and the
// guest transmitted.
func TestGuestCounters(t *testing.T) {
	hostNS, peerNS := netdevtest.NewNS(t), netdevtest.NewNS(t)
	ph := netdevtest.Handle(t, peerNS)
	var err error
	netdevtest.Do(t, hostNS, func() { err = AddVeth("vh0", "", "eth0", nil, int(peerNS)) })
	if err != nil {
		t.Fatal(err)
	}
	peer := netdevtest.Link(t, ph, "eth0")
	if err := ph.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	var before, after *virt.InterfaceStats
	netdevtest.Do(t, hostNS, func() { before, err = GuestCounters("vh0") })
	if err != nil {
		t.Fatal(err)
	}
	// Three broadcast frames from the container's end.
	netdevtest.Do(t, peerNS, func() {
		fd, serr := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if serr != nil {
			err = serr
			return
		}
		defer unix.Close(fd)
		frame := make([]byte, 60)
		copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 1, 2, 3, 0x88, 0xb5})
		for range 3 {
			if serr := unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: peer.Attrs().Index, Halen: 6}); serr != nil {
				err = serr
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	netdevtest.Do(t, hostNS, func() { after, err = GuestCounters("vh0") })
	if err != nil {
		t.Fatal(err)
	}
	// (The host end may send IPv6 chatter of its own meanwhile: the
	// guest's receive counters are not checked.)
	if after.TxPackets-before.TxPackets != 3 || after.TxBytes-before.TxBytes != 180 {
		t.Errorf("after 3 frames of 60 bytes from the guest: %+v, before %+v; want them transmitted by the guest", after, before)
	}
	netdevtest.Do(t, hostNS, func() { _, err = GuestCounters("vh9") })
	if !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("GuestCounters of no device: %v", err)
	}
}
