package qemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
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

// firmwareDirs hold QEMU's firmware descriptors; a file in an earlier
// directory hides one of the same name in a later one.
var firmwareDirs = []string{"/etc/qemu/firmware", "/usr/share/qemu/firmware"}

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
		// Filled in when the firmware is picked.
		o.Loader = &libvirtxml.DomainLoader{}
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

// firmwareDescriptor is the part of a QEMU firmware descriptor (see
// QEMU's docs/interop/firmware.json) the driver reads.
type firmwareDescriptor struct {
	InterfaceTypes []string `json:"interface-types"`
	Mapping        struct {
		Device     string `json:"device"`
		Executable struct {
			Filename string `json:"filename"`
			Format   string `json:"format"`
		} `json:"executable"`
		NVRAMTemplate struct {
			Filename string `json:"filename"`
			Format   string `json:"format"`
		} `json:"nvram-template"`
	} `json:"mapping"`
	Targets []struct {
		Architecture string   `json:"architecture"`
		Machines     []string `json:"machines"`
	} `json:"targets"`
	Features []string `json:"features"`
}

// firmwareDescriptors reads the descriptors of dirs, in the order QEMU
// defines: by file name, an earlier directory's file hiding a later one's.
func firmwareDescriptors(dirs []string) []firmwareDescriptor {
	byName := map[string]string{}
	for i := len(dirs) - 1; i >= 0; i-- {
		paths, _ := filepath.Glob(filepath.Join(dirs[i], "*.json"))
		for _, p := range paths {
			byName[filepath.Base(p)] = p
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []firmwareDescriptor
	for _, n := range names {
		b, err := os.ReadFile(byName[n])
		if err != nil {
			continue
		}
		var d firmwareDescriptor
		if json.Unmarshal(b, &d) == nil {
			out = append(out, d)
		}
	}
	return out
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

// matches reports whether d is UEFI pflash firmware for arch and machine,
// with secure boot as asked ("" prefers none) and, if it needs SMM, smm on.
func (d *firmwareDescriptor) matches(arch, machine, secure string, smm bool) bool {
	has := func(list []string, s string) bool { return contains(list, s) }
	if !has(d.InterfaceTypes, "uefi") || d.Mapping.Device != "flash" || d.Mapping.Executable.Filename == "" {
		return false
	}
	if f := d.Mapping.Executable.Format; f != "" && f != "raw" {
		return false
	}
	ok := false
	for _, t := range d.Targets {
		if t.Architecture != arch {
			continue
		}
		for _, m := range t.Machines {
			if g, _ := path.Match(m, machinePattern(machine)); g {
				ok = true
			}
		}
	}
	if !ok {
		return false
	}
	if has(d.Features, "secure-boot") != (secure == "yes") {
		return false
	}
	if has(d.Features, "requires-smm") && !smm {
		return false
	}
	return !has(d.Features, "enrolled-keys") || secure == "yes"
}

// resolveFirmware fills in the loader and NVRAM paths of an EFI domain:
// the firmware from descriptors in dirs when only firmware='efi' is
// given, the template of a given loader from the descriptor that names
// it, and the NVRAM file under stateDir/nvram.
func resolveFirmware(c *config, stateDir string, dirs []string) error {
	x := c.x
	l := x.OS.Loader
	if l == nil {
		return nil
	}
	descs := firmwareDescriptors(dirs)
	if l.Path == "" {
		var pick *firmwareDescriptor
		for i := range descs {
			if descs[i].matches(x.OS.Type.Arch, x.OS.Type.Machine, l.Secure, featureSMM(x) == "on") {
				pick = &descs[i]
				break
			}
		}
		if pick == nil {
			return fmt.Errorf("domain '%s': <os firmware='efi'>: no UEFI firmware for %s machine '%s' (secure boot %q) in %s: %w",
				c.Name(), x.OS.Type.Arch, x.OS.Type.Machine, l.Secure, strings.Join(dirs, ", "), virt.ErrNotFound)
		}
		l.Path = pick.Mapping.Executable.Filename
		if l.Secure == "" {
			l.Secure = "no"
		}
		if x.OS.NVRam == nil {
			x.OS.NVRam = &libvirtxml.DomainNVRam{}
		}
		if x.OS.NVRam.Template == "" {
			x.OS.NVRam.Template = pick.Mapping.NVRAMTemplate.Filename
		}
	}
	if x.OS.NVRam == nil {
		x.OS.NVRam = &libvirtxml.DomainNVRam{}
	}
	n := x.OS.NVRam
	if n.Template == "" {
		for _, d := range descs {
			if d.Mapping.Executable.Filename == l.Path {
				n.Template = d.Mapping.NVRAMTemplate.Filename
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
