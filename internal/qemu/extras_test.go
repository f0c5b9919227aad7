package qemu

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtd/virtd/virt"
)

func extrasXML(machine, osExtra, features, devices, memBacking string) string {
	return `<domain type='qemu'><name>ex</name><uuid>6b2f3c1e-5a0d-4e57-9d8a-0c1f2e3d4b5a</uuid><memory unit='MiB'>128</memory>` +
		memBacking + `<os` + osExtra + `><type arch='x86_64' machine='` + machine + `'>hvm</type></os><features><acpi/>` + features +
		`</features><devices>` + devices + `</devices></domain>`
}

const sharedMem = `<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>`

// TestExtrasRefusals: bad TPM, virtiofs, firmware and channel values are
// refused, naming the element and the value.
func TestExtrasRefusals(t *testing.T) {
	fs := `<filesystem type='mount' accessmode='passthrough'><driver type='virtiofs'/><source dir='/srv'/><target dir='share'/></filesystem>`
	cases := []struct{ name, xml, mention string }{
		{"tpm model", extrasXML("q35", "", "", `<tpm model='tpm-spapr'><backend type='emulator' version='2.0'/></tpm>`, ""), "<tpm model='tpm-spapr'>"},
		{"tpm version", extrasXML("q35", "", "", `<tpm model='tpm-crb'><backend type='emulator' version='1.2'/></tpm>`, ""), "version='1.2'"},
		{"tpm passthrough", extrasXML("q35", "", "", `<tpm model='tpm-tis'><backend type='passthrough'><device path='/dev/tpm0'/></backend></tpm>`, ""), "passthrough"},
		{"two tpms", extrasXML("q35", "", "", `<tpm><backend type='emulator'/></tpm><tpm><backend type='emulator'/></tpm>`, ""), "only one <tpm>"},
		{"virtiofs without shared memory", extrasXML("pc", "", "", fs, ""), "virtiofs needs <memoryBacking><source type='memfd'/><access mode='shared'/>"},
		{"virtiofs relative dir", extrasXML("pc", "", "", strings.Replace(fs, "/srv", "srv", 1), sharedMem), "<source dir='srv'> must be an absolute path"},
		{"virtiofs comma", extrasXML("pc", "", "", strings.Replace(fs, "/srv", "/a,b", 1), sharedMem), "<source dir='/a,b'>"},
		{"virtiofs mapped", extrasXML("pc", "", "", strings.Replace(fs, "passthrough", "mapped", 1), sharedMem), "accessmode='mapped'"},
		{"virtiofs 9p", extrasXML("pc", "", "", strings.Replace(fs, "virtiofs", "path", 1), sharedMem), "<driver type='path'>"},
		{"virtiofs long tag", extrasXML("pc", "", "", strings.Replace(fs, "'share'", "'"+strings.Repeat("t", 37)+"'", 1), sharedMem), "at most 36 bytes"},
		{"memory file", extrasXML("pc", "", "", "", `<memoryBacking><source type='file'/></memoryBacking>`), "<memoryBacking><source type='file'>"},
		{"firmware", extrasXML("pc", " firmware='coreboot'", "", "", ""), "<os firmware='coreboot'>"},
		{"loader rom", extrasXML("pc", "", "", "", ""), ""},
		{"secure boot on pc", extrasXML("pc", " firmware='efi'", "<smm state='on'/>", "", ""), ""},
		{"channel relative", extrasXML("pc", "", "", `<channel type='unix'><source mode='bind' path='ga.sock'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>`, ""), "<source path='ga.sock'>"},
	}
	// Loader cases need the loader inside <os>.
	cases[12].xml = strings.Replace(extrasXML("pc", "", "", "", ""), "</type>", "</type><loader type='rom'>/x.fd</loader>", 1)
	cases[12].mention = "<loader type='rom'>"
	cases[13].xml = strings.Replace(extrasXML("pc", "", "<smm state='on'/>", "", ""), "</type>", "</type><loader secure='yes' readonly='yes' type='pflash'>/c.fd</loader>", 1)
	cases[13].mention = "<loader secure='yes'> needs a q35 machine, not 'pc'"
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.xml)
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, virt.ErrInvalidArgument) && !errors.Is(err, virt.ErrNotSupported) {
				t.Errorf("error %q: kind %v", err, virt.KindOf(err))
			}
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not name %q", err, tc.mention)
			}
		})
	}
	noSMM := strings.Replace(extrasXML("q35", "", "", "", ""), "</type>", "</type><loader secure='yes'>/c.fd</loader>", 1)
	if _, err := parseConfig(noSMM); err == nil || !strings.Contains(err.Error(), "<smm state='on'/>") {
		t.Errorf("secure boot without SMM: %v, want a refusal naming <smm>", err)
	}
}

// hasSeq reports whether argv holds want as consecutive arguments.
func hasSeq(argv []string, want ...string) bool {
	for i := 0; i+len(want) <= len(argv); i++ {
		ok := true
		for j, w := range want {
			if argv[i+j] != w {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func argvOf(t *testing.T, doc string) []string {
	t.Helper()
	c, err := parseConfig(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := resolveFirmware(c, "/var/lib/virtd/qemu", readFirmware([]string{"testdata/firmware"})); err != nil {
		t.Fatal(err)
	}
	c.x.Devices.Emulator = "/usr/bin/qemu-system-x86_64"
	argv, err := buildArgv(c, runtimePaths{Monitor: "fd=3", PidFile: "/run/q/" + c.UUID() + ".pid"})
	if err != nil {
		t.Fatal(err)
	}
	return argv
}

func TestExtrasArgv(t *testing.T) {
	const u = "6b2f3c1e-5a0d-4e57-9d8a-0c1f2e3d4b5a"
	tpm := argvOf(t, extrasXML("q35", "", "", `<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>`, ""))
	for _, want := range [][]string{
		{"-chardev", "socket,id=chrtpm,path=/run/q/" + u + ".swtpm.sock"},
		{"-tpmdev", "emulator,id=tpm-tpm0,chardev=chrtpm"},
		{"-device", "tpm-crb,tpmdev=tpm-tpm0,id=tpm0"},
	} {
		if !hasSeq(tpm, want...) {
			t.Errorf("TPM argv lacks %q:\n%s", want, strings.Join(tpm, " "))
		}
	}
	fs := argvOf(t, extrasXML("pc", "", "", `<filesystem type='mount'><driver type='virtiofs'/><source dir='/srv/a'/><target dir='tag1'/></filesystem>`, sharedMem))
	for _, want := range [][]string{
		{"-machine", "pc,usb=off,dump-guest-core=off,memory-backend=pc.ram"},
		{"-object", "memory-backend-memfd,id=pc.ram,share=on,size=131072k"},
		{"-chardev", "socket,id=chr-vu-fs0,path=/run/q/" + u + ".fs0.sock"},
		{"-device", "vhost-user-fs-pci,chardev=chr-vu-fs0,tag=tag1,id=fs0,bus=pci.0,addr=0x2"},
	} {
		if !hasSeq(fs, want...) {
			t.Errorf("virtiofs argv lacks %q:\n%s", want, strings.Join(fs, " "))
		}
	}
	efi := argvOf(t, extrasXML("q35", " firmware='efi'", "", "", ""))
	for _, want := range [][]string{
		{"-machine", "q35,usb=off,dump-guest-core=off,pflash0=libvirt-pflash0-format,pflash1=libvirt-pflash1-format"},
		{"-blockdev", "driver=file,filename=/fw/CODE.fd,node-name=libvirt-pflash0-storage,read-only=on"},
		{"-blockdev", "driver=file,filename=/var/lib/virtd/qemu/nvram/ex_VARS.fd,node-name=libvirt-pflash1-storage,read-only=off"},
	} {
		if !hasSeq(efi, want...) {
			t.Errorf("EFI argv lacks %q:\n%s", want, strings.Join(efi, " "))
		}
	}
	sec := argvOf(t, extrasXML("q35", " firmware='efi'", "<smm state='on'/>", "", ""))
	sec2 := argvOf(t, strings.Replace(extrasXML("q35", " firmware='efi'", "<smm state='on'/>", "", ""), "</type>", "</type><loader secure='yes'/>", 1))
	if hasSeq(sec, "-global", "driver=cfi.pflash01,property=secure,value=on") || !hasSeq(sec, "-blockdev", "driver=file,filename=/fw/CODE.fd,node-name=libvirt-pflash0-storage,read-only=on") {
		t.Errorf("EFI without secure boot picked secure firmware:\n%s", strings.Join(sec, " "))
	}
	if !hasSeq(sec2, "-global", "driver=cfi.pflash01,property=secure,value=on") || !hasSeq(sec2, "-blockdev", "driver=file,filename=/fw/SECURE.fd,node-name=libvirt-pflash0-storage,read-only=on") {
		t.Errorf("secure boot argv:\n%s", strings.Join(sec2, " "))
	}
	ga := argvOf(t, extrasXML("pc", "", "", `<channel type='unix'><source mode='bind' path='/run/ga.sock'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>`, ""))
	for _, want := range [][]string{
		{"-device", "virtio-serial-pci,id=virtio-serial0,bus=pci.0,addr=0x2"},
		{"-chardev", "socket,id=charchannel0,path=/run/ga.sock,server=on,wait=off"},
		{"-device", "virtserialport,bus=virtio-serial0.0,nr=1,chardev=charchannel0,id=channel0,name=org.qemu.guest_agent.0"},
	} {
		if !hasSeq(ga, want...) {
			t.Errorf("channel argv lacks %q:\n%s", want, strings.Join(ga, " "))
		}
	}
}

// TestFirmwareFilledIn: firmware='efi' gets the loader and NVRAM paths in
// the saved definition.
func TestFirmwareFilledIn(t *testing.T) {
	c, err := parseConfig(extrasXML("pc", " firmware='efi'", "", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := resolveFirmware(c, "/st", readFirmware([]string{"testdata/firmware"})); err != nil {
		t.Fatal(err)
	}
	doc, _ := c.marshal(0)
	for _, want := range []string{">/fw/CODE.fd</loader>", "template=\"/fw/VARS.fd\"", ">/st/nvram/ex_VARS.fd</nvram>"} {
		if !strings.Contains(doc, want) {
			t.Errorf("definition lacks %s:\n%s", want, doc)
		}
	}
	c2, _ := parseConfig(extrasXML("pc", " firmware='efi'", "", "", ""))
	if err := resolveFirmware(c2, "/st", readFirmware([]string{filepath.Join(t.TempDir(), "none")})); err == nil || !strings.Contains(err.Error(), "<os firmware='efi'>: no UEFI firmware") {
		t.Errorf("no descriptors: %v", err)
	}
}
