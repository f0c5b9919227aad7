package domconfig

import (
	"fmt"
	"reflect"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// handledDomain and handledDevices are the children of <domain> and of
// <devices> that FromXML reads (or, for title, description and metadata,
// keeps in the stored XML). Anything else present is refused by name, so
// that nothing a user wrote is silently dropped.
var (
	handledDomain = map[string]bool{
		"XMLName": true, "Type": true, "ID": true, "Name": true, "UUID": true,
		"Title": true, "Description": true, "Metadata": true,
		"Memory": true, "CurrentMemory": true, "VCPU": true,
		"Bootloader": true, "BootloaderArgs": true, "OS": true, "Features": true,
		"Clock": true, "OnPoweroff": true, "OnReboot": true, "OnCrash": true,
		"Devices": true,
	}
	handledDevices = map[string]bool{
		"Emulator": true, "Disks": true, "Controllers": true, "Interfaces": true,
		"Serials": true, "Consoles": true, "Inputs": true, "Graphics": true,
		"Videos": true, "Hostdevs": true, "MemBalloon": true,
	}
)

// checkElements refuses the children of <domain> and <devices> that the
// Xen driver does not handle.
func checkElements(x *libvirtxml.Domain) error {
	if err := checkFields(x.Name, reflect.ValueOf(x).Elem(), handledDomain, ""); err != nil {
		return err
	}
	if x.Devices != nil {
		return checkFields(x.Name, reflect.ValueOf(x.Devices).Elem(), handledDevices, "devices/")
	}
	return nil
}

func checkFields(name string, v reflect.Value, handled map[string]bool, prefix string) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if handled[f.Name] || v.Field(i).IsZero() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("xml"), ",")
		if tag == "" || tag == "-" {
			tag = f.Name
		}
		return unsupported(name, fmt.Sprintf("<%s%s>", prefix, tag))
	}
	return nil
}
