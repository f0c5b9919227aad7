package qemu

import (
	"fmt"
	"path/filepath"

	"libvirt.org/go/libvirtxml"
)

// Channels: <channel type='unix'><source mode='bind' path='...'/>
// <target type='virtio' name='org.qemu.guest_agent.0'/></channel>, a
// virtio-serial port whose host side is a unix socket QEMU listens on
// (the guest agent's). The ports sit on one virtio-serial controller the
// driver adds. This is the minimum the guest agent tests need; the device
// model being written in config.go may take it over.
//
// The socket path is the client's: QEMU, as root, creates a socket there.
// A read-write connection, which alone defines domains, is root-equivalent
// already.

func normaliseChannels(x *libvirtxml.Domain, bad badFunc) error {
	names := map[string]bool{}
	for i := range x.Devices.Channels {
		ch := &x.Devices.Channels[i]
		if ch.Source == nil || ch.Source.UNIX == nil {
			return bad("channel %d: only <channel type='unix'> is supported", i)
		}
		u := ch.Source.UNIX
		if u.Mode == "" {
			u.Mode = "bind"
		}
		if u.Mode != "bind" {
			return bad("channel %d: <source mode='%s'> is not supported (only bind)", i, u.Mode)
		}
		if u.Path == "" || !filepath.IsAbs(u.Path) || len(u.Path) >= 108 {
			return bad("channel %d: <source path='%s'> must be an absolute path shorter than 108 bytes", i, u.Path)
		}
		if ch.Target == nil || ch.Target.VirtIO == nil {
			return bad("channel %d: only <target type='virtio'> is supported", i)
		}
		n := ch.Target.VirtIO.Name
		if n == "" || len(n) > 255 {
			return bad("channel %d: <target name='%s'> must be given, at most 255 bytes", i, n)
		}
		if names[n] {
			return bad("channel %d: <target name='%s'> is used twice", i, n)
		}
		names[n] = true
	}
	return nil
}

func channelArgs(a *args, x *libvirtxml.Domain) {
	if len(x.Devices.Channels) == 0 {
		return
	}
	a.add("-device", "virtio-serial-pci,id=virtio-serial0")
	for i, ch := range x.Devices.Channels {
		id := fmt.Sprintf("charchannel%d", i)
		a.add("-chardev", "socket,id="+id+",path="+opt(ch.Source.UNIX.Path)+",server=on,wait=off")
		a.add("-device", fmt.Sprintf("virtserialport,bus=virtio-serial0.0,nr=%d,chardev=%s,id=channel%d,name=%s",
			i+1, id, i, opt(ch.Target.VirtIO.Name)))
	}
}
