package qemu

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// runtimePaths are the host-side names a QEMU command line refers to.
type runtimePaths struct {
	// Monitor is the QMP chardev's backend: "fd=3" for a listening socket
	// handed to QEMU, or "path=/run/.../x.qmp".
	Monitor string
	PidFile string
}

// ArgvFromXML returns the QEMU command line (emulator first) a domain XML
// starts, as `virsh domxml-to-native qemu-argv` prints it. A domain with
// no <emulator> gets emulatorFor(arch), or the bare qemu-system-<arch>
// when that is "". Runtime paths are those of the default run directory.
//
// It reads, stats and opens nothing: the driver converts for read-only
// clients, so the paths in the XML (emulator, kernel, disks, serial files)
// are only text, and the command line is the same whether they exist or
// not.
func ArgvFromXML(doc string, emulatorFor func(arch string) string) ([]string, error) {
	c, err := parseConfig(doc)
	if err != nil {
		return nil, err
	}
	if c.x.Devices.Emulator == "" {
		arch := c.x.OS.Type.Arch
		c.x.Devices.Emulator = emulatorFor(arch)
		if c.x.Devices.Emulator == "" {
			c.x.Devices.Emulator = "qemu-system-" + arch
		}
	}
	if err := resolveFirmware(c, systemStateDir, firmwareDirs); err != nil {
		return nil, err
	}
	base := filepath.Join(systemRunDir, c.UUID())
	return buildArgv(c, runtimePaths{Monitor: "path=" + base + ".qmp", PidFile: base + ".pid"})
}

// buildArgv turns a checked definition into QEMU's command line, emulator
// first. It reads no file and starts nothing: the driver checks the host
// and fills in runtime values (tap names) before calling it.
func buildArgv(c *config, rt runtimePaths) ([]string, error) {
	x := c.x
	a := &args{}
	a.add(x.Devices.Emulator)
	a.add("-name", "guest="+opt(x.Name)+",debug-threads=on")
	a.add("-S")

	machine := x.OS.Type.Machine
	mopts := []string{opt(machine), "usb=off", "dump-guest-core=off"}
	if x.Features == nil || x.Features.ACPI == nil {
		mopts = append(mopts, "acpi=off")
	}
	mopts = append(mopts, extraMachineOpts(x)...)
	a.add("-machine", strings.Join(mopts, ","))
	accel := "tcg"
	if x.Type == "kvm" {
		accel = "kvm"
	}
	a.add("-accel", accel)
	a.add("-m", fmt.Sprintf("size=%dk", c.maxMemKiB))
	if c.vcpus == c.maxVCPUs {
		a.add("-smp", fmt.Sprintf("%d,sockets=%d,cores=1,threads=1", c.vcpus, c.vcpus))
	} else {
		a.add("-smp", fmt.Sprintf("%d,maxcpus=%d,sockets=%d,cores=1,threads=1", c.vcpus, c.maxVCPUs, c.maxVCPUs))
	}
	a.add("-uuid", x.UUID)
	if len(x.Devices.Graphics) == 0 {
		a.add("-display", "none")
	}
	a.add("-no-user-config", "-nodefaults")
	a.add("-chardev", "socket,id=charmonitor,"+rt.Monitor+",server=on,wait=off")
	a.add("-mon", "chardev=charmonitor,id=monitor,mode=control")
	if rt.PidFile != "" {
		a.add("-pidfile", rt.PidFile)
	}
	a.add("-rtc", "base="+x.Clock.Offset)
	if x.OnReboot == "destroy" {
		a.add("-no-reboot")
	}
	if x.OS.Kernel != "" {
		a.add("-kernel", x.OS.Kernel)
		if x.OS.Initrd != "" {
			a.add("-initrd", x.OS.Initrd)
		}
		if x.OS.Cmdline != "" {
			a.add("-append", x.OS.Cmdline)
		}
	}
	boot := "strict=on"
	if len(x.OS.BootDevices) > 0 {
		var order string
		for _, b := range x.OS.BootDevices {
			order += bootLetters[b.Dev]
		}
		boot = "order=" + order + "," + boot
	}
	a.add("-boot", boot)

	if err := diskArgs(a, x); err != nil {
		return nil, err
	}
	for i, n := range x.Devices.Interfaces {
		netdev := fmt.Sprintf("hostnet%d", i)
		if n.Source.User != nil {
			a.add("-netdev", "user,id="+netdev)
		} else {
			tap := fmt.Sprintf("vnet%d", i)
			if n.Target != nil && n.Target.Dev != "" {
				tap = n.Target.Dev
			}
			a.add("-netdev", "tap,id="+netdev+",ifname="+opt(tap)+",script=no,downscript=no")
		}
		model := map[string]string{"virtio": "virtio-net-pci", "e1000": "e1000"}[n.Model.Type]
		dev := fmt.Sprintf("%s,netdev=%s,id=net%d,mac=%s", model, netdev, i, n.MAC.Address)
		if n.Boot != nil {
			dev += fmt.Sprintf(",bootindex=%d", n.Boot.Order)
		}
		a.add("-device", dev)
	}
	for _, s := range x.Devices.Serials {
		port := *s.Target.Port
		id := fmt.Sprintf("charserial%d", port)
		a.add("-chardev", chardev(id, s.Source))
		a.add("-device", fmt.Sprintf("isa-serial,chardev=%s,id=serial%d,index=%d", id, port, port))
	}
	for _, g := range x.Devices.Graphics {
		v := g.VNC
		host := v.Listen
		if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
			host = "[" + host + "]"
		}
		if v.AutoPort == "yes" {
			// QEMU takes the first free display from :0 on; the driver
			// reads the port back with query-vnc.
			a.add("-vnc", host+":0,to=100")
		} else {
			a.add("-vnc", host+":"+strconv.Itoa(v.Port-5900))
		}
		a.add("-device", "VGA,id=video0")
	}
	if b := x.Devices.MemBalloon; b != nil && b.Model == "virtio" {
		a.add("-device", "virtio-balloon-pci,id=balloon0")
	}
	extraArgs(a, c, rt)
	a.add("-msg", "timestamp=on")
	return a.list, nil
}

func diskArgs(a *args, x *libvirtxml.Domain) error {
	sata := false
	for _, d := range x.Devices.Disks {
		if d.Target.Bus == "sata" && !sata {
			a.add("-device", "ich9-ahci,id=sata0")
			sata = true
		}
		idx, _ := diskIndex(d.Target.Dev)
		id := diskID(&d)
		var dev string
		kind := "hd"
		if d.Device == "cdrom" {
			kind = "cd"
		}
		switch d.Target.Bus {
		case "virtio":
			dev = "virtio-blk-pci"
		case "ide":
			dev = fmt.Sprintf("ide-%s,bus=ide.%d,unit=%d", kind, idx/2, idx%2)
		case "sata":
			dev = fmt.Sprintf("ide-%s,bus=sata0.%d", kind, idx)
		}
		drive := []string{}
		if p := diskPath(&d); p != "" {
			drive = append(drive, "file="+opt(p), "format="+d.Driver.Type)
		}
		drive = append(drive, "if=none", "id=drive-"+id)
		if d.ReadOnly != nil {
			drive = append(drive, "readonly=on")
		}
		a.add("-drive", strings.Join(drive, ","))
		dev += ",drive=drive-" + id + ",id=" + id
		if d.Boot != nil {
			dev += fmt.Sprintf(",bootindex=%d", d.Boot.Order)
		}
		a.add("-device", dev)
	}
	return nil
}

// diskID is the QEMU device id of a checked disk, libvirt's alias
// ("virtio-disk0", "ide0-0-1", "sata0-0-2"); its drive is "drive-" + id.
func diskID(d *libvirtxml.DomainDisk) string {
	idx, _ := diskIndex(d.Target.Dev)
	switch d.Target.Bus {
	case "virtio":
		return fmt.Sprintf("virtio-disk%d", idx)
	case "ide":
		return fmt.Sprintf("ide0-%d-%d", idx/2, idx%2)
	case "sata":
		return fmt.Sprintf("sata0-0-%d", idx)
	}
	return ""
}

func chardev(id string, src *libvirtxml.DomainChardevSource) string {
	if src.File != nil {
		s := "file,id=" + id + ",path=" + opt(src.File.Path)
		if src.File.Append != "" {
			s += ",append=" + src.File.Append
		}
		return s
	}
	return "pty,id=" + id
}

type args struct{ list []string }

func (a *args) add(s ...string) { a.list = append(a.list, s...) }

// opt escapes a value for QEMU's comma-separated option syntax.
func opt(s string) string { return strings.ReplaceAll(s, ",", ",,") }
