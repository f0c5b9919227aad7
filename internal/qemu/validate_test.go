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
		{"video model", base(`<video><model type='nosuch'/></video>`), virt.ErrInvalidArgument, "<video><model type='nosuch'>"},
		{"sound model", base(`<sound model='sb99'/>`), virt.ErrInvalidArgument, "<sound model='sb99'>"},
		{"disk cache", base(`<disk type='file'><driver name='qemu' cache='bogus'/><source file='/x'/><target dev='vda'/></disk>`),
			virt.ErrInvalidArgument, "<driver cache='bogus'>"},
		{"disk io native", base(`<disk type='file'><driver name='qemu' io='native'/><source file='/x'/><target dev='vda'/></disk>`),
			virt.ErrInvalidArgument, "io='native'> needs cache='none'"},
		{"hostdev", base(`<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0' bus='1' slot='0' function='0'/></source></hostdev>`),
			virt.ErrNotSupported, "domain/devices/hostdev"},
		{"ide on q35", `<domain type='qemu'><name>g</name><memory>65536</memory><os><type machine='q35'>hvm</type></os><devices><disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk></devices></domain>`,
			virt.ErrInvalidArgument, "IDE is not supported on a q35 machine"},
		{"unknown machine", `<domain type='qemu'><name>g</name><memory>65536</memory><os><type machine='microvm'>hvm</type></os></domain>`,
			virt.ErrInvalidArgument, "machine='microvm'"},
		{"pci address twice", base(`<disk type='file'><source file='/x'/><target dev='vda'/><address type='pci' domain='0' bus='0' slot='5' function='0'/></disk><disk type='file'><source file='/y'/><target dev='vdb'/><address type='pci' domain='0' bus='0' slot='5' function='0'/></disk>`),
			virt.ErrInvalidArgument, "00:05.0 is used by another device"},
		{"pci bus without controller", base(`<disk type='file'><source file='/x'/><target dev='vda'/><address type='pci' domain='0' bus='3' slot='1' function='0'/></disk>`),
			virt.ErrInvalidArgument, "bus 0x03 has no controller"},
		{"piix3 slot", base(`<interface type='user'><address type='pci' domain='0' bus='0' slot='1' function='4'/></interface>`),
			virt.ErrInvalidArgument, "belongs to the PIIX3 chipset"},
		{"drive address on virtio", base(`<disk type='file'><source file='/x'/><target dev='vda'/><address type='drive' controller='0' bus='0' unit='0'/></disk>`),
			virt.ErrInvalidArgument, "virtio disk takes a PCI <address>"},
		{"same drive address", base(`<disk type='file'><source file='/x'/><target dev='sda' bus='sata'/></disk><disk type='file'><source file='/y'/><target dev='sdb' bus='sata'/><address type='drive' controller='0' bus='0' target='0' unit='0'/></disk>`),
			virt.ErrInvalidArgument, "same drive address"},
		{"root port on pc", base(`<controller type='pci' index='1' model='pcie-root-port'/>`), virt.ErrInvalidArgument, "needs a q35 machine"},
		{"usb model", base(`<controller type='usb' model='xyz'/>`), virt.ErrInvalidArgument, "<controller type='usb' model='xyz'>"},
		{"usb device without usb", base(`<controller type='usb' model='none'/><input type='tablet' bus='usb'/>`), virt.ErrInvalidArgument, "USB controller is model='none'"},
		{"tablet on ps2", base(`<input type='tablet' bus='ps2'/>`), virt.ErrInvalidArgument, "input type='tablet' bus='ps2'"},
		{"spice tls", base(`<graphics type='spice' tlsPort='5901'/>`), virt.ErrInvalidArgument, "tlsPort='5901'>: TLS"},
		{"graphics listen", base(`<graphics type='vnc' listen='example'/>`), virt.ErrInvalidArgument, "listen='example'"},
		{"rng source", base(`<rng model='virtio'><backend model='random'>/etc/shadow</backend></rng>`), virt.ErrInvalidArgument, "/etc/shadow"},
		{"watchdog action", base(`<watchdog model='i6300esb' action='dump'/>`), virt.ErrInvalidArgument, "action='dump'"},
		{"channel target", base(`<channel type='pty'><target type='guestfwd' address='10.0.2.1' port='4600'/></channel>`), virt.ErrNotSupported, "domain/devices/channel/target[@type='guestfwd']"},
		{"chardev tcp port", base(`<serial type='tcp'><source mode='bind' host='127.0.0.1' service='http'/></serial>`), virt.ErrInvalidArgument, "service \"http\""},
		{"hyperv spinlocks", `<domain type='qemu'><name>g</name><memory>65536</memory><features><hyperv><spinlocks state='on' retries='10'/></hyperv></features></domain>`,
			virt.ErrInvalidArgument, "retries='10'"},
		{"timer", `<domain type='qemu'><name>g</name><memory>65536</memory><clock offset='utc'><timer name='rtc' tickpolicy='merge'/></clock></domain>`,
			virt.ErrInvalidArgument, "tickpolicy='merge'"},
		{"seclabel", `<domain type='qemu'><name>g</name><memory>65536</memory><seclabel type='dynamic' model='selinux'/></domain>`,
			virt.ErrInvalidArgument, "seclabel type='dynamic'"},
		{"network disk", base(`<disk type='network'><source protocol='nbd' name='x'/><target dev='vda'/></disk>`),
			virt.ErrNotSupported, "<devices/disk type='network'>"},
		{"network interface", base(`<interface type='network'><source network='default'/></interface>`),
			virt.ErrNotSupported, "type='network'"},
		{"cpu", `<domain type='qemu'><name>g</name><memory>65536</memory><cpu mode='host-model'><cache mode='passthrough'/></cpu></domain>`, virt.ErrNotSupported, "domain/cpu/cache"},
		{"qemu commandline", `<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>g</name><memory>65536</memory><qemu:commandline><qemu:arg value='-x'/></qemu:commandline></domain>`,
			virt.ErrNotSupported, "domain/qemu:commandline"},
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
