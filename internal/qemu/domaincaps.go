package qemu

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"slices"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/hostinfo"
	"github.com/virtd/virtd/virt"
)

var _ driver.DomainCapabilities = (*Driver)(nil)

// Domain capabilities are made in two steps:
//
//   - emulatorDomainCaps says what the emulator offers for a machine type
//     and domain type, from its probe (caps.go, capsprobe.go: CPU models,
//     QOM types, TPM, spice), the firmware descriptors (firmware.go) and
//     the host (swtpm on the search path).
//   - honourDomainCaps then keeps of it only what the driver accepts in a
//     domain definition: each value is tried as a small domain XML through
//     parseConfig, which refuses what the driver does not honour. So
//     <domainCapabilities> never offers what define would refuse, and
//     follows the driver as it learns more of the domain XML, with no
//     list to keep in step.
//
// The result is kept per probe, machine, domain type, firmware list and
// swtpm: a call that finds all of them unchanged costs a few stats.

// domainCapsKey names a domain capabilities document made.
type domainCapsKey struct {
	probe    *probeResult
	fw       *firmwareList
	machine  string
	virtType string
	swtpm    bool
}

// maxDomainCaps bounds the documents kept (probes and firmware lists
// replaced leave theirs behind).
const maxDomainCaps = 256

// DomainCapabilities describes what a domain may have on one of the
// emulators the driver found (those capabilities lists): what the emulator
// offers (see emulatorDomainCaps) and the driver honours. The domain type
// defaults to kvm where /dev/kvm is usable for the architecture, else
// qemu; the architecture to the emulator's, or the host's; the machine
// type to the emulator's default. A machine type is answered by its
// canonical name (pc: pc-i440fx-7.2).
func (drv *Driver) DomainCapabilities(ctx context.Context, emulatorPath, arch, machineName, virtType string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	var e *emulator
	emus := drv.caps.emulators()
	for i := range emus {
		if (emulatorPath != "" && emus[i].path == emulatorPath) || (emulatorPath == "" && guestArch(emus[i].arch) == orHost(arch)) {
			e = &emus[i]
			break
		}
	}
	switch {
	case e == nil && emulatorPath != "":
		return "", fmt.Errorf("emulator %q is not one the qemu driver found (qemu-system-* in %s): %w", emulatorPath, drv.caps.searchPath(), virt.ErrInvalidArgument)
	case e == nil:
		return "", fmt.Errorf("no emulator for architecture %q: qemu-system-%s not found in %s: %w", orHost(arch), orHost(arch), drv.caps.searchPath(), virt.ErrInvalidArgument)
	case arch != "" && guestArch(e.arch) != arch:
		return "", fmt.Errorf("emulator %s does not run architecture %q: %w", e.path, arch, virt.ErrInvalidArgument)
	}
	arch = guestArch(e.arch)
	if arch != "x86_64" && arch != "i686" {
		return "", fmt.Errorf("architecture %q is not supported by the qemu driver (only x86_64 and i686): %w", arch, virt.ErrNotSupported)
	}
	_, kvmErr := os.Stat("/dev/kvm")
	kvm := kvmErr == nil && (arch == hostinfo.Arch() || (hostinfo.Arch() == "x86_64" && arch == "i686"))
	switch virtType {
	case "":
		virtType = "qemu"
		if kvm {
			virtType = "kvm"
		}
	case "qemu":
	case "kvm":
		if !kvm {
			return "", fmt.Errorf("KVM is not usable for %s on this host (no /dev/kvm, or another architecture): %w", arch, virt.ErrInvalidArgument)
		}
	default:
		return "", fmt.Errorf("virtualization type %q is not served by the qemu driver (only qemu and kvm): %w", virtType, virt.ErrInvalidArgument)
	}
	p, err := drv.caps.probe(ctx, *e)
	if err != nil {
		return "", err
	}
	m := p.findMachine(machineName)
	if m == nil {
		if machineName == "" {
			return "", fmt.Errorf("emulator %s reports no default machine type: %w", e.path, virt.ErrInternal)
		}
		return "", fmt.Errorf("machine type %q is not supported by emulator %s: %w", machineName, e.path, virt.ErrInvalidArgument)
	}

	cc := drv.caps
	fw := cc.fw.get()
	in := domainCapsInput{probe: p, arch: arch, qemuArch: e.arch, machine: m, virtType: virtType, firmware: fw.fws, swtpm: cc.find("swtpm") != ""}
	key := domainCapsKey{probe: p, fw: fw, machine: m.Name, virtType: virtType, swtpm: in.swtpm}
	cc.mu.Lock()
	doc, ok := cc.domcaps[key]
	cc.mu.Unlock()
	if ok {
		return doc, nil
	}
	caps := emulatorDomainCaps(in)
	honourDomainCaps(caps, in, driverAccepts)
	doc, err = caps.Marshal()
	if err != nil {
		return "", virt.Errorf(virt.ErrInternal, "domain capabilities: %w", err)
	}
	cc.mu.Lock()
	if len(cc.domcaps) >= maxDomainCaps {
		clear(cc.domcaps)
	}
	cc.domcaps[key] = doc
	cc.mu.Unlock()
	return doc, nil
}

// findMachine returns the machine type named (by name or alias), or the
// default one for "", or nil. "none" is no machine for a domain.
func (p *probeResult) findMachine(name string) *machine {
	for i := range p.Machines {
		pm := &p.Machines[i]
		if pm.Name == "none" {
			continue
		}
		if (name == "" && pm.Default) || (name != "" && (pm.Name == name || pm.Alias == name)) {
			return pm
		}
	}
	return nil
}

// domainCapsInput is what domain capabilities are made from.
type domainCapsInput struct {
	probe    *probeResult
	arch     string // libvirt's (i686)
	qemuArch string // QEMU's (i386), as firmware descriptors name it
	machine  *machine
	virtType string
	firmware []firmware
	swtpm    bool // swtpm is on the search path: a TPM emulator backend
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func enum(name string, values ...string) libvirtxml.DomainCapsEnum {
	return libvirtxml.DomainCapsEnum{Name: name, Values: values}
}

// device is a device element supported when it has a value in its first
// enum (its kind: a model, a type, a bus).
func device(enums ...libvirtxml.DomainCapsEnum) *libvirtxml.DomainCapsDevice {
	return &libvirtxml.DomainCapsDevice{Supported: yesNo(len(enums) > 0 && len(enums[0].Values) > 0), Enums: enums}
}

// when returns the values whose condition holds, in the order given:
// when(a, "x", b, "y").
func when(pairs ...any) []string {
	var out []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i].(bool) {
			out = append(out, pairs[i+1].(string))
		}
	}
	return out
}

// emulatorDomainCaps is what the emulator offers, whether or not the
// driver honours it (see honourDomainCaps).
func emulatorDomainCaps(in domainCapsInput) *libvirtxml.DomainCaps {
	p, m := in.probe, in.machine
	has := p.hasType
	tcg := in.virtType == "qemu"
	caps := &libvirtxml.DomainCaps{
		Path: p.Path, Domain: in.virtType, Machine: m.Name, Arch: in.arch,
		VCPU:      &libvirtxml.DomainCapsVCPU{Max: uint(m.CPUMax)},
		IOThreads: &libvirtxml.DomainCapsIOThreads{Supported: yesNo(has("iothread"))},
	}

	// <os>: SeaBIOS comes with QEMU; UEFI when a descriptor runs the
	// machine.
	var loaders, types []string
	var secure, insecure, enrolled, unenrolled, rom, pflash bool
	for i := range in.firmware {
		f := &in.firmware[i]
		if !slices.Contains(f.Interfaces, "uefi") || !f.runs(in.qemuArch, m.Name) {
			continue
		}
		if !slices.Contains(loaders, f.Executable) {
			loaders = append(loaders, f.Executable)
		}
		rom = rom || f.Device == "memory"
		pflash = pflash || f.Device == "flash"
		secure = secure || f.has("secure-boot")
		insecure = insecure || !f.has("secure-boot")
		enrolled = enrolled || f.has("enrolled-keys")
		unenrolled = unenrolled || !f.has("enrolled-keys")
	}
	types = when(rom, "rom", pflash, "pflash")
	efi := len(loaders) > 0
	caps.OS = &libvirtxml.DomainCapsOS{
		Supported: "yes",
		Enums:     []libvirtxml.DomainCapsEnum{enum("firmware", when(true, "bios", efi, "efi")...)},
		Loader: &libvirtxml.DomainCapsOSLoader{Supported: yesNo(efi), Values: loaders, Enums: []libvirtxml.DomainCapsEnum{
			enum("type", types...),
			enum("readonly", when(efi, "yes", efi, "no")...),
			enum("secure", when(secure, "yes", insecure, "no")...),
		}},
		FirmwareFeatures: &libvirtxml.DomainCapsOSFirmwareFeatures{Supported: yesNo(efi), Enums: []libvirtxml.DomainCapsEnum{
			enum("enrolledKeys", when(enrolled, "yes", unenrolled, "no")...),
			enum("secureBoot", when(secure, "yes", insecure, "no")...),
		}},
	}

	// <cpu>: the probe is TCG's. host-passthrough needs KVM; host-model is
	// what 'max' expands to under TCG, which says nothing of KVM's host.
	hostModel := &libvirtxml.DomainCapsCPUMode{Name: "host-model", Supported: yesNo(tcg && p.HostModel.Base != "")}
	if hostModel.Supported == "yes" {
		hostModel.Models = []libvirtxml.DomainCapsCPUModel{{Name: p.HostModel.Base, Fallback: "forbid"}}
		for _, f := range p.HostModel.Require {
			hostModel.Features = append(hostModel.Features, libvirtxml.DomainCapsCPUFeature{Policy: "require", Name: f})
		}
		for _, f := range p.HostModel.Disable {
			hostModel.Features = append(hostModel.Features, libvirtxml.DomainCapsCPUFeature{Policy: "disable", Name: f})
		}
	}
	custom := &libvirtxml.DomainCapsCPUMode{Name: "custom", Supported: yesNo(len(p.CPUModels) > 0)}
	for _, cm := range p.CPUModels {
		usable := "unknown" // under KVM: the probe knows TCG's only
		if tcg {
			usable = yesNo(cm.Usable)
		}
		model := libvirtxml.DomainCapsCPUModel{Name: cm.Name, Usable: usable, Canonical: cm.AliasOf}
		if cm.Deprecated {
			model.Deprecated = "yes"
		}
		custom.Models = append(custom.Models, model)
	}
	caps.CPU = &libvirtxml.DomainCapsCPU{Modes: []libvirtxml.DomainCapsCPUMode{
		{Name: "host-passthrough", Supported: yesNo(!tcg)},
		{Name: "maximum", Supported: "yes"},
		*hostModel,
		*custom,
	}}

	// <devices>, by the QOM types that back each value.
	i440fx := strings.HasPrefix(m.Name, "pc-i440fx-") || m.Name == "isapc"
	caps.Devices = &libvirtxml.DomainCapsDevices{
		Disk: device(
			enum("diskDevice", when(true, "disk", has("ide-cd") || has("scsi-cd"), "cdrom", has("floppy"), "floppy", has("scsi-block"), "lun")...),
			enum("bus", when(has("floppy") && has("isa-fdc"), "fdc", i440fx && has("ide-hd"), "ide",
				has("ahci") || has("ich9-ahci"), "sata", (has("virtio-scsi-pci") || has("lsi53c895a")) && has("scsi-hd"), "scsi",
				has("usb-storage"), "usb", has("virtio-blk-pci"), "virtio")...),
		),
		Graphics: device(enum("type", when(p.Spice, "spice", p.VNC, "vnc")...)),
		Video: device(enum("modelType", when(has("bochs-display"), "bochs", has("cirrus-vga"), "cirrus", true, "none",
			has("qxl-vga"), "qxl", has("ramfb"), "ramfb", has("VGA"), "vga", has("virtio-vga") || has("virtio-gpu-pci"), "virtio")...)),
		HostDev: &libvirtxml.DomainCapsDevice{Supported: "no"},
		RNG: device(
			enum("model", when(has("virtio-rng-pci"), "virtio")...),
			enum("backendModel", when(has("rng-builtin"), "builtin", has("rng-egd"), "egd", has("rng-random"), "random")...),
		),
		FileSystem: device(enum("driverType", when(has("virtio-9p-pci"), "handle", has("virtio-9p-pci"), "path", has("vhost-user-fs-pci"), "virtiofs")...)),
		TPM: device(
			enum("model", when(slices.Contains(p.TPMModels, "tpm-crb") && has("tpm-crb"), "tpm-crb", slices.Contains(p.TPMModels, "tpm-tis") && has("tpm-tis"), "tpm-tis")...),
			enum("backendModel", when(slices.Contains(p.TPMTypes, "emulator") && in.swtpm, "emulator", slices.Contains(p.TPMTypes, "passthrough"), "passthrough")...),
		),
		Redirdev: device(enum("bus", when(has("usb-redir"), "usb")...)),
		Channel:  device(enum("type", when(has("virtio-serial-pci"), "pty", p.Spice && has("virtio-serial-pci"), "spicevmc", has("virtio-serial-pci"), "unix")...)),
		Panic:    device(enum("model", when(has("pvpanic"), "isa", has("pvpanic-pci"), "pvpanic")...)),
	}
	// A TPM needs a model and a backend.
	if t := caps.Devices.TPM; len(t.Enums[1].Values) == 0 {
		t.Supported = "no"
	}

	caps.Features = &libvirtxml.DomainCapsFeatures{
		GIC:        &libvirtxml.DomainCapsFeatureGIC{Supported: "no"},
		VMCoreInfo: &libvirtxml.DomainCapsFeatureVMCoreInfo{Supported: yesNo(has("vmcoreinfo"))},
		GenID:      &libvirtxml.DomainCapsFeatureGenID{Supported: yesNo(has("vmgenid"))},
		SEV:        &libvirtxml.DomainCapsFeatureSEV{Supported: "no"},
		SGX:        &libvirtxml.DomainCapsFeatureSGX{Supported: "no"},
	}
	return caps
}

// domainDoc is a small domain definition that uses one capability: extra
// elements of <os>, of <domain> and of <devices>, and attributes of <os>.
type domainDoc struct {
	osAttrs, os, top, devices string
}

// xmlText escapes s for an attribute or text.
func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (d domainDoc) xml(in domainCapsInput) string {
	return fmt.Sprintf(`<domain type='%s'><name>domcaps</name><memory>65536</memory>`+
		`<os%s><type arch='%s' machine='%s'>hvm</type>%s</os>%s<devices>%s</devices></domain>`,
		in.virtType, d.osAttrs, in.arch, xmlText(in.machine.Name), d.os, d.top, d.devices)
}

// driverAccepts reports whether the driver accepts a definition.
func driverAccepts(doc string) bool {
	_, err := parseConfig(doc)
	return err == nil
}

// honourDomainCaps keeps of caps (emulatorDomainCaps) what accepts (the
// driver's parser) takes in a definition: each value is tried on its own,
// or with one value of another enum of its element where it needs one (a
// disk device on a bus).
func honourDomainCaps(caps *libvirtxml.DomainCaps, in domainCapsInput, accepts func(doc string) bool) {
	ok := func(d domainDoc) bool { return accepts(d.xml(in)) }
	keep := func(values []string, doc func(v string) domainDoc) []string {
		var out []string
		for _, v := range values {
			if ok(doc(v)) {
				out = append(out, v)
			}
		}
		return out
	}
	// Each value with any value of the other enum.
	pairs := func(d *libvirtxml.DomainCapsDevice, doc func(a, b string) domainDoc) {
		as, bs := d.Enums[0].Values, d.Enums[1].Values
		var keptA, keptB []string
		for _, a := range as {
			for _, b := range bs {
				if ok(doc(a, b)) {
					if !slices.Contains(keptA, a) {
						keptA = append(keptA, a)
					}
					if !slices.Contains(keptB, b) {
						keptB = append(keptB, b)
					}
				}
			}
		}
		slices.SortFunc(keptA, func(x, y string) int { return slices.Index(as, x) - slices.Index(as, y) })
		slices.SortFunc(keptB, func(x, y string) int { return slices.Index(bs, x) - slices.Index(bs, y) })
		d.Enums[0].Values, d.Enums[1].Values = keptA, keptB
		if len(keptA) == 0 {
			d.Supported = "no"
		}
	}
	single := func(d *libvirtxml.DomainCapsDevice, doc func(v string) domainDoc) {
		d.Enums[0].Values = keep(d.Enums[0].Values, doc)
		if len(d.Enums[0].Values) == 0 {
			d.Supported = "no"
		}
	}

	// The largest vCPU count up to the machine's limit (or a large one when
	// it says none).
	lo, hi := 0, int(caps.VCPU.Max)
	if hi <= 0 {
		hi = 4096
	}
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if ok(domainDoc{top: fmt.Sprintf("<vcpu>%d</vcpu>", mid)}) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	caps.VCPU.Max = uint(lo)
	if caps.IOThreads.Supported == "yes" && !ok(domainDoc{top: "<iothreads>1</iothreads>"}) {
		caps.IOThreads.Supported = "no"
	}

	o := caps.OS
	o.Enums[0].Values = keep(o.Enums[0].Values, func(v string) domainDoc { return domainDoc{osAttrs: " firmware='" + v + "'"} })
	if l := o.Loader; l.Supported == "yes" {
		loader := func(attrs, path string) domainDoc {
			return domainDoc{os: "<loader" + attrs + ">" + xmlText(path) + "</loader>"}
		}
		first := l.Values[0]
		l.Values = keep(l.Values, func(v string) domainDoc { return loader(" readonly='yes'", v) })
		for i := range l.Enums {
			name := l.Enums[i].Name
			l.Enums[i].Values = keep(l.Enums[i].Values, func(v string) domainDoc { return loader(" "+name+"='"+v+"'", first) })
		}
		if len(l.Values) == 0 {
			l.Supported = "no"
		}
	}
	if f := o.FirmwareFeatures; f.Supported == "yes" {
		names := map[string]string{"enrolledKeys": "enrolled-keys", "secureBoot": "secure-boot"}
		for i := range f.Enums {
			name := names[f.Enums[i].Name]
			f.Enums[i].Values = keep(f.Enums[i].Values, func(v string) domainDoc {
				return domainDoc{osAttrs: " firmware='efi'", os: "<firmware><feature enabled='" + v + "' name='" + name + "'/></firmware>"}
			})
		}
		if !ok(domainDoc{osAttrs: " firmware='efi'", os: "<firmware><feature enabled='yes' name='secure-boot'/></firmware>"}) &&
			!ok(domainDoc{osAttrs: " firmware='efi'", os: "<firmware><feature enabled='no' name='secure-boot'/></firmware>"}) {
			f.Supported = "no"
		}
	}

	for i := range caps.CPU.Modes {
		mode := &caps.CPU.Modes[i]
		if mode.Supported != "yes" {
			continue
		}
		doc := domainDoc{top: "<cpu mode='" + mode.Name + "'/>"}
		if mode.Name == "custom" {
			// One model stands for all: the driver cannot tell them
			// apart without the probe, which it does not consult.
			doc.top = "<cpu mode='custom' match='exact'><model fallback='forbid'>" + xmlText(mode.Models[0].Name) + "</model></cpu>"
		}
		if !ok(doc) {
			*mode = libvirtxml.DomainCapsCPUMode{Name: mode.Name, Supported: "no"}
		}
	}

	d := caps.Devices
	pairs(d.Disk, func(dev, bus string) domainDoc {
		target := map[string]string{"virtio": "vda", "ide": "hda", "fdc": "fda"}[bus]
		if target == "" {
			target = "sda"
		}
		return domainDoc{devices: "<disk type='file' device='" + dev + "'><source file='/var/lib/domcaps.img'/><target dev='" + target + "' bus='" + bus + "'/></disk>"}
	})
	single(d.Graphics, func(v string) domainDoc { return domainDoc{devices: "<graphics type='" + v + "'/>"} })
	single(d.Video, func(v string) domainDoc { return domainDoc{devices: "<video><model type='" + v + "'/></video>"} })
	pairs(d.RNG, func(model, backend string) domainDoc {
		b := map[string]string{
			"random":  "<backend model='random'>/dev/urandom</backend>",
			"egd":     "<backend model='egd' type='tcp'><source mode='connect' host='127.0.0.1' service='1024'/></backend>",
			"builtin": "<backend model='builtin'/>",
		}[backend]
		return domainDoc{devices: "<rng model='" + model + "'>" + b + "</rng>"}
	})
	single(d.FileSystem, func(v string) domainDoc {
		return domainDoc{devices: "<filesystem type='mount'><driver type='" + v + "'/><source dir='/var/lib/domcaps'/><target dir='domcaps'/></filesystem>"}
	})
	if d.TPM.Supported == "yes" {
		pairs(d.TPM, func(model, backend string) domainDoc {
			b := "<backend type='emulator' version='2.0'/>"
			if backend == "passthrough" {
				b = "<backend type='passthrough'><device path='/dev/tpm0'/></backend>"
			}
			return domainDoc{devices: "<tpm model='" + model + "'>" + b + "</tpm>"}
		})
	}
	single(d.Redirdev, func(v string) domainDoc {
		return domainDoc{devices: "<redirdev bus='" + v + "' type='spicevmc'/>"}
	})
	single(d.Channel, func(v string) domainDoc {
		src := map[string]string{"unix": "<source mode='bind'/>"}[v]
		return domainDoc{devices: "<channel type='" + v + "'>" + src + "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>"}
	})
	single(d.Panic, func(v string) domainDoc { return domainDoc{devices: "<panic model='" + v + "'/>"} })

	f := caps.Features
	if f.VMCoreInfo.Supported == "yes" && !ok(domainDoc{top: "<features><vmcoreinfo state='on'/></features>"}) {
		f.VMCoreInfo.Supported = "no"
	}
	if f.GenID.Supported == "yes" && !ok(domainDoc{top: "<genid>43dc0cf8-809b-4adb-9bea-a9abb5f3d90e</genid>"}) {
		f.GenID.Supported = "no"
	}
}
