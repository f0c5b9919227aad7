package qemu

import (
	"fmt"
	"reflect"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

// supported is every part of libvirt's domain XML the driver honours, as
// paths of libvirtxml.Domain's Go fields (slices and pointers are walked
// through). A set field whose path is not listed is refused at define,
// naming the XML element or attribute, so that nothing is dropped silently.
// Values are checked further in parseConfig.
var supported = pathSet(`
Type Name UUID Title Description
Memory Memory.Value Memory.Unit
CurrentMemory CurrentMemory.Value CurrentMemory.Unit
VCPU VCPU.Value VCPU.Placement VCPU.Current
OS OS.Type OS.Type.Type OS.Type.Arch OS.Type.Machine
OS.Kernel OS.Initrd OS.Cmdline OS.BootDevices OS.BootDevices.Dev
Features Features.ACPI Features.APIC
Clock Clock.Offset
OnPoweroff OnReboot OnCrash
Devices Devices.Emulator
Devices.Disks Devices.Disks.Device
Devices.Disks.Driver Devices.Disks.Driver.Name Devices.Disks.Driver.Type
Devices.Disks.Source Devices.Disks.Source.File Devices.Disks.Source.File.File
Devices.Disks.Source.Block Devices.Disks.Source.Block.Dev
Devices.Disks.Target Devices.Disks.Target.Dev Devices.Disks.Target.Bus
Devices.Disks.ReadOnly Devices.Disks.Boot Devices.Disks.Boot.Order
Devices.Interfaces Devices.Interfaces.MAC Devices.Interfaces.MAC.Address
Devices.Interfaces.Source Devices.Interfaces.Source.User
Devices.Interfaces.Source.Bridge Devices.Interfaces.Source.Bridge.Bridge
Devices.Interfaces.Target Devices.Interfaces.Target.Dev
Devices.Interfaces.Model Devices.Interfaces.Model.Type
Devices.Interfaces.Boot Devices.Interfaces.Boot.Order
Devices.Serials Devices.Serials.Source
Devices.Serials.Source.Pty Devices.Serials.Source.Pty.Path
Devices.Serials.Source.File Devices.Serials.Source.File.Path Devices.Serials.Source.File.Append
Devices.Serials.Target Devices.Serials.Target.Port Devices.Serials.Target.Type
Devices.Serials.Target.Model Devices.Serials.Target.Model.Name
Devices.Consoles Devices.Consoles.TTY Devices.Consoles.Source
Devices.Consoles.Source.Pty Devices.Consoles.Source.Pty.Path
Devices.Consoles.Source.File Devices.Consoles.Source.File.Path Devices.Consoles.Source.File.Append
Devices.Consoles.Target Devices.Consoles.Target.Type Devices.Consoles.Target.Port
Devices.Graphics Devices.Graphics.VNC Devices.Graphics.VNC.Port Devices.Graphics.VNC.AutoPort
Devices.Graphics.VNC.Listen Devices.Graphics.VNC.Listeners
Devices.Graphics.VNC.Listeners.Address Devices.Graphics.VNC.Listeners.Address.Address
Devices.MemBalloon Devices.MemBalloon.Model
Devices.Controllers Devices.Controllers.Type Devices.Controllers.Index Devices.Controllers.Model
Devices.Controllers.USB Devices.Controllers.PCI
Devices.Inputs Devices.Inputs.Type Devices.Inputs.Bus Devices.Inputs.Source
`)

func pathSet(s string) map[string]bool {
	m := make(map[string]bool)
	for _, p := range strings.Fields(s) {
		m[p] = true
	}
	return m
}

// checkSupported refuses the first set field of x outside the supported set.
func checkSupported(x *libvirtxml.Domain) error {
	return walk(reflect.ValueOf(x).Elem(), "", "domain")
}

// walk checks the fields of struct v; path is its Go field path, where its
// XML path for messages.
func walk(v reflect.Value, path, where string) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		fv := v.Field(i)
		if f.Name == "XMLName" || !f.IsExported() || fv.IsZero() {
			continue
		}
		p := f.Name
		if path != "" {
			p = path + "." + f.Name
		}
		w, desc := describe(f, where)
		if !supported[p] {
			return fmt.Errorf("unsupported configuration: %s is not supported by the qemu driver: %w", desc, virt.ErrNotSupported)
		}
		if err := walkValue(fv, p, w); err != nil {
			return err
		}
	}
	return nil
}

func walkValue(v reflect.Value, path, where string) error {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return walkValue(v.Elem(), path, where)
	case reflect.Slice:
		for i := range v.Len() {
			if err := walkValue(v.Index(i), path, where); err != nil {
				return err
			}
		}
	case reflect.Struct:
		return walk(v, path, where)
	}
	return nil
}

// describe returns the XML path of field f of the element at where, and
// how to name it in an error: an element, an attribute, or a member of one
// of the type='...' unions libvirtxml marshals by hand (tag "-").
func describe(f reflect.StructField, where string) (path, desc string) {
	tag := f.Tag.Get("xml")
	name, opts, _ := strings.Cut(tag, ",")
	switch {
	case tag == "-":
		t := strings.ToLower(f.Name)
		return where, fmt.Sprintf("<%s type='%s'>", where, t)
	case tag == "" || strings.Contains(opts, "chardata"):
		// Namespaced extensions (qemu:commandline, ...) have no tag.
		if tag == "" {
			return where, fmt.Sprintf("the %s extension of <%s>", f.Name, where)
		}
		return where, "the content of <" + where + ">"
	case strings.Contains(opts, "attr"):
		return where, fmt.Sprintf("attribute '%s' of <%s>", name, where)
	}
	return where + "/" + name, "element <" + where + "/" + name + ">"
}
