package qemu

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

// genericKernel is the distribution's generic kernel test/qemu/setup.sh
// fetches beside the cloud kernel: the cloud kernel has no AHCI driver.
func genericKernel(t *testing.T) string {
	t.Helper()
	kernel, _ := bootAssets(t)
	k := filepath.Join(filepath.Dir(kernel), "vmlinuz-generic")
	if _, err := os.Stat(k); err != nil {
		missing(t, k+" is missing")
	}
	return k
}

// TestRealGuestDisksOnEachBus boots a pc and a q35 guest, in the shapes
// virt-install writes, with a disk on each bus the machine has (pc: IDE,
// virtio, SCSI; q35: SATA, virtio, SCSI), each with its own serial
// number, and checks that the guest kernel sees every disk with its
// serial. The q35 guest also has the guest agent's channel with no path,
// as tools write it: the driver gives it a socket, the live XML shows it,
// and the agent in the guest answers guest-ping there.
func TestRealGuestDisksOnEachBus(t *testing.T) {
	kernel := genericKernel(t)
	_, initrd := bootAssets(t)
	for _, tc := range []struct {
		machine string
		buses   []string
	}{
		{"pc", []string{"ide", "virtio", "scsi"}},
		{"q35", []string{"sata", "virtio", "scsi"}},
	} {
		t.Run(tc.machine, func(t *testing.T) {
			drv, dir := newTestDriver(t)
			serial := filepath.Join(dir, "console.log")
			var disks strings.Builder
			var want []string
			for _, bus := range tc.buses {
				img := filepath.Join(dir, bus+".img")
				if err := os.WriteFile(img, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(img, 16<<20); err != nil {
					t.Fatal(err)
				}
				dev := map[string]string{"ide": "hda", "sata": "sda", "virtio": "vda", "scsi": "sdb"}[bus]
				ser := strings.ToUpper(bus) + "SER"
				want = append(want, ser)
				disks.WriteString(`<disk type='file' device='disk'><driver name='qemu' type='raw' cache='writeback'/><source file='` + img +
					`'/><target dev='` + dev + `' bus='` + bus + `'/><serial>` + ser + `</serial></disk>`)
			}
			disks.WriteString(`<controller type='scsi' model='virtio-scsi'/>`)
			if tc.machine == "q35" {
				disks.WriteString(`<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>`)
			}
			d := define(t, drv, extrasBootXML("disks-"+tc.machine, tc.machine, kernel, initrd, serial,
				"virtd.disks="+strconv.Itoa(len(tc.buses)), "", disks.String(), ""))
			if _, err := drv.StartDomain(ctxT(t), d.UUID); err != nil {
				t.Fatal(err)
			}
			waitMarker(t, serial, "VIRTD-REPORT-DONE", 180*time.Second)
			var got []string
			for _, f := range strings.Fields(consoleField(t, serial, "VIRTD-DISKS")) {
				if _, ser, ok := strings.Cut(f, ":"); ok && ser != "" {
					got = append(got, ser)
				}
			}
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				b, _ := os.ReadFile(serial)
				t.Fatalf("the guest sees disks with serials %v, want %v\n%s", got, want, b)
			}
			if tc.machine == "q35" {
				pingAgent(t, drv, d.UUID)
			}
		})
	}
}

// pingAgent sends guest-ping to the guest agent on the socket the live
// XML names for its channel.
func pingAgent(t *testing.T, drv *Driver, uuid string) {
	t.Helper()
	doc, err := drv.DomainXML(ctxT(t), uuid, false)
	if err != nil {
		t.Fatal(err)
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	sock := ""
	for _, ch := range x.Devices.Channels {
		if ch.Target.VirtIO != nil && ch.Target.VirtIO.Name == "org.qemu.guest_agent.0" && ch.Source.UNIX != nil {
			sock = ch.Source.UNIX.Path
		}
	}
	if !strings.HasPrefix(sock, drv.cfg.RunDir) {
		t.Fatalf("the agent's channel socket %q is not under the run directory %s:\n%s", sock, drv.cfg.RunDir, doc)
	}
	guestPing(t, sock)
}

// guestPing sends guest-ping to a guest agent on the socket sock and
// wants its empty return.
func guestPing(t *testing.T, sock string) {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := conn.Write([]byte(`{"execute":"guest-ping"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	var resp struct {
		Return *struct{} `json:"return"`
	}
	if err != nil || json.Unmarshal([]byte(line), &resp) != nil || resp.Return == nil {
		t.Errorf("guest-ping answered %q (%v)", line, err)
	}
}

// TestHugePagesCheckedAtStart: a guest backed by huge pages starts only
// when the host's pool has enough free: QEMU would map them and the guest
// fail later. On a host without enough the start is refused, naming what
// is free and what is needed, and nothing is left running.
func TestHugePagesCheckedAtStart(t *testing.T) {
	needQEMU(t)
	drv, dir := newTestDriver(t)
	d := define(t, drv, `<domain type='qemu'><name>huge</name><memory unit='MiB'>64</memory>
<memoryBacking><hugepages/></memoryBacking><os><type arch='x86_64'>hvm</type></os></domain>`)
	free, err := hugePagesFreeKiB()
	if err != nil {
		t.Fatal(err)
	}
	enough := free >= 64*1024
	_, err = drv.StartDomain(ctxT(t), d.UUID)
	if enough {
		if err != nil {
			t.Fatalf("the host has the huge pages, and the start failed: %v", err)
		}
		return
	}
	if !errors.Is(err, virt.ErrNotSupported) || !strings.Contains(err.Error(), "<hugepages>") || !strings.Contains(err.Error(), "needs 65536 KiB") {
		t.Fatalf("start on a host without the huge pages: %v; want not supported naming <hugepages> and 65536 KiB", err)
	}
	wantState(t, drv, d.UUID, virt.StateShutoff, virt.ShutoffUnknown)
	if left := runFiles(t, dir); len(left) != 0 {
		t.Errorf("runtime files left: %v", left)
	}
}
