package qemu

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver/domutil"
)

// honouredTuning are the parts of <cputune>, <memtune>, <vcpu> and <cpu>
// the driver honours (tune.go, cpu.go, qemucgroup.go); validate.go's
// honoured list takes them as one more argument. min_guarantee is listed
// only to be refused with a reason.
var honouredTuning = `
VCPU.CPUSet
CPUTune CPUTune.Shares CPUTune.Shares.Value
CPUTune.Period CPUTune.Period.Value CPUTune.Quota CPUTune.Quota.Value
CPUTune.GlobalPeriod CPUTune.GlobalPeriod.Value CPUTune.GlobalQuota CPUTune.GlobalQuota.Value
CPUTune.VCPUPin CPUTune.VCPUPin.VCPU CPUTune.VCPUPin.CPUSet
CPUTune.EmulatorPin CPUTune.EmulatorPin.CPUSet
MemoryTune MemoryTune.HardLimit MemoryTune.HardLimit.Value MemoryTune.HardLimit.Unit
MemoryTune.SoftLimit MemoryTune.SoftLimit.Value MemoryTune.SoftLimit.Unit
MemoryTune.SwapHardLimit MemoryTune.SwapHardLimit.Value MemoryTune.SwapHardLimit.Unit
MemoryTune.MinGuarantee MemoryTune.MinGuarantee.Value MemoryTune.MinGuarantee.Unit
CPU CPU.Mode CPU.Match CPU.Check CPU.Model CPU.Model.Value CPU.Model.Fallback CPU.Vendor
CPU.Topology CPU.Topology.Sockets CPU.Topology.Dies CPU.Topology.Cores CPU.Topology.Threads
CPU.Features CPU.Features.Policy CPU.Features.Name
`

// maxHostCPU bounds the CPU numbers of a cpuset: sched_setaffinity's set
// (unix.CPUSet) holds 1024.
const maxHostCPU = 1023

// unlimitedKiB is libvirt's "unlimited" for <memtune> values
// (VIR_DOMAIN_MEMORY_PARAM_UNLIMITED, in KiB).
const unlimitedKiB = 9007199254740991

// tuning is a domain's checked <cputune>, <memtune>, <vcpu cpuset> and
// <cpu>; zero values are "not set".
type tuning struct {
	shares       uint64
	period       uint64 // per vCPU, microseconds
	quota        int64  // per vCPU; <= 0: none
	globalPeriod uint64 // the whole domain
	globalQuota  int64
	// vcpuSet is <vcpu cpuset>: where the vCPUs and the emulator run
	// unless pinned.
	vcpuSet []int
	// pins[i] is vCPU i's <vcpupin> (nil: none).
	pins     [][]int
	emulator []int
	// Memory limits in bytes.
	hard, soft, swapHard uint64

	cpu *cpuDef
}

// cgroupNeeded reports whether the tuning asks for cgroup limits.
func (t *tuning) cgroupNeeded() bool {
	return t.shares > 0 || t.period > 0 || t.quota > 0 || t.globalPeriod > 0 || t.globalQuota > 0 ||
		t.hard > 0 || t.soft > 0 || t.swapHard > 0
}

// pinned reports whether any thread's affinity is set.
func (t *tuning) pinned() bool {
	return t.vcpuSet != nil || t.emulator != nil || slices.ContainsFunc(t.pins, func(p []int) bool { return p != nil })
}

// parseTuning checks <vcpu placement/cpuset>, <cputune>, <memtune> and
// <cpu> of x, whose <vcpu> maximum is already checked, and sets c.tune.
func parseTuning(c *config, x *libvirtxml.Domain, bad badFunc) error {
	t := &tuning{}
	maxVCPUs := uint(1)
	if x.VCPU != nil {
		maxVCPUs = x.VCPU.Value
		switch x.VCPU.Placement {
		case "", "static":
		case "auto":
			return bad("<vcpu placement='auto'> is not supported: it needs numad to choose the host CPUs (use placement='static' with cpuset)")
		default:
			return bad("<vcpu placement='%s'> is not valid (static or auto)", x.VCPU.Placement)
		}
		if x.VCPU.CPUSet != "" {
			set, err := parseCPUSet(x.VCPU.CPUSet)
			if err != nil {
				return bad("<vcpu cpuset='%s'>: %v", x.VCPU.CPUSet, err)
			}
			t.vcpuSet = set
			x.VCPU.CPUSet = formatCPUSet(set)
		}
	}
	if ct := x.CPUTune; ct != nil {
		if ct.Shares != nil {
			if ct.Shares.Value < 2 || ct.Shares.Value > 262144 {
				return bad("<cputune><shares>%d</shares> is out of range (2 to 262144)", ct.Shares.Value)
			}
			t.shares = uint64(ct.Shares.Value)
		}
		var err error
		if t.period, err = checkPeriod("period", ct.Period); err != nil {
			return bad("%v", err)
		}
		if t.quota, err = checkQuota("quota", ct.Quota); err != nil {
			return bad("%v", err)
		}
		if t.globalPeriod, err = checkPeriod("global_period", ct.GlobalPeriod); err != nil {
			return bad("%v", err)
		}
		if t.globalQuota, err = checkQuota("global_quota", ct.GlobalQuota); err != nil {
			return bad("%v", err)
		}
		// The kernel refuses a vCPU's bandwidth above the domain's
		// (quota per period, each defaulting to 100 ms).
		if t.quota > 0 && t.globalQuota > 0 {
			p, gp := uint64(100000), uint64(100000)
			if t.period != 0 {
				p = t.period
			}
			if t.globalPeriod != 0 {
				gp = t.globalPeriod
			}
			if uint64(t.quota)*gp > uint64(t.globalQuota)*p {
				return bad("<cputune><quota>%d</quota> per period %d exceeds <global_quota>%d</global_quota> per period %d: a vCPU cannot have more CPU time than the whole domain",
					t.quota, p, t.globalQuota, gp)
			}
		}
		t.pins = make([][]int, maxVCPUs)
		for _, p := range ct.VCPUPin {
			if p.VCPU >= maxVCPUs {
				return bad("<vcpupin vcpu='%d'> names no vCPU (the domain has %d)", p.VCPU, maxVCPUs)
			}
			if t.pins[p.VCPU] != nil {
				return bad("<vcpupin vcpu='%d'> is given twice", p.VCPU)
			}
			set, err := parseCPUSet(p.CPUSet)
			if err != nil {
				return bad("<vcpupin vcpu='%d' cpuset='%s'>: %v", p.VCPU, p.CPUSet, err)
			}
			t.pins[p.VCPU] = set
		}
		if ep := ct.EmulatorPin; ep != nil {
			set, err := parseCPUSet(ep.CPUSet)
			if err != nil {
				return bad("<emulatorpin cpuset='%s'>: %v", ep.CPUSet, err)
			}
			t.emulator = set
		}
	}
	if mt := x.MemoryTune; mt != nil {
		if mt.MinGuarantee != nil {
			return bad("<memtune><min_guarantee> is not supported by the qemu driver (libvirt refuses it for QEMU too)")
		}
		for _, l := range []struct {
			elem string
			v    *libvirtxml.DomainMemoryTuneLimit
			dst  *uint64
		}{{"hard_limit", mt.HardLimit, &t.hard}, {"soft_limit", mt.SoftLimit, &t.soft}, {"swap_hard_limit", mt.SwapHardLimit, &t.swapHard}} {
			if l.v == nil {
				continue
			}
			kib, err := domutil.ScaleToKiB(l.v.Value, l.v.Unit)
			if err != nil {
				return bad("<memtune><%s>%d</%s>: %v", l.elem, l.v.Value, l.elem, err)
			}
			if kib == 0 {
				return bad("<memtune><%s> must be above 0", l.elem)
			}
			l.v.Value, l.v.Unit = kib, "KiB" // as libvirt shows it
			if kib < unlimitedKiB {
				*l.dst = kib * 1024
			}
		}
		if t.soft > 0 && t.hard > 0 && t.soft > t.hard {
			return bad("<memtune><soft_limit> (%d KiB) is above <hard_limit> (%d KiB)", t.soft/1024, t.hard/1024)
		}
		if t.swapHard > 0 && t.hard > 0 && t.hard > t.swapHard {
			return bad("<memtune><hard_limit> (%d KiB) is above <swap_hard_limit> (%d KiB), which counts memory and swap together", t.hard/1024, t.swapHard/1024)
		}
	}
	cpu, err := parseCPU(x, maxVCPUs, bad)
	if err != nil {
		return err
	}
	t.cpu = cpu
	c.tune = t
	return nil
}

func checkPeriod(elem string, p *libvirtxml.DomainCPUTunePeriod) (uint64, error) {
	if p == nil || p.Value == 0 {
		return 0, nil
	}
	if p.Value < 1000 || p.Value > 1000000 {
		return 0, fmt.Errorf("<cputune><%s>%d</%s> is out of range (1000 to 1000000 microseconds)", elem, p.Value, elem)
	}
	return p.Value, nil
}

// checkQuota: a negative quota is libvirt's "no limit".
func checkQuota(elem string, q *libvirtxml.DomainCPUTuneQuota) (int64, error) {
	if q == nil || q.Value < 0 {
		return 0, nil
	}
	if q.Value < 1000 || q.Value > 17592186044415 {
		return 0, fmt.Errorf("<cputune><%s>%d</%s> is out of range (1000 to 17592186044415 microseconds, or negative for none)", elem, q.Value, elem)
	}
	return q.Value, nil
}

// parseCPUSet parses libvirt's CPU list syntax: "0-3,^2,6", ranges and
// single CPUs, "^N" excluding one. It returns the CPUs in order.
func parseCPUSet(s string) ([]int, error) {
	in := map[int]bool{}
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty CPU list")
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		excl := strings.HasPrefix(part, "^")
		part = strings.TrimPrefix(part, "^")
		lo, hi, isRange := strings.Cut(part, "-")
		if excl && isRange {
			return nil, fmt.Errorf("%q: only single CPUs can be excluded", "^"+part)
		}
		a, err := cpuNumber(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = cpuNumber(hi); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("range %q runs backwards", part)
			}
		}
		for n := a; n <= b; n++ {
			if excl {
				delete(in, n)
			} else {
				in[n] = true
			}
		}
	}
	var out []int
	for n := range in {
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the list leaves no CPU")
	}
	slices.Sort(out)
	return out, nil
}

func cpuNumber(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || s == "" || s[0] == '+' {
		return 0, fmt.Errorf("%q is not a CPU number", s)
	}
	if n > maxHostCPU {
		return 0, fmt.Errorf("CPU %d is above the highest the driver can pin to (%d)", n, maxHostCPU)
	}
	return n, nil
}

// formatCPUSet writes CPUs in order as ranges ("0-2,5").
func formatCPUSet(set []int) string {
	var parts []string
	for i := 0; i < len(set); {
		j := i
		for j+1 < len(set) && set[j+1] == set[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", set[i], set[j]))
		} else {
			parts = append(parts, strconv.Itoa(set[i]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
