package domxml

import (
	"errors"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

func parse(t *testing.T, doc string) *libvirtxml.Domain {
	t.Helper()
	x, err := Parse(doc)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return x
}

func TestFieldsCheck(t *testing.T) {
	f := NewFields("demo", `Type Name Memory.Value Memory.Unit`,
		`Devices.Disks.Source.File.File Devices.Disks.Target.Dev Devices.Interfaces.Source.User Devices.Graphics.VNC OS.*`)
	const head = `<domain type='kvm'><name>g</name><memory unit='MiB'>64</memory>`
	for _, tc := range []struct{ name, doc, want string }{
		{"element", head + `<devices><sound model='ich9'/></devices></domain>`,
			"domain/devices/sound: <devices/sound> is not supported by the demo driver"},
		{"top-level element", head + `<cputune><shares>1</shares></cputune></domain>`,
			"domain/cputune: <cputune> is not supported by the demo driver"},
		{"attribute", head + `<devices><disk type='file'><source file='/x'/><target dev='vda' bus='virtio'/></disk></devices></domain>`,
			"domain/devices/disk/target/@bus: attribute 'bus' of <devices/disk/target> is not supported by the demo driver"},
		{"union member", head + `<devices><disk type='block'><source dev='/dev/sda'/><target dev='vda'/></disk></devices></domain>`,
			"domain/devices/disk[@type='block']: <devices/disk type='block'> is not supported"},
		{"union member of the element itself", head + `<devices><graphics type='spice'/></devices></domain>`,
			"domain/devices/graphics[@type='spice']: <devices/graphics type='spice'> is not supported"},
		{"element content", `<domain type='kvm'><name>g</name><vcpu>2</vcpu></domain>`,
			"domain/vcpu: <vcpu> is not supported"},
		{"namespaced extension", `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>g</name><qemu:commandline><qemu:arg value='-x'/></qemu:commandline></domain>`,
			"domain/qemu:commandline: <qemu:commandline> is not supported"},
		{"hostdev", head + `<devices><hostdev mode='subsystem' type='usb'><source><vendor id='0x1'/><product id='0x2'/></source></hostdev></devices></domain>`,
			"domain/devices/hostdev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.Check(parse(t, tc.doc))
			if !errors.Is(err, virt.ErrNotSupported) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want a not-supported error containing %q", err, tc.want)
			}
		})
	}
	for _, doc := range []string{
		head + `<devices><disk type='file'><source file='/x'/><target dev='vda'/></disk><interface type='user'/></devices></domain>`,
		// OS.* honours all of <os>.
		head + `<os firmware='efi'><type arch='x86_64' machine='q35'>hvm</type><loader readonly='yes'>/x</loader><boot dev='hd'/></os></domain>`,
		// Metadata is never checked.
		head + `<metadata><a:b xmlns:a='urn:a'/></metadata></domain>`,
	} {
		if err := f.Check(parse(t, doc)); err != nil {
			t.Errorf("Check(%s) = %v, want nil", doc, err)
		}
	}
	if err := NewFields("all", "*").Check(parse(t, head+`<devices><sound model='ich9'/><graphics type='spice'/></devices><cputune><shares>1</shares></cputune></domain>`)); err != nil {
		t.Errorf("a driver that honours * refused: %v", err)
	}
}

func TestNewFieldsPanicsOnATypo(t *testing.T) {
	for _, p := range []string{"Devices.Disk", "devices", "Memory.Value.X", "Devices.Disks.Source.File.Path.*"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewFields(%q) did not panic", p)
				}
			}()
			NewFields("demo", p)
		}()
	}
}
