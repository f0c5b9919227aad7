package controller

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/internal/netdev"
)

// checkNames checks every name of ifc that the controller hands to the
// kernel.
func (ifc *Interface) checkNames() error {
	names := []string{ifc.HostName, ifc.GuestName}
	if ifc.Bridge != "" {
		names = append(names, ifc.Bridge)
	}
	for _, n := range names {
		if err := domutil.CheckInterfaceName(n); err != nil {
			return err
		}
	}
	return nil
}

// checkBridge checks that name is a bridge in the controller's network
// namespace.
func checkBridge(name string) error {
	_, err := netdev.Bridge(name)
	return err
}

// addNetwork gives the container whose init is pid its interfaces: a veth
// pair each, the host end in the controller's network namespace, up and
// on its bridge, the container end made in the container's namespace,
// with its name and MAC there; then it configures the container's side
// (configureNetwork). It returns the host ends it made, also on error,
// for deleteVeths: a device of the same name that it did not make is
// never among them.
func addNetwork(pid int, ifs []Interface) (made []string, err error) {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return nil, fmt.Errorf("the container's network namespace: %w", err)
	}
	defer ns.Close()
	return addNetworkAt(ns, ifs)
}

// addNetworkAt is addNetwork for the container's network namespace ns.
func addNetworkAt(ns netns.NsHandle, ifs []Interface) (made []string, err error) {
	for _, ifc := range ifs {
		var mac net.HardwareAddr
		if ifc.MAC != "" {
			if mac, err = net.ParseMAC(ifc.MAC); err != nil {
				return made, fmt.Errorf("interface %s: %w", ifc.HostName, err)
			}
		}
		if err := netdev.AddVeth(ifc.HostName, ifc.Bridge, ifc.GuestName, mac, int(ns)); err != nil {
			return made, fmt.Errorf("interface %s: %w", ifc.HostName, err)
		}
		made = append(made, ifc.HostName)
	}
	return made, configureNetwork(ns, ifs)
}

// configureNetwork brings up the loopback and the interfaces of the
// network namespace ns, and gives them their addresses and routes,
// through a netlink handle that acts there. The handle speaks rtnetlink
// only: by default it would also open xfrm and netfilter sockets, which a
// kernel without those modules refuses (EPROTONOSUPPORT).
func configureNetwork(ns netns.NsHandle, ifs []Interface) error {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("the container's network namespace: %w", err)
	}
	defer h.Close()
	up := func(name string) (netlink.Link, error) {
		l, err := h.LinkByName(name)
		if err != nil {
			return nil, err
		}
		return l, h.LinkSetUp(l)
	}
	if _, err := up("lo"); err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	for _, ifc := range ifs {
		l, err := up(ifc.GuestName)
		if err != nil {
			return fmt.Errorf("interface %s: %w", ifc.GuestName, err)
		}
		for _, a := range ifc.Addrs {
			addr, err := netlink.ParseAddr(a)
			if err != nil {
				return fmt.Errorf("interface %s: address %s: %w", ifc.GuestName, a, err)
			}
			if err := h.AddrAdd(l, addr); err != nil {
				return fmt.Errorf("interface %s: address %s: %w", ifc.GuestName, a, err)
			}
		}
		for _, r := range ifc.Routes {
			route, err := r.route(l.Attrs().Index)
			if err == nil {
				err = h.RouteAdd(route)
			}
			if err != nil {
				return fmt.Errorf("interface %s: route to %s via %s: %w", ifc.GuestName, r.Dest, r.Gateway, err)
			}
		}
	}
	return nil
}

// route is r through the device of index dev. Dest "default" is the
// default route of the gateway's family.
func (r Route) route(dev int) (*netlink.Route, error) {
	gw := net.ParseIP(r.Gateway)
	if gw == nil {
		return nil, fmt.Errorf("gateway %q is not an IP address", r.Gateway)
	}
	route := &netlink.Route{LinkIndex: dev, Gw: gw}
	if r.Dest != "default" {
		_, dst, err := net.ParseCIDR(r.Dest)
		if err != nil {
			return nil, err
		}
		route.Dst = dst
	}
	return route, nil
}

// deleteVeths deletes the veths whose host ends are named (which deletes
// the pairs); missing ones are not an error.
func deleteVeths(hostNames []string) {
	for _, n := range hostNames {
		if domutil.CheckInterfaceName(n) != nil {
			continue // never made: setup refused it
		}
		_ = netdev.Delete(n)
	}
}

// hostNames returns the names of the host ends of ifs.
func hostNames(ifs []Interface) []string {
	var names []string
	for _, ifc := range ifs {
		names = append(names, ifc.HostName)
	}
	return names
}
