package qemu

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/driver/domxml"
	"github.com/virtd/virtd/virt"
)

// config is one parsed, checked and normalised domain definition. It is
// never changed once built: a redefinition builds a new one, and a start
// copies it into the live definition.
//
// A stored definition is kept compact (see compact): as its XML, parsed
// again when it is started or its devices are asked for. Parsed, a
// definition with the devices libvirt fills in takes about three times
// the memory of its text.
type config struct {
	x          *libvirtxml.Domain // nil when compact
	doc        string             // the definition's XML, when compact
	name, uuid string
	maxMemKiB  uint64
	memKiB     uint64
	vcpus      uint32
	maxVCPUs   uint32
	tune       *tuning // tune.go
}

// Name and UUID of the definition (domlist.Def).
func (c *config) Name() string { return c.name }
func (c *config) UUID() string { return c.uuid }

// compact returns c kept as its XML.
func (c *config) compact() (*config, error) {
	if c.x == nil {
		return c, nil
	}
	doc, err := c.marshal(0)
	if err != nil {
		return nil, err
	}
	n := *c
	n.x, n.doc = nil, doc
	return &n, nil
}

// dom is the parsed definition: c's own, or a new parse of a compact one.
// Callers do not change it.
func (c *config) dom() *libvirtxml.Domain {
	if c.x != nil {
		return c.x
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(c.doc); err != nil {
		panic(fmt.Sprintf("qemu: parsing the stored definition of domain '%s': %v", c.Name(), err))
	}
	return &x
}

// clone deep-copies the definition (through XML), for a live copy whose
// runtime fields (pty paths, ports, ids) are filled in.
func (c *config) clone() *config {
	doc := c.doc
	if c.x != nil {
		var err error
		if doc, err = c.x.Marshal(); err != nil {
			panic(fmt.Sprintf("qemu: cloning domain '%s': %v", c.Name(), err))
		}
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		panic(fmt.Sprintf("qemu: cloning domain '%s': %v", c.Name(), err))
	}
	n := *c
	n.x, n.doc = &x, ""
	return &n
}

// marshal writes the definition, with id='N' when id > 0 (live XML).
func (c *config) marshal(id int32) (string, error) {
	if c.x == nil && id <= 0 {
		return c.doc, nil
	}
	x := *c.dom()
	x.ID = nil
	if id > 0 {
		n := int(id)
		x.ID = &n
	}
	s, err := x.Marshal()
	if err != nil {
		return "", virt.Errorf(virt.ErrInternal, "domain '%s': writing XML: %w", c.Name(), err)
	}
	return s, nil
}

// parseConfig parses libvirt domain XML, refuses what the driver cannot
// honour and fills in what libvirt fills in (uuid, MAC addresses, default
// actions, ...). It touches no file: checks against the host (emulator,
// kernel, disk files) are the driver's, at define and start.
func parseConfig(doc string) (*config, error) {
	px, err := domxml.Parse(doc)
	if err != nil {
		return nil, err
	}
	x := *px
	x.ID = nil // a live XML's id means nothing in a definition
	if err := honoured.Check(&x); err != nil {
		return nil, err
	}
	name := x.Name
	bad := func(format string, a ...any) error {
		return fmt.Errorf("domain '%s': %s: %w", name, fmt.Sprintf(format, a...), virt.ErrInvalidArgument)
	}
	if x.Type != "qemu" && x.Type != "kvm" {
		return nil, bad("domain type %q is not served by the qemu driver (use type='qemu' or type='kvm')", x.Type)
	}
	if strings.TrimSpace(x.UUID) == "" {
		x.UUID = domutil.NewUUID()
	} else {
		u, err := domutil.ParseUUID(x.UUID)
		if err != nil {
			return nil, fmt.Errorf("domain '%s': %w", name, err)
		}
		x.UUID = u
	}
	c := &config{x: &x, name: x.Name, uuid: x.UUID}

	if x.Memory == nil {
		return nil, bad("memory size must be given with <memory>")
	}
	maxKiB, err := domutil.ScaleToKiB(uint64(x.Memory.Value), x.Memory.Unit)
	if err != nil {
		return nil, bad("<memory>: %v", err)
	}
	if maxKiB < 1024 {
		return nil, bad("<memory> must be at least 1 MiB")
	}
	curKiB := maxKiB
	if x.CurrentMemory != nil {
		if curKiB, err = domutil.ScaleToKiB(uint64(x.CurrentMemory.Value), x.CurrentMemory.Unit); err != nil {
			return nil, bad("<currentMemory>: %v", err)
		}
		if curKiB == 0 || curKiB > maxKiB {
			curKiB = maxKiB
		}
	}
	c.maxMemKiB, c.memKiB = maxKiB, curKiB
	x.Memory = &libvirtxml.DomainMemory{Value: uint(maxKiB), Unit: "KiB"}
	x.CurrentMemory = &libvirtxml.DomainCurrentMemory{Value: uint(curKiB), Unit: "KiB"}

	if x.VCPU == nil {
		x.VCPU = &libvirtxml.DomainVCPU{Value: 1}
	}
	if x.VCPU.Value == 0 || x.VCPU.Value > 255 {
		return nil, bad("<vcpu> must be between 1 and 255")
	}
	if x.VCPU.Current > x.VCPU.Value {
		return nil, bad("<vcpu current='%d'> exceeds the maximum %d", x.VCPU.Current, x.VCPU.Value)
	}
	if err := parseTuning(c, &x, bad); err != nil {
		return nil, err
	}
	if x.VCPU.Placement != "" && x.VCPU.Placement != "static" {
		return nil, bad("<vcpu placement='%s'> is not supported (only static)", x.VCPU.Placement)
	}
	x.VCPU.Placement = "static"
	c.maxVCPUs = uint32(x.VCPU.Value)
	c.vcpus = c.maxVCPUs
	if x.VCPU.Current != 0 {
		c.vcpus = uint32(x.VCPU.Current)
	}

	if x.Devices == nil {
		x.Devices = &libvirtxml.DomainDeviceList{}
	}
	if err := normaliseOS(&x, bad); err != nil {
		return nil, err
	}
	if x.Clock == nil {
		x.Clock = &libvirtxml.DomainClock{}
	}
	for _, a := range []struct {
		elem string
		v    *string
		def  string
		ok   []string
	}{
		{"on_poweroff", &x.OnPoweroff, "destroy", []string{"destroy", "restart"}},
		{"on_reboot", &x.OnReboot, "restart", []string{"destroy", "restart"}},
		{"on_crash", &x.OnCrash, "destroy", []string{"destroy", "restart"}},
	} {
		if *a.v == "" {
			*a.v = a.def
		}
		if !slices.Contains(a.ok, *a.v) {
			return nil, bad("<%s>%s</%s> is not supported (only %s)", a.elem, *a.v, a.elem, strings.Join(a.ok, ", "))
		}
	}
	if x.Devices == nil {
		x.Devices = &libvirtxml.DomainDeviceList{}
	}
	fam := machineFamily(x.OS.Type.Machine)
	for _, step := range []func() error{
		func() error { return normaliseFeatures(&x, fam, bad) },
		func() error { return normaliseDisks(&x, bad) },
		func() error { return normaliseInterfaces(&x, bad) },
		func() error { return normaliseChardevs(&x, bad) },
		func() error { return normaliseChannels(&x, bad) },
		func() error { return normaliseGraphics(&x, bad) },
		func() error { return normaliseExtras(&x, bad) },
		func() error { return normaliseVideos(&x, bad) },
		func() error { return normaliseSounds(&x, bad) },
		func() error { return normaliseInputs(&x, fam, bad) },
		func() error { return normaliseMisc(&x, bad) },
		func() error { return normaliseControllers(&x, fam, bad) },
		func() error { addImplicitControllers(&x, fam); return nil },
		func() error { return assignDriveAddresses(&x, fam, bad) },
		func() error { addImplicitDevices(&x, fam); return nil },
		func() error { return assignPCIAddresses(&x, fam, bad) },
		func() error { return assignPortAddresses(&x, bad) },
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

type badFunc func(format string, a ...any) error

func normaliseOS(x *libvirtxml.Domain, bad badFunc) error {
	if x.OS == nil {
		x.OS = &libvirtxml.DomainOS{}
	}
	if x.OS.Type == nil {
		x.OS.Type = &libvirtxml.DomainOSType{}
	}
	t := x.OS.Type
	if t.Type == "" {
		t.Type = "hvm"
	}
	if t.Type != "hvm" {
		return bad("<os><type>%s</type> is not supported (only hvm)", t.Type)
	}
	if t.Arch == "" {
		t.Arch = "x86_64"
	}
	if !validArch(t.Arch) {
		return bad("invalid architecture %q", t.Arch)
	}
	if t.Machine == "" {
		t.Machine = "pc"
	}
	if machineFamily(t.Machine) == "" {
		return bad("<type machine='%s'> is not supported (only pc, q35 and their versions, such as pc-i440fx-7.2 and pc-q35-7.2)", t.Machine)
	}
	if m := x.OS.BootMenu; m != nil && len(x.OS.BootDevices) == 0 && m.Enable == "" {
		return bad("<bootmenu> needs enable='yes' or enable='no'")
	}
	if (x.OS.Initrd != "" || x.OS.Cmdline != "") && x.OS.Kernel == "" {
		return bad("<initrd> and <cmdline> need a <kernel>")
	}
	for _, b := range x.OS.BootDevices {
		if _, ok := bootLetters[b.Dev]; !ok {
			return bad("<boot dev='%s'> is not supported (only hd, cdrom, network, fd)", b.Dev)
		}
	}
	if len(x.OS.BootDevices) > 0 {
		for _, d := range x.Devices.Disks {
			if d.Boot != nil {
				return bad("per-device <boot order> and <os><boot dev> cannot be used together")
			}
		}
		for _, n := range x.Devices.Interfaces {
			if n.Boot != nil {
				return bad("per-device <boot order> and <os><boot dev> cannot be used together")
			}
		}
	}
	if x.Features != nil && x.Features.APIC != nil && x.Features.APIC.EOI != "" {
		return bad("<apic eoi='%s'> is not supported", x.Features.APIC.EOI)
	}
	if len(x.OS.BootDevices) == 0 && !perDeviceBoot(x) {
		// libvirt's default: boot from the first hard disk.
		x.OS.BootDevices = []libvirtxml.DomainBootDevice{{Dev: "hd"}}
	}
	return nil
}

func perDeviceBoot(x *libvirtxml.Domain) bool {
	for _, d := range x.Devices.Disks {
		if d.Boot != nil {
			return true
		}
	}
	for _, n := range x.Devices.Interfaces {
		if n.Boot != nil {
			return true
		}
	}
	for _, r := range x.Devices.RedirDevs {
		if r.Boot != nil {
			return true
		}
	}
	return false
}

var bootLetters = map[string]string{"fd": "a", "hd": "c", "cdrom": "d", "network": "n"}

func validArch(a string) bool {
	if a == "" {
		return false
	}
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func normaliseDisks(x *libvirtxml.Domain, bad badFunc) error {
	seen := make(map[string]bool)
	for i := range x.Devices.Disks {
		d := &x.Devices.Disks[i]
		if d.Device == "" {
			d.Device = "disk"
		}
		if d.Device != "disk" && d.Device != "cdrom" {
			return bad("<disk device='%s'> is not supported (only disk and cdrom)", d.Device)
		}
		if d.Target == nil || d.Target.Dev == "" {
			return bad("a <disk> needs <target dev='...'>")
		}
		dev := d.Target.Dev
		if seen[dev] {
			return bad("target %q is used by two disks", dev)
		}
		seen[dev] = true
		if d.Target.Bus == "" {
			switch {
			case strings.HasPrefix(dev, "vd"):
				d.Target.Bus = "virtio"
			case strings.HasPrefix(dev, "hd"):
				d.Target.Bus = "ide"
			case strings.HasPrefix(dev, "sd"):
				d.Target.Bus = "sata"
			default:
				return bad("disk %q: cannot tell the bus from the target name; give <target bus='...'>", dev)
			}
		}
		if _, err := diskIndex(dev); err != nil {
			return bad("disk %q: %v", dev, err)
		}
		switch d.Target.Bus {
		case "virtio":
			if d.Device == "cdrom" {
				return bad("disk %q: a cdrom cannot be on the virtio bus", dev)
			}
		case "ide":
			if n, _ := diskIndex(dev); n >= 4 {
				return bad("disk %q: the ide bus has only 4 units (hda..hdd)", dev)
			}
		case "sata", "scsi":
		default:
			return bad("disk %q: <target bus='%s'> is not supported (only virtio, scsi, sata and ide)", dev, d.Target.Bus)
		}
		if d.Driver == nil {
			d.Driver = &libvirtxml.DomainDiskDriver{}
		}
		if d.Driver.Name == "" {
			d.Driver.Name = "qemu"
		}
		if d.Driver.Name != "qemu" {
			return bad("disk %q: <driver name='%s'> is not supported (only qemu)", dev, d.Driver.Name)
		}
		if d.Driver.Type == "" {
			d.Driver.Type = "raw"
		}
		if d.Driver.Type != "raw" && d.Driver.Type != "qcow2" {
			return bad("disk %q: <driver type='%s'> is not supported (only raw and qcow2)", dev, d.Driver.Type)
		}
		if err := checkDiskDriver(dev, d, bad); err != nil {
			return err
		}
		if diskPath(d) == "" {
			if d.Device != "cdrom" {
				return bad("disk %q has no <source>", dev)
			}
			d.Source = nil
		}
		if d.Device == "cdrom" {
			d.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
		}
	}
	return nil
}

// diskDriverValues are the values each <driver> attribute may take.
var diskDriverValues = []struct {
	attr string
	get  func(*libvirtxml.DomainDiskDriver) string
	ok   []string
}{
	{"cache", func(d *libvirtxml.DomainDiskDriver) string { return d.Cache }, []string{"default", "none", "writethrough", "writeback", "directsync", "unsafe"}},
	{"io", func(d *libvirtxml.DomainDiskDriver) string { return d.IO }, []string{"threads", "native", "io_uring"}},
	{"discard", func(d *libvirtxml.DomainDiskDriver) string { return d.Discard }, []string{"unmap", "ignore"}},
	{"detect_zeroes", func(d *libvirtxml.DomainDiskDriver) string { return d.DetectZeros }, []string{"off", "on", "unmap"}},
	{"error_policy", func(d *libvirtxml.DomainDiskDriver) string { return d.ErrorPolicy }, []string{"stop", "report", "ignore", "enospace"}},
	{"rerror_policy", func(d *libvirtxml.DomainDiskDriver) string { return d.RErrorPolicy }, []string{"stop", "report", "ignore"}},
}

func checkDiskDriver(dev string, d *libvirtxml.DomainDisk, bad badFunc) error {
	for _, v := range diskDriverValues {
		if val := v.get(d.Driver); val != "" && !slices.Contains(v.ok, val) {
			return bad("disk %q: <driver %s='%s'> is not supported (only %s)", dev, v.attr, val, strings.Join(v.ok, ", "))
		}
	}
	if d.Driver.IO == "native" && d.Driver.Cache != "none" && d.Driver.Cache != "directsync" {
		return bad("disk %q: <driver io='native'> needs cache='none' or cache='directsync'", dev)
	}
	if d.Driver.DetectZeros == "unmap" && d.Driver.Discard != "unmap" {
		return bad("disk %q: <driver detect_zeroes='unmap'> needs discard='unmap'", dev)
	}
	if len(d.Serial) > 36 || strings.ContainsAny(d.Serial, ",\x00") {
		return bad("disk %q: <serial>%s</serial> must be at most 36 characters, without commas", dev, d.Serial)
	}
	for _, r := range d.Serial {
		if r < 0x20 || r > 0x7e {
			return bad("disk %q: <serial> holds a character that is not printable ASCII", dev)
		}
	}
	if d.BackingStore != nil && (d.BackingStore.Source != nil || d.BackingStore.Format != nil) {
		return bad("disk %q: an explicit <backingStore> is not supported; QEMU follows the image's own backing chain", dev)
	}
	d.BackingStore = nil
	return nil
}

// diskPath is the file or block device behind a disk, "" for none.
func diskPath(d *libvirtxml.DomainDisk) string {
	if d.Source == nil {
		return ""
	}
	if d.Source.File != nil {
		return d.Source.File.File
	}
	if d.Source.Block != nil {
		return d.Source.Block.Dev
	}
	return ""
}

// diskIndex is the unit of a target name: vda 0, vdb 1, ..., vdaa 26.
func diskIndex(dev string) (int, error) {
	if len(dev) < 3 {
		return 0, fmt.Errorf("invalid target name")
	}
	n := 0
	for _, r := range dev[2:] {
		if r < 'a' || r > 'z' {
			return 0, fmt.Errorf("invalid target name")
		}
		n = n*26 + int(r-'a') + 1
	}
	return n - 1, nil
}

func normaliseInterfaces(x *libvirtxml.Domain, bad badFunc) error {
	seen := make(map[string]bool)
	for i := range x.Devices.Interfaces {
		n := &x.Devices.Interfaces[i]
		if n.Source == nil || (n.Source.User == nil && n.Source.Bridge == nil && n.Source.Ethernet == nil) {
			return bad("interface %d: only <interface type='user'>, type='bridge' and type='ethernet' are supported", i)
		}
		if e := n.Source.Ethernet; e != nil && (len(e.IP) > 0 || len(e.Route) > 0) {
			return bad("interface %d: <interface type='ethernet'>: <ip> and <route> are not supported", i)
		}
		if n.Source.Bridge != nil && n.Source.Bridge.Bridge == "" {
			return bad("interface %d: <source bridge='...'> is missing", i)
		}
		if err := checkInterfaceNames(x, i); err != nil {
			return err
		}
		if n.Model == nil {
			n.Model = &libvirtxml.DomainInterfaceModel{Type: "e1000"}
		}
		if _, ok := nicModels[n.Model.Type]; !ok {
			return bad("interface %d: <model type='%s'> is not supported (only virtio, e1000, e1000e and rtl8139)", i, n.Model.Type)
		}
		if n.MTU != nil && (n.MTU.Size < 68 || n.MTU.Size > 65535) {
			return bad("interface %d: <mtu size='%d'> is out of range (68..65535)", i, n.MTU.Size)
		}
		if d := n.Driver; d != nil {
			if d.Name != "" && d.Name != "vhost" && d.Name != "qemu" {
				return bad("interface %d: <driver name='%s'> is not supported (only vhost and qemu)", i, d.Name)
			}
			if n.Model.Type != "virtio" {
				return bad("interface %d: <driver> is for a virtio interface only", i)
			}
			if d.Queues > 16 {
				return bad("interface %d: <driver queues='%d'> is out of range (1..16)", i, d.Queues)
			}
			for _, q := range []struct {
				attr string
				v    uint
			}{{"rx_queue_size", d.RXQueueSize}, {"tx_queue_size", d.TXQueueSize}} {
				if q.v != 0 && (q.v < 256 || q.v > 1024 || q.v&(q.v-1) != 0) {
					return bad("interface %d: <driver %s='%d'> must be 256, 512 or 1024", i, q.attr, q.v)
				}
			}
		}
		if n.Link != nil && n.Link.State != "up" && n.Link.State != "down" {
			return bad("interface %d: <link state='%s'> must be up or down", i, n.Link.State)
		}
		if n.MAC == nil || n.MAC.Address == "" {
			n.MAC = &libvirtxml.DomainInterfaceMAC{Address: domutil.NewMAC()}
		}
		hw, err := net.ParseMAC(n.MAC.Address)
		if err != nil || len(hw) != 6 {
			return bad("interface %d: invalid MAC address %q", i, n.MAC.Address)
		}
		if hw[0]&1 != 0 {
			return bad("interface %d: MAC address %q is a multicast address", i, n.MAC.Address)
		}
		n.MAC.Address = hw.String()
		if seen[n.MAC.Address] {
			return bad("MAC address %s is used twice", n.MAC.Address)
		}
		seen[n.MAC.Address] = true
		if n.Target != nil && n.Source.User != nil {
			n.Target = nil // a user interface has no host device
		}
		if n.Target != nil && strings.HasPrefix(n.Target.Dev, "vnet") && n.Target.Managed != "no" {
			// As libvirt: vnetN names are the driver's to pick at start.
			n.Target = nil
		}
	}
	return nil
}

// checkInterfaceNames checks the host device names of interface i of x,
// its bridge and its tap, which the driver hands to the kernel at start
// (a '%' there would make a tap name a template). The error names the XML
// path.
func checkInterfaceNames(x *libvirtxml.Domain, i int) error {
	n := &x.Devices.Interfaces[i]
	if n.Source.User != nil {
		return nil // no host device; a <target> is dropped
	}
	at := fmt.Sprintf("domain/devices/interface[%d]", i+1)
	if n.Source.Bridge != nil {
		if err := domutil.CheckInterfaceName(n.Source.Bridge.Bridge); err != nil {
			return fmt.Errorf("domain '%s': %s/source/@bridge: %w", x.Name, at, err)
		}
	}
	if n.Target != nil && n.Target.Managed != "" && n.Target.Managed != "yes" && n.Target.Managed != "no" {
		return fmt.Errorf("domain '%s': %s/target/@managed must be yes or no: %w", x.Name, at, virt.ErrInvalidArgument)
	}
	if n.Target != nil && n.Target.Managed == "no" && (n.Source.Ethernet == nil || n.Target.Dev == "") {
		return fmt.Errorf("domain '%s': %s: <target managed='no'> needs type='ethernet' and a dev: %w", x.Name, at, virt.ErrInvalidArgument)
	}
	if n.Target != nil && n.Target.Dev != "" {
		if err := domutil.CheckInterfaceName(n.Target.Dev); err != nil {
			return fmt.Errorf("domain '%s': %s/target/@dev: %w", x.Name, at, err)
		}
	}
	return nil
}

// normaliseChardevs checks serials and consoles. On x86 a console is the
// serial port with the same number, as in libvirt: a console without a
// serial port adds one.
func normaliseChardevs(x *libvirtxml.Domain, bad badFunc) error {
	dev := x.Devices
	used := make(map[uint]bool)
	for i := range dev.Serials {
		s := &dev.Serials[i]
		if err := checkSource(s.Source, "serial", bad); err != nil {
			return err
		}
		if l := s.Log; l != nil && (!filepath.IsAbs(l.File) || l.Append != "" && l.Append != "on" && l.Append != "off") {
			return bad("<serial><log file='%s' append='%s'>: the file must be an absolute path, append on or off", l.File, l.Append)
		}
		if p := s.Protocol; p != nil && (s.Source.TCP == nil || p.Type != "raw" && p.Type != "telnet") {
			return bad("<serial><protocol type='%s'>: only raw and telnet, on type='tcp'", p.Type)
		}
		if s.Target == nil {
			s.Target = &libvirtxml.DomainSerialTarget{}
		}
		if s.Target.Port == nil {
			p := uint(0)
			for used[p] {
				p++
			}
			s.Target.Port = &p
		}
		if *s.Target.Port > 3 || used[*s.Target.Port] {
			return bad("serial port %d is out of range or used twice (0..3)", *s.Target.Port)
		}
		used[*s.Target.Port] = true
		if s.Target.Type == "" {
			s.Target.Type = "isa-serial"
		}
		if s.Target.Type != "isa-serial" {
			return bad("<serial><target type='%s'> is not supported (only isa-serial)", s.Target.Type)
		}
		if s.Target.Model == nil {
			s.Target.Model = &libvirtxml.DomainSerialTargetModel{Name: "isa-serial"}
		}
		if s.Target.Model.Name != "isa-serial" {
			return bad("<serial><target><model name='%s'> is not supported", s.Target.Model.Name)
		}
	}
	if len(dev.Consoles) == 0 && len(dev.Serials) > 0 {
		// As libvirt: the first serial port is the console too.
		s := &dev.Serials[0]
		dev.Consoles = append(dev.Consoles, libvirtxml.DomainConsole{
			Source: s.Source, Log: s.Log,
			Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: uintp(*s.Target.Port)},
		})
	}
	for i := range dev.Consoles {
		c := &dev.Consoles[i]
		if c.Target == nil {
			c.Target = &libvirtxml.DomainConsoleTarget{}
		}
		if c.Target.Type == "" {
			c.Target.Type = "serial"
		}
		if c.Target.Type == "virtio" {
			if err := checkSource(c.Source, "console", bad); err != nil {
				return err
			}
			if c.Target.Port == nil {
				c.Target.Port = uintp(uint(i))
			}
			continue
		}
		if c.Target.Type != "serial" {
			return bad("<console><target type='%s'> is not supported (only serial and virtio)", c.Target.Type)
		}
		if c.Target.Port == nil {
			p := uint(0)
			c.Target.Port = &p
		}
		if s := serialByPort(x, *c.Target.Port); s != nil {
			// The console is that serial port: it shows the serial's source.
			c.Source, c.Log = s.Source, s.Log
			continue
		}
		if err := checkSource(c.Source, "console", bad); err != nil {
			return err
		}
		p := *c.Target.Port
		if p > 3 {
			return bad("console port %d is out of range (0..3)", p)
		}
		dev.Serials = append(dev.Serials, libvirtxml.DomainSerial{
			Source: c.Source,
			Target: &libvirtxml.DomainSerialTarget{Type: "isa-serial", Port: &p,
				Model: &libvirtxml.DomainSerialTargetModel{Name: "isa-serial"}},
		})
	}
	return nil
}

func serialByPort(x *libvirtxml.Domain, port uint) *libvirtxml.DomainSerial {
	for i := range x.Devices.Serials {
		s := &x.Devices.Serials[i]
		if s.Target != nil && s.Target.Port != nil && *s.Target.Port == port {
			return s
		}
	}
	return nil
}
