package qemu

import (
	"fmt"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// videoModels maps libvirt's video model to QEMU's device as the primary
// card and as a secondary one ("" when the model cannot be secondary).
var videoModels = map[string][2]string{
	"vga":    {"VGA", ""},
	"cirrus": {"cirrus-vga", ""},
	"qxl":    {"qxl-vga", "qxl"},
	"virtio": {"virtio-vga", "virtio-gpu-pci"},
	"bochs":  {"bochs-display", "bochs-display"},
	"ramfb":  {"ramfb", ""},
	"none":   {"", ""},
}

// fillVideo fills in the sizes libvirt shows for a video model.
func fillVideo(v *libvirtxml.DomainVideo, primary bool) {
	m := &v.Model
	if m.Type == "none" {
		return
	}
	if m.Heads == 0 {
		m.Heads = 1
	}
	if primary {
		m.Primary = "yes"
	}
	switch m.Type {
	case "qxl":
		if m.Ram == 0 {
			m.Ram = 65536
		}
		if m.VRam == 0 {
			m.VRam = 65536
		}
		if m.VGAMem == 0 {
			m.VGAMem = 16384
		}
	case "vga", "cirrus", "bochs":
		if m.VRam == 0 {
			m.VRam = 16384
		}
	}
}

func normaliseVideos(x *libvirtxml.Domain, bad badFunc) error {
	dev := x.Devices
	for i := range dev.Videos {
		v := &dev.Videos[i]
		if v.Model.Type == "" {
			v.Model.Type = "cirrus"
		}
		m, ok := videoModels[v.Model.Type]
		if !ok {
			return bad("<video><model type='%s'> is not supported (only vga, cirrus, qxl, virtio, bochs, ramfb and none)", v.Model.Type)
		}
		if v.Model.Type == "none" && len(dev.Videos) > 1 {
			return bad("<video><model type='none'> cannot be used with another video card")
		}
		if i > 0 && m[1] == "" {
			return bad("<video><model type='%s'> can only be the primary (first) video card", v.Model.Type)
		}
		if v.Model.Heads > 16 {
			return bad("<video><model heads='%d'> is out of range (1..16)", v.Model.Heads)
		}
		fillVideo(v, i == 0 && len(dev.Videos) > 0)
		if v.Model.Type == "none" {
			v.Model.Primary = ""
		}
	}
	return nil
}

// soundModels maps libvirt's sound model to QEMU's device.
var soundModels = map[string]string{
	"ich6": "intel-hda", "ich9": "ich9-intel-hda", "ac97": "AC97",
	"es1370": "ES1370", "sb16": "sb16", "usb": "usb-audio",
}

func normaliseSounds(x *libvirtxml.Domain, bad badFunc) error {
	dev := x.Devices
	for i := range dev.Sounds {
		s := &dev.Sounds[i]
		if _, ok := soundModels[s.Model]; !ok {
			return bad("<sound model='%s'> is not supported (only ich6, ich9, ac97, es1370, sb16 and usb)", s.Model)
		}
		for _, c := range s.Codec {
			if c.Type != "duplex" && c.Type != "micro" && c.Type != "output" {
				return bad("<sound><codec type='%s'> is not supported (only duplex, micro and output)", c.Type)
			}
		}
		if len(s.Codec) > 0 && s.Model != "ich6" && s.Model != "ich9" {
			return bad("<sound model='%s'> takes no <codec>", s.Model)
		}
		if s.Audio != nil && !hasAudio(x, s.Audio.ID) {
			return bad("<sound><audio id='%d'> names no <audio> backend", s.Audio.ID)
		}
	}
	seen := map[int]bool{}
	for i := range dev.Audios {
		a := &dev.Audios[i]
		if a.ID < 1 || seen[a.ID] {
			return bad("<audio id='%d'> must be a positive id used once", a.ID)
		}
		seen[a.ID] = true
		switch {
		case a.None != nil, a.SPICE != nil:
		case a.File != nil:
			if a.File.Path == "" || a.File.Path[0] != '/' {
				return bad("<audio type='file'><path='%s'> must be an absolute path", a.File.Path)
			}
		default:
			return bad("<audio id='%d'>: only type='none', 'spice' and 'file' are supported", a.ID)
		}
	}
	return nil
}

func hasAudio(x *libvirtxml.Domain, id uint) bool {
	for _, a := range x.Devices.Audios {
		if uint(a.ID) == id {
			return true
		}
	}
	return false
}

func normaliseInputs(x *libvirtxml.Domain, fam string, bad badFunc) error {
	for i := range x.Devices.Inputs {
		in := &x.Devices.Inputs[i]
		if in.Bus == "" {
			in.Bus = "usb"
			if in.Type != "tablet" {
				in.Bus = "ps2"
			}
		}
		ok := false
		switch in.Bus {
		case "ps2":
			ok = in.Type == "mouse" || in.Type == "keyboard"
		case "usb", "virtio":
			ok = in.Type == "mouse" || in.Type == "keyboard" || in.Type == "tablet"
		}
		if !ok {
			return bad("<input type='%s' bus='%s'> is not supported (mouse/keyboard on ps2, usb or virtio; tablet on usb or virtio)", in.Type, in.Bus)
		}
		if in.Model != "" || in.Source != nil && (in.Source.Passthrough != nil || in.Source.EVDev != nil) {
			return bad("<input type='%s'>: model and source are not supported", in.Type)
		}
	}
	return nil
}

func normaliseMisc(x *libvirtxml.Domain, bad badFunc) error {
	dev := x.Devices
	if b := dev.MemBalloon; b != nil {
		if b.Model != "virtio" && b.Model != "none" {
			return bad("<memballoon model='%s'> is not supported (only virtio and none)", b.Model)
		}
		for _, v := range []struct{ attr, val string }{{"autodeflate", b.AutoDeflate}, {"freePageReporting", b.FreePageReporting}} {
			if v.val != "" && v.val != "on" && v.val != "off" {
				return bad("<memballoon %s='%s'> must be on or off", v.attr, v.val)
			}
		}
		if b.Model == "none" && (b.Stats != nil || b.Address != nil) {
			return bad("<memballoon model='none'> takes no <stats> or <address>")
		}
	}
	for i := range dev.RNGs {
		r := &dev.RNGs[i]
		if r.Model != "virtio" {
			return bad("<rng model='%s'> is not supported (only virtio)", r.Model)
		}
		switch {
		case r.Backend == nil:
			return bad("<rng> needs a <backend>")
		case r.Backend.Random != nil:
			if r.Backend.Random.Device == "" {
				r.Backend.Random.Device = "/dev/urandom"
			}
			switch r.Backend.Random.Device {
			case "/dev/random", "/dev/urandom", "/dev/hwrng":
			default:
				return bad("<rng><backend model='random'>%s</backend> is not supported (only /dev/random, /dev/urandom and /dev/hwrng)", r.Backend.Random.Device)
			}
		case r.Backend.BuiltIn != nil:
		default:
			return bad("<rng><backend>: only model='random' and model='builtin' are supported")
		}
		if r.Rate != nil && r.Rate.Bytes == 0 {
			return bad("<rng><rate bytes='0'> must be positive")
		}
	}
	if len(dev.Watchdogs) > 1 {
		return bad("only one <watchdog> is supported")
	}
	for i := range dev.Watchdogs {
		w := &dev.Watchdogs[i]
		if w.Model != "i6300esb" && w.Model != "ib700" && w.Model != "itco" {
			return bad("<watchdog model='%s'> is not supported (only i6300esb, ib700 and itco)", w.Model)
		}
		if w.Action == "" {
			w.Action = "reset"
		}
		if _, ok := watchdogActions[w.Action]; !ok {
			return bad("<watchdog action='%s'> is not supported (only reset, shutdown, poweroff, pause, none and inject-nmi)", w.Action)
		}
	}
	for i := range dev.Panics {
		p := &dev.Panics[i]
		if p.Model == "" {
			p.Model = "isa"
		}
		if p.Model != "isa" {
			return bad("<panic model='%s'> is not supported (only isa)", p.Model)
		}
		if p.Address != nil && (p.Address.ISA == nil || p.Address.ISA.IOBase == nil || *p.Address.ISA.IOBase != 0x505) {
			return bad("<panic model='isa'>: only the ISA address iobase='0x505' is supported")
		}
	}
	if v := dev.VSock; v != nil {
		if v.Model == "" {
			v.Model = "virtio"
		}
		if v.Model != "virtio" {
			return bad("<vsock model='%s'> is not supported (only virtio)", v.Model)
		}
		if v.CID == nil {
			v.CID = &libvirtxml.DomainVSockCID{Auto: "yes"}
		}
		if v.CID.Auto == "" {
			v.CID.Auto = "no"
		}
		switch v.CID.Auto {
		case "yes":
		case "no":
			n, err := strconv.ParseUint(v.CID.Address, 10, 32)
			if err != nil || n < 3 || n == 0xffffffff {
				return bad("<vsock><cid address='%s'> must be a number from 3 to 4294967294", v.CID.Address)
			}
		default:
			return bad("<vsock><cid auto='%s'> must be yes or no", v.CID.Auto)
		}
	}
	for i := range dev.RedirDevs {
		r := &dev.RedirDevs[i]
		if r.Bus == "" {
			r.Bus = "usb"
		}
		if r.Bus != "usb" {
			return bad("<redirdev bus='%s'> is not supported (only usb)", r.Bus)
		}
		if err := checkSource(r.Source, "redirdev", bad); err != nil {
			return err
		}
		if r.Source.SpiceVMC == nil && r.Source.TCP == nil {
			return bad("<redirdev>: only type='spicevmc' and type='tcp' are supported")
		}
	}
	return nil
}

var watchdogActions = map[string]string{
	"reset": "reset", "shutdown": "shutdown", "poweroff": "poweroff",
	"pause": "pause", "none": "none", "inject-nmi": "inject-nmi",
}

// normaliseChannels checks the channels: virtio channels (the guest
// agent's, SPICE's) on a virtio-serial port, with any source a serial
// port takes.
func normaliseChannels(x *libvirtxml.Domain, bad badFunc) error {
	names := map[string]bool{}
	for i := range x.Devices.Channels {
		ch := &x.Devices.Channels[i]
		if ch.Target == nil || ch.Target.VirtIO == nil {
			return bad("<channel>: only <target type='virtio'> is supported")
		}
		name := ch.Target.VirtIO.Name
		if name == "" {
			return bad("<channel><target type='virtio'> needs a name")
		}
		if names[name] {
			return bad("<channel> name %q is used twice", name)
		}
		names[name] = true
		ch.Target.VirtIO.State = ""
		if err := checkSource(ch.Source, "channel", bad); err != nil {
			return err
		}
		if ch.Source.SpiceVMC != nil && name != "com.redhat.spice.0" {
			return bad("<channel type='spicevmc'> must be named com.redhat.spice.0, not %q", name)
		}
		if ch.Address != nil && ch.Address.VirtioSerial == nil {
			return bad("<channel> %q takes a virtio-serial <address>", name)
		}
	}
	return nil
}

// assignPortAddresses gives virtio channels and consoles their
// virtio-serial ports (from 1; port 0 is a console's) and USB devices
// their USB ports, keeping the ones given.
func assignPortAddresses(x *libvirtxml.Domain, bad badFunc) error {
	dev := x.Devices
	used := map[string]bool{}
	vsKey := func(a *libvirtxml.DomainAddressVirtioSerial) string {
		return fmt.Sprintf("%d:%d:%d", *a.Controller, *a.Bus, *a.Port)
	}
	for i := range dev.Channels {
		if a := dev.Channels[i].Address; a != nil {
			for _, p := range []**uint{&a.VirtioSerial.Controller, &a.VirtioSerial.Bus} {
				if *p == nil {
					*p = uintp(0)
				}
			}
			if a.VirtioSerial.Port == nil || *a.VirtioSerial.Port == 0 || *a.VirtioSerial.Port > 30 {
				return bad("<channel>: virtio-serial port must be 1..30")
			}
			if findController(x, "virtio-serial", *a.VirtioSerial.Controller) == nil {
				return bad("<channel>: virtio-serial controller %d does not exist", *a.VirtioSerial.Controller)
			}
			if used[vsKey(a.VirtioSerial)] {
				return bad("<channel>: virtio-serial port %s is used twice", vsKey(a.VirtioSerial))
			}
			used[vsKey(a.VirtioSerial)] = true
		}
	}
	for i := range dev.Channels {
		ch := &dev.Channels[i]
		if ch.Address != nil {
			continue
		}
		for p := uint(1); ; p++ {
			a := &libvirtxml.DomainAddressVirtioSerial{Controller: uintp(0), Bus: uintp(0), Port: uintp(p)}
			if !used[vsKey(a)] {
				used[vsKey(a)] = true
				ch.Address = &libvirtxml.DomainAddress{VirtioSerial: a}
				break
			}
		}
	}

	// USB: ports 1.. on bus 0, in the order libvirt assigns them: inputs,
	// sound, redirected devices.
	usb := findController(x, "usb", 0)
	type usbDev struct {
		what string
		addr **libvirtxml.DomainAddress
	}
	var devs []usbDev
	for i := range dev.Inputs {
		if dev.Inputs[i].Bus == "usb" {
			devs = append(devs, usbDev{"<input type='" + dev.Inputs[i].Type + "' bus='usb'>", &dev.Inputs[i].Address})
		}
	}
	for i := range dev.Sounds {
		if dev.Sounds[i].Model == "usb" {
			devs = append(devs, usbDev{"<sound model='usb'>", &dev.Sounds[i].Address})
		}
	}
	for i := range dev.RedirDevs {
		devs = append(devs, usbDev{"<redirdev>", &dev.RedirDevs[i].Address})
	}
	if len(devs) == 0 && len(dev.Hubs) == 0 {
		return nil
	}
	if usb == nil || usb.Model == "none" {
		return bad("USB devices need a USB controller, but the USB controller is model='none'")
	}
	ports := usbPorts(x)
	taken := map[string]bool{}
	check := func(what string, u *libvirtxml.DomainAddressUSB) error {
		if u.Bus == nil {
			u.Bus = uintp(0)
		}
		if *u.Bus != 0 || !validUSBPort(u.Port, ports) {
			return bad("%s: USB address bus %d port %q is out of range (bus 0, ports 1..%d, or N.M behind a hub)", what, *u.Bus, u.Port, ports)
		}
		if taken[u.Port] {
			return bad("%s: USB port %s is used twice", what, u.Port)
		}
		taken[u.Port] = true
		return nil
	}
	for i := range dev.Hubs {
		if dev.Hubs[i].Type != "usb" {
			return bad("<hub type='%s'> is not supported (only usb)", dev.Hubs[i].Type)
		}
		if a := dev.Hubs[i].Address; a != nil {
			if a.USB == nil {
				return bad("<hub> takes a USB <address>")
			}
			if err := check("<hub>", a.USB); err != nil {
				return err
			}
		}
	}
	for _, d := range devs {
		if *d.addr == nil {
			continue
		}
		if (*d.addr).USB == nil {
			return bad("%s takes a USB <address>", d.what)
		}
		if err := check(d.what, (*d.addr).USB); err != nil {
			return err
		}
	}
	// As libvirt: when the controller's ports are too few, a hub takes
	// the first free one, before the devices are placed.
	if len(dev.Hubs) == 0 && uint(len(devs)) > ports {
		dev.Hubs = append(dev.Hubs, libvirtxml.DomainHub{Type: "usb"})
	}
	free := func() string {
		for p := uint(1); p <= ports; p++ {
			if s := strconv.Itoa(int(p)); !taken[s] {
				return s
			}
		}
		for _, h := range dev.Hubs {
			if h.Address == nil || h.Address.USB == nil {
				continue
			}
			for p := 1; p <= 8; p++ {
				if s := h.Address.USB.Port + "." + strconv.Itoa(p); !taken[s] {
					return s
				}
			}
		}
		return ""
	}
	for i := range dev.Hubs {
		if dev.Hubs[i].Address == nil {
			p := free()
			if p == "" {
				return bad("<hub>: no free USB port left")
			}
			taken[p] = true
			dev.Hubs[i].Address = &libvirtxml.DomainAddress{USB: &libvirtxml.DomainAddressUSB{Bus: uintp(0), Port: p}}
		}
	}
	for _, d := range devs {
		if *d.addr != nil {
			continue
		}
		p := free()
		if p == "" {
			return bad("%s: no free USB port left (the controller has %d)", d.what, ports)
		}
		taken[p] = true
		*d.addr = &libvirtxml.DomainAddress{USB: &libvirtxml.DomainAddressUSB{Bus: uintp(0), Port: p}}
	}
	return nil
}

// validUSBPort accepts a port of the root hub (1..ports) or a port
// behind hubs ("1.3"), each part 1..8 past the first.
func validUSBPort(port string, ports uint) bool {
	parts := strings.Split(port, ".")
	if len(parts) > 5 {
		return false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		limit := 8
		if i == 0 {
			limit = int(ports)
		}
		if err != nil || n < 1 || n > limit {
			return false
		}
	}
	return true
}

// usbPorts is how many ports USB bus 0 has.
func usbPorts(x *libvirtxml.Domain) uint {
	c := findController(x, "usb", 0)
	if c.USB != nil && c.USB.Port != nil {
		return *c.USB.Port
	}
	return usbModels[c.Model].ports
}
