package virtsh

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// devXML is a test domain with a disk and an interface.
const devXML = `<domain type='test'><name>dev</name><memory>65536</memory><vcpu>2</vcpu>
<devices>
  <disk type='file' device='disk'><source file='/var/lib/virtd/dev.img'/><target dev='vda' bus='virtio'/></disk>
  <interface type='bridge'><mac address='52:54:00:aa:bb:cc'/><source bridge='br0'/><target dev='vnet7'/></interface>
</devices></domain>`

func TestStatsCommands(t *testing.T) {
	h := newHarness(t)
	file := filepath.Join(t.TempDir(), "dev.xml")
	if err := os.WriteFile(file, []byte(devXML), 0o644); err != nil {
		t.Fatal(err)
	}
	h.ok("define", file)
	exact := []struct {
		args []string
		want string
	}{
		{[]string{"domstats", "--state", "test"}, "Domain: 'test'\n  state.state=1\n  state.reason=1\n\n"},
		{[]string{"domstats", "--state"}, "Domain: 'test'\n  state.state=1\n  state.reason=1\n\nDomain: 'dev'\n  state.state=5\n  state.reason=0\n\n"},
		{[]string{"domstats", "--state", "--list-inactive"}, "Domain: 'dev'\n  state.state=5\n  state.reason=0\n\n"},
		{[]string{"domstats", "--vcpu", "--balloon", "--block", "--interface", "dev"},
			"Domain: 'dev'\n  balloon.current=65536\n  balloon.maximum=65536\n  vcpu.current=2\n  vcpu.maximum=2\n" +
				"  block.count=1\n  block.0.name=vda\n  block.0.path=/var/lib/virtd/dev.img\n\n"},
		{[]string{"domstats", "--state", "dev", "test"}, "Domain: 'dev'\n  state.state=5\n  state.reason=0\n\nDomain: 'test'\n  state.state=1\n  state.reason=1\n\n"},
		{[]string{"nodememstats"}, "total  :              3145728 KiB\nfree   :              1048576 KiB\nbuffers:                65536 KiB\ncached :               524288 KiB\n\n"},
		{[]string{"nodememstats", "--cell", "1"}, "total  :              1572864 KiB\nfree   :               524288 KiB\nbuffers:                    0 KiB\ncached :                    0 KiB\n\n"},
	}
	for _, tt := range exact {
		if got := h.ok(tt.args...); got != tt.want {
			t.Errorf("virtsh %s:\n%s\nwant:\n%s", strings.Join(tt.args, " "), got, tt.want)
		}
	}

	h.ok("start", "dev")
	n := `[0-9]+`
	pattern := []struct {
		args []string
		want string
	}{
		{[]string{"domstats", "--cpu-total", "dev"}, "^Domain: 'dev'\n  cpu.time=" + n + "\n  cpu.user=" + n + "\n  cpu.system=" + n + "\n\n$"},
		{[]string{"domstats", "--interface", "dev"}, "^Domain: 'dev'\n  net.count=1\n  net.0.name=vnet7\n" +
			"  net.0.rx.bytes=" + n + "\n  net.0.rx.pkts=" + n + "\n  net.0.rx.errs=0\n  net.0.rx.drop=0\n" +
			"  net.0.tx.bytes=" + n + "\n  net.0.tx.pkts=" + n + "\n  net.0.tx.errs=0\n  net.0.tx.drop=0\n\n$"},
		{[]string{"domblkstat", "dev", "vda"}, "^vda rd_req " + n + "\nvda rd_bytes " + n + "\nvda wr_req " + n + "\nvda wr_bytes " + n + "\nvda errs 0\n\n$"},
		{[]string{"domblkstat", "dev", "--human"}, "^Device: \n number of read operations:      " + n + "\n number of bytes read:           " + n +
			"\n number of write operations:     " + n + "\n number of bytes written:        " + n + "\n error count:                    0\n\n$"},
		{[]string{"domifstat", "dev", "52:54:00:aa:bb:cc"}, "^(52:54:00:aa:bb:cc (rx|tx)_(bytes|packets|errs|drop) " + n + "\n){8}\n$"},
		{[]string{"dommemstat", "dev"}, "^unused 16384\navailable 65536\nactual 65536\nrss 32768\n\n$"},
		{[]string{"nodecpustats"}, "^user: +" + n + "\nsystem: +" + n + "\nidle: +" + n + "\niowait: +" + n + "\n\n$"},
		{[]string{"nodecpustats", "--cpu", "15"}, "^user:  {10,}" + n + "\n"},
		{[]string{"domcapabilities", "--virttype", "test"}, "^<domainCapabilities>\n  <path>/usr/bin/test-hv</path>\n  <domain>test</domain>\n  <arch>i686</arch>\n"},
		{[]string{"help", "domstats"}, `domstats \[--state\] .* \[\[--domain\] <domain>\.\.\.\]`},
	}
	for _, tt := range pattern {
		if got := h.ok(tt.args...); !regexp.MustCompile(tt.want).MatchString(got) {
			t.Errorf("virtsh %s:\n%s\nwant:\n%s", strings.Join(tt.args, " "), got, tt.want)
		}
	}
	if got := h.ok("nodecpustats"); len(strings.Split(got, "\n")[0]) != 36 {
		t.Errorf("nodecpustats lines are 15 + 1 + 20 wide, as virsh's: %q", got)
	}

	errs := []struct {
		args []string
		want string
	}{
		{[]string{"domstats", "nosuch"}, "error: failed to get domain 'nosuch'\nerror: no domain with matching name 'nosuch': not found\n"},
		{[]string{"domstats", "--perf", "--enforce"}, "error: stats groups 0x40 are not supported by this driver: not supported\n"},
		{[]string{"domblkstat", "dev", "vdz"}, "error: Failed to get block stats dev vdz\nerror: domain 'dev' has no disk \"vdz\" (name a disk by its target, e.g. vda, or its source path): invalid argument\n"},
		{[]string{"domifstat", "dev"}, "error: command 'domifstat' requires <interface> option\n"},
		{[]string{"dommemstat", "test", "--period", "1"}, "error: command 'dommemstat' doesn't support option --period\n"},
		{[]string{"nodecpustats", "--cpu", "16"}, "error: Unable to get node cpu stats\nerror: CPU number 16: the test node has CPUs 0 to 15, or -1 for all: invalid argument\n"},
		{[]string{"nodememstats", "--cell", "2"}, "error: Unable to get memory stats\nerror: cell number 2 is out of range: the test node has cells 0 to 1, or -1 for all: invalid argument\n"},
		{[]string{"domcapabilities", "--virttype", "kvm"}, "error: failed to get emulator capabilities\nerror: virtualization type \"kvm\" is not served by the test driver (only \"test\"): invalid argument\n"},
	}
	for _, tt := range errs {
		if got := h.fails(tt.args...); got != tt.want {
			t.Errorf("virtsh %s:\n%s\nwant:\n%s", strings.Join(tt.args, " "), got, tt.want)
		}
	}
	h.ok("destroy", "dev")
	if got, want := h.fails("dommemstat", "dev"), fmt.Sprintf("error: Failed to get memory statistics for domain dev\nerror: domain '%s' is not running: operation not valid\n", "dev"); got != want {
		t.Errorf("dommemstat of a stopped domain:\n%s\nwant:\n%s", got, want)
	}
}
