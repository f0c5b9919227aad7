package qemu

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/virtd/virtd/internal/cgroup"
	"github.com/virtd/virtd/virt"
)

// tuneXML is a diskless domain with extra elements (inside <domain>) and
// vcpu as its <vcpu> element.
func tuneXML(typ, vcpu, extra string) string {
	return fmt.Sprintf(`<domain type='%s'><name>t</name><memory unit='MiB'>64</memory>%s
<os><type arch='x86_64'>hvm</type></os>%s</domain>`, typ, vcpu, extra)
}

func TestParseTuning(t *testing.T) {
	c, err := parseConfig(tuneXML("qemu", `<vcpu placement='static' cpuset='0-3,^2' current='1'>2</vcpu>`, `
<cputune><shares>2048</shares><period>50000</period><quota>20000</quota>
<global_period>100000</global_period><global_quota>150000</global_quota>
<vcpupin vcpu='1' cpuset='1'/><emulatorpin cpuset='0'/></cputune>
<memtune><hard_limit unit='MiB'>512</hard_limit><soft_limit>131072</soft_limit><swap_hard_limit unit='GiB'>1</swap_hard_limit></memtune>`))
	if err != nil {
		t.Fatal(err)
	}
	tu := c.tune
	if tu.shares != 2048 || tu.period != 50000 || tu.quota != 20000 || tu.globalPeriod != 100000 || tu.globalQuota != 150000 {
		t.Errorf("cputune %+v", tu)
	}
	if !slices.Equal(tu.vcpuSet, []int{0, 1, 3}) || tu.pins[0] != nil || !slices.Equal(tu.pins[1], []int{1}) || !slices.Equal(tu.emulator, []int{0}) {
		t.Errorf("cpusets %v %v %v", tu.vcpuSet, tu.pins, tu.emulator)
	}
	if tu.hard != 512<<20 || tu.soft != 128<<20 || tu.swapHard != 1<<30 {
		t.Errorf("memtune %d %d %d", tu.hard, tu.soft, tu.swapHard)
	}
	if c.vcpus != 1 || c.maxVCPUs != 2 {
		t.Errorf("vcpus %d of %d", c.vcpus, c.maxVCPUs)
	}
	// The stored definition writes the cpuset normalised, and parses again.
	out, err := c.marshal(0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `cpuset="0-1,3"`) {
		t.Errorf("stored <vcpu> cpuset not normalised:\n%s", out)
	}
	if c2, err := parseConfig(out); err != nil || c2.tune.hard != tu.hard {
		t.Errorf("stored definition: %v", err)
	}

	// libvirt's "unlimited" is no limit.
	c, err = parseConfig(tuneXML("qemu", `<vcpu>1</vcpu>`, `<memtune><hard_limit>9007199254740991</hard_limit></memtune>`))
	if err != nil || c.tune.hard != 0 || c.tune.cgroupNeeded() {
		t.Errorf("unlimited hard_limit: %v, %d", err, c.tune.hard)
	}
	// A negative quota is none.
	c, err = parseConfig(tuneXML("qemu", `<vcpu>1</vcpu>`, `<cputune><quota>-1</quota></cputune>`))
	if err != nil || c.tune.quota != 0 {
		t.Errorf("quota -1: %v, %d", err, c.tune.quota)
	}
}

func TestParseTuningRefuses(t *testing.T) {
	for _, tc := range []struct{ vcpu, extra, want string }{
		{`<vcpu placement='auto'>1</vcpu>`, ``, "placement='auto'> is not supported: it needs numad"},
		{`<vcpu placement='dynamic'>1</vcpu>`, ``, "placement='dynamic'> is not valid"},
		{`<vcpu cpuset='3-1'>1</vcpu>`, ``, `cpuset='3-1'>: range "3-1" runs backwards`},
		{`<vcpu cpuset='0,^0'>1</vcpu>`, ``, `cpuset='0,^0'>: the list leaves no CPU`},
		{`<vcpu cpuset='x'>1</vcpu>`, ``, `cpuset='x'>: "x" is not a CPU number`},
		{`<vcpu cpuset='5000'>1</vcpu>`, ``, `CPU 5000 is above`},
		{`<vcpu>1</vcpu>`, `<cputune><shares>1</shares></cputune>`, "<shares>1</shares> is out of range"},
		{`<vcpu>1</vcpu>`, `<cputune><period>500</period></cputune>`, "<period>500</period> is out of range"},
		{`<vcpu>1</vcpu>`, `<cputune><quota>999</quota></cputune>`, "<quota>999</quota> is out of range"},
		{`<vcpu>1</vcpu>`, `<cputune><global_period>2000000</global_period></cputune>`, "<global_period>2000000</global_period> is out of range"},
		{`<vcpu>1</vcpu>`, `<cputune><global_quota>10</global_quota></cputune>`, "<global_quota>10</global_quota> is out of range"},
		{`<vcpu>1</vcpu>`, `<cputune><quota>60000</quota><global_quota>50000</global_quota></cputune>`, "<quota>60000</quota> per period 100000 exceeds <global_quota>50000</global_quota>"},
		{`<vcpu>2</vcpu>`, `<cputune><vcpupin vcpu='2' cpuset='0'/></cputune>`, "<vcpupin vcpu='2'> names no vCPU (the domain has 2)"},
		{`<vcpu>2</vcpu>`, `<cputune><vcpupin vcpu='0' cpuset='0'/><vcpupin vcpu='0' cpuset='1'/></cputune>`, "<vcpupin vcpu='0'> is given twice"},
		{`<vcpu>1</vcpu>`, `<cputune><vcpupin vcpu='0' cpuset='a-b'/></cputune>`, `<vcpupin vcpu='0' cpuset='a-b'>: "a" is not a CPU number`},
		{`<vcpu>1</vcpu>`, `<cputune><emulatorpin cpuset=''/></cputune>`, "<emulatorpin cpuset=''>: empty CPU list"},
		{`<vcpu>1</vcpu>`, `<memtune><min_guarantee>1024</min_guarantee></memtune>`, "<min_guarantee> is not supported by the qemu driver (libvirt refuses it for QEMU too)"},
		{`<vcpu>1</vcpu>`, `<memtune><hard_limit unit='parsec'>1</hard_limit></memtune>`, "<memtune><hard_limit>1</hard_limit>"},
		{`<vcpu>1</vcpu>`, `<memtune><hard_limit>0</hard_limit></memtune>`, "<memtune><hard_limit> must be above 0"},
		{`<vcpu>1</vcpu>`, `<memtune><hard_limit>2048</hard_limit><soft_limit>4096</soft_limit></memtune>`, "<soft_limit> (4096 KiB) is above <hard_limit> (2048 KiB)"},
		{`<vcpu>1</vcpu>`, `<memtune><hard_limit>4096</hard_limit><swap_hard_limit>2048</swap_hard_limit></memtune>`, "<hard_limit> (4096 KiB) is above <swap_hard_limit> (2048 KiB)"},
		// Not honoured: refused by path.
		{`<vcpu>1</vcpu>`, `<cputune><emulator_quota>1000</emulator_quota></cputune>`, "emulator_quota"},
	} {
		_, err := parseConfig(tuneXML("qemu", tc.vcpu, tc.extra))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s%s: got %v, want %q", tc.vcpu, tc.extra, err, tc.want)
		}
	}
}

func TestParseCPUSet(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "0-3,^2": "0-1,3", "5,1,2,3": "1-3,5", " 0 , 7 ": "0,7", "0-2,^1,1": "0-2"} {
		set, err := parseCPUSet(in)
		if err != nil || formatCPUSet(set) != want {
			t.Errorf("%q: %v, %v, want %s", in, set, err, want)
		}
	}
	for _, in := range []string{"", "-1", "+1", "1-", "^1-2", "1,,2", "0x1"} {
		if set, err := parseCPUSet(in); err == nil {
			t.Errorf("%q accepted as %v", in, set)
		}
	}
}

func TestCPUArgs(t *testing.T) {
	for _, tc := range []struct {
		typ, vcpu, cpu string
		wantCPU, smp   string
	}{
		// No <cpu>: libvirt's default, QEMU's qemu64, written out.
		{"qemu", `<vcpu>2</vcpu>`, ``, "qemu64", "2,sockets=2,cores=1,threads=1"},
		{"qemu", `<vcpu current='1'>2</vcpu>`, ``, "qemu64", "1,maxcpus=2,sockets=2,cores=1,threads=1"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu mode='host-model'/>`, "max", "1,sockets=1,cores=1,threads=1"},
		{"kvm", `<vcpu>1</vcpu>`, `<cpu mode='host-model'/>`, "host,migratable=on", "1,sockets=1,cores=1,threads=1"},
		{"kvm", `<vcpu>1</vcpu>`, `<cpu mode='host-passthrough'><feature policy='disable' name='vmx'/></cpu>`, "host,-vmx", "1,sockets=1,cores=1,threads=1"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu mode='maximum' check='none'/>`, "max", "1,sockets=1,cores=1,threads=1"},
		{"qemu", `<vcpu>8</vcpu>`, `<cpu match='exact' check='partial'><model fallback='forbid'>Skylake-Client</model><vendor>Intel</vendor>
<topology sockets='2' dies='1' cores='2' threads='2'/>
<feature policy='require' name='avx2'/><feature policy='force' name='pcid'/><feature policy='optional' name='x2apic'/>
<feature policy='disable' name='hle'/><feature policy='forbid' name='rtm'/></cpu>`,
			"Skylake-Client,vendor=GenuineIntel,+avx2,+pcid,+x2apic,-hle,-rtm", "8,sockets=2,cores=2,threads=2"},
		{"qemu", `<vcpu current='2'>4</vcpu>`, `<cpu><topology sockets='1' cores='4' threads='1'/></cpu>`, "", "2,maxcpus=4,sockets=1,cores=4,threads=1"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu mode='custom'><model fallback='allow'>qemu64</model></cpu>`, "qemu64", "1,sockets=1,cores=1,threads=1"},
	} {
		c, err := parseConfig(tuneXML(tc.typ, tc.vcpu, tc.cpu))
		if err != nil {
			t.Errorf("%s: %v", tc.cpu, err)
			continue
		}
		cpuOpt, smp, err := cpuArgs(c)
		if err != nil || cpuOpt != tc.wantCPU || smp != tc.smp {
			t.Errorf("%s %s: -cpu %q -smp %q (%v), want -cpu %q -smp %q", tc.vcpu, tc.cpu, cpuOpt, smp, err, tc.wantCPU, tc.smp)
		}
		// And on QEMU's command line.
		argv, err := buildArgv(c, runtimePaths{Monitor: "fd=3"})
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.Index(argv, "-smp"); i < 0 || argv[i+1] != tc.smp {
			t.Errorf("argv has no -smp %s: %q", tc.smp, argv)
		}
		if i := slices.Index(argv, "-cpu"); (i < 0) != (tc.wantCPU == "") || i >= 0 && argv[i+1] != tc.wantCPU {
			t.Errorf("argv -cpu: %q, want %q", argv, tc.wantCPU)
		}
	}
}

func TestCPURefuses(t *testing.T) {
	for _, tc := range []struct{ typ, vcpu, cpu, want string }{
		{"qemu", `<vcpu>1</vcpu>`, `<cpu mode='host-passthrough'/>`, "<cpu mode='host-passthrough'> needs KVM, and the domain type is 'qemu'"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu mode='fancy'/>`, "<cpu mode='fancy'> is not valid"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu match='loose'/>`, "<cpu match='loose'> is not valid"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu check='some'/>`, "<cpu check='some'> is not valid"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu><model>a,b=c</model></cpu>`, "<cpu><model>a,b=c</model> is not a valid CPU model name"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu><model fallback='maybe'>qemu64</model></cpu>`, "<model fallback='maybe'> is not valid"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu mode='maximum'><model>qemu64</model></cpu>`, "<cpu mode='maximum'> takes no <model> (qemu64)"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu><model>qemu64</model><vendor>Cyrix</vendor></cpu>`, "<vendor>Cyrix</vendor> is not supported"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu><feature name='avx'/></cpu>`, "needs a <model>"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu><model>qemu64</model><feature policy='maybe' name='avx'/></cpu>`, "<feature policy='maybe' name='avx'> is not valid"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu><model>qemu64</model><feature name='avx,kvm=on'/></cpu>`, "<feature name='avx,kvm=on'> is not a valid feature name"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu><model>qemu64</model><feature name='avx'/><feature policy='disable' name='avx'/></cpu>`, "<feature name='avx'> is given twice"},
		{"qemu", `<vcpu>4</vcpu>`, `<cpu><topology sockets='2' cores='3' threads='1'/></cpu>`, "<topology sockets='2' dies='1' cores='3' threads='1'> makes 6 vCPUs, but <vcpu> is 4"},
		{"qemu", `<vcpu>4</vcpu>`, `<cpu><topology sockets='4'/></cpu>`, "<topology> needs sockets, cores and threads (got sockets='4' cores='0' threads='0')"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu><topology sockets='1' cores='1' threads='-1'/></cpu>`, "<topology threads='-1'> is out of range"},
		{"qemu", `<vcpu>1</vcpu>`, `<cpu><cache mode='passthrough'/></cpu>`, "cache"},
	} {
		_, err := parseConfig(tuneXML(tc.typ, tc.vcpu, tc.cpu))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.cpu, err, tc.want)
		}
	}
}

func TestParseCPUHelp(t *testing.T) {
	out := "Available CPUs:\nx86 486                   (alias configured by machine type)\nx86 Skylake-Client-v1\nx86 max   Enables all\n\nRecognized CPUID flags:\n  3dnow abm\n"
	if got := parseCPUHelp(out); !slices.Equal(got, []string{"486", "Skylake-Client-v1", "max"}) {
		t.Errorf("models %v", got)
	}
}

// TestUnknownCPUModelRefusedAtStart starts a custom model QEMU does not
// know: refused before QEMU runs, naming the model.
func TestUnknownCPUModelRefusedAtStart(t *testing.T) {
	needQEMU(t)
	drv, _ := newTestDriver(t)
	d := define(t, drv, tuneXML("qemu", `<vcpu>1</vcpu>`, `<cpu><model>Pentium-99</model></cpu>`))
	_, err := drv.StartDomain(ctxT(t), d.UUID)
	if err == nil || !strings.Contains(err.Error(), "<cpu><model>Pentium-99</model> is not a CPU model of") || virt.KindOf(err) != virt.ErrInvalidArgument {
		t.Fatalf("start: %v", err)
	}
}

func TestCgroupName(t *testing.T) {
	c, err := parseConfig(`<domain type='qemu'><name>a:b ..é` + strings.Repeat("x", 60) + `</name><uuid>3e3fce45-4f53-4fa7-bb32-11f34168b82b</uuid><memory>65536</memory></domain>`)
	if err != nil {
		t.Fatal(err)
	}
	n := cgroupName(c)
	if !strings.HasPrefix(n, "virtd-qemu-a_b_.._xxx") || !strings.HasSuffix(n, "x-3e3fce45-4f53-4fa7-bb32-11f34168b82b") || len(n) > 11+41+37 || strings.Contains(n, "/") {
		t.Errorf("cgroup name %q", n)
	}
}

// hostCgroupsV1 returns the host's cgroup v1 hierarchies, or skips: the
// v2 hierarchy of this machine has no controllers, so the QEMU tuning is
// tested on v1 only (its v2 writes are internal/cgroup's TestTuneV2Writes).
func hostCgroupsV1(t *testing.T) *cgroup.Hierarchy {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "cgroup tests need root")
	}
	h, err := hostCgroups()
	if err != nil {
		missing(t, err.Error())
	}
	if h.V2 {
		t.Skip("cgroup v2: the real tuning test reads v1 files")
	}
	return h
}

func readCg(t *testing.T, h *cgroup.Hierarchy, ctrl, rel, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.Mounts[ctrl], rel, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
