package domconfig

import (
	"fmt"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// ToXML writes c as libvirt domain XML, the way libvirt's Xen driver
// describes such a guest. Devices that every guest of its type has (the
// PS/2 or Xen mouse and keyboard) are left implied.
func ToXML(c *Config) *libvirtxml.Domain {
	x := &libvirtxml.Domain{
		Type:          "xen",
		Name:          c.Name,
		UUID:          c.UUID,
		Memory:        &libvirtxml.DomainMemory{Value: uint(c.MaxMemKiB), Unit: "KiB"},
		CurrentMemory: &libvirtxml.DomainCurrentMemory{Value: uint(c.MemKiB), Unit: "KiB"},
		VCPU:          &libvirtxml.DomainVCPU{Placement: "static", Value: uint(max(c.MaxVCPUs, 1)), CPUSet: c.CPUs},
		Bootloader:    c.Bootloader,
		OnPoweroff:    string(c.OnPoweroff),
		OnReboot:      string(c.OnReboot),
		OnCrash:       string(c.OnCrash),
	}
	if c.VCPUs > 0 && c.VCPUs < c.MaxVCPUs {
		x.VCPU.Current = uint(c.VCPUs)
	}
	x.BootloaderArgs = strings.Join(c.BootloaderArgs, " ")
	x.OS = osToXML(c)
	x.Features = featuresToXML(c)
	x.Clock = clockToXML(c)
	x.Devices = devicesToXML(c)
	return x
}

func osToXML(c *Config) *libvirtxml.DomainOS {
	o := &libvirtxml.DomainOS{
		Type:    &libvirtxml.DomainOSType{Arch: "x86_64"},
		Kernel:  c.Kernel,
		Initrd:  c.Ramdisk,
		Cmdline: c.Cmdline,
	}
	switch c.Type {
	case PV:
		o.Type.Type, o.Type.Machine = "linux", "xenpv"
	case PVH:
		o.Type.Type, o.Type.Machine = "xenpvh", "xenpvh"
	case HVM:
		o.Type.Type, o.Type.Machine = "hvm", "xenfv"
	}
	h := c.HVM
	if h == nil {
		return o
	}
	switch {
	case h.BIOS == "ovmf" && h.FirmwarePath != "":
		o.Loader = &libvirtxml.DomainLoader{Type: "pflash", Readonly: "yes", Path: h.FirmwarePath}
	case h.BIOS == "ovmf":
		o.Firmware = "efi"
	case h.Loader != "":
		o.Loader = &libvirtxml.DomainLoader{Type: "rom", Path: h.Loader}
	}
	devs := map[rune]string{'c': "hd", 'd': "cdrom", 'n': "network", 'a': "fd"}
	for _, l := range h.Boot {
		if dev, ok := devs[l]; ok {
			o.BootDevices = append(o.BootDevices, libvirtxml.DomainBootDevice{Dev: dev})
		}
	}
	return o
}

// on reports the switch, or def when it is unset (libxl's default).
func on(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

func featuresToXML(c *Config) *libvirtxml.DomainFeatureList {
	h := c.HVM
	if h == nil {
		return nil
	}
	f := &libvirtxml.DomainFeatureList{}
	if on(h.ACPI, true) {
		f.ACPI = &libvirtxml.DomainFeature{}
	}
	if on(h.APIC, true) {
		f.APIC = &libvirtxml.DomainFeatureAPIC{}
	}
	if on(h.PAE, true) {
		f.PAE = &libvirtxml.DomainFeature{}
	}
	if !on(h.HAP, true) {
		f.HAP = &libvirtxml.DomainFeatureState{State: "off"}
	}
	if on(h.Viridian, false) {
		f.Viridian = &libvirtxml.DomainFeature{}
	}
	if h.NestedHVM != nil {
		f.NestedHV = &libvirtxml.DomainFeatureState{State: map[bool]string{true: "on", false: "off"}[*h.NestedHVM]}
	}
	return f
}

func clockToXML(c *Config) *libvirtxml.DomainClock {
	k := &libvirtxml.DomainClock{Offset: "utc", Adjustment: "reset"}
	switch {
	case c.RTCTimeOffset != 0:
		k.Offset, k.Adjustment, k.Basis = "variable", strconv.FormatInt(c.RTCTimeOffset, 10), "utc"
		if c.Localtime {
			k.Basis = "localtime"
		}
	case c.Localtime:
		k.Offset, k.Adjustment = "localtime", ""
	}
	if c.TSCMode != "" && c.TSCMode != "default" {
		mode := map[string]string{"native": "native", "always_emulate": "emulate", "native_paravirt": "paravirt"}[c.TSCMode]
		k.Timer = append(k.Timer, libvirtxml.DomainTimer{Name: "tsc", Present: "yes", Mode: mode})
	}
	if c.HVM != nil && c.HVM.HPET != nil {
		k.Timer = append(k.Timer, libvirtxml.DomainTimer{Name: "hpet", Present: map[bool]string{true: "yes", false: "no"}[*c.HVM.HPET]})
	}
	return k
}

func devicesToXML(c *Config) *libvirtxml.DomainDeviceList {
	dv := &libvirtxml.DomainDeviceList{}
	if c.HVM != nil {
		dv.Emulator = c.HVM.DeviceModel
	}
	for _, d := range c.Disks {
		dv.Disks = append(dv.Disks, diskToXML(d))
	}
	if c.MaxGrantFrames != 0 || c.MaxEventChannels != 0 {
		zero := uint(0)
		dv.Controllers = append(dv.Controllers, libvirtxml.DomainController{
			Type:   "xenbus",
			Index:  &zero,
			XenBus: &libvirtxml.DomainControllerXenBus{MaxGrantFrames: uint(c.MaxGrantFrames), MaxEventChannels: uint(c.MaxEventChannels)},
		})
	}
	for i, u := range c.USBCtrls {
		index := uint(i)
		ctl := libvirtxml.DomainController{Type: "usb", Index: &index, Model: fmt.Sprintf("qusb%d", max(u.Version, 1))}
		if u.Ports > 0 {
			p := uint(u.Ports)
			ctl.USB = &libvirtxml.DomainControllerUSB{Port: &p}
		}
		dv.Controllers = append(dv.Controllers, ctl)
	}
	for _, n := range c.NICs {
		dv.Interfaces = append(dv.Interfaces, nicToXML(n))
	}
	if c.Type != HVM {
		// A PV or PVH guest always has its Xen console.
		port := uint(0)
		dv.Consoles = append(dv.Consoles, libvirtxml.DomainConsole{
			Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
			Target: &libvirtxml.DomainConsoleTarget{Type: "xen", Port: &port},
		})
	}
	if c.HVM != nil {
		if c.HVM.Serial == "pty" {
			dv.Serials = append(dv.Serials, libvirtxml.DomainSerial{Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}})
		}
		for _, u := range c.HVM.USBDevices {
			dv.Inputs = append(dv.Inputs, libvirtxml.DomainInput{Type: u, Bus: "usb"})
		}
	}
	if v := c.VNC; v != nil {
		g := &libvirtxml.DomainGraphicVNC{Port: -1, AutoPort: "yes", Listen: v.Listen, Passwd: v.Passwd, Keymap: v.Keymap}
		if v.Display >= 0 {
			g.Port, g.AutoPort = 5900+v.Display, "no"
		}
		if v.Listen != "" {
			g.Listeners = []libvirtxml.DomainGraphicListener{{Address: &libvirtxml.DomainGraphicListenerAddress{Address: v.Listen}}}
		}
		dv.Graphics = append(dv.Graphics, libvirtxml.DomainGraphic{VNC: g})
	}
	if c.HVM != nil && c.HVM.VGA != "" {
		model := map[string]string{"cirrus": "cirrus", "stdvga": "vga", "none": "none"}[c.HVM.VGA]
		dv.Videos = append(dv.Videos, libvirtxml.DomainVideo{Model: libvirtxml.DomainVideoModel{Type: model}})
	}
	for _, u := range c.USBDevs {
		bus, dev := uint(u.HostBus), uint(u.HostAddr)
		dv.Hostdevs = append(dv.Hostdevs, libvirtxml.DomainHostdev{
			Managed: "no",
			SubsysUSB: &libvirtxml.DomainHostdevSubsysUSB{Source: &libvirtxml.DomainHostdevSubsysUSBSource{
				Address: &libvirtxml.DomainAddressUSB{Bus: &bus, Device: &dev},
			}},
		})
	}
	return dv
}

func diskToXML(d Disk) libvirtxml.DomainDisk {
	out := libvirtxml.DomainDisk{Device: "disk", Target: &libvirtxml.DomainDiskTarget{Dev: d.Vdev, Bus: busOf(d.Vdev)}}
	if d.CDROM {
		out.Device = "cdrom"
	}
	driver := &libvirtxml.DomainDiskDriver{Name: map[string]string{"phy": "phy", "qdisk": "qemu", "tap": "tap"}[d.Backend]}
	for lv, xl := range diskFormats {
		if xl == d.Format && lv != "" {
			driver.Type = lv
		}
	}
	if d.Format == "" {
		driver.Type = "raw"
	}
	out.Driver = driver
	if d.Target != "" {
		if d.Backend == "phy" {
			out.Source = &libvirtxml.DomainDiskSource{Block: &libvirtxml.DomainDiskSourceBlock{Dev: d.Target}}
		} else {
			out.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: d.Target}}
		}
	}
	if d.ReadOnly {
		out.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
	}
	return out
}

// busOf is the libvirt bus a Xen vdev name implies.
func busOf(vdev string) string {
	switch {
	case strings.HasPrefix(vdev, "hd"):
		return "ide"
	case strings.HasPrefix(vdev, "sd"):
		return "scsi"
	}
	return "xen"
}

func nicToXML(n NIC) libvirtxml.DomainInterface {
	out := libvirtxml.DomainInterface{}
	if n.Bridge != "" {
		out.Source = &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: n.Bridge}}
	} else {
		out.Source = &libvirtxml.DomainInterfaceSource{Ethernet: &libvirtxml.DomainInterfaceSourceEthernet{}}
	}
	if n.MAC != "" {
		out.MAC = &libvirtxml.DomainInterfaceMAC{Address: n.MAC}
	}
	for _, ip := range strings.Fields(n.IP) {
		out.IP = append(out.IP, libvirtxml.DomainInterfaceIP{Address: ip})
	}
	if n.Script != "" {
		out.Script = &libvirtxml.DomainInterfaceScript{Path: n.Script}
	}
	if n.IfName != "" {
		out.Target = &libvirtxml.DomainInterfaceTarget{Dev: n.IfName}
	}
	switch {
	case n.Model != "":
		out.Model = &libvirtxml.DomainInterfaceModel{Type: n.Model}
	case n.Type == "vif":
		out.Model = &libvirtxml.DomainInterfaceModel{Type: "netfront"}
	}
	if n.RateBytesPerSec > 0 {
		avg := int((n.RateBytesPerSec + 999) / 1000)
		out.Bandwidth = &libvirtxml.DomainInterfaceBandwidth{Outbound: &libvirtxml.DomainInterfaceBandwidthParams{Average: &avg}}
	}
	return out
}
