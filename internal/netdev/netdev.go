// Package netdev makes, attaches and removes the host network devices of
// guests: tap devices for QEMU, veth pairs for containers, and their place
// on a bridge. It speaks rtnetlink to the kernel through
// github.com/vishvananda/netlink; no ip(8) is run, so no name is ever
// parsed by a command line.
//
// Every function acts in the network namespace of the calling thread: a
// caller that wants another one locks its goroutine to a thread that has
// joined it (netdevtest.Do in tests), or, for what this package does not
// do, uses a netlink.Handle made for that namespace.
package netdev

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/virtd/virtd/virt"
)

// TapTemplate, given to AddTap as the name, lets the kernel name the tap:
// vnet0, vnet1, ..., the first that is free, picked and taken at once.
const TapTemplate = "vnet%d"

// Bridge returns the bridge called name. An error names it, and is of
// kind virt.ErrNotFound when there is no such interface, or
// virt.ErrInvalidArgument when it is not a bridge.
func Bridge(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("bridge %q does not exist: %w", name, virt.ErrNotFound)
		}
		return nil, virt.Errorf(virt.ErrInternal, "bridge %q: %w", name, err)
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return nil, fmt.Errorf("interface %q is not a bridge (it is a %s): %w", name, l.Type(), virt.ErrInvalidArgument)
	}
	return l, nil
}

// AddTap makes a persistent tap device for a QEMU guest, attaches it to
// the bridge called bridge (none when empty), sets it up, and returns its
// name. Given TapTemplate (or any name with %d), the kernel picks the
// name; two callers at once always get two devices. A name that is taken
// already is an error of kind virt.ErrAlreadyExists: the device of that
// name is neither reused nor touched. On error nothing is left behind.
//
// The tap has no packet information header (IFF_NO_PI), as QEMU's -netdev
// tap expects; QEMU sets the flags it wants, IFF_VNET_HDR among them, when
// it attaches. Its owner and group are the caller's, which QEMU runs as.
func AddTap(name, bridge string) (string, error) {
	master := 0
	if bridge != "" {
		br, err := Bridge(bridge)
		if err != nil {
			return "", err
		}
		master = br.Attrs().Index
	}
	tap := &netlink.Tuntap{
		LinkAttrs: netlink.NewLinkAttrs(),
		Mode:      netlink.TUNTAP_MODE_TAP,
		// IFF_TUN_EXCL: without it, the kernel would attach to a tap
		// that has the name already instead of failing.
		Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_TUN_EXCL,
		Owner: uint32(os.Geteuid()),
		Group: uint32(os.Getegid()),
	}
	tap.Name = name
	tap.MasterIndex = master
	if err := netlink.LinkAdd(tap); err != nil {
		// netlink words the tun driver's error without its errno: a
		// taken name (EBUSY, with IFF_TUN_EXCL) is told by looking.
		if _, lerr := netlink.LinkByName(name); lerr == nil {
			return "", fmt.Errorf("tap %q: a network device of that name exists already: %w", name, virt.ErrAlreadyExists)
		}
		return "", virt.Errorf(virt.ErrInternal, "tap %q: %w", name, err)
	}
	// The kernel's name for it, the template filled in.
	name = tap.Name
	if err := netlink.LinkSetUp(tap); err != nil {
		_ = netlink.LinkDel(tap)
		return "", virt.Errorf(virt.ErrInternal, "tap %s: setting it up: %w", name, err)
	}
	return name, nil
}

// CheckTap reports whether a tap device called name exists, for a guest
// to use one the host made.
func CheckTap(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("tap %q does not exist (with managed='no' the host makes it): %w", name, virt.ErrNotFound)
	}
	if _, ok := l.(*netlink.Tuntap); !ok {
		return fmt.Errorf("%q is a %s device, not a tap: %w", name, l.Type(), virt.ErrInvalidArgument)
	}
	return nil
}

// AddVeth makes a veth pair. Its end called host stays in the caller's
// namespace, attached to the bridge called bridge (none when empty), and
// up. Its other end is made directly in the network namespace open as
// the file peerNS (a /proc/PID/ns/net, say), called peer, with the
// address mac (a random one when nil), and down. A name that is taken
// already is an error of kind virt.ErrAlreadyExists, and that device is
// not touched. On error nothing is left behind.
func AddVeth(host, bridge, peer string, mac net.HardwareAddr, peerNS int) error {
	master := 0
	if bridge != "" {
		br, err := Bridge(bridge)
		if err != nil {
			return err
		}
		master = br.Attrs().Index
	}
	v := netlink.NewVeth(netlink.NewLinkAttrs())
	v.Name = host
	v.PeerName = peer
	v.PeerHardwareAddr = mac
	v.PeerNamespace = netlink.NsFd(peerNS)
	if err := netlink.LinkAdd(v); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("veth %q (peer %q): a network device of either name exists already: %w", host, peer, virt.ErrAlreadyExists)
		}
		return virt.Errorf(virt.ErrInternal, "veth %q (peer %q): %w", host, peer, err)
	}
	fail := func(what string, err error) error {
		_ = netlink.LinkDel(v) // takes the peer with it
		return virt.Errorf(virt.ErrInternal, "veth %s: %s: %w", host, what, err)
	}
	if master != 0 {
		if err := netlink.LinkSetMasterByIndex(v, master); err != nil {
			return fail("attaching it to bridge "+bridge, err)
		}
	}
	if err := netlink.LinkSetUp(v); err != nil {
		return fail("setting it up", err)
	}
	return nil
}

// Delete removes the network device called name; one that does not exist
// is not an error. Removing either end of a veth pair removes both.
func Delete(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("network device %q: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("deleting network device %q: %w", name, err)
	}
	return nil
}

// GuestCounters returns the counters of the host device called name (a
// QEMU guest's tap, a container's host end of a veth) as the guest sees
// them: what the host end sent, the guest received, so receive and
// transmit are swapped, as libvirt swaps them for these devices. A device
// that does not exist is an error of kind virt.ErrNotFound.
func GuestCounters(name string) (*virt.InterfaceStats, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("network device %q does not exist: %w", name, virt.ErrNotFound)
		}
		return nil, virt.Errorf(virt.ErrInternal, "network device %q: %w", name, err)
	}
	s := l.Attrs().Statistics
	if s == nil {
		return nil, fmt.Errorf("network device %q: the kernel gave no counters: %w", name, virt.ErrInternal)
	}
	return &virt.InterfaceStats{
		RxBytes: int64(s.TxBytes), RxPackets: int64(s.TxPackets), RxErrs: int64(s.TxErrors), RxDrop: int64(s.TxDropped),
		TxBytes: int64(s.RxBytes), TxPackets: int64(s.RxPackets), TxErrs: int64(s.RxErrors), TxDrop: int64(s.RxDropped),
	}, nil
}
