package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/virtd/virtd/internal/cgroup"
	"github.com/virtd/virtd/virt"
)

// Each running domain has a cgroup, <root>/machine/virtd-qemu-<name>-<uuid>
// in the cpu, cpuacct and memory hierarchies (cgroup v1) or the unified one
// (v2). The driver makes it once QEMU runs paused (-S, its monitor
// connected), writes <cputune> and <memtune> there, moves QEMU in, puts
// each vCPU thread in a sub-group vcpuN when <period>/<quota> (which
// libvirt applies per vCPU) are set, and pins threads; then start
// resumes the guest. Its path is in the runtime record, so a driver
// restarted meanwhile removes it when the guest is gone.
//
// Pinning (<vcpupin>, <emulatorpin>, <vcpu cpuset>) is sched_setaffinity
// on QEMU's threads, on every host: the vCPU threads' ids come from
// query-cpus-fast; every other thread is the emulator's. A cpuset cgroup
// would need a sub-group per thread in one more hierarchy for the same
// result.

const cgroupParent = "machine"

// qemuControllers are the v1 controllers of a domain's cgroup.
var qemuControllers = []string{"cpu", "cpuacct", "memory"}

// hostCgroups is the host's cgroup hierarchy, found once.
var hostCgroups = sync.OnceValues(cgroup.Detect)

// cgroupName is a domain's cgroup under cgroupParent: its name with
// anything but letters, digits, '-', '_' and '.' replaced by '_' and cut
// to 40 bytes, for people to read; its UUID, to be unique.
func cgroupName(c *config) string {
	var b strings.Builder
	for _, r := range c.Name() {
		if b.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return "virtd-qemu-" + b.String() + "-" + c.UUID()
}

// checkTuningHost checks, at start before QEMU runs, what the tuning
// needs from the host: the CPU model, online CPUs for pinning, cgroups
// for limits, swap accounting for swap_hard_limit.
func (drv *Driver) checkTuningHost(c *config) error {
	if err := checkCPUModel(c); err != nil {
		return virt.Errorf(virt.ErrInvalidArgument, "%w", err)
	}
	t := c.tune
	if t == nil {
		return nil
	}
	if t.pinned() {
		b, err := os.ReadFile("/sys/devices/system/cpu/online")
		if err != nil {
			return virt.Errorf(virt.ErrInternal, "domain '%s': online CPUs: %w", c.Name(), err)
		}
		online, err := parseCPUSet(strings.TrimSpace(string(b)))
		if err != nil {
			return virt.Errorf(virt.ErrInternal, "domain '%s': online CPUs: %w", c.Name(), err)
		}
		check := func(elem string, set []int) error {
			for _, n := range set {
				if !slices.Contains(online, n) {
					return fmt.Errorf("domain '%s': %s names CPU %d, which is not online on this host (online: %s): %w",
						c.Name(), elem, n, formatCPUSet(online), virt.ErrInvalidArgument)
				}
			}
			return nil
		}
		if err := check("<vcpu cpuset>", t.vcpuSet); err != nil {
			return err
		}
		if err := check("<emulatorpin>", t.emulator); err != nil {
			return err
		}
		for i, p := range t.pins {
			if err := check(fmt.Sprintf("<vcpupin vcpu='%d'>", i), p); err != nil {
				return err
			}
		}
	}
	if !t.cgroupNeeded() {
		return nil
	}
	h, err := hostCgroups()
	if err != nil {
		return fmt.Errorf("domain '%s': <cputune>/<memtune> need cgroups: %v: %w", c.Name(), err, virt.ErrNotSupported)
	}
	if t.swapHard > 0 && !h.V2 {
		if _, err := os.Stat(filepath.Join(h.Mounts["memory"], "memory.memsw.limit_in_bytes")); err != nil {
			return fmt.Errorf("domain '%s': <memtune><swap_hard_limit> needs the kernel's swap accounting (memory.memsw.limit_in_bytes; boot with swapaccount=1): %w",
				c.Name(), virt.ErrNotSupported)
		}
	}
	return nil
}

// applyTuning puts inst's QEMU, paused and its monitor connected, in the
// domain's cgroup with c's limits and pins its threads. The cgroup's path
// is in inst.rec before anything is made, so that removeCgroup finds it
// whatever fails.
//
// A domain whose definition asks for no limit gets no cgroup: moving a
// process between cgroup v1 groups waits for an RCU grace period (10-20
// ms here, the better part of a start), and nothing would use the group.
func (drv *Driver) applyTuning(ctx context.Context, c *config, inst *instance) error {
	t := c.tune
	if t == nil {
		t = &tuning{}
	}
	if !t.cgroupNeeded() {
		return drv.pinThreads(ctx, t, inst)
	}
	h, err := hostCgroups()
	if err != nil {
		return virt.Errorf(virt.ErrNotSupported, "<cputune>/<memtune> need cgroups: %w", err)
	}
	cg := h.OpenWith(cgroupParent, cgroupName(c), qemuControllers)
	inst.rec.Cgroup = cg.Rel()
	err = cg.CreateTuned(cgroup.Tune{
		CPUShares: t.shares, CPUPeriod: t.globalPeriod, CPUQuota: t.globalQuota,
		MemoryHard: t.hard, MemorySoft: t.soft, MemorySwapHard: t.swapHard,
	})
	if err == nil {
		err = cg.Add(inst.rec.Pid)
	}
	if err != nil {
		return virt.Errorf(virt.ErrInternal, "cgroup %s: %w", cg.Rel(), err)
	}
	if t.period > 0 || t.quota > 0 {
		vcpus, err := vcpuThreads(ctx, inst)
		if err != nil {
			return err
		}
		for idx, tid := range vcpus {
			g := cg.ThreadGroup(fmt.Sprintf("vcpu%d", idx))
			if err := g.CreateThreadGroup(t.period, t.quota); err != nil {
				return virt.Errorf(virt.ErrInternal, "<cputune> period/quota of vCPU %d: %w", idx, err)
			}
			if err := g.AddThread(tid); err != nil {
				return virt.Errorf(virt.ErrInternal, "vCPU %d's cgroup: %w", idx, err)
			}
		}
	}
	return drv.pinThreads(ctx, t, inst)
}

// vcpuThreads maps each present vCPU's index to its thread id.
func vcpuThreads(ctx context.Context, inst *instance) (map[int]int, error) {
	var cpus []struct {
		Index  int `json:"cpu-index"`
		Thread int `json:"thread-id"`
	}
	if err := inst.mon.Execute(ctx, "query-cpus-fast", nil, &cpus); err != nil {
		return nil, virt.Errorf(virt.ErrInternal, "query-cpus-fast: %w", err)
	}
	out := map[int]int{}
	for _, c := range cpus {
		out[c.Index] = c.Thread
	}
	return out, nil
}

// pinThreads sets the CPU affinity of QEMU's threads: a vCPU's to its
// <vcpupin>, every other thread's to <emulatorpin>, both else to <vcpu
// cpuset>. Threads QEMU makes later inherit their maker's.
func (drv *Driver) pinThreads(ctx context.Context, t *tuning, inst *instance) error {
	if !t.pinned() {
		return nil
	}
	vcpus, err := vcpuThreads(ctx, inst)
	if err != nil {
		return err
	}
	isVCPU := map[int]bool{}
	for idx, tid := range vcpus {
		isVCPU[tid] = true
		set := t.vcpuSet
		if idx < len(t.pins) && t.pins[idx] != nil {
			set = t.pins[idx]
		}
		if err := setAffinity(tid, set); err != nil {
			return virt.Errorf(virt.ErrInternal, "pinning vCPU %d (thread %d) to CPUs %s: %w", idx, tid, formatCPUSet(set), err)
		}
	}
	set := t.vcpuSet
	if t.emulator != nil {
		set = t.emulator
	}
	if set == nil {
		return nil
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", inst.rec.Pid))
	if err != nil {
		return virt.Errorf(virt.ErrInternal, "QEMU's threads: %w", err)
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil || isVCPU[tid] {
			continue
		}
		// ESRCH: a thread that ended meanwhile.
		if err := setAffinity(tid, set); err != nil && err != unix.ESRCH {
			return virt.Errorf(virt.ErrInternal, "pinning emulator thread %d to CPUs %s: %w", tid, formatCPUSet(set), err)
		}
	}
	return nil
}

// setAffinity pins thread tid to set; a nil set leaves it.
func setAffinity(tid int, set []int) error {
	if set == nil {
		return nil
	}
	var s unix.CPUSet
	for _, n := range set {
		s.Set(n)
	}
	return unix.SchedSetaffinity(tid, &s)
}

// removeCgroup removes a stopped guest's cgroup, named in its record.
func (drv *Driver) removeCgroup(r *record) {
	if r.Cgroup == "" {
		return
	}
	// The record is the driver's own file; still, remove nothing but a
	// domain cgroup.
	name, ok := strings.CutPrefix(r.Cgroup, cgroupParent+"/virtd-qemu-")
	if !ok || strings.Contains(name, "/") || strings.Contains(name, "..") {
		drv.log.Warn("runtime record names no domain cgroup", "name", r.Name, "cgroup", r.Cgroup)
		return
	}
	h, err := hostCgroups()
	if err != nil {
		return
	}
	if err := h.OpenWith(r.Cgroup, "", qemuControllers).RemoveTree(); err != nil {
		drv.log.Warn("cannot remove a domain's cgroup", "name", r.Name, "cgroup", r.Cgroup, "error", err)
	}
}
