package domconfig

import (
	"fmt"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/driver/domxml"
	"github.com/virtd/virtd/virt"
)

// Parse reads libvirt domain XML into a Config, refusing what the Xen
// driver cannot honour. It also returns the parsed XML, which keeps what
// the Config does not model but libvirt users expect back (title,
// description, metadata).
//
// It refuses, as every driver does (package domxml), a document that is
// not well-formed, an invalid name, and XML libvirtxml does not know.
func Parse(doc string) (*Config, *libvirtxml.Domain, error) {
	x, err := domxml.Parse(doc)
	if err != nil {
		return nil, nil, err
	}
	c, err := FromXML(x)
	if err != nil {
		return nil, nil, err
	}
	return c, x, nil
}

// honoured is what FromXML reads, as libvirtxml field paths (and, for
// title, description and metadata, what the driver keeps in the stored
// XML). Anything else that is set is refused by name.
//
// Devices.Disks.Target.Bus is taken as the vdev says: libxl finds the bus
// from the vdev name (xvda, hda, sda), and ToXML writes that bus back.
var honoured = domxml.NewFields("xen", `
Type ID Name UUID Title Description
Memory.Value Memory.Unit CurrentMemory.Value CurrentMemory.Unit
VCPU.Value VCPU.Current VCPU.Placement VCPU.CPUSet
Bootloader BootloaderArgs
OS.Type.Type OS.Type.Arch OS.Type.Machine OS.Kernel OS.Initrd OS.Cmdline
OS.Loader.Path OS.Loader.Type OS.Loader.Readonly OS.BootDevices.Dev OS.Firmware
Features.PAE Features.ACPI Features.APIC Features.HAP.State Features.Viridian Features.NestedHV.State
Clock.Offset Clock.Adjustment Clock.Basis Clock.Timer.Name Clock.Timer.Mode Clock.Timer.Present
OnPoweroff OnReboot OnCrash
Devices.Emulator
Devices.Disks.Device Devices.Disks.Target.Dev Devices.Disks.Target.Bus
Devices.Disks.Source.File.File Devices.Disks.Source.Block.Dev
Devices.Disks.Driver.Name Devices.Disks.Driver.Type Devices.Disks.ReadOnly Devices.Disks.BackingStore
Devices.Interfaces.Source.Bridge.Bridge Devices.Interfaces.Source.Ethernet
Devices.Interfaces.MAC.Address Devices.Interfaces.Script.Path Devices.Interfaces.Target.Dev
Devices.Interfaces.IP.Address Devices.Interfaces.Model.Type Devices.Interfaces.Bandwidth.Outbound.Average
Devices.Controllers.Type Devices.Controllers.Index Devices.Controllers.Model
Devices.Controllers.XenBus.MaxGrantFrames Devices.Controllers.XenBus.MaxEventChannels Devices.Controllers.USB.Port
Devices.Graphics.VNC.Port Devices.Graphics.VNC.AutoPort Devices.Graphics.VNC.Listen
Devices.Graphics.VNC.Passwd Devices.Graphics.VNC.Keymap Devices.Graphics.VNC.Listeners.Address.Address
Devices.Videos.Model.Type
Devices.Inputs.Type Devices.Inputs.Bus
Devices.Serials.Source.Pty Devices.Serials.Target.Port
Devices.Consoles.Source.Pty Devices.Consoles.Target.Type Devices.Consoles.Target.Port
Devices.MemBalloon.Model
Devices.Hostdevs.Managed Devices.Hostdevs.SubsysUSB.Source.Address.Bus Devices.Hostdevs.SubsysUSB.Source.Address.Device
`)

// invalid builds an invalid-argument error about domain name.
func invalid(name, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if name != "" {
		msg = fmt.Sprintf("domain '%s': %s", name, msg)
	}
	return fmt.Errorf("%s: %w", msg, virt.ErrInvalidArgument)
}

// unsupported builds a not-supported error naming an element.
func unsupported(name, what string) error {
	return fmt.Errorf("domain '%s': %s is not supported by the Xen driver: %w", name, what, virt.ErrNotSupported)
}

// FromXML converts parsed domain XML to a Config. An element or value the
// Xen driver cannot honour is refused with an error naming it (kind
// virt.ErrNotSupported); a malformed value gives virt.ErrInvalidArgument.
//
// Its own checks come first, because they say why Xen refuses a value
// (graphics other than VNC, features of a PV guest); then what is set and
// not honoured at all is refused by the walker every driver uses. FromXML
// does not change x.
func FromXML(x *libvirtxml.Domain) (*Config, error) {
	name := strings.TrimSpace(x.Name)
	if name == "" {
		return nil, invalid("", "domain XML has no <name>")
	}
	if err := domxml.CheckName(name); err != nil {
		return nil, err
	}
	if x.Type != "xen" {
		return nil, invalid(name, "domain type %q is not served by the Xen driver (only type='xen')", x.Type)
	}
	c := &Config{Name: name}
	if strings.TrimSpace(x.UUID) != "" {
		u, err := domutil.ParseUUID(x.UUID)
		if err != nil {
			return nil, fmt.Errorf("domain '%s': %w", name, err)
		}
		c.UUID = u
	}
	steps := []func(*Config, *libvirtxml.Domain) error{
		osFromXML, memoryFromXML, vcpusFromXML, featuresFromXML, clockFromXML,
		actionsFromXML, disksFromXML, nicsFromXML, devicesFromXML,
	}
	for _, step := range steps {
		if err := step(c, x); err != nil {
			return nil, err
		}
	}
	if err := honoured.Check(x); err != nil {
		return nil, err
	}
	return c, nil
}

func osFromXML(c *Config, x *libvirtxml.Domain) error {
	if x.OS == nil || x.OS.Type == nil {
		return invalid(c.Name, "<os><type> is required (linux or xen for PV, hvm, xenpvh)")
	}
	t := x.OS.Type
	switch t.Type {
	case "linux", "xen":
		c.Type = PV
	case "hvm":
		c.Type = HVM
		if t.Machine == "xenpvh" {
			c.Type = PVH
		}
	case "xenpvh":
		c.Type = PVH
	default:
		return invalid(c.Name, "os type %q is not a Xen guest type (linux or xen for PV, hvm, xenpvh)", t.Type)
	}
	switch t.Arch {
	case "", "x86_64", "i686":
	default:
		return unsupported(c.Name, fmt.Sprintf("architecture %q", t.Arch))
	}
	o := x.OS
	c.Kernel, c.Ramdisk, c.Cmdline = o.Kernel, o.Initrd, o.Cmdline
	if x.Bootloader != "" {
		if c.Type != PV {
			return unsupported(c.Name, "<bootloader> outside a PV guest")
		}
		c.Bootloader = x.Bootloader
		c.BootloaderArgs = strings.Fields(x.BootloaderArgs)
	}
	if c.Type != HVM && (o.Loader != nil || len(o.BootDevices) > 0 || o.Firmware != "") {
		return unsupported(c.Name, fmt.Sprintf("<loader>, <boot> or firmware in a %s guest", c.Type))
	}
	if c.Type != HVM {
		return nil
	}
	h := &HVMOptions{}
	c.HVM = h
	switch o.Firmware {
	case "":
	case "efi":
		h.BIOS = "ovmf"
	case "bios":
		h.BIOS = "seabios"
	default:
		return unsupported(c.Name, fmt.Sprintf("firmware %q", o.Firmware))
	}
	if l := o.Loader; l != nil {
		switch l.Type {
		case "pflash":
			h.BIOS = "ovmf"
			h.FirmwarePath = l.Path
		case "rom", "":
			h.Loader = l.Path
		default:
			return unsupported(c.Name, fmt.Sprintf("<loader type=%q>", l.Type))
		}
	}
	for _, b := range o.BootDevices {
		letter, ok := map[string]string{"hd": "c", "cdrom": "d", "network": "n", "fd": "a"}[b.Dev]
		if !ok {
			return invalid(c.Name, "<boot dev=%q> is not hd, cdrom, network or fd", b.Dev)
		}
		h.Boot += letter
	}
	return nil
}

func memoryFromXML(c *Config, x *libvirtxml.Domain) error {
	if x.Memory == nil {
		return invalid(c.Name, "memory size must be given with <memory>")
	}
	max, err := domutil.ScaleToKiB(uint64(x.Memory.Value), x.Memory.Unit)
	if err != nil {
		return fmt.Errorf("domain '%s': <memory>: %w", c.Name, err)
	}
	if max == 0 {
		return invalid(c.Name, "<memory> must be greater than zero")
	}
	cur := max
	if x.CurrentMemory != nil {
		if cur, err = domutil.ScaleToKiB(uint64(x.CurrentMemory.Value), x.CurrentMemory.Unit); err != nil {
			return fmt.Errorf("domain '%s': <currentMemory>: %w", c.Name, err)
		}
		if cur == 0 || cur > max {
			cur = max
		}
	}
	c.MaxMemKiB, c.MemKiB = max, cur
	return nil
}

func vcpusFromXML(c *Config, x *libvirtxml.Domain) error {
	c.MaxVCPUs, c.VCPUs = 1, 1
	v := x.VCPU
	if v == nil {
		return nil
	}
	if v.Value == 0 {
		return invalid(c.Name, "<vcpu> must be at least 1")
	}
	if v.Current > v.Value {
		return invalid(c.Name, "<vcpu current='%d'> exceeds the maximum %d", v.Current, v.Value)
	}
	if v.Placement == "auto" {
		return unsupported(c.Name, "<vcpu placement='auto'>")
	}
	c.MaxVCPUs, c.VCPUs = int(v.Value), int(v.Value)
	if v.Current != 0 {
		c.VCPUs = int(v.Current)
	}
	c.CPUs = v.CPUSet
	return nil
}

func featuresFromXML(c *Config, x *libvirtxml.Domain) error {
	f := x.Features
	if c.Type != HVM {
		if f != nil && *f != (libvirtxml.DomainFeatureList{}) {
			return unsupported(c.Name, fmt.Sprintf("<features> in a %s guest", c.Type))
		}
		return nil
	}
	if f == nil {
		f = &libvirtxml.DomainFeatureList{}
	}
	h := c.HVM
	// Absent means off, as in libvirt, except hap, which is on unless
	// turned off.
	h.PAE, h.ACPI, h.APIC, h.Viridian = Bool(f.PAE != nil), Bool(f.ACPI != nil), Bool(f.APIC != nil), Bool(f.Viridian != nil)
	h.HAP = Bool(f.HAP == nil || f.HAP.State != "off")
	if f.NestedHV != nil {
		h.NestedHVM = Bool(f.NestedHV.State != "off")
	}
	return nil
}

func clockFromXML(c *Config, x *libvirtxml.Domain) error {
	k := x.Clock
	if k == nil {
		return nil
	}
	switch k.Offset {
	case "", "utc":
		if k.Adjustment != "" && k.Adjustment != "reset" && k.Adjustment != "0" {
			return unsupported(c.Name, fmt.Sprintf("<clock offset='utc' adjustment=%q>", k.Adjustment))
		}
	case "localtime":
		c.Localtime = true
	case "variable":
		n, err := strconv.ParseInt(k.Adjustment, 10, 64)
		if k.Adjustment != "" && err != nil {
			return invalid(c.Name, "<clock adjustment=%q> is not a number of seconds", k.Adjustment)
		}
		c.RTCTimeOffset = n
		c.Localtime = k.Basis == "localtime"
	default:
		return unsupported(c.Name, fmt.Sprintf("<clock offset=%q>", k.Offset))
	}
	for _, t := range k.Timer {
		switch t.Name {
		case "tsc":
			mode, ok := map[string]string{"": "default", "auto": "default", "native": "native", "emulate": "always_emulate", "paravirt": "native_paravirt"}[t.Mode]
			if !ok {
				return unsupported(c.Name, fmt.Sprintf("<timer name='tsc' mode=%q>", t.Mode))
			}
			c.TSCMode = mode
		case "hpet":
			if c.Type != HVM {
				return unsupported(c.Name, fmt.Sprintf("<timer name='hpet'> in a %s guest", c.Type))
			}
			c.HVM.HPET = Bool(t.Present != "no")
		default:
			return unsupported(c.Name, fmt.Sprintf("<timer name=%q>", t.Name))
		}
	}
	return nil
}

func actionsFromXML(c *Config, x *libvirtxml.Domain) error {
	for _, a := range []struct {
		elem string
		val  string
		def  Action
		dst  *Action
	}{
		{"on_poweroff", x.OnPoweroff, ActionDestroy, &c.OnPoweroff},
		{"on_reboot", x.OnReboot, ActionRestart, &c.OnReboot},
		{"on_crash", x.OnCrash, ActionDestroy, &c.OnCrash},
	} {
		*a.dst = a.def
		if a.val == "" {
			continue
		}
		if !Action(a.val).Valid() {
			return invalid(c.Name, "<%s>%s</%s> is not an action Xen knows", a.elem, a.val, a.elem)
		}
		*a.dst = Action(a.val)
	}
	return nil
}

// diskFormats maps libvirt's driver types to libxl's disk formats.
var diskFormats = map[string]string{"": "", "raw": "raw", "qcow": "qcow", "qcow2": "qcow2", "vpc": "vhd", "qed": "qed"}

// diskBackends maps libvirt's driver names to libxl's disk backends.
var diskBackends = map[string]string{"": "", "phy": "phy", "qemu": "qdisk", "tap": "tap", "tap2": "tap", "file": "tap"}

func disksFromXML(c *Config, x *libvirtxml.Domain) error {
	if x.Devices == nil {
		return nil
	}
	for _, d := range x.Devices.Disks {
		var disk Disk
		if d.Target == nil || d.Target.Dev == "" {
			return invalid(c.Name, "a <disk> has no <target dev>")
		}
		disk.Vdev = d.Target.Dev
		where := fmt.Sprintf("disk %s", disk.Vdev)
		switch d.Device {
		case "", "disk":
		case "cdrom":
			disk.CDROM = true
		default:
			return unsupported(c.Name, fmt.Sprintf("%s: device %q", where, d.Device))
		}
		if s := d.Source; s != nil {
			switch {
			case s.File != nil:
				disk.Target = s.File.File
			case s.Block != nil:
				disk.Target = s.Block.Dev
			default:
				return unsupported(c.Name, fmt.Sprintf("%s: a source other than a file or a block device", where))
			}
		}
		if disk.Target == "" && !disk.CDROM {
			return invalid(c.Name, "%s has no source", where)
		}
		if drv := d.Driver; drv != nil {
			var ok bool
			if disk.Format, ok = diskFormats[drv.Type]; !ok {
				return unsupported(c.Name, fmt.Sprintf("%s: format %q", where, drv.Type))
			}
			if disk.Backend, ok = diskBackends[drv.Name]; !ok {
				return unsupported(c.Name, fmt.Sprintf("%s: driver %q", where, drv.Name))
			}
		}
		disk.ReadOnly = d.ReadOnly != nil || disk.CDROM
		c.Disks = append(c.Disks, disk)
	}
	return nil
}

func nicsFromXML(c *Config, x *libvirtxml.Domain) error {
	if x.Devices == nil {
		return nil
	}
	for i, n := range x.Devices.Interfaces {
		var nic NIC
		where := fmt.Sprintf("interface %d", i)
		switch {
		case n.Source == nil:
		case n.Source.Bridge != nil:
			nic.Bridge = n.Source.Bridge.Bridge
		case n.Source.Ethernet != nil:
		default:
			return unsupported(c.Name, fmt.Sprintf("%s: a type other than bridge or ethernet", where))
		}
		if n.MAC != nil {
			nic.MAC = strings.ToLower(n.MAC.Address)
		}
		if n.Script != nil {
			nic.Script = n.Script.Path
		}
		if n.Target != nil {
			nic.IfName = n.Target.Dev
		}
		if err := checkNICNames(c.Name, i, nic); err != nil {
			return err
		}
		if len(n.IP) > 0 {
			ips := make([]string, len(n.IP))
			for j, ip := range n.IP {
				ips[j] = ip.Address
			}
			nic.IP = strings.Join(ips, " ")
		}
		if n.Model != nil {
			switch n.Model.Type {
			case "netfront":
				nic.Type = "vif"
			default:
				nic.Model, nic.Type = n.Model.Type, "ioemu"
			}
		}
		if b := n.Bandwidth; b != nil {
			if o := b.Outbound; o != nil && o.Average != nil {
				if *o.Average < 0 {
					return invalid(c.Name, "%s: negative <outbound average>", where)
				}
				nic.RateBytesPerSec = uint64(*o.Average) * 1000 // kB/s, as xl counts
			}
		}
		c.NICs = append(c.NICs, nic)
	}
	return nil
}

// checkNICNames checks the host device names of NIC i, its bridge and
// its vif, which Xen's vif hotplug scripts, run as root, look up under
// /sys/class/net and pass to ip. The error names the XML path.
func checkNICNames(name string, i int, nic NIC) error {
	at := fmt.Sprintf("domain/devices/interface[%d]", i+1)
	if nic.Bridge != "" {
		if err := domutil.CheckInterfaceName(nic.Bridge); err != nil {
			return fmt.Errorf("domain '%s': %s/source/@bridge: %w", name, at, err)
		}
	}
	if nic.IfName != "" {
		if err := domutil.CheckInterfaceName(nic.IfName); err != nil {
			return fmt.Errorf("domain '%s': %s/target/@dev: %w", name, at, err)
		}
	}
	return nil
}

// devicesFromXML reads the remaining devices: emulator, controllers,
// graphics, video, inputs, serials and consoles, host devices.
func devicesFromXML(c *Config, x *libvirtxml.Domain) error {
	dv := x.Devices
	if dv == nil {
		return nil
	}
	if dv.Emulator != "" {
		if c.Type != HVM {
			return unsupported(c.Name, fmt.Sprintf("<emulator> in a %s guest", c.Type))
		}
		c.HVM.DeviceModel = dv.Emulator
	}
	for _, ctl := range dv.Controllers {
		switch ctl.Type {
		case "xenbus":
			if ctl.XenBus != nil {
				c.MaxGrantFrames = uint32(ctl.XenBus.MaxGrantFrames)
				c.MaxEventChannels = uint32(ctl.XenBus.MaxEventChannels)
			}
		case "usb":
			u := USBCtrl{}
			switch ctl.Model {
			case "qusb1":
				u.Type, u.Version = "qusb", 1
			case "qusb2":
				u.Type, u.Version = "qusb", 2
			default:
				return unsupported(c.Name, fmt.Sprintf("USB controller model %q (qusb1 or qusb2)", ctl.Model))
			}
			if ctl.USB != nil && ctl.USB.Port != nil {
				u.Ports = int(*ctl.USB.Port)
			}
			c.USBCtrls = append(c.USBCtrls, u)
		case "ide", "pci":
			// Implied by the disks and the guest type.
		default:
			return unsupported(c.Name, fmt.Sprintf("<controller type=%q>", ctl.Type))
		}
	}
	for _, g := range dv.Graphics {
		if g.VNC == nil {
			return unsupported(c.Name, "graphics other than VNC")
		}
		if c.VNC != nil {
			return unsupported(c.Name, "more than one <graphics>")
		}
		v := &VNC{Display: -1, Listen: g.VNC.Listen, Passwd: g.VNC.Passwd, Keymap: g.VNC.Keymap}
		if g.VNC.AutoPort != "yes" && g.VNC.Port >= 5900 {
			v.Display = g.VNC.Port - 5900
		}
		for _, l := range g.VNC.Listeners {
			if l.Address != nil && v.Listen == "" {
				v.Listen = l.Address.Address
			}
		}
		c.VNC = v
	}
	for _, vd := range dv.Videos {
		if c.Type != HVM {
			return unsupported(c.Name, fmt.Sprintf("<video> in a %s guest (its framebuffer comes with <graphics>)", c.Type))
		}
		if vd.Model.Type == "" {
			continue
		}
		vga, ok := map[string]string{"cirrus": "cirrus", "vga": "stdvga", "none": "none"}[vd.Model.Type]
		if !ok {
			return unsupported(c.Name, fmt.Sprintf("<video model=%q>", vd.Model.Type))
		}
		c.HVM.VGA = vga
	}
	for _, in := range dv.Inputs {
		switch {
		case in.Bus == "usb" && (in.Type == "tablet" || in.Type == "mouse") && c.Type == HVM:
			c.HVM.USBDevices = append(c.HVM.USBDevices, in.Type)
		case (in.Type == "mouse" || in.Type == "keyboard") && (in.Bus == "ps2" || in.Bus == "xen" || in.Bus == ""):
			// Always there.
		default:
			return unsupported(c.Name, fmt.Sprintf("<input type=%q bus=%q>", in.Type, in.Bus))
		}
	}
	for _, s := range dv.Serials {
		if c.Type != HVM || s.Source != nil && s.Source.Pty == nil || c.HVM.Serial != "" {
			return unsupported(c.Name, "a <serial> other than one pty of an HVM guest")
		}
		c.HVM.Serial = "pty"
	}
	for _, con := range dv.Consoles {
		if con.Source != nil && con.Source.Pty == nil {
			return unsupported(c.Name, "a <console> other than a pty")
		}
	}
	if mb := dv.MemBalloon; mb != nil && mb.Model != "xen" {
		return unsupported(c.Name, fmt.Sprintf("<memballoon model=%q>", mb.Model))
	}
	for _, hd := range dv.Hostdevs {
		u := hd.SubsysUSB
		if u == nil || u.Source == nil || u.Source.Address == nil || u.Source.Address.Bus == nil || u.Source.Address.Device == nil {
			return unsupported(c.Name, "a <hostdev> other than a USB device by bus and address")
		}
		c.USBDevs = append(c.USBDevs, USBDev{HostBus: int(*u.Source.Address.Bus), HostAddr: int(*u.Source.Address.Device)})
	}
	return nil
}
