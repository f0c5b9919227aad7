package qemu

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

// UEFI firmware: <os firmware='efi'>, or <loader readonly='yes'
// type='pflash' secure='yes|no'>CODE</loader> with <nvram
// template='VARS template'>VARS</nvram>. With firmware='efi' alone the
// driver picks OVMF from QEMU's firmware descriptors and fills in loader
// and nvram, as libvirt does; the NVRAM file defaults to
// StateDir/nvram/<name>_VARS.fd and is copied from the template at the
// first start. The driver API's undefine has no flags, so the NVRAM file
// is never removed by the driver (libvirt keeps it too unless asked with
// VIR_DOMAIN_UNDEFINE_NVRAM).

// systemStateDir is the state directory of a system driver, whose NVRAM
// files the command lines of DomainXMLToNative name.
const systemStateDir = "/var/lib/virtd/qemu"

// normaliseFirmware checks <os firmware>, <loader>, <nvram> and <smm>.
func normaliseFirmware(x *libvirtxml.Domain, bad badFunc) error {
	o := x.OS
	switch o.Firmware {
	case "", "efi":
	case "bios":
		if o.Loader != nil || o.NVRam != nil {
			return bad("<os firmware='bios'> cannot have a <loader> or <nvram>")
		}
	default:
		return bad("<os firmware='%s'> is not supported (only efi and bios)", o.Firmware)
	}
	if smm := featureSMM(x); smm != "" && smm != "on" && smm != "off" {
		return bad("<features><smm state='%s'> must be on or off", smm)
	}
	if o.Loader == nil {
		if o.NVRam != nil && o.Firmware != "efi" {
			return bad("<nvram> needs a <loader> or <os firmware='efi'>")
		}
		if o.Firmware != "efi" {
			return nil
		}
		// As libvirt: the firmware is picked at each start, and the
		// definition keeps only what was asked for.
		return checkFirmwareFeatures(o, bad)
	}
	if err := checkFirmwareFeatures(o, bad); err != nil {
		return err
	}
	l := o.Loader
	if l.Type == "" {
		l.Type = "pflash"
	}
	if l.Type != "pflash" {
		return bad("<loader type='%s'> is not supported (only pflash)", l.Type)
	}
	if l.Readonly == "" {
		l.Readonly = "yes"
	}
	if l.Readonly != "yes" {
		return bad("<loader readonly='%s'> is not supported (only yes, with an <nvram>)", l.Readonly)
	}
	if l.Secure != "" && l.Secure != "yes" && l.Secure != "no" {
		return bad("<loader secure='%s'> must be yes or no", l.Secure)
	}
	if l.Format != "" && l.Format != "raw" {
		return bad("<loader format='%s'> is not supported (only raw)", l.Format)
	}
	if l.Path == "" && o.Firmware != "efi" {
		return bad("<loader> needs a path, or <os firmware='efi'>")
	}
	if l.Path != "" && !filepath.IsAbs(l.Path) {
		return bad("<loader>%s</loader> must be an absolute path", l.Path)
	}
	if l.Secure == "yes" {
		if m := o.Type.Machine; !isQ35(m) {
			return bad("<loader secure='yes'> needs a q35 machine, not '%s'", m)
		}
		if featureSMM(x) != "on" {
			return bad("<loader secure='yes'> needs <features><smm state='on'/></features>")
		}
	}
	if n := o.NVRam; n != nil {
		if n.Format != "" && n.Format != "raw" {
			return bad("<nvram format='%s'> is not supported (only raw)", n.Format)
		}
		if n.NVRam != "" && !filepath.IsAbs(n.NVRam) {
			return bad("<nvram>%s</nvram> must be an absolute path", n.NVRam)
		}
		if n.Template != "" && !filepath.IsAbs(n.Template) {
			return bad("<nvram template='%s'> must be an absolute path", n.Template)
		}
	}
	return nil
}

func featureSMM(x *libvirtxml.Domain) string {
	if x.Features == nil || x.Features.SMM == nil {
		return ""
	}
	if x.Features.SMM.State == "" {
		return "on"
	}
	return x.Features.SMM.State
}

func isQ35(machine string) bool {
	return machine == "q35" || strings.HasPrefix(machine, "pc-q35-")
}

// machinePattern is the versioned machine name QEMU's descriptors match
// for an alias (pc, q35).
func machinePattern(m string) string {
	switch m {
	case "pc":
		return "pc-i440fx-latest"
	case "q35":
		return "pc-q35-latest"
	}
	return m
}

// uefiFor reports whether f is UEFI pflash firmware for arch and machine,
// with secure boot as asked ("" prefers none) and, if it needs SMM, smm on.
func (f *firmware) uefiFor(arch, machine, secure string, smm bool) bool {
	if !slices.Contains(f.Interfaces, "uefi") || f.Device != "flash" || f.Format != "" && f.Format != "raw" {
		return false
	}
	if !f.runs(arch, machinePattern(machine)) {
		return false
	}
	if f.has("secure-boot") != (secure == "yes") {
		return false
	}
	if f.has("requires-smm") && !smm {
		return false
	}
	return !f.has("enrolled-keys") || secure == "yes"
}

// firmwareFeatureOrder is the order libvirt shows <firmware> features in.
var firmwareFeatureOrder = map[string]int{"enrolled-keys": 0, "secure-boot": 1}

// checkFirmwareFeatures checks <os><firmware><feature>, the properties
// asked of the firmware picked at start.
func checkFirmwareFeatures(o *libvirtxml.DomainOS, bad badFunc) error {
	fi := o.FirmwareInfo
	if fi == nil {
		return nil
	}
	if o.Firmware != "efi" {
		return bad("<os><firmware><feature> needs <os firmware='efi'>")
	}
	seen := map[string]bool{}
	for _, f := range fi.Features {
		if _, ok := firmwareFeatureOrder[f.Name]; !ok {
			return bad("<os><firmware><feature name='%s'> is not supported (only secure-boot and enrolled-keys)", f.Name)
		}
		if f.Enabled != "yes" && f.Enabled != "no" {
			return bad("<os><firmware><feature name='%s' enabled='%s'> must be yes or no", f.Name, f.Enabled)
		}
		if seen[f.Name] {
			return bad("<os><firmware><feature name='%s'> is given twice", f.Name)
		}
		seen[f.Name] = true
	}
	sort.Slice(fi.Features, func(i, j int) bool {
		return firmwareFeatureOrder[fi.Features[i].Name] < firmwareFeatureOrder[fi.Features[j].Name]
	})
	return nil
}

// firmwareFeature is whether <os><firmware> asks for a feature: "yes",
// "no", or "" when it does not say.
func firmwareFeature(o *libvirtxml.DomainOS, name string) string {
	if o.FirmwareInfo != nil {
		for _, f := range o.FirmwareInfo.Features {
			if f.Name == name {
				return f.Enabled
			}
		}
	}
	return ""
}

// resolveFirmware fills in the loader and NVRAM paths of an EFI domain:
// the firmware from the descriptors fws when only firmware='efi' is
// given, the template of a given loader from the descriptor that names
// it, and the NVRAM file under stateDir/nvram.
func resolveFirmware(c *config, stateDir string, fws *firmwareList) error {
	x := c.x
	if x.OS.Loader == nil && x.OS.Firmware == "efi" {
		x.OS.Loader = &libvirtxml.DomainLoader{Type: "pflash", Readonly: "yes", Secure: firmwareFeature(x.OS, "secure-boot")}
		if x.OS.Loader.Secure == "yes" {
			if m := x.OS.Type.Machine; machineFamily(m) != machineQ35 {
				return fmt.Errorf("domain '%s': secure boot needs a q35 machine, not '%s': %w", c.Name(), m, virt.ErrInvalidArgument)
			}
			if featureSMM(x) != "on" {
				return fmt.Errorf("domain '%s': secure boot needs <features><smm state='on'/></features>: %w", c.Name(), virt.ErrInvalidArgument)
			}
		}
	}
	l := x.OS.Loader
	if l == nil {
		return nil
	}
	descs := fws.fws
	if l.Path == "" {
		var pick *firmware
		for i := range descs {
			if descs[i].uefiFor(x.OS.Type.Arch, x.OS.Type.Machine, l.Secure, featureSMM(x) == "on") {
				pick = &descs[i]
				break
			}
		}
		if pick == nil {
			return fmt.Errorf("domain '%s': <os firmware='efi'>: no UEFI firmware for %s machine '%s' (secure boot %q) in %s: %w",
				c.Name(), x.OS.Type.Arch, x.OS.Type.Machine, l.Secure, strings.Join(fws.dirs, ", "), virt.ErrNotFound)
		}
		l.Path = pick.Executable
		if l.Secure == "" {
			l.Secure = "no"
		}
		if x.OS.NVRam == nil {
			x.OS.NVRam = &libvirtxml.DomainNVRam{}
		}
		if x.OS.NVRam.Template == "" {
			x.OS.NVRam.Template = pick.NVRAMTemplate
		}
	}
	if x.OS.NVRam == nil {
		x.OS.NVRam = &libvirtxml.DomainNVRam{}
	}
	n := x.OS.NVRam
	if n.Template == "" {
		for _, d := range descs {
			if d.Executable == l.Path {
				n.Template = d.NVRAMTemplate
				break
			}
		}
	}
	if n.NVRam == "" {
		if strings.ContainsAny(c.Name(), "/\x00") || len(c.Name())+len("_VARS.fd") > 255 {
			return fmt.Errorf("domain '%s': the name cannot name an NVRAM file; give <nvram>PATH</nvram>: %w", c.Name(), virt.ErrInvalidArgument)
		}
		n.NVRam = filepath.Join(stateDir, "nvram", c.Name()+"_VARS.fd")
	}
	return nil
}

// firmwareMachineOpts are the -machine options for pflash firmware and SMM.
func firmwareMachineOpts(x *libvirtxml.Domain) []string {
	var o []string
	if l := x.OS.Loader; l != nil && l.Path != "" {
		o = append(o, "pflash0=libvirt-pflash0-format")
		if x.OS.NVRam != nil && x.OS.NVRam.NVRam != "" {
			o = append(o, "pflash1=libvirt-pflash1-format")
		}
	}
	switch featureSMM(x) {
	case "on":
		o = append(o, "smm=on")
	case "off":
		o = append(o, "smm=off")
	}
	return o
}

// firmwareArgs adds the pflash block devices: the code read-only, the
// variables writable.
func firmwareArgs(a *args, x *libvirtxml.Domain) {
	l := x.OS.Loader
	if l == nil || l.Path == "" {
		return
	}
	a.add("-blockdev", "driver=file,filename="+opt(l.Path)+",node-name=libvirt-pflash0-storage,read-only=on")
	a.add("-blockdev", "driver=raw,file=libvirt-pflash0-storage,node-name=libvirt-pflash0-format,read-only=on")
	if n := x.OS.NVRam; n != nil && n.NVRam != "" {
		a.add("-blockdev", "driver=file,filename="+opt(n.NVRam)+",node-name=libvirt-pflash1-storage,read-only=off")
		a.add("-blockdev", "driver=raw,file=libvirt-pflash1-storage,node-name=libvirt-pflash1-format,read-only=off")
	}
	if l.Secure == "yes" {
		a.add("-global", "driver=cfi.pflash01,property=secure,value=on")
	}
}

// checkFirmwareFiles checks, at start, that the loader exists, and the
// NVRAM file or its template.
func checkFirmwareFiles(c *config) error {
	l := c.x.OS.Loader
	if l == nil || l.Path == "" {
		return nil
	}
	if err := checkFile(c, "<loader>", l.Path, false); err != nil {
		return err
	}
	n := c.x.OS.NVRam
	if _, err := os.Stat(n.NVRam); err == nil {
		return nil
	}
	if n.Template == "" {
		return fmt.Errorf("domain '%s': <nvram>%s</nvram> does not exist and no template is known: %w", c.Name(), n.NVRam, virt.ErrNotFound)
	}
	return checkFile(c, "<nvram template>", n.Template, false)
}

// prepareNVRAM copies the template to the NVRAM file if it is missing.
func (drv *Driver) prepareNVRAM(c *config) error {
	l, n := c.x.OS.Loader, c.x.OS.NVRam
	if l == nil || l.Path == "" || n == nil || n.NVRam == "" {
		return nil
	}
	if _, err := os.Stat(n.NVRam); err == nil || !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	fail := func(err error) error {
		return virt.Errorf(virt.ErrInternal, "domain '%s': creating <nvram>%s</nvram> from %s: %w", c.Name(), n.NVRam, n.Template, err)
	}
	src, err := os.Open(n.Template)
	if err != nil {
		return fail(err)
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(n.NVRam), 0o700); err != nil {
		return fail(err)
	}
	tmp := n.NVRam + ".tmp"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fail(err)
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, n.NVRam)
	}
	if err != nil {
		os.Remove(tmp)
		return fail(err)
	}
	return nil
}
