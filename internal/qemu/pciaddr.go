package qemu

import (
	"fmt"
	"sort"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// How a device plugs into PCI, which decides where it may go on a q35
// machine: a PCI Express endpoint behind its own pcie-root-port, a
// conventional PCI device behind a pcie-to-pci-bridge, or an integrated
// device on pcie-root itself. On a pc machine every kind goes on a
// conventional PCI bus.
type pciConnect int

const (
	pciExpress pciConnect = iota
	pciLegacy
	pciIntegrated
)

// pciBus is one PCI bus of a domain: the root bus, or the bus behind a
// PCI controller with that index.
type pciBus struct {
	index uint
	model string // pci-root, pcie-root, pcie-root-port, pcie-to-pci-bridge, pci-bridge
	used  [32]uint8
	// reserved marks slots that are kept for a purpose, not for the
	// next device (the primary video card's slot).
	reserved [32]bool
	// ports marks root bus slots that hold pcie-root-ports only, where
	// another port may take a free function.
	ports [32]bool
}

func (b *pciBus) slots() (lo, hi uint) {
	switch b.model {
	case "pcie-root-port":
		return 0, 0
	case "pci-root", "pcie-root":
		return 1, 31
	}
	return 1, 31
}

func (b *pciBus) free(slot, fn uint) bool { return b.used[slot]&(1<<fn) == 0 }

// pciAlloc assigns PCI addresses the way libvirt does for the same
// definition: addresses already given are kept, and every device without
// one gets, in libvirt's order of device kinds, the first free place where
// it can go, adding pcie-root-ports (and a pcie-to-pci-bridge) on q35 as
// the devices need them.
type pciAlloc struct {
	x     *libvirtxml.Domain
	q35   bool
	buses map[uint]*pciBus
	added int // pcie-root-ports the allocator added
	// made are the PCI controllers the allocator adds, appended to the
	// definition once every address is assigned (appending earlier would
	// move the controllers other devices' addresses are written into).
	made []libvirtxml.DomainController
}

func newPCIAlloc(x *libvirtxml.Domain, q35 bool) (*pciAlloc, error) {
	a := &pciAlloc{x: x, q35: q35, buses: map[uint]*pciBus{}}
	for i := range x.Devices.Controllers {
		c := &x.Devices.Controllers[i]
		if c.Type == "pci" {
			a.buses[*c.Index] = &pciBus{index: *c.Index, model: c.Model}
		}
	}
	root := a.buses[0]
	if root == nil {
		return nil, fmt.Errorf("no PCI root controller")
	}
	root.used[0] = 0xff // the host bridge
	if q35 {
		root.used[0x1f] = 1<<0 | 1<<3 // ICH9 LPC and SMBus; SATA is a controller
		root.reserved[1] = true       // the primary video card
	} else {
		root.used[1] = 1<<0 | 1<<3 // PIIX3's ISA bridge and power management; IDE and USB are controllers
		root.reserved[2] = true
	}
	return a, nil
}

// reserve records an address the definition gives; port says the device
// is a pcie-root-port.
func (a *pciAlloc) reserve(what string, p *libvirtxml.DomainAddressPCI, port bool) error {
	if p.Domain == nil || p.Bus == nil || p.Slot == nil || p.Function == nil {
		return fmt.Errorf("%s: a PCI <address> needs domain, bus, slot and function", what)
	}
	if *p.Domain != 0 {
		return fmt.Errorf("%s: PCI domain %#x does not exist (only 0)", what, *p.Domain)
	}
	b := a.buses[*p.Bus]
	if b == nil {
		return fmt.Errorf("%s: PCI bus %#02x has no controller (add <controller type='pci' index='%d'>)", what, *p.Bus, *p.Bus)
	}
	lo, hi := b.slots()
	if *p.Slot < lo || *p.Slot > hi || *p.Function > 7 {
		return fmt.Errorf("%s: PCI address %02x:%02x.%x is out of range for a %s (slots %#x..%#x, functions 0..7)", what, *p.Bus, *p.Slot, *p.Function, b.model, lo, hi)
	}
	if !b.free(*p.Slot, *p.Function) {
		return fmt.Errorf("%s: PCI address %02x:%02x.%x is used by another device", what, *p.Bus, *p.Slot, *p.Function)
	}
	if p.ZPCI != nil {
		return fmt.Errorf("%s: a <zpci> address is for s390 only", what)
	}
	if b.index == 0 && b.model == "pci-root" && *p.Slot == 1 {
		ide := *p.Function == 1 && strings.HasPrefix(what, "<controller type='ide'")
		usb := *p.Function == 2 && strings.HasPrefix(what, "<controller type='usb' index='0'")
		if !ide && !usb {
			return fmt.Errorf("%s: PCI slot 0x01 of a pc machine belongs to the PIIX3 chipset (00:01.1 is its IDE, 00:01.2 its USB controller)", what)
		}
	}
	if b.index == 0 && b.model == "pcie-root" && *p.Slot == 0x1f && !(*p.Function == 2 && strings.HasPrefix(what, "<controller type='sata' index='0'")) {
		return fmt.Errorf("%s: PCI slot 0x1f of a q35 machine belongs to the ICH9 chipset (00:1f.2 is its SATA controller)", what)
	}
	b.ports[*p.Slot] = port && (b.used[*p.Slot] == 0 || b.ports[*p.Slot])
	b.used[*p.Slot] |= 1 << *p.Function
	b.reserved[*p.Slot] = false
	return nil
}

func pciAddr(bus, slot, fn uint, multi bool) *libvirtxml.DomainAddress {
	d := uint(0)
	p := &libvirtxml.DomainAddressPCI{Domain: &d, Bus: &bus, Slot: &slot, Function: &fn}
	if multi {
		p.MultiFunction = "on"
	}
	return &libvirtxml.DomainAddress{PCI: p}
}

// take finds a free slot for a device that connects as kind.
func (a *pciAlloc) take(kind pciConnect) (*libvirtxml.DomainAddress, error) {
	if !a.q35 {
		return a.onBus(func(b *pciBus) bool { return b.model == "pci-root" || b.model == "pci-bridge" })
	}
	switch kind {
	case pciExpress:
		b, err := a.freeRootPort()
		if err != nil {
			return nil, err
		}
		b.used[0] |= 1
		return pciAddr(b.index, 0, 0, false), nil
	case pciLegacy:
		if ad, err := a.onBus(func(b *pciBus) bool { return b.model == "pcie-to-pci-bridge" || b.model == "pci-bridge" }); err == nil {
			return ad, nil
		}
		port, err := a.addRootPort()
		if err != nil {
			return nil, err
		}
		port.used[0] |= 1
		br := a.addController("pcie-to-pci-bridge", pciAddr(port.index, 0, 0, false))
		return a.onBus(func(b *pciBus) bool { return b == br })
	}
	return a.onBus(func(b *pciBus) bool { return b.index == 0 })
}

// freeRootPort is the first pcie-root-port with nothing behind it, a new
// one when there is none.
func (a *pciAlloc) freeRootPort() (*pciBus, error) {
	for _, b := range a.sorted() {
		if b.model == "pcie-root-port" && b.free(0, 0) {
			return b, nil
		}
	}
	return a.addRootPort()
}

// hasBridge reports whether the domain has a bridge for conventional PCI
// devices.
func (a *pciAlloc) hasBridge() bool {
	for _, b := range a.buses {
		if b.model == "pcie-to-pci-bridge" || b.model == "pci-bridge" {
			return true
		}
	}
	return false
}

// takeRootSlot gives a device a whole slot on the root bus at slot want when
// it is free (libvirt's places for ich9 devices on q35), else the first
// free one.
func (a *pciAlloc) takeRootSlot(want uint) (*libvirtxml.DomainAddress, error) {
	root := a.buses[0]
	if root.used[want] == 0 && !root.reserved[want] {
		root.used[want] = 1
		return pciAddr(0, want, 0, false), nil
	}
	return a.take(pciIntegrated)
}

func (a *pciAlloc) sorted() []*pciBus {
	list := make([]*pciBus, 0, len(a.buses))
	for _, b := range a.buses {
		list = append(list, b)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].index < list[j].index })
	return list
}

func (a *pciAlloc) onBus(ok func(*pciBus) bool) (*libvirtxml.DomainAddress, error) {
	for _, b := range a.sorted() {
		if !ok(b) {
			continue
		}
		lo, hi := b.slots()
		for s := lo; s <= hi; s++ {
			if b.used[s] == 0 && !b.reserved[s] {
				b.used[s] = 1
				return pciAddr(b.index, s, 0, false), nil
			}
		}
	}
	return nil, fmt.Errorf("no free PCI slot left")
}

// addRootPort adds a pcie-root-port on pcie-root, in the first free
// function from slot 2 on, as libvirt packs them.
func (a *pciAlloc) addRootPort() (*pciBus, error) {
	at, err := a.rootPortAddress()
	if err != nil {
		return nil, err
	}
	a.added++
	return a.addController("pcie-root-port", at), nil
}

// rootPortAddress takes the place of the next pcie-root-port: a free
// function in a root bus slot that holds only ports, from slot 1 on (slot
// 1 is the video card's when there is one).
func (a *pciAlloc) rootPortAddress() (*libvirtxml.DomainAddress, error) {
	root := a.buses[0]
	for s := uint(1); s < 0x1f; s++ {
		if root.reserved[s] || (root.used[s] != 0 && !root.ports[s]) {
			continue
		}
		for f := uint(0); f < 8; f++ {
			if root.free(s, f) {
				root.used[s] |= 1 << f
				root.ports[s] = true
				return pciAddr(0, s, f, f == 0), nil
			}
		}
	}
	return nil, fmt.Errorf("no free PCI slot left on pcie-root for another pcie-root-port")
}

func (a *pciAlloc) addController(model string, at *libvirtxml.DomainAddress) *pciBus {
	idx := uint(0)
	for i := range a.buses {
		if i >= idx {
			idx = i + 1
		}
	}
	c := libvirtxml.DomainController{Type: "pci", Index: &idx, Model: model, Address: at}
	fillPCIController(&c)
	a.made = append(a.made, c)
	b := &pciBus{index: idx, model: model}
	a.buses[idx] = b
	return b
}

// fillPCIController fills in a PCI controller's <model name> and
// <target>, as libvirt shows them.
func fillPCIController(c *libvirtxml.DomainController) {
	name := map[string]string{
		"pcie-root-port":     "pcie-root-port",
		"pcie-to-pci-bridge": "pcie-pci-bridge",
		"pci-bridge":         "pci-bridge",
	}[c.Model]
	if name == "" {
		return
	}
	if c.PCI == nil {
		c.PCI = &libvirtxml.DomainControllerPCI{}
	}
	if c.PCI.Model == nil {
		c.PCI.Model = &libvirtxml.DomainControllerPCIModel{Name: name}
	}
	switch c.Model {
	case "pcie-root-port":
		if c.PCI.Target == nil {
			c.PCI.Target = &libvirtxml.DomainControllerPCITarget{}
		}
		t := c.PCI.Target
		if t.Chassis == nil {
			n := *c.Index
			t.Chassis = &n
		}
		if t.Port == nil && c.Address != nil && c.Address.PCI != nil {
			p := *c.Address.PCI.Slot<<3 | *c.Address.PCI.Function
			t.Port = &p
		}
	case "pci-bridge":
		if c.PCI.Target == nil {
			c.PCI.Target = &libvirtxml.DomainControllerPCITarget{}
		}
		if c.PCI.Target.ChassisNr == nil {
			n := *c.Index
			c.PCI.Target.ChassisNr = &n
		}
	}
}
