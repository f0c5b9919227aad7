package qemu

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"libvirt.org/go/libvirtxml"
)

// checkSource checks a character device's backend: pty, file, unix
// socket, tcp, udp, null or spicevmc.
func checkSource(src *libvirtxml.DomainChardevSource, elem string, bad badFunc) error {
	switch {
	case src == nil:
		return bad("<%s> has no type (pty, file, unix, tcp, udp, null or spicevmc)", elem)
	case src.Pty != nil, src.Null != nil, src.SpiceVMC != nil:
		return nil
	case src.File != nil:
		if src.File.Path == "" || !filepath.IsAbs(src.File.Path) {
			return bad("<%s type='file'> needs an absolute <source path='...'>, not %q", elem, src.File.Path)
		}
		if a := src.File.Append; a != "" && a != "on" && a != "off" {
			return bad("<%s><source append='%s'> must be on or off", elem, a)
		}
		return nil
	case src.UNIX != nil:
		u := src.UNIX
		if u.Mode == "" && u.Path != "" {
			u.Mode = "bind"
		}
		if u.Mode != "" && u.Mode != "bind" && u.Mode != "connect" {
			return bad("<%s type='unix'><source mode='%s'> must be bind or connect", elem, u.Mode)
		}
		if u.Path != "" && !filepath.IsAbs(u.Path) {
			return bad("<%s type='unix'><source path='%s'> must be absolute", elem, u.Path)
		}
		if u.Path == "" && u.Mode == "connect" {
			return bad("<%s type='unix'><source mode='connect'> needs a path", elem)
		}
		if u.Reconnect != nil {
			return bad("<%s type='unix'><reconnect> is not supported", elem)
		}
		return nil
	case src.TCP != nil:
		t := src.TCP
		if t.Mode == "" {
			t.Mode = "connect"
		}
		if t.Mode != "bind" && t.Mode != "connect" {
			return bad("<%s type='tcp'><source mode='%s'> must be bind or connect", elem, t.Mode)
		}
		if err := checkHostPort(t.Host, t.Service); err != nil {
			return bad("<%s type='tcp'><source host='%s' service='%s'>: %v", elem, t.Host, t.Service, err)
		}
		if t.TLS != "" && t.TLS != "no" {
			return bad("<%s type='tcp'><source tls='%s'> is not supported", elem, t.TLS)
		}
		if t.Reconnect != nil {
			return bad("<%s type='tcp'><reconnect> is not supported", elem)
		}
		return nil
	case src.UDP != nil:
		if err := checkHostPort(src.UDP.ConnectHost, src.UDP.ConnectService); err != nil {
			return bad("<%s type='udp'><source mode='connect'>: %v", elem, err)
		}
		return nil
	}
	return bad("<%s>: only type='pty', 'file', 'unix', 'tcp', 'udp', 'null' and 'spicevmc' are supported", elem)
}

func checkHostPort(host, service string) error {
	if host == "" || net.ParseIP(host) == nil && !validHostName(host) {
		return fmt.Errorf("host %q is not an IP address or host name", host)
	}
	if p, err := strconv.ParseUint(service, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("service %q is not a port number", service)
	}
	return nil
}

func validHostName(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// chardev is QEMU's -chardev for a backend. A unix socket without a path
// (the guest agent's channel, as libvirt writes it) listens at sockDir/name.
func chardev(id string, src *libvirtxml.DomainChardevSource) string {
	switch {
	case src.File != nil:
		s := "file,id=" + id + ",path=" + opt(src.File.Path)
		if src.File.Append != "" {
			s += ",append=" + src.File.Append
		}
		return s
	case src.UNIX != nil:
		s := "socket,id=" + id + ",path=" + opt(src.UNIX.Path)
		if src.UNIX.Mode != "connect" {
			s += ",server=on,wait=off"
		}
		return s
	case src.TCP != nil:
		s := "socket,id=" + id + ",host=" + opt(src.TCP.Host) + ",port=" + src.TCP.Service
		if src.TCP.Mode == "bind" {
			s += ",server=on,wait=off"
		}
		return s
	case src.UDP != nil:
		s := "udp,id=" + id + ",host=" + opt(src.UDP.ConnectHost) + ",port=" + src.UDP.ConnectService
		if src.UDP.BindService != "" {
			s += ",localaddr=" + opt(src.UDP.BindHost) + ",localport=" + src.UDP.BindService
		}
		return s
	case src.Null != nil:
		return "null,id=" + id
	case src.SpiceVMC != nil:
		return "spicevmc,id=" + id + ",name=vdagent"
	}
	return "pty,id=" + id
}

var nicModels = map[string]string{
	"virtio": "virtio-net-pci", "e1000": "e1000", "e1000e": "e1000e", "rtl8139": "rtl8139",
}

// normaliseGraphics checks VNC and SPICE consoles: one of each at most,
// an IP address to listen on (127.0.0.1 when none is given), and a port
// or autoport.
func normaliseGraphics(x *libvirtxml.Domain, bad badFunc) error {
	kinds := map[string]bool{}
	for i := range x.Devices.Graphics {
		g := &x.Devices.Graphics[i]
		var kind string
		var port *int
		var autoport, listen *string
		var listeners *[]libvirtxml.DomainGraphicListener
		switch {
		case g.VNC != nil:
			v := g.VNC
			kind, port, autoport, listen, listeners = "vnc", &v.Port, &v.AutoPort, &v.Listen, &v.Listeners
			if v.WebSocket != 0 || v.Socket != "" || v.SharePolicy != "" {
				return bad("<graphics type='vnc'>: websocket, socket and sharePolicy are not supported")
			}
		case g.Spice != nil:
			s := g.Spice
			kind, port, autoport, listen, listeners = "spice", &s.Port, &s.AutoPort, &s.Listen, &s.Listeners
			if s.TLSPort > 0 || s.DefaultMode == "secure" || len(s.Channel) > 0 {
				return bad("<graphics type='spice' tlsPort='%d'>: TLS (tlsPort, secure channels) is not supported", s.TLSPort)
			}
			s.TLSPort = 0 // -1, "none", as libvirt shows it
			if s.GL != nil && s.GL.Enable == "yes" {
				return bad("<graphics type='spice'><gl enable='yes'> is not supported")
			}
		default:
			return bad("<graphics>: only type='vnc' and type='spice' are supported")
		}
		if kinds[kind] {
			return bad("only one <graphics type='%s'> is supported", kind)
		}
		kinds[kind] = true
		addr := *listen
		for _, l := range *listeners {
			if l.Address == nil {
				return bad("<graphics type='%s'><listen>: only type='address' is supported", kind)
			}
			if addr == "" {
				addr = l.Address.Address
			} else if l.Address.Address != "" && l.Address.Address != addr {
				return bad("<graphics type='%s'> listens on two different addresses", kind)
			}
		}
		if addr != "" && net.ParseIP(addr) == nil {
			return bad("<graphics type='%s' listen='%s'> is not an IP address", kind, addr)
		}
		// As libvirt: the definition keeps what was given; the address
		// used is 127.0.0.1 when none is.
		*listen = addr
		*listeners = []libvirtxml.DomainGraphicListener{{Address: &libvirtxml.DomainGraphicListenerAddress{Address: addr}}}
		switch *autoport {
		case "":
			if *port <= 0 {
				*autoport = "yes"
			} else {
				*autoport = "no"
			}
		case "yes", "no":
		default:
			return bad("<graphics type='%s' autoport='%s'> must be yes or no", kind, *autoport)
		}
		if *autoport == "yes" {
			*port = -1
			if kind == "spice" {
				*port = 0 // libvirt shows no port for SPICE with autoport
			}
		} else if *port < 5900 || *port > 65535 {
			return bad("<graphics type='%s' port='%d'> must be between 5900 and 65535", kind, *port)
		}
	}
	return nil
}

// graphicsListen is the address a console listens on.
func graphicsListen(addr string) string {
	if addr == "" {
		return "127.0.0.1"
	}
	return addr
}
