package qemu

import (
	"fmt"
	"path/filepath"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// runtimePaths are the host-side names a QEMU command line refers to.
type runtimePaths struct {
	// Monitor is the QMP chardev's backend: "fd=3" for a listening socket
	// handed to QEMU, or "path=/run/.../x.qmp".
	Monitor string
	PidFile string
	// For a command line written from the definition alone
	// (domxml-to-native); at start the driver writes these into the live
	// definition instead (prepareRuntime). ChannelDir holds the sockets
	// of unix channels defined without a path; SpicePort is the port of
	// a SPICE console with autoport; VSockCID the context id of a vsock
	// with auto='yes'.
	ChannelDir string
	SpicePort  int
	VSockCID   int
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
	if err := resolveFirmware(c, systemStateDir, readFirmware(firmwareDirs)); err != nil {
		return nil, err
	}
	base := filepath.Join(systemRunDir, c.UUID())
	return buildArgv(c, runtimePaths{Monitor: "path=" + base + ".qmp", PidFile: base + ".pid",
		ChannelDir: filepath.Join(systemRunDir, "channel", c.UUID()), SpicePort: graphicsPortMin, VSockCID: 3})
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

	a.add("-machine", machineOption(x))
	accel := "tcg"
	if x.Type == "kvm" {
		accel = "kvm"
	}
	a.add("-accel", accel)
	a.add("-m", fmt.Sprintf("size=%dk", c.maxMemKiB))
	cpuOpt, smp, err := cpuArgs(c) // cpu.go
	if err != nil {
		return nil, err
	}
	if props := cpuProps(x); len(props) > 0 {
		if cpuOpt == "" {
			cpuOpt = "qemu64" // QEMU's default model, which libvirt shows for TCG
		}
		cpuOpt += "," + strings.Join(props, ",")
	}
	if cpuOpt != "" {
		a.add("-cpu", cpuOpt)
	}
	a.add("-smp", smp)
	a.add("-uuid", x.UUID)
	smbiosArgs(a, x)
	if len(x.Devices.Graphics) == 0 {
		a.add("-display", "none")
	}
	a.add("-no-user-config", "-nodefaults")
	a.add("-chardev", "socket,id=charmonitor,"+rt.Monitor+",server=on,wait=off")
	a.add("-mon", "chardev=charmonitor,id=monitor,mode=control")
	if rt.PidFile != "" {
		a.add("-pidfile", rt.PidFile)
	}
	a.add("-rtc", rtcOption(x))
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
	pmArgs(a, x)
	a.add("-boot", bootOption(x))

	if err := deviceArgs(a, c, rt); err != nil {
		return nil, err
	}
	extraArgs(a, c, rt)
	a.add("-msg", "timestamp=on")
	return a.list, nil
}

type args struct{ list []string }

func (a *args) add(s ...string) { a.list = append(a.list, s...) }

// machineOption is -machine: the type and the chipset features.
func machineOption(x *libvirtxml.Domain) string {
	mopts := []string{opt(x.OS.Type.Machine), "usb=off", "dump-guest-core=off"}
	f := x.Features
	if f == nil || f.ACPI == nil {
		mopts = append(mopts, "acpi=off")
	}
	if f != nil && f.VMPort != nil {
		mopts = append(mopts, "vmport="+onOffValue(f.VMPort.State))
	}
	if t := timer(x, "hpet"); t != nil && t.Present == "no" {
		mopts = append(mopts, "hpet=off")
	}
	mopts = append(mopts, extraMachineOpts(x)...) // firmware, SMM, memory backend
	return strings.Join(mopts, ",")
}

func onOffValue(s string) string {
	if s == "off" {
		return "off"
	}
	return "on"
}

// cpuProps are the -cpu properties of the features that are CPU
// properties: Hyper-V enlightenments, KVM's signature, the PMU, kvmclock.
func cpuProps(x *libvirtxml.Domain) []string {
	var props []string
	if f := x.Features; f != nil {
		if h := f.HyperV; h != nil {
			for _, fl := range hypervFlags {
				if s := fl.get(h); s != nil {
					props = append(props, fl.prop+"="+onOffValue(s.State))
				}
			}
			if s := h.Spinlocks; s != nil {
				if s.State == "off" {
					props = append(props, "hv-spinlocks=0xffffffff")
				} else {
					props = append(props, fmt.Sprintf("hv-spinlocks=%#x", s.Retries))
				}
			}
			if s := h.STimer; s != nil {
				props = append(props, "hv-stimer="+onOffValue(s.State))
			}
			if s := h.TLBFlush; s != nil {
				props = append(props, "hv-tlbflush="+onOffValue(s.State))
			}
			if v := h.VendorId; v != nil && v.State != "off" {
				props = append(props, "hv-vendor-id="+v.Value)
			}
		}
		if k := f.KVM; k != nil && stateOn(k.Hidden) {
			props = append(props, "kvm=off")
		}
		if f.PMU != nil {
			props = append(props, "pmu="+onOffValue(f.PMU.State))
		}
	}
	for _, t := range []string{"kvmclock", "hypervclock"} {
		if tm := timer(x, t); tm != nil {
			prop := map[string]string{"kvmclock": "kvmclock", "hypervclock": "hv-time"}[t]
			if tm.Present == "no" {
				props = append(props, prop+"=off")
			} else {
				props = append(props, prop+"=on")
			}
		}
	}
	return props
}

// bootOption is -boot: the order of <boot dev>, the menu, the reboot
// timeout, strict.
func bootOption(x *libvirtxml.Domain) string {
	var parts []string
	if len(x.OS.BootDevices) > 0 && !perDeviceBoot(x) {
		var order string
		for _, b := range x.OS.BootDevices {
			order += bootLetters[b.Dev]
		}
		parts = append(parts, "order="+order)
	}
	if m := x.OS.BootMenu; m != nil && m.Enable != "" {
		parts = append(parts, "menu="+map[string]string{"yes": "on", "no": "off"}[m.Enable])
		if m.Timeout != "" {
			parts = append(parts, "splash-time="+m.Timeout)
		}
	}
	if b := x.OS.BIOS; b != nil && b.RebootTimeout != nil {
		parts = append(parts, fmt.Sprintf("reboot-timeout=%d", *b.RebootTimeout))
	}
	return strings.Join(append(parts, "strict=on"), ",")
}

// pmArgs turns off the ACPI sleep states <pm> disables.
func pmArgs(a *args, x *libvirtxml.Domain) {
	pm := x.PM
	if pm == nil {
		return
	}
	dev := "PIIX4_PM"
	if machineFamily(x.OS.Type.Machine) == machineQ35 {
		dev = "ICH9-LPC"
	}
	for _, p := range []struct {
		pol *libvirtxml.DomainPMPolicy
		s   string
	}{{pm.SuspendToMem, "disable_s3"}, {pm.SuspendToDisk, "disable_s4"}} {
		if p.pol != nil {
			v := "1"
			if p.pol.Enabled == "yes" {
				v = "0"
			}
			a.add("-global", dev+"."+p.s+"="+v)
		}
	}
}

// smbiosArgs passes <sysinfo type='smbios'> when <smbios mode='sysinfo'>
// asks for it.
func smbiosArgs(a *args, x *libvirtxml.Domain) {
	if x.OS.SMBios == nil || x.OS.SMBios.Mode != "sysinfo" {
		return
	}
	sm := x.SysInfo[0].SMBIOS
	for _, t := range []struct {
		typ     string
		entries []libvirtxml.DomainSysInfoEntry
	}{{"0", sysinfoEntries(sm.BIOS)}, {"1", sysinfoSystem(sm.System)}} {
		if len(t.entries) == 0 {
			continue
		}
		s := "type=" + t.typ
		for _, e := range t.entries {
			s += "," + e.Name + "=" + opt(e.Value)
		}
		a.add("-smbios", s)
	}
	if o := sm.OEMStrings; o != nil {
		for _, e := range o.Entry {
			a.add("-smbios", "type=11,value="+opt(e))
		}
	}
}

// opt escapes a value for QEMU's comma-separated option syntax.
func opt(s string) string { return strings.ReplaceAll(s, ",", ",,") }
