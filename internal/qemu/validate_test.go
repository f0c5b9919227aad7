package qemu

import (
	"errors"
	"strings"
	"testing"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/virt"
)

func TestDefinitionRefusals(t *testing.T) {
	base := func(devices string) string {
		return `<domain type='qemu'><name>g</name><memory unit='MiB'>64</memory><devices>` + devices + `</devices></domain>`
	}
	cases := []struct {
		name, xml string
		kind      error
		mention   string
	}{
		{"video", base(`<video><model type='vga'/></video>`), virt.ErrNotSupported, "domain/devices/video: <devices/video> is not supported by the qemu driver"},
		{"sound", base(`<sound model='ich6'/>`), virt.ErrNotSupported, "domain/devices/sound: <devices/sound>"},
		{"disk cache", base(`<disk type='file'><driver name='qemu' cache='none'/><source file='/x'/><target dev='vda'/></disk>`),
			virt.ErrNotSupported, "domain/devices/disk/driver/@cache: attribute 'cache' of <devices/disk/driver>"},
		{"network disk", base(`<disk type='network'><source protocol='nbd' name='x'/><target dev='vda'/></disk>`),
			virt.ErrNotSupported, "<devices/disk type='network'>"},
		{"network interface", base(`<interface type='network'><source network='default'/></interface>`),
			virt.ErrNotSupported, "type='network'"},
		{"spice", base(`<graphics type='spice'/>`), virt.ErrNotSupported, "domain/devices/graphics[@type='spice']: <devices/graphics type='spice'>"},
		{"cpu", `<domain type='qemu'><name>g</name><memory>65536</memory><cpu mode='host-model'><cache mode='passthrough'/></cpu></domain>`, virt.ErrNotSupported, "domain/cpu/cache"},
		{"qemu commandline", `<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>g</name><memory>65536</memory><qemu:commandline><qemu:arg value='-x'/></qemu:commandline></domain>`,
			virt.ErrNotSupported, "domain/qemu:commandline"},
		{"usb controller", base(`<controller type='usb' index='0'/>`), virt.ErrInvalidArgument, "controller type='usb'"},
		{"tablet", base(`<input type='tablet' bus='usb'/>`), virt.ErrInvalidArgument, "input type='tablet'"},
		{"slash in name", `<domain type='qemu'><name>a/b</name><memory>65536</memory></domain>`, virt.ErrInvalidArgument, "'/'"},
		{"no name", `<domain type='qemu'><memory>65536</memory></domain>`, virt.ErrInvalidArgument, "<name>"},
		{"xen type", `<domain type='xen'><name>g</name><memory>65536</memory></domain>`, virt.ErrInvalidArgument, "type"},
		{"no memory", `<domain type='qemu'><name>g</name></domain>`, virt.ErrInvalidArgument, "<memory>"},
		{"bad uuid", `<domain type='qemu'><name>g</name><uuid>zz</uuid><memory>65536</memory></domain>`, virt.ErrInvalidArgument, "UUID"},
		{"bad mac", base(`<interface type='user'><mac address='01:00:00:00:00:01'/></interface>`), virt.ErrInvalidArgument, "multicast"},
		{"virtio cdrom", base(`<disk type='file' device='cdrom'><target dev='vda'/></disk>`), virt.ErrInvalidArgument, "cdrom"},
		{"floppy", base(`<disk type='file' device='floppy'><source file='/x'/><target dev='fda'/></disk>`), virt.ErrInvalidArgument, "floppy"},
		{"on_poweroff preserve", `<domain type='qemu'><name>g</name><memory>65536</memory><on_poweroff>preserve</on_poweroff></domain>`, virt.ErrInvalidArgument, "on_poweroff"},
		{"malformed", `<domain`, virt.ErrInvalidArgument, "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.xml)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %q: kind %v, want %v", err, virt.KindOf(err), tc.kind)
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not name %q", err, tc.mention)
			}
		})
	}
}

func TestDefinitionFillsGeneratedFields(t *testing.T) {
	c, err := parseConfig(`<domain type='qemu'><name>g</name><memory unit='GiB'>1</memory>
	<devices><interface type='user'/><console type='pty'/></devices></domain>`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := domutil.ParseUUID(c.UUID()); err != nil {
		t.Errorf("generated uuid %q: %v", c.UUID(), err)
	}
	mac := c.x.Devices.Interfaces[0].MAC.Address
	if !strings.HasPrefix(mac, "52:54:00:") || len(mac) != 17 {
		t.Errorf("generated MAC %q", mac)
	}
	if c.maxMemKiB != 1<<20 || c.memKiB != 1<<20 {
		t.Errorf("memory %d/%d KiB", c.maxMemKiB, c.memKiB)
	}
	if len(c.x.Devices.Serials) != 1 {
		t.Errorf("a console without a serial port should add serial 0, got %d serials", len(c.x.Devices.Serials))
	}
	out, _ := c.marshal(0)
	for _, want := range []string{"<on_poweroff>destroy</on_poweroff>", "<on_reboot>restart</on_reboot>", "machine=\"pc\"", "offset=\"utc\""} {
		if !strings.Contains(out, want) {
			t.Errorf("stored definition lacks %s:\n%s", want, out)
		}
	}
	c2, _ := parseConfig(`<domain type='qemu'><name>g</name><memory>65536</memory><devices><interface type='user'/></devices></domain>`)
	if c2.UUID() == c.UUID() || c2.x.Devices.Interfaces[0].MAC.Address == mac {
		t.Error("two definitions got the same generated uuid or MAC")
	}
}
