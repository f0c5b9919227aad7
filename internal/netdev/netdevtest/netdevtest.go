// Package netdevtest gives tests network namespaces of their own, so that
// they make, attach and break network devices without touching the
// host's. It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN), and no ip(8).
package netdevtest

import (
	"fmt"
	"runtime"
	"sort"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NewNS makes a network namespace with its loopback up, and returns a
// handle to it. The handle is closed when t ends; the namespace, with its
// devices, goes once nothing else holds it (no process runs in it).
func NewNS(t testing.TB) netns.NsHandle {
	t.Helper()
	type result struct {
		ns  netns.NsHandle
		err error
	}
	done := make(chan result)
	go func() {
		// Never unlocked: the thread leaves the process with this
		// goroutine, so no other goroutine ever runs in the namespace.
		runtime.LockOSThread()
		ns, err := netns.New()
		if err == nil {
			err = up("lo")
		}
		done <- result{ns, err}
	}()
	r := <-done
	if r.err != nil {
		if r.ns.IsOpen() {
			r.ns.Close()
		}
		t.Fatalf("new network namespace: %v", r.err)
	}
	t.Cleanup(func() { r.ns.Close() })
	return r.ns
}

func up(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

// Do runs fn on a thread that has joined ns, and returns once fn has. The
// thread is thrown away afterwards, never unlocked, so no other goroutine
// runs in ns; processes that fn starts are in ns too. fn runs on a
// goroutine of its own: it must not call t.Fatal (nor t.FailNow, t.Skip).
func Do(t testing.TB, ns netns.NsHandle, fn func()) {
	t.Helper()
	if err := Run(ns, fn); err != nil {
		t.Fatal(err)
	}
}

// Run is Do for a goroutine other than the test's: it returns the error
// that Do reports, and fn has not run then.
func Run(ns netns.NsHandle, fn func()) error {
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			done <- fmt.Errorf("joining a network namespace: %w", err)
			return
		}
		fn()
		done <- nil
	}()
	return <-done
}

// Handle returns a netlink handle that acts in ns, closed when t ends. It
// speaks rtnetlink only (devices, addresses, routes).
func Handle(t testing.TB, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("netlink handle in a test namespace: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// AddBridge makes a bridge, up, with h.
func AddBridge(t testing.TB, h *netlink.Handle, name string) *netlink.Bridge {
	t.Helper()
	br := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
	br.Name = name
	if err := h.LinkAdd(br); err != nil {
		t.Fatalf("bridge %s: %v", name, err)
	}
	if err := h.LinkSetUp(br); err != nil {
		t.Fatalf("bridge %s up: %v", name, err)
	}
	return br
}

// Links returns the names of the devices h sees, sorted.
func Links(t testing.TB, h *netlink.Handle) []string {
	t.Helper()
	ls, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(ls))
	for _, l := range ls {
		names = append(names, l.Attrs().Name)
	}
	sort.Strings(names)
	return names
}

// Link returns the device name, which must exist.
func Link(t testing.TB, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return l
}
