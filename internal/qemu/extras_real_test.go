package qemu

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// extrasBootXML is bootXML on machine with extra <os>, <devices> and
// top-level elements, and virtd.report on the guest's command line.
func extrasBootXML(name, machine, kernel, initrd, serial, cmdline, osExtra, devices, top string) string {
	return fmt.Sprintf(`<domain type='qemu'><name>%s</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>%s
<os%s><type arch='x86_64' machine='%s'>hvm</type><kernel>%s</kernel><initrd>%s</initrd><cmdline>console=ttyS0 quiet virtd.report %s</cmdline></os>
<features><acpi/><apic/></features>
<devices><serial type='file'><source path='%s'/><target port='0'/></serial>%s</devices>
</domain>`, name, top, osExtra, machine, kernel, initrd, cmdline, serial, devices)
}

// consoleField is the value of the last "marker: value" line of the
// serial console file.
func consoleField(t *testing.T, path, marker string) string {
	t.Helper()
	b, _ := os.ReadFile(path)
	v := ""
	for _, l := range strings.Split(string(b), "\n") {
		if _, after, ok := strings.Cut(strings.TrimRight(l, "\r"), marker+": "); ok {
			v = after
		}
	}
	return v
}

func helpersOf(t *testing.T, drv *Driver, uuid string) []helperRecord {
	t.Helper()
	d, err := drv.find(ctxT(t), uuid)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Unlock()
	if d.Priv.inst == nil {
		return nil
	}
	return append([]helperRecord(nil), d.Priv.inst.rec.Helpers...)
}

// TestRealUEFIBoot boots the guest kernel through OVMF (firmware='efi',
// filled in from QEMU's descriptors) on q35, with the NVRAM file made
// from its template.
func TestRealUEFIBoot(t *testing.T) {
	kernel, initrd := bootAssets(t)
	if len(readFirmware(firmwareDirs).fws) == 0 {
		missing(t, "no firmware descriptors (ovmf is not installed)")
	}
	drv, dir := newTestDriver(t)
	serial := filepath.Join(dir, "console.log")
	d := define(t, drv, extrasBootXML("uefi", "q35", kernel, initrd, serial, "", " firmware='efi'", "", ""))
	doc, err := drv.DomainXML(ctxT(t), d.UUID, true)
	if err != nil {
		t.Fatal(err)
	}
	// As libvirt: the firmware is picked at start; the definition keeps
	// firmware='efi' alone.
	if strings.Contains(doc, "<loader") || strings.Contains(doc, "<nvram") {
		t.Fatalf("definition with a firmware picked at define:\n%s", doc)
	}
	if _, err := drv.StartDomain(ctxT(t), d.UUID); err != nil {
		t.Fatal(err)
	}
	nvram := filepath.Join(drv.cfg.StateDir, "nvram", "uefi_VARS.fd")
	live, err := drv.DomainXML(ctxT(t), d.UUID, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(live, "<loader readonly=\"yes\" secure=\"no\" type=\"pflash\">") || !strings.Contains(live, nvram) {
		t.Fatalf("live definition without the picked firmware and NVRAM %s:\n%s", nvram, live)
	}
	waitMarker(t, serial, "VIRTD-GUEST-UP", 120*time.Second)
	if st, err := os.Stat(nvram); err != nil || st.Size() == 0 {
		t.Errorf("NVRAM file %s: %v", nvram, err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "log", d.UUID+".log"))
	if !strings.Contains(string(b), "pflash0=libvirt-pflash0-format") {
		t.Errorf("QEMU was not started with pflash firmware:\n%s", b)
	}
}

// TestRealTPM: the guest kernel sees the swtpm TPM; swtpm is reaped
// when the guest is destroyed; its state stays for the next start and
// goes at undefine.
func TestRealTPM(t *testing.T) {
	kernel, initrd := bootAssets(t)
	if _, err := helperPath("swtpm", "/usr/bin"); err != nil {
		missing(t, "swtpm is not installed")
	}
	drv, dir := newTestDriver(t)
	serial := filepath.Join(dir, "console.log")
	d := define(t, drv, extrasBootXML("tpm", "q35", kernel, initrd, serial, "", "", `<tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>`, ""))
	if _, err := drv.StartDomain(ctxT(t), d.UUID); err != nil {
		t.Fatal(err)
	}
	hs := helpersOf(t, drv, d.UUID)
	if len(hs) != 1 || hs[0].Kind != "swtpm" {
		t.Fatalf("helpers %+v, want one swtpm", hs)
	}
	waitMarker(t, serial, "VIRTD-REPORT-DONE", 120*time.Second)
	if got := consoleField(t, serial, "VIRTD-TPM"); got != "tpm0" {
		t.Errorf("guest's TPM %q, want tpm0", got)
	}
	if err := drv.DestroyDomain(ctxT(t), d.UUID); err != nil {
		t.Fatal(err)
	}
	if !processGone(hs[0].Pid) {
		t.Errorf("swtpm %d still there after destroy", hs[0].Pid)
	}
	if _, err := os.Stat(hs[0].Socket); !os.IsNotExist(err) {
		t.Errorf("swtpm socket %s left: %v", hs[0].Socket, err)
	}
	state := filepath.Join(drv.cfg.StateDir, "swtpm", d.UUID, "tpm2")
	if m, _ := filepath.Glob(filepath.Join(state, "*")); len(m) == 0 {
		t.Errorf("no TPM state kept in %s", state)
	}
	if err := drv.UndefineDomain(ctxT(t), d.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("TPM state %s left after undefine: %v", state, err)
	}
}

// TestRealVirtiofs: the guest mounts a virtiofs share and reads a file
// the host wrote.
func TestRealVirtiofs(t *testing.T) {
	kernel, initrd := bootAssets(t)
	if _, err := helperPath("virtiofsd", "/usr/libexec", "/usr/lib/qemu"); err != nil {
		missing(t, "virtiofsd is not installed")
	}
	drv, dir := newTestDriver(t)
	share := filepath.Join(dir, "share")
	if err := os.Mkdir(share, 0o755); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("from-host-%d", time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(share, "marker"), []byte(want+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(dir, "console.log")
	fs := `<filesystem type='mount' accessmode='passthrough'><driver type='virtiofs'/><source dir='` + share + `'/><target dir='hostshare'/></filesystem>`
	d := define(t, drv, extrasBootXML("vfs", "pc", kernel, initrd, serial, "virtd.virtiofs=hostshare", "", fs, sharedMem))
	if _, err := drv.StartDomain(ctxT(t), d.UUID); err != nil {
		t.Fatal(err)
	}
	hs := helpersOf(t, drv, d.UUID)
	waitMarker(t, serial, "VIRTD-REPORT-DONE", 120*time.Second)
	if got := consoleField(t, serial, "VIRTD-VIRTIOFS"); got != want {
		t.Errorf("guest read %q from the share, want %q", got, want)
	}
	if err := drv.DestroyDomain(ctxT(t), d.UUID); err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if !processGone(h.Pid) {
			t.Errorf("%s %d still there after destroy", h.Kind, h.Pid)
		}
	}
}

// TestRealGuestAgent: qemu-ga in the guest answers guest-ping on the
// channel's socket.
func TestRealGuestAgent(t *testing.T) {
	kernel, initrd := bootAssets(t)
	drv, dir := newTestDriver(t)
	serial := filepath.Join(dir, "console.log")
	sock := filepath.Join(dir, "ga.sock")
	ch := `<channel type='unix'><source mode='bind' path='` + sock + `'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>`
	d := define(t, drv, extrasBootXML("ga", "pc", kernel, initrd, serial, "", "", ch, ""))
	if _, err := drv.StartDomain(ctxT(t), d.UUID); err != nil {
		t.Fatal(err)
	}
	waitMarker(t, serial, "VIRTD-REPORT-DONE", 120*time.Second)
	if got := consoleField(t, serial, "VIRTD-GA"); got != "started" {
		t.Fatalf("guest agent %q, want started", got)
	}
	guestPing(t, sock)
}
