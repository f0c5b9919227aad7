package controller

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/virt"
)

// CheckName checks a bridge, veth or container interface name before it
// reaches ip: a Linux interface name (domutil.CheckInterfaceName) that ip
// -batch also reads back as the same one word, so with no '#' (ip takes
// the rest of the line for a comment) and no leading quote (ip takes it
// for quoting). The kernel allows both; the driver refuses them at define
// as not supported.
func CheckName(name string) error {
	if err := domutil.CheckInterfaceName(name); err != nil {
		return err
	}
	switch {
	case strings.Contains(name, "#"):
		return fmt.Errorf("interface name %q contains '#', which ip -batch reads as a comment: %w", name, virt.ErrNotSupported)
	case name[0] == '"' || name[0] == '\'':
		return fmt.Errorf("interface name %q starts with a quote, which ip -batch reads as quoting: %w", name, virt.ErrNotSupported)
	}
	return nil
}

// checkNames checks every name of ifc that the controller passes to ip.
func (ifc *Interface) checkNames() error {
	names := []string{ifc.HostName, ifc.peerName(), ifc.GuestName}
	if ifc.Bridge != "" {
		names = append(names, ifc.Bridge)
	}
	for _, n := range names {
		if err := CheckName(n); err != nil {
			return err
		}
	}
	return nil
}

// batchWord reports whether ip -batch reads w back as the one word w.
func batchWord(w string) bool {
	return w != "" && !strings.ContainsAny(w, " \t\r\n\v\f#") && w[0] != '"' && w[0] != '\''
}

// ipPath finds iproute2's ip.
func ipPath() (string, error) {
	for _, p := range []string{"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"} {
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("iproute2's ip command is not installed")
}

// ipBatch runs ip commands, one per element, in one ip process.
func ipBatch(cmds [][]string) error {
	if len(cmds) == 0 {
		return nil
	}
	ip, err := ipPath()
	if err != nil {
		return err
	}
	var in bytes.Buffer
	for _, c := range cmds {
		for _, w := range c {
			if !batchWord(w) {
				return fmt.Errorf("ip: %q cannot be passed to ip -batch as one word", w)
			}
		}
		in.WriteString(strings.Join(c, " "))
		in.WriteByte('\n')
	}
	cmd := exec.Command(ip, "-batch", "-")
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip: %s", strings.TrimSpace(string(out)))
	}
	return nil
}

func ip(args ...string) (string, error) {
	p, err := ipPath()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(p, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip %s: %s", strings.Join(args, " "), strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// checkBridge checks that name is a bridge in the controller's network
// namespace.
func checkBridge(name string) error {
	out, err := ip("-d", "-o", "link", "show", "dev", name)
	if err != nil {
		return fmt.Errorf("bridge %q does not exist", name)
	}
	if !strings.Contains(out, " bridge ") {
		return fmt.Errorf("interface %q is not a bridge", name)
	}
	return nil
}

// createVeths makes the veth pairs, host ends up (and on their bridges).
// On error, the pairs made so far are deleted.
func createVeths(ifs []Interface) error {
	for i, ifc := range ifs {
		cmds := [][]string{{"link", "add", ifc.HostName, "type", "veth", "peer", "name", ifc.peerName()}}
		if ifc.Bridge != "" {
			cmds = append(cmds, []string{"link", "set", "dev", ifc.HostName, "master", ifc.Bridge})
		}
		cmds = append(cmds, []string{"link", "set", "dev", ifc.HostName, "up"})
		if err := ipBatch(cmds); err != nil {
			deleteVeths(ifs[:i+1])
			return fmt.Errorf("interface %s: %w", ifc.HostName, err)
		}
	}
	return nil
}

// moveVeths moves the container ends into the network namespace of pid.
func moveVeths(ifs []Interface, pid int) error {
	var cmds [][]string
	for _, ifc := range ifs {
		cmds = append(cmds, []string{"link", "set", "dev", ifc.peerName(), "netns", strconv.Itoa(pid)})
	}
	return ipBatch(cmds)
}

// deleteVeths deletes the host ends (which deletes the pairs); missing
// ones are not an error.
func deleteVeths(ifs []Interface) {
	for _, ifc := range ifs {
		if CheckName(ifc.HostName) != nil {
			continue // never made: setup refused it
		}
		_, _ = ip("link", "del", "dev", ifc.HostName)
	}
}

// configureNetwork brings the loopback of pid's network namespace up and
// configures the interfaces moved there, from an OS thread of the
// controller that joins that namespace: the ip commands it runs are in
// it too.
func configureNetwork(pid int, ifs []Interface) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine, so no other
		// goroutine ever runs in the container's namespace.
		runtime.LockOSThread()
		errc <- inNetns(pid, func() error {
			if err := linkUp("lo"); err != nil {
				return fmt.Errorf("loopback: %w", err)
			}
			for _, ifc := range ifs {
				if err := ipBatch(ifc.guestCommands()); err != nil {
					return fmt.Errorf("interface %s: %w", ifc.GuestName, err)
				}
			}
			return nil
		})
	}()
	return <-errc
}

// inNetns runs f with the calling (locked) thread in pid's network
// namespace.
func inNetns(pid int, f func() error) error {
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/net", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("the container's network namespace: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter the container's network namespace: %w", err)
	}
	return f()
}

// guestCommands names, addresses and routes the container end of ifc.
func (ifc *Interface) guestCommands() [][]string {
	cmds := [][]string{{"link", "set", "dev", ifc.peerName(), "name", ifc.GuestName}}
	if ifc.MAC != "" {
		cmds = append(cmds, []string{"link", "set", "dev", ifc.GuestName, "address", ifc.MAC})
	}
	cmds = append(cmds, []string{"link", "set", "dev", ifc.GuestName, "up"})
	for _, a := range ifc.Addrs {
		cmds = append(cmds, []string{"addr", "add", a, "dev", ifc.GuestName})
	}
	for _, r := range ifc.Routes {
		cmds = append(cmds, []string{"route", "add", r.Dest, "via", r.Gateway, "dev", ifc.GuestName})
	}
	return cmds
}

// linkUp sets an interface up with an ioctl.
func linkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
