package qemu

import (
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// Machine families: what a machine type's name says about its chipset.
const (
	machinePC  = "pc"  // i440FX + PIIX3: conventional PCI, IDE built in
	machineQ35 = "q35" // Q35 + ICH9: PCI Express, AHCI built in
)

// machineFamily tells the chipset of a machine type: "pc", "q35", or
// "" for one the driver does not know.
func machineFamily(m string) string {
	switch {
	case m == "q35" || strings.HasPrefix(m, "pc-q35-"):
		return machineQ35
	case m == "pc" || strings.HasPrefix(m, "pc-i440fx-") || isOldPC(m):
		return machinePC
	}
	return ""
}

// isOldPC matches the oldest versioned pc names, "pc-0.15" and "pc-1.3".
func isOldPC(m string) bool {
	v, ok := strings.CutPrefix(m, "pc-")
	return ok && v != "" && v[0] >= '0' && v[0] <= '9'
}

func uintp(v uint) *uint { return &v }

// controllerIndex is a controller's index, 0 when not given.
func controllerIndex(c *libvirtxml.DomainController) uint {
	if c.Index == nil {
		return 0
	}
	return *c.Index
}

// findController is the controller of type typ with index idx, or nil.
func findController(x *libvirtxml.Domain, typ string, idx uint) *libvirtxml.DomainController {
	for i := range x.Devices.Controllers {
		c := &x.Devices.Controllers[i]
		if c.Type == typ && controllerIndex(c) == idx && !isUSBCompanion(c) {
			return c
		}
	}
	return nil
}

// indexTaken reports whether another controller of c's type has index n.
func indexTaken(x *libvirtxml.Domain, c *libvirtxml.DomainController, n uint) bool {
	for i := range x.Devices.Controllers {
		o := &x.Devices.Controllers[i]
		if o != c && o.Type == c.Type && o.Index != nil && *o.Index == n && !isUSBCompanion(o) {
			return true
		}
	}
	return false
}

// insertController adds c after the last controller of its type with a
// lower index, or at the end, the order libvirt shows them in.
func insertController(x *libvirtxml.Domain, c libvirtxml.DomainController) {
	list := x.Devices.Controllers
	at := -1
	for i := range list {
		if list[i].Type == c.Type && controllerIndex(&list[i]) < controllerIndex(&c) {
			at = i
		}
	}
	if at < 0 {
		x.Devices.Controllers = append(list, c)
		return
	}
	list = append(list, libvirtxml.DomainController{})
	copy(list[at+2:], list[at+1:])
	list[at+1] = c
	x.Devices.Controllers = list
}

var usbModels = map[string]struct {
	device string
	ports  uint
	conn   pciConnect
}{
	"piix3-uhci": {"piix3-usb-uhci", 2, pciLegacy},
	"piix4-uhci": {"piix4-usb-uhci", 2, pciLegacy},
	"ich9-ehci1": {"ich9-usb-ehci1", 6, pciIntegrated},
	"ich9-uhci1": {"ich9-usb-uhci1", 2, pciIntegrated},
	"ich9-uhci2": {"ich9-usb-uhci2", 2, pciIntegrated},
	"ich9-uhci3": {"ich9-usb-uhci3", 2, pciIntegrated},
	"qemu-xhci":  {"qemu-xhci", 4, pciExpress},
	"nec-xhci":   {"nec-usb-xhci", 4, pciExpress},
	"none":       {},
}

func isUSBCompanion(c *libvirtxml.DomainController) bool {
	return c.Type == "usb" && strings.HasPrefix(c.Model, "ich9-uhci")
}

var scsiModels = map[string]string{"virtio-scsi": "virtio-scsi-pci", "lsilogic": "lsi"}

// defaultSCSIModel is libvirt's model for an x86 SCSI controller given
// without one, or added for a disk.
const defaultSCSIModel = "lsilogic"

// normaliseControllers checks the controllers a definition gives and
// fills in what libvirt fills in: indexes, models, PCI controller
// details.
func normaliseControllers(x *libvirtxml.Domain, fam string, bad badFunc) error {
	seen := map[string]bool{}
	for i := range x.Devices.Controllers {
		c := &x.Devices.Controllers[i]
		if c.Index == nil {
			// libvirt gives the next free index of the type.
			n := uint(0)
			for !isUSBCompanion(c) && indexTaken(x, c, n) {
				n++
			}
			c.Index = uintp(n)
		}
		idx := *c.Index
		key := fmt.Sprintf("%s/%d", c.Type, idx)
		if seen[key] && !isUSBCompanion(c) {
			return bad("<controller type='%s' index='%d'> is given twice", c.Type, idx)
		}
		if !isUSBCompanion(c) {
			seen[key] = true
		}
		switch c.Type {
		case "pci":
			root := map[string]string{machinePC: "pci-root", machineQ35: "pcie-root"}[fam]
			if idx == 0 {
				if c.Model == "" {
					c.Model = root
				}
				if c.Model != root {
					return bad("<controller type='pci' index='0' model='%s'>: a %s machine's PCI root is %s", c.Model, fam, root)
				}
				if c.Address != nil {
					return bad("<controller type='pci' index='0'> is the root and takes no <address>")
				}
				continue
			}
			switch c.Model {
			case "pcie-root-port", "pcie-to-pci-bridge":
				if fam != machineQ35 {
					return bad("<controller type='pci' model='%s'> needs a q35 machine (PCI Express)", c.Model)
				}
			case "pci-bridge":
			case "":
				return bad("<controller type='pci' index='%d'> needs a model (pcie-root-port, pcie-to-pci-bridge or pci-bridge)", idx)
			default:
				return bad("<controller type='pci' model='%s'> is not supported (only pcie-root-port, pcie-to-pci-bridge and pci-bridge)", c.Model)
			}
			if c.PCI != nil && c.PCI.Model != nil {
				want := map[string]string{"pcie-root-port": "pcie-root-port", "pcie-to-pci-bridge": "pcie-pci-bridge", "pci-bridge": "pci-bridge"}[c.Model]
				if c.PCI.Model.Name != want {
					return bad("<controller type='pci' model='%s'><model name='%s'> is not supported (only %s)", c.Model, c.PCI.Model.Name, want)
				}
			}
			if idx > 254 {
				return bad("<controller type='pci' index='%d'> is out of range (at most 254)", idx)
			}
		case "usb":
			if c.Model == "" {
				// libvirt's model for a USB controller given without one,
				// on either machine (the implicit one on q35 is qemu-xhci).
				c.Model = "piix3-uhci"
			}
			_, ok := usbModels[c.Model]
			if !ok {
				return bad("<controller type='usb' model='%s'> is not supported (only piix3-uhci, piix4-uhci, ich9-ehci1, ich9-uhci1..3, qemu-xhci, nec-xhci and none)", c.Model)
			}
			if c.USB != nil && c.USB.Master != nil && !isUSBCompanion(c) {
				return bad("<controller type='usb' model='%s'>: only an ich9-uhci companion has a <master>", c.Model)
			}
			if isUSBCompanion(c) && (c.USB == nil || c.USB.Master == nil) {
				start := map[string]uint{"ich9-uhci1": 0, "ich9-uhci2": 2, "ich9-uhci3": 4}[c.Model]
				if c.USB == nil {
					c.USB = &libvirtxml.DomainControllerUSB{}
				}
				c.USB.Master = &libvirtxml.DomainControllerUSBMaster{StartPort: start}
			}
			if strings.HasSuffix(c.Model, "xhci") {
				if c.USB != nil && c.USB.Port != nil && (*c.USB.Port == 0 || *c.USB.Port > 15) {
					return bad("<controller type='usb' model='%s' ports='%d'> must have 1..15 ports", c.Model, *c.USB.Port)
				}
			} else if c.USB != nil && c.USB.Port != nil {
				return bad("<controller type='usb' model='%s'>: only an xhci controller takes ports='N'", c.Model)
			}
			if c.Model == "none" && idx != 0 {
				return bad("<controller type='usb' model='none'> must be index 0")
			}
		case "scsi":
			if c.Model == "" {
				c.Model = defaultSCSIModel
			}
			if _, ok := scsiModels[c.Model]; !ok {
				return bad("<controller type='scsi' model='%s'> is not supported (only virtio-scsi and lsilogic)", c.Model)
			}
		case "ide":
			if fam != machinePC {
				return bad("<controller type='ide'>: IDE controllers are not supported on a %s machine (use sata)", fam)
			}
			if idx != 0 {
				return bad("<controller type='ide' index='%d'>: a pc machine has one IDE controller, index 0", idx)
			}
		case "sata":
		case "virtio-serial":
			if c.VirtIOSerial != nil && c.VirtIOSerial.Ports != nil && (*c.VirtIOSerial.Ports == 0 || *c.VirtIOSerial.Ports > 31) {
				return bad("<controller type='virtio-serial' ports='%d'> must have 1..31 ports", *c.VirtIOSerial.Ports)
			}
		default:
			return bad("<controller type='%s'> is not supported (only pci, usb, scsi, ide, sata and virtio-serial)", c.Type)
		}
		if c.Driver != nil && (c.Type != "scsi" && c.Type != "virtio-serial" || c.Model == "lsilogic") {
			return bad("<controller type='%s' model='%s'>: <driver> is not supported there", c.Type, c.Model)
		}
	}
	return nil
}

// diskAddress is the drive address libvirt gives a disk from its target
// name: the unit's index spread over the controllers of its bus (4 IDE
// units, 6 SATA ports, 7 lsilogic units per controller).
func diskAddress(x *libvirtxml.Domain, d *libvirtxml.DomainDisk) *libvirtxml.DomainAddressDrive {
	idx, _ := diskIndex(d.Target.Dev)
	n := uint(idx)
	switch d.Target.Bus {
	case "ide":
		return &libvirtxml.DomainAddressDrive{Controller: uintp(n / 4), Bus: uintp(n % 4 / 2), Target: uintp(0), Unit: uintp(n % 2)}
	case "sata":
		return &libvirtxml.DomainAddressDrive{Controller: uintp(n / 6), Bus: uintp(0), Target: uintp(0), Unit: uintp(n % 6)}
	case "scsi":
		units := uint(16384)
		if c := findController(x, "scsi", 0); c == nil || c.Model == defaultSCSIModel {
			units = 7
		}
		return &libvirtxml.DomainAddressDrive{Controller: uintp(n / units), Bus: uintp(0), Target: uintp(0), Unit: uintp(n % units)}
	}
	return nil
}

// assignDriveAddresses gives every disk on ide, sata and scsi a drive
// address, and adds the controllers the disks are on, as libvirt does.
func assignDriveAddresses(x *libvirtxml.Domain, fam string, bad badFunc) error {
	used := map[string]string{}
	for i := range x.Devices.Disks {
		d := &x.Devices.Disks[i]
		dev := d.Target.Dev
		if d.Target.Bus == "virtio" {
			if d.Address != nil && d.Address.PCI == nil {
				return bad("disk %q: a virtio disk takes a PCI <address>", dev)
			}
			continue
		}
		if d.Address == nil {
			d.Address = &libvirtxml.DomainAddress{Drive: diskAddress(x, d)}
		}
		a := d.Address.Drive
		if a == nil {
			return bad("disk %q on bus %s takes a drive <address>", dev, d.Target.Bus)
		}
		for _, p := range []**uint{&a.Controller, &a.Bus, &a.Target, &a.Unit} {
			if *p == nil {
				*p = uintp(0)
			}
		}
		switch d.Target.Bus {
		case "ide":
			if *a.Controller != 0 || *a.Bus > 1 || *a.Target != 0 || *a.Unit > 1 {
				return bad("disk %q: drive address controller %d bus %d target %d unit %d is out of range for IDE (controller 0, bus 0..1, unit 0..1)", dev, *a.Controller, *a.Bus, *a.Target, *a.Unit)
			}
		case "sata":
			if *a.Bus != 0 || *a.Target != 0 || *a.Unit > 5 {
				return bad("disk %q: drive address bus %d target %d unit %d is out of range for SATA (bus 0, unit 0..5)", dev, *a.Bus, *a.Target, *a.Unit)
			}
		case "scsi":
			if *a.Bus != 0 || *a.Target > 255 || *a.Unit > 16383 {
				return bad("disk %q: drive address bus %d target %d unit %d is out of range for SCSI", dev, *a.Bus, *a.Target, *a.Unit)
			}
		}
		key := fmt.Sprintf("%s %d:%d:%d:%d", d.Target.Bus, *a.Controller, *a.Bus, *a.Target, *a.Unit)
		if other, ok := used[key]; ok {
			return bad("disks %q and %q have the same drive address (%s)", other, dev, key)
		}
		used[key] = dev
		if findController(x, d.Target.Bus, *a.Controller) == nil {
			if d.Target.Bus == "ide" && fam != machinePC {
				return bad("disk %q: IDE is not supported on a %s machine (use sata)", dev, fam)
			}
			c := libvirtxml.DomainController{Type: d.Target.Bus, Index: uintp(*a.Controller)}
			if c.Type == "scsi" {
				c.Model = defaultSCSIModel
			}
			insertController(x, c)
		}
		if d.Target.Bus == "scsi" {
			if c := findController(x, "scsi", *a.Controller); c.Model == "lsilogic" && (*a.Unit > 6 || *a.Target != 0) {
				return bad("disk %q: an lsilogic controller has units 0..6 on target 0", dev)
			}
		}
	}
	return nil
}

// addImplicitControllers adds the controllers every machine of the family
// has, before any a disk needs: libvirt lists them first.
func addImplicitControllers(x *libvirtxml.Domain, fam string) {
	if findController(x, "usb", 0) == nil {
		model := map[string]string{machinePC: "piix3-uhci", machineQ35: "qemu-xhci"}[fam]
		insertController(x, libvirtxml.DomainController{Type: "usb", Index: uintp(0), Model: model})
	}
	if fam == machineQ35 && findController(x, "sata", 0) == nil {
		insertController(x, libvirtxml.DomainController{Type: "sata", Index: uintp(0)})
	}
	if findController(x, "pci", 0) == nil {
		model := map[string]string{machinePC: "pci-root", machineQ35: "pcie-root"}[fam]
		insertController(x, libvirtxml.DomainController{Type: "pci", Index: uintp(0), Model: model})
	}
}

// addImplicitDevices adds what libvirt adds to every definition of the
// machine family: the USB controller, the PCI root (and on q35 the SATA
// controller that is part of the chipset), PS/2 mouse and keyboard, a
// virtio balloon, the virtio-serial controller that virtio channels are
// on, a video card for a graphics console, and the audio backend a sound
// card or SPICE needs.
func addImplicitDevices(x *libvirtxml.Domain, fam string) {
	addImplicitControllers(x, fam)
	dev := x.Devices
	if fam == machinePC {
		// On pc the IDE controller is part of PIIX3, at 00:01.1.
		if c := findController(x, "ide", 0); c != nil && c.Address == nil {
			c.Address = pciAddr(0, 1, 1, false)
		}
	} else if c := findController(x, "sata", 0); c != nil && c.Address == nil {
		c.Address = pciAddr(0, 0x1f, 2, false)
	}
	for _, ch := range dev.Channels {
		if ch.Target != nil && ch.Target.VirtIO != nil && findController(x, "virtio-serial", 0) == nil {
			insertController(x, libvirtxml.DomainController{Type: "virtio-serial", Index: uintp(0)})
		}
	}
	for _, con := range dev.Consoles {
		if con.Target != nil && con.Target.Type == "virtio" && findController(x, "virtio-serial", 0) == nil {
			insertController(x, libvirtxml.DomainController{Type: "virtio-serial", Index: uintp(0)})
		}
	}
	hasPS2 := func(typ string) bool {
		for _, in := range dev.Inputs {
			if in.Type == typ && in.Bus == "ps2" {
				return true
			}
		}
		return false
	}
	for _, typ := range []string{"mouse", "keyboard"} {
		if !hasPS2(typ) {
			dev.Inputs = append(dev.Inputs, libvirtxml.DomainInput{Type: typ, Bus: "ps2"})
		}
	}
	if dev.MemBalloon == nil {
		dev.MemBalloon = &libvirtxml.DomainMemBalloon{Model: "virtio"}
	}
	if len(dev.Graphics) > 0 && len(dev.Videos) == 0 {
		dev.Videos = append(dev.Videos, libvirtxml.DomainVideo{Model: libvirtxml.DomainVideoModel{Type: "cirrus"}})
		fillVideo(&dev.Videos[0], true)
	}
	spice := false
	for _, g := range dev.Graphics {
		if g.Spice != nil {
			spice = true
		}
	}
	if len(dev.Audios) == 0 {
		a := libvirtxml.DomainAudio{ID: 1, None: &libvirtxml.DomainAudioNone{}}
		if spice {
			a = libvirtxml.DomainAudio{ID: 1, SPICE: &libvirtxml.DomainAudioSPICE{}}
		}
		dev.Audios = append(dev.Audios, a)
	}
}

// assignPCIAddresses keeps the PCI addresses a definition gives and
// assigns the others, in libvirt's order: the primary video card, PCI
// controllers, filesystems, interfaces, sound cards, other controllers,
// virtio disks, the balloon, rngs, watchdogs, other video cards, virtio
// inputs and vsock.
func assignPCIAddresses(x *libvirtxml.Domain, fam string, bad badFunc) error {
	q35 := fam == machineQ35
	gavePorts := false
	for _, c := range x.Devices.Controllers {
		gavePorts = gavePorts || c.Model == "pcie-root-port"
	}
	a, err := newPCIAlloc(x, q35)
	if err != nil {
		return bad("%v", err)
	}
	dev := x.Devices
	// Every address given is reserved first, so that no assigned one
	// takes its place.
	// A slot is a device that needs a PCI address. Pointers into the
	// device lists stay valid: the controllers the allocator adds are
	// appended only once every address is assigned.
	type slot struct {
		what string
		addr **libvirtxml.DomainAddress
		conn pciConnect
		// What some devices need besides their kind of connection.
		primaryVideo bool
		port         bool                         // a pcie-root-port
		usb          *libvirtxml.DomainController // a USB controller
		ich9Sound    bool
	}
	var all []slot
	add := func(what string, addr **libvirtxml.DomainAddress, conn pciConnect) {
		all = append(all, slot{what: what, addr: addr, conn: conn})
	}
	primary := -1
	for i := range dev.Videos {
		if dev.Videos[i].Model.Type != "none" {
			primary = i
			break
		}
	}
	if primary < 0 {
		// No video card: its slot is free for other devices.
		a.buses[0].reserved[1], a.buses[0].reserved[2] = false, false
	}
	if primary >= 0 {
		add("<video>", &dev.Videos[primary].Address, pciIntegrated)
		all[len(all)-1].primaryVideo = true
	}
	for i := range dev.Controllers {
		c := &dev.Controllers[i]
		if c.Type == "pci" && controllerIndex(c) != 0 {
			conn := pciExpress
			if c.Model == "pci-bridge" {
				conn = pciLegacy
			}
			add(fmt.Sprintf("<controller type='pci' index='%d'>", *c.Index), &c.Address, conn)
			all[len(all)-1].port = c.Model == "pcie-root-port"

		}
	}
	for i := range dev.Filesystems {
		add("<filesystem>", &dev.Filesystems[i].Address, pciExpress)
	}
	for i := range dev.Interfaces {
		conn := pciExpress
		if m := dev.Interfaces[i].Model; m != nil && (m.Type == "e1000" || m.Type == "rtl8139") {
			conn = pciLegacy
		}
		add(fmt.Sprintf("interface %d", i), &dev.Interfaces[i].Address, conn)
	}
	for i := range dev.Sounds {
		conn := pciLegacy
		if dev.Sounds[i].Model == "ich9" {
			conn = pciIntegrated
		}
		if dev.Sounds[i].Model == "usb" || dev.Sounds[i].Model == "sb16" || dev.Sounds[i].Model == "pcspk" {
			continue
		}
		add(fmt.Sprintf("<sound model='%s'>", dev.Sounds[i].Model), &dev.Sounds[i].Address, conn)
		all[len(all)-1].ich9Sound = dev.Sounds[i].Model == "ich9"
	}
	for i := range dev.Controllers {
		c := &dev.Controllers[i]
		what := fmt.Sprintf("<controller type='%s' index='%d'>", c.Type, *c.Index)
		switch c.Type {
		case "usb":
			if c.Model == "none" {
				continue
			}
			if fam == machinePC && *c.Index == 0 && c.Model == "piix3-uhci" && c.Address == nil {
				c.Address = pciAddr(0, 1, 2, false)
				continue
			}
			add(what, &c.Address, usbModels[c.Model].conn)
			all[len(all)-1].usb = c
		case "scsi":
			conn := pciExpress
			if c.Model == "lsilogic" {
				conn = pciLegacy
			}
			add(what, &c.Address, conn)
		case "sata":
			add(what, &c.Address, pciIntegrated)
		case "ide":
			add(what, &c.Address, pciIntegrated)
		case "virtio-serial":
			add(what, &c.Address, pciExpress)
		}
	}
	for i := range dev.Disks {
		if dev.Disks[i].Target.Bus == "virtio" {
			add("disk "+dev.Disks[i].Target.Dev, &dev.Disks[i].Address, pciExpress)
		}
	}
	if b := dev.MemBalloon; b != nil && b.Model == "virtio" {
		add("<memballoon>", &b.Address, pciExpress)
	}
	for i := range dev.RNGs {
		add("<rng>", &dev.RNGs[i].Address, pciExpress)
	}
	for i := range dev.Watchdogs {
		if dev.Watchdogs[i].Model == "i6300esb" {
			add("<watchdog>", &dev.Watchdogs[i].Address, pciLegacy)
		}
	}
	for i := range dev.Videos {
		if i != primary && dev.Videos[i].Model.Type != "none" {
			add("<video>", &dev.Videos[i].Address, pciLegacy)
		}
	}
	for i := range dev.Inputs {
		if dev.Inputs[i].Bus == "virtio" {
			add("<input bus='virtio'>", &dev.Inputs[i].Address, pciExpress)
		}
	}
	if v := dev.VSock; v != nil {
		add("<vsock>", &v.Address, pciExpress)
	}

	for _, s := range all {
		if *s.addr == nil {
			continue
		}
		if (*s.addr).PCI == nil {
			return bad("%s: only a PCI <address> is supported", s.what)
		}
		if err := a.reserve(s.what, (*s.addr).PCI, s.port); err != nil {
			return bad("%v", err)
		}
	}
	// On q35 libvirt puts the pcie-to-pci-bridge that conventional PCI
	// devices need behind the first root port it adds, and adds the
	// bridge itself when it comes to the first such device.
	var bridgePort *pciBus
	if q35 && !a.hasBridge() {
		for _, s := range all {
			if *s.addr == nil && s.conn == pciLegacy {
				b, err := a.freeRootPort()
				if err != nil {
					return bad("%s: %v", s.what, err)
				}
				b.used[0] |= 1
				bridgePort = b
				break
			}
		}
	}
	// The ich9 USB companions share the slot of their EHCI master.
	ehci := map[uint]*libvirtxml.DomainAddress{}
	for _, s := range all {
		if *s.addr != nil {
			continue
		}
		if bridgePort != nil && s.conn == pciLegacy {
			a.addController("pcie-to-pci-bridge", pciAddr(bridgePort.index, 0, 0, false))
			bridgePort = nil
		}
		var err error
		switch {
		case s.primaryVideo:
			slot := uint(2)
			if q35 {
				slot = 1
			}
			root := a.buses[0]
			if root.used[slot] == 0 {
				root.used[slot] = 1
				root.reserved[slot] = false
				*s.addr = pciAddr(0, slot, 0, false)
			} else {
				*s.addr, err = a.take(pciLegacy)
			}
		case s.usb != nil:
			*s.addr, err = a.usbAddress(s.usb, ehci)
		case s.ich9Sound && q35:
			*s.addr, err = a.takeRootSlot(0x1b)
		case s.port:
			*s.addr, err = a.rootPortAddress()
		default:
			*s.addr, err = a.take(s.conn)
		}
		if err != nil {
			return bad("%s: %v", s.what, err)
		}
	}
	// libvirt leaves one pcie-root-port free for a device plugged in
	// later, when it had to add ports and the definition gave none.
	if q35 && a.added > 0 && !gavePorts {
		if _, err := a.addRootPort(); err != nil {
			return bad("%v", err)
		}
	}
	dev.Controllers = append(dev.Controllers, a.made...)
	for i := range dev.Controllers {
		c := &dev.Controllers[i]
		if c.Type == "pci" {
			fillPCIController(c)
		}
	}
	return nil
}

// usbAddress places a USB controller: an ich9 EHCI master and its UHCI
// companions share one slot (functions 7 and 0..2), on q35 the chipset's
// slot 0x1d.
func (a *pciAlloc) usbAddress(c *libvirtxml.DomainController, ehci map[uint]*libvirtxml.DomainAddress) (*libvirtxml.DomainAddress, error) {
	if !strings.HasPrefix(c.Model, "ich9-") {
		return a.take(usbModels[c.Model].conn)
	}
	fn := map[string]uint{"ich9-ehci1": 7, "ich9-uhci1": 0, "ich9-uhci2": 1, "ich9-uhci3": 2}[c.Model]
	base := ehci[*c.Index]
	if base == nil {
		var err error
		if a.q35 {
			base, err = a.takeRootSlot(0x1d)
		} else {
			base, err = a.take(pciLegacy)
		}
		if err != nil {
			return nil, err
		}
		ehci[*c.Index] = base
	}
	p := base.PCI
	a.buses[*p.Bus].used[*p.Slot] |= 1 << fn
	return pciAddr(*p.Bus, *p.Slot, fn, fn == 0), nil
}
