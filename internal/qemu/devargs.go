package qemu

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// pciBusName is QEMU's id of the bus behind PCI controller index.
func pciBusName(x *libvirtxml.Domain, index uint) string {
	if index == 0 {
		if machineFamily(x.OS.Type.Machine) == machineQ35 {
			return "pcie.0"
		}
		return "pci.0"
	}
	return fmt.Sprintf("pci.%d", index)
}

// at is the ",bus=...,addr=..." that places a device at its address.
func at(x *libvirtxml.Domain, a *libvirtxml.DomainAddress) string {
	if a == nil || a.PCI == nil {
		return ""
	}
	p := a.PCI
	s := fmt.Sprintf(",bus=%s", pciBusName(x, *p.Bus))
	if p.MultiFunction == "on" {
		s += ",multifunction=on"
	}
	s += fmt.Sprintf(",addr=%#x", *p.Slot)
	if *p.Function != 0 {
		s += fmt.Sprintf(".%#x", *p.Function)
	}
	return s
}

// usbAt places a USB device on its port of the controller "usb".
func usbAt(a *libvirtxml.DomainAddress) string {
	if a == nil || a.USB == nil {
		return ""
	}
	return ",bus=usb.0,port=" + a.USB.Port
}

// controllerID is QEMU's id of a controller, libvirt's alias.
func controllerID(c *libvirtxml.DomainController) string {
	idx := *c.Index
	switch c.Type {
	case "usb":
		if idx == 0 {
			return "usb"
		}
		return fmt.Sprintf("usb%d", idx)
	case "pci":
		return fmt.Sprintf("pci.%d", idx)
	case "virtio-serial":
		return fmt.Sprintf("virtio-serial%d", idx)
	}
	return fmt.Sprintf("%s%d", c.Type, idx)
}

// deviceArgs writes the devices of a checked definition, in libvirt's
// order: controllers, disks, interfaces, serial ports, channels, inputs,
// graphics, sound, video, watchdog, balloon, rng, panic, vsock.
func deviceArgs(a *args, c *config, rt runtimePaths) error {
	x := c.x
	dev := x.Devices
	fam := machineFamily(x.OS.Type.Machine)
	ctrls := append([]libvirtxml.DomainController(nil), dev.Controllers...)
	// PCI controllers first, by index, so that every bus exists before
	// a device is placed on it.
	for i := uint(1); i < 256; i++ {
		for j := range ctrls {
			cc := &ctrls[j]
			if cc.Type != "pci" || *cc.Index != i {
				continue
			}
			switch cc.Model {
			case "pcie-root-port":
				t := cc.PCI.Target
				a.add("-device", fmt.Sprintf("pcie-root-port,port=%d,chassis=%d,id=%s%s", *t.Port, *t.Chassis, controllerID(cc), at(x, cc.Address)))
			case "pcie-to-pci-bridge":
				a.add("-device", fmt.Sprintf("pcie-pci-bridge,id=%s%s", controllerID(cc), at(x, cc.Address)))
			case "pci-bridge":
				a.add("-device", fmt.Sprintf("pci-bridge,chassis_nr=%d,id=%s%s", *cc.PCI.Target.ChassisNr, controllerID(cc), at(x, cc.Address)))
			}
		}
	}
	for i := range ctrls {
		cc := &ctrls[i]
		id := controllerID(cc)
		switch cc.Type {
		case "usb":
			m := usbModels[cc.Model]
			switch {
			case cc.Model == "none":
			case fam == machinePC && *cc.Index == 0 && cc.Model == "piix3-uhci":
				// Part of PIIX3; -machine usb=off leaves it out, so add it
				// at its place.
				a.add("-device", "piix3-usb-uhci,id="+id+at(x, cc.Address))
			case isUSBCompanion(cc):
				master := "usb"
				if *cc.Index != 0 {
					master = fmt.Sprintf("usb%d", *cc.Index)
				}
				a.add("-device", fmt.Sprintf("%s,masterbus=%s.0,firstport=%d,id=%s-%s%s", m.device, master, cc.USB.Master.StartPort, id, strings.TrimPrefix(cc.Model, "ich9-"), at(x, cc.Address)))
			case strings.HasSuffix(cc.Model, "xhci") && cc.USB != nil && cc.USB.Port != nil:
				a.add("-device", fmt.Sprintf("%s,p2=%d,p3=%d,id=%s%s", m.device, *cc.USB.Port, *cc.USB.Port, id, at(x, cc.Address)))
			default:
				a.add("-device", m.device+",id="+id+at(x, cc.Address))
			}
		case "scsi":
			s := scsiModels[cc.Model] + ",id=" + id
			if cc.Driver != nil && cc.Driver.Queues != nil {
				s += fmt.Sprintf(",num_queues=%d", *cc.Driver.Queues)
			}
			a.add("-device", s+at(x, cc.Address))
		case "sata":
			if fam == machineQ35 && *cc.Index == 0 {
				continue // the chipset's AHCI, bus "ide"
			}
			a.add("-device", "ich9-ahci,id="+id+at(x, cc.Address))
		case "virtio-serial":
			s := "virtio-serial-pci,id=" + id
			if cc.VirtIOSerial != nil && cc.VirtIOSerial.Ports != nil {
				s += fmt.Sprintf(",max_ports=%d", *cc.VirtIOSerial.Ports)
			}
			if cc.VirtIOSerial != nil && cc.VirtIOSerial.Vectors != nil {
				s += fmt.Sprintf(",vectors=%d", *cc.VirtIOSerial.Vectors)
			}
			a.add("-device", s+at(x, cc.Address))
		}
	}
	for i := range dev.Disks {
		diskArgs(a, x, &dev.Disks[i])
	}
	for i, n := range dev.Interfaces {
		netdev := fmt.Sprintf("hostnet%d", i)
		switch {
		case n.Source.User != nil:
			a.add("-netdev", "user,id="+netdev)
		default:
			tap := fmt.Sprintf("vnet%d", i)
			if n.Target != nil && n.Target.Dev != "" {
				tap = n.Target.Dev
			}
			nd := "tap,id=" + netdev + ",ifname=" + opt(tap) + ",script=no,downscript=no"
			if dr := n.Driver; dr != nil && dr.Queues > 1 {
				nd += fmt.Sprintf(",queues=%d", dr.Queues)
			}
			// vhost-net needs KVM's ioeventfd; under TCG QEMU's own
			// virtio-net backend serves the same guest device.
			if dr := n.Driver; x.Type == "kvm" && (dr == nil || dr.Name != "qemu") {
				nd += ",vhost=on"
			}
			a.add("-netdev", nd)
		}
		d := fmt.Sprintf("%s,netdev=%s,id=net%d,mac=%s", nicModels[n.Model.Type], netdev, i, n.MAC.Address)
		if dr := n.Driver; dr != nil {
			if dr.RXQueueSize != 0 {
				d += fmt.Sprintf(",rx_queue_size=%d", dr.RXQueueSize)
			}
			if dr.TXQueueSize != 0 {
				d += fmt.Sprintf(",tx_queue_size=%d", dr.TXQueueSize)
			}
		}
		if n.MTU != nil && n.Model.Type == "virtio" {
			d += fmt.Sprintf(",host_mtu=%d", n.MTU.Size)
		}
		if n.Link != nil && n.Link.State == "down" {
			d += ",link_down=on"
		}
		if n.Boot != nil {
			d += fmt.Sprintf(",bootindex=%d", n.Boot.Order)
		}
		a.add("-device", d+at(x, n.Address))
	}
	for _, s := range dev.Serials {
		port := *s.Target.Port
		id := fmt.Sprintf("charserial%d", port)
		cd := chardev(id, s.Source)
		if s.Protocol != nil && s.Protocol.Type == "telnet" {
			cd += ",telnet=on"
		}
		if l := s.Log; l != nil {
			cd += ",logfile=" + opt(l.File)
			if l.Append != "" {
				cd += ",logappend=" + l.Append
			}
		}
		a.add("-chardev", cd)
		a.add("-device", fmt.Sprintf("isa-serial,chardev=%s,id=serial%d,index=%d", id, port, port))
	}
	for i, con := range dev.Consoles {
		if con.Target.Type != "virtio" {
			continue
		}
		id := fmt.Sprintf("charconsole%d", i)
		a.add("-chardev", chardev(id, con.Source))
		a.add("-device", fmt.Sprintf("virtconsole,bus=virtio-serial0.0,nr=0,chardev=%s,id=console%d", id, i))
	}
	for i, ch := range dev.Channels {
		id := fmt.Sprintf("charchannel%d", i)
		src := ch.Source
		if src.UNIX != nil && src.UNIX.Path == "" {
			src = channelSource(src, rt.ChannelDir, ch.Target.VirtIO.Name)
		}
		a.add("-chardev", chardev(id, src))
		vs := ch.Address.VirtioSerial
		a.add("-device", fmt.Sprintf("virtserialport,bus=virtio-serial%d.%d,nr=%d,chardev=%s,id=channel%d,name=%s", *vs.Controller, *vs.Bus, *vs.Port, id, i, opt(ch.Target.VirtIO.Name)))
	}
	for i, h := range dev.Hubs {
		a.add("-device", fmt.Sprintf("usb-hub,id=hub%d%s", i, usbAt(h.Address)))
	}
	for i, in := range dev.Inputs {
		switch in.Bus {
		case "usb":
			a.add("-device", fmt.Sprintf("usb-%s,id=input%d%s", map[string]string{"mouse": "mouse", "keyboard": "kbd", "tablet": "tablet"}[in.Type], i, usbAt(in.Address)))
		case "virtio":
			a.add("-device", fmt.Sprintf("virtio-%s-pci,id=input%d%s", map[string]string{"mouse": "mouse", "keyboard": "keyboard", "tablet": "tablet"}[in.Type], i, at(x, in.Address)))
		}
	}
	for _, g := range dev.Graphics {
		switch {
		case g.VNC != nil:
			v := g.VNC
			host := hostOpt(graphicsListen(v.Listen))
			if v.AutoPort == "yes" {
				// QEMU takes the first free display from :0 on; the driver
				// reads the port back with query-vnc.
				a.add("-vnc", host+":0,to=100")
			} else {
				a.add("-vnc", host+":"+strconv.Itoa(v.Port-5900))
			}
		case g.Spice != nil:
			s := g.Spice
			port := s.Port
			if port <= 0 {
				port = rt.SpicePort
			}
			a.add("-spice", fmt.Sprintf("port=%d,addr=%s,disable-ticketing=on,seamless-migration=on", port, graphicsListen(s.Listen)))
		}
	}
	for _, au := range dev.Audios {
		id := fmt.Sprintf("audio%d", au.ID)
		switch {
		case au.None != nil:
			a.add("-audiodev", "none,id="+id)
		case au.SPICE != nil:
			a.add("-audiodev", "spice,id="+id)
		case au.File != nil:
			a.add("-audiodev", "wav,id="+id+",path="+opt(au.File.Path))
		}
	}
	audioFor := func(s libvirtxml.DomainSound) string {
		id := 1
		if s.Audio != nil {
			id = int(s.Audio.ID)
		}
		if len(dev.Audios) == 0 {
			return ""
		}
		return fmt.Sprintf("audio%d", id)
	}
	for i, s := range dev.Sounds {
		d := soundModels[s.Model]
		id := fmt.Sprintf("sound%d", i)
		au := audioFor(s)
		switch s.Model {
		case "ich6", "ich9":
			a.add("-device", d+",id="+id+at(x, s.Address))
			codecs := s.Codec
			if len(codecs) == 0 {
				codecs = []libvirtxml.DomainSoundCodec{{Type: "duplex"}}
			}
			for j, cd := range codecs {
				a.add("-device", fmt.Sprintf("hda-%s,id=%s-codec%d,bus=%s.0,cad=%d,audiodev=%s", cd.Type, id, j, id, j, au))
			}
		case "usb":
			a.add("-device", d+",id="+id+",audiodev="+au+usbAt(s.Address))
		case "sb16":
			a.add("-device", d+",id="+id+",audiodev="+au)
		default:
			a.add("-device", d+",id="+id+",audiodev="+au+at(x, s.Address))
		}
	}
	for i, v := range dev.Videos {
		m := videoModels[v.Model.Type]
		if v.Model.Type == "none" {
			continue
		}
		d := m[0]
		if i > 0 {
			d = m[1]
		}
		opts := fmt.Sprintf("%s,id=video%d", d, i)
		switch v.Model.Type {
		case "qxl":
			opts += fmt.Sprintf(",ram_size=%d,vram_size=%d,vgamem_mb=%d,max_outputs=%d", v.Model.Ram*1024, v.Model.VRam*1024, v.Model.VGAMem/1024, v.Model.Heads)
		case "vga", "cirrus", "bochs":
			if v.Model.Type == "bochs" {
				opts += fmt.Sprintf(",vgamem=%d", v.Model.VRam*1024)
			} else {
				opts += fmt.Sprintf(",vgamem_mb=%d", v.Model.VRam/1024)
			}
		case "virtio":
			opts += fmt.Sprintf(",max_outputs=%d", v.Model.Heads)
		}
		if v.Model.Type == "ramfb" {
			a.add("-device", opts)
			continue
		}
		a.add("-device", opts+at(x, v.Address))
	}
	for i, r := range dev.RedirDevs {
		id := fmt.Sprintf("charredir%d", i)
		a.add("-chardev", strings.Replace(chardev(id, r.Source), "name=vdagent", "name=usbredir", 1))
		d := fmt.Sprintf("usb-redir,chardev=%s,id=redir%d", id, i)
		if r.Boot != nil {
			d += fmt.Sprintf(",bootindex=%d", r.Boot.Order)
		}
		a.add("-device", d+usbAt(r.Address))
	}
	for i, w := range dev.Watchdogs {
		d := map[string]string{"i6300esb": "i6300esb", "ib700": "ib700", "itco": ""}[w.Model]
		if d != "" {
			a.add("-device", fmt.Sprintf("%s,id=watchdog%d%s", d, i, at(x, w.Address)))
		}
		a.add("-action", "watchdog="+watchdogActions[w.Action])
	}
	if b := dev.MemBalloon; b != nil && b.Model == "virtio" {
		d := "virtio-balloon-pci,id=balloon0"
		if b.AutoDeflate == "on" {
			d += ",deflate-on-oom=on"
		}
		if b.FreePageReporting == "on" {
			d += ",free-page-reporting=on"
		}
		a.add("-device", d+at(x, b.Address))
	}
	for i, r := range dev.RNGs {
		obj := fmt.Sprintf("objrng%d", i)
		if r.Backend.Random != nil {
			a.add("-object", "rng-random,id="+obj+",filename="+r.Backend.Random.Device)
		} else {
			a.add("-object", "rng-builtin,id="+obj)
		}
		d := fmt.Sprintf("virtio-rng-pci,rng=%s,id=rng%d", obj, i)
		if r.Rate != nil {
			period := r.Rate.Period
			if period == 0 {
				period = 1000
			}
			d += fmt.Sprintf(",max-bytes=%d,period=%d", r.Rate.Bytes, period)
		}
		a.add("-device", d+at(x, r.Address))
	}
	for range dev.Panics {
		a.add("-device", "pvpanic")
	}
	if f := x.Features; f != nil && f.VMCoreInfo != nil && f.VMCoreInfo.State == "on" {
		a.add("-device", "vmcoreinfo")
	}
	if v := dev.VSock; v != nil {
		cid := v.CID.Address
		if v.CID.Auto == "yes" && (cid == "" || cid == "0") {
			cid = strconv.Itoa(rt.VSockCID)
		}
		a.add("-device", "vhost-vsock-pci,id=vsock0,guest-cid="+cid+at(x, v.Address))
	}
	return nil
}

// hostOpt writes an IP address for -vnc, IPv6 in brackets.
func hostOpt(host string) string {
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return "[" + host + "]"
	}
	return host
}

func diskArgs(a *args, x *libvirtxml.Domain, d *libvirtxml.DomainDisk) {
	fam := machineFamily(x.OS.Type.Machine)
	id := diskID(d)
	kind := "hd"
	if d.Device == "cdrom" {
		kind = "cd"
	}
	var dev string
	switch d.Target.Bus {
	case "virtio":
		dev = "virtio-blk-pci"
	case "ide":
		da := d.Address.Drive
		dev = fmt.Sprintf("ide-%s,bus=ide.%d,unit=%d", kind, *da.Bus, *da.Unit)
	case "sata":
		da := d.Address.Drive
		bus := fmt.Sprintf("sata%d", *da.Controller)
		if fam == machineQ35 && *da.Controller == 0 {
			bus = "ide"
		}
		dev = fmt.Sprintf("ide-%s,bus=%s.%d", kind, bus, *da.Unit)
	case "scsi":
		da := d.Address.Drive
		if c := findController(x, "scsi", *da.Controller); c != nil && c.Model == "lsilogic" {
			dev = fmt.Sprintf("scsi-%s,bus=scsi%d.0,scsi-id=%d", kind, *da.Controller, *da.Unit)
		} else {
			dev = fmt.Sprintf("scsi-%s,bus=scsi%d.0,channel=0,scsi-id=%d,lun=%d", kind, *da.Controller, *da.Target, *da.Unit)
		}
	}
	drive := []string{}
	if p := diskPath(d); p != "" {
		drive = append(drive, "file="+opt(p), "format="+d.Driver.Type)
	}
	drive = append(drive, "if=none", "id=drive-"+id)
	if d.ReadOnly != nil {
		drive = append(drive, "readonly=on")
	}
	dr := d.Driver
	if dr.Cache != "" && dr.Cache != "default" {
		drive = append(drive, "cache="+dr.Cache)
	}
	if dr.IO != "" {
		drive = append(drive, "aio="+dr.IO)
	}
	if dr.Discard != "" {
		drive = append(drive, "discard="+dr.Discard)
	}
	if dr.DetectZeros != "" {
		drive = append(drive, "detect-zeroes="+dr.DetectZeros)
	}
	if dr.ErrorPolicy != "" && dr.ErrorPolicy != "report" {
		drive = append(drive, "werror="+dr.ErrorPolicy)
	}
	if dr.RErrorPolicy != "" && dr.RErrorPolicy != "report" {
		drive = append(drive, "rerror="+dr.RErrorPolicy)
	}
	a.add("-drive", strings.Join(drive, ","))
	dev += ",drive=drive-" + id + ",id=" + id
	if d.Serial != "" {
		dev += ",serial=" + opt(d.Serial)
	}
	if d.Boot != nil {
		dev += fmt.Sprintf(",bootindex=%d", d.Boot.Order)
	}
	if d.Target.Bus == "virtio" {
		dev += at(x, d.Address)
	}
	a.add("-device", dev)
}

// diskID is the QEMU device id of a checked disk, libvirt's alias
// ("virtio-disk0", "ide0-0-1", "sata0-0-2", "scsi0-0-0-1"); its drive is
// "drive-" + id.
func diskID(d *libvirtxml.DomainDisk) string {
	if d.Target.Bus == "virtio" {
		idx, _ := diskIndex(d.Target.Dev)
		return fmt.Sprintf("virtio-disk%d", idx)
	}
	da := d.Address.Drive
	switch d.Target.Bus {
	case "ide":
		return fmt.Sprintf("ide%d-%d-%d", *da.Controller, *da.Bus, *da.Unit)
	case "sata":
		return fmt.Sprintf("sata%d-%d-%d", *da.Controller, *da.Bus, *da.Unit)
	case "scsi":
		return fmt.Sprintf("scsi%d-%d-%d-%d", *da.Controller, *da.Bus, *da.Target, *da.Unit)
	}
	return ""
}
