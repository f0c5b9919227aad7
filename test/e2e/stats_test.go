package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virtd/virtd/internal/testenv"
)

// TestQEMUStats reads the statistics of a real QEMU (TCG) guest through
// virtd and virtsh: its CPU time grows between two reads, and its disk
// counts the reads of the guest. The guest is the firmware and a boot
// sector: SeaBIOS reads the disk's first sector and runs it, a loop that
// keeps the vCPU busy (the test kernel has no driver for the disk).
func TestQEMUStats(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		testenv.Missing(t, "qemu-system-x86_64 is not installed")
	}
	d := newDaemon(t, []string{"qemu"})
	c := []string{"-c", "qemu:///system"}
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	sector := make([]byte, 512)
	copy(sector, []byte{0xeb, 0xfe}) // jmp $
	sector[510], sector[511] = 0x55, 0xaa
	if err := writeFile(disk, string(sector)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 16<<20); err != nil {
		t.Fatal(err)
	}
	xml := filepath.Join(dir, "stats.xml")
	if err := writeFile(xml, fmt.Sprintf(`<domain type='qemu'>
  <name>stats</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%s'/><target dev='vda' bus='virtio'/><boot order='1'/></disk>
  </devices>
</domain>`, disk)); err != nil {
		t.Fatal(err)
	}
	d.mustVirtsh(append(c, "define", xml)...)
	d.mustVirtsh(append(c, "start", "stats")...)
	t.Cleanup(func() {
		if pid := qemuPID(t, "stats"); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	// domstats: virsh's shape, and figures read from the guest at each call.
	n := `([0-9]+)`
	shape := regexp.MustCompile(`^Domain: 'stats'\n  cpu\.time=` + n + `\n  cpu\.user=[0-9]+\n  cpu\.system=[0-9]+\n` +
		`  block\.count=1\n  block\.0\.name=vda\n  block\.0\.path=` + regexp.QuoteMeta(disk) + `\n` +
		`  block\.0\.rd\.reqs=` + n + `\n  block\.0\.rd\.bytes=` + n + `\n(  block\.0\.[a-z.]+=[0-9]+\n)+\n$`)
	read := func() (cpu, reqs, bytes uint64) {
		t.Helper()
		out := d.mustVirtsh(append(c, "-r", "domstats", "--cpu-total", "--block", "stats")...)
		m := shape.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("domstats:\n%s\nwant:\n%s", out, shape)
		}
		num := func(s string) uint64 { v, _ := strconv.ParseUint(s, 10, 64); return v }
		return num(m[1]), num(m[2]), num(m[3])
	}
	eventually(t, 30*time.Second, "the firmware to read the boot sector", func() bool {
		_, reqs, bytes := read()
		return reqs >= 1 && bytes >= 512
	})
	cpu1, _, _ := read()
	eventually(t, 30*time.Second, "cpu.time to grow", func() bool {
		cpu2, _, _ := read()
		return cpu2 > cpu1
	})
	if out := d.mustVirtsh(append(c, "domblkstat", "stats", "vda")...); !regexpMatch(`^vda rd_req [1-9][0-9]*\nvda rd_bytes [1-9][0-9]*\nvda wr_req [0-9]+\nvda wr_bytes [0-9]+\n\n$`, out) {
		t.Errorf("domblkstat:\n%s", out)
	}
	if out := d.mustVirtsh(append(c, "dommemstat", "stats")...); !regexpMatch(`^actual 65536\nrss [1-9][0-9]*\n\n$`, out) {
		t.Errorf("dommemstat:\n%s", out)
	}
	if out := d.mustVirtsh(append(c, "domcapabilities", "--virttype", "qemu")...); !strings.Contains(out, "<domain>qemu</domain>") || !strings.Contains(out, "<machine>pc-i440fx-") {
		t.Errorf("domcapabilities:\n%s", out)
	}

	// Stopped, the domain has its state and no CPU time.
	d.mustVirtsh(append(c, "destroy", "stats")...)
	if out := d.mustVirtsh(append(c, "domstats", "--state", "--cpu-total", "stats")...); out != "Domain: 'stats'\n  state.state=5\n  state.reason=2\n\n" {
		t.Errorf("domstats of the stopped guest:\n%s", out)
	}
	if _, errs, code := d.virtsh(append(c, "domblkstat", "stats", "vda")...); code != 1 || !strings.Contains(errs, "is not running: operation not valid") {
		t.Errorf("domblkstat of the stopped guest: exit %d, %s", code, errs)
	}
}
