package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// This file serves a guest that is one process with threads of different
// roles (a QEMU domain): a cgroup in a chosen set of controllers, tuning
// values the way libvirt's <cputune> and <memtune> name them, and
// sub-groups of single threads (one per vCPU) in the cpu controller.

// OpenWith returns the cgroup parent/name, in the v1 hierarchies of ctrls
// only (on cgroup v2, the one directory as Open). It does not create it.
func (h *Hierarchy) OpenWith(parent, name string, ctrls []string) *Cgroup {
	c := h.Open(parent, name)
	c.ctrls = ctrls
	return c
}

// Has reports whether controller ctrl can be used: mounted (v1) or
// offered by the unified hierarchy's root (v2).
func (h *Hierarchy) Has(ctrl string) bool {
	if !h.V2 {
		return h.Mounts[ctrl] != ""
	}
	b, err := os.ReadFile(filepath.Join(h.Root, "cgroup.controllers"))
	return err == nil && contains(strings.Fields(string(b)), ctrl)
}

// Rel is the cgroup's path under each hierarchy's root (parent/name).
func (c *Cgroup) Rel() string { return c.rel }

// HasFile reports whether the cgroup has control file name of ctrl (it
// must exist): memory.memsw.limit_in_bytes is there only with swap
// accounting.
func (c *Cgroup) HasFile(ctrl, name string) bool {
	_, err := os.Stat(c.file(ctrl, name))
	return err == nil
}

// Tune are tuning values of a whole guest; zero means "not set" (the
// kernel's default stays).
type Tune struct {
	// CPUShares is the v1 cpu.shares (2..262144); on v2 it becomes a
	// cpu.weight.
	CPUShares uint64
	// CPUPeriod and CPUQuota (microseconds; a quota <= 0 is none) bound
	// the CPU time of the whole cgroup.
	CPUPeriod uint64
	CPUQuota  int64
	// MemoryHard, MemorySoft and MemorySwapHard are in bytes. Swap is
	// memory and swap together, as libvirt's swap_hard_limit and v1's
	// memory.memsw.limit_in_bytes are; on v2 the swap part alone goes
	// to memory.swap.max.
	MemoryHard     uint64
	MemorySoft     uint64
	MemorySwapHard uint64
}

// CreateTuned makes the cgroup (and its parents) and applies t.
func (c *Cgroup) CreateTuned(t Tune) error {
	if err := c.Create(Limits{}); err != nil {
		return err
	}
	return c.ApplyTune(t)
}

// ApplyTune writes t's values to the cgroup's control files.
func (c *Cgroup) ApplyTune(t Tune) error {
	if t.MemorySwapHard > 0 && t.MemoryHard > t.MemorySwapHard {
		return fmt.Errorf("cgroup %s: memory limit %d is above the memory and swap limit %d", c.rel, t.MemoryHard, t.MemorySwapHard)
	}
	var w []struct{ ctrl, name, value string }
	add := func(ctrl, name, value string) {
		w = append(w, struct{ ctrl, name, value string }{ctrl, name, value})
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	if c.h.V2 {
		if t.CPUShares > 0 {
			add("cpu", "cpu.weight", u(sharesToWeight(t.CPUShares)))
		}
		if q := cpuMax(t.CPUQuota, t.CPUPeriod); q != "" {
			add("cpu", "cpu.max", q)
		}
		if t.MemoryHard > 0 {
			add("memory", "memory.max", u(t.MemoryHard))
		}
		if t.MemorySoft > 0 {
			add("memory", "memory.high", u(t.MemorySoft))
		}
		if t.MemorySwapHard > 0 {
			// v2 limits swap alone; without a memory limit the
			// kernel's own bounds the memory part.
			add("memory", "memory.swap.max", u(t.MemorySwapHard-t.MemoryHard))
		}
	} else {
		if t.CPUShares > 0 {
			add("cpu", "cpu.shares", u(t.CPUShares))
		}
		if t.CPUPeriod > 0 {
			add("cpu", "cpu.cfs_period_us", u(t.CPUPeriod))
		}
		if t.CPUQuota > 0 {
			add("cpu", "cpu.cfs_quota_us", strconv.FormatInt(t.CPUQuota, 10))
		}
		// The memory limit before the memory and swap one, which
		// must never be below it.
		if t.MemoryHard > 0 {
			add("memory", "memory.limit_in_bytes", u(t.MemoryHard))
		}
		if t.MemorySoft > 0 {
			add("memory", "memory.soft_limit_in_bytes", u(t.MemorySoft))
		}
		if t.MemorySwapHard > 0 {
			if !c.HasFile("memory", "memory.memsw.limit_in_bytes") {
				return fmt.Errorf("cgroup %s: the kernel has no swap accounting (memory.memsw.limit_in_bytes; boot with swapaccount=1)", c.rel)
			}
			add("memory", "memory.memsw.limit_in_bytes", u(t.MemorySwapHard))
		}
	}
	for _, x := range w {
		if err := c.fs.write(c.file(x.ctrl, x.name), x.value); err != nil {
			return err
		}
	}
	return nil
}

// sharesToWeight maps v1 cpu.shares (2..262144, default 1024) onto v2
// cpu.weight (1..10000, default 100) linearly, as LXC's limits do.
func sharesToWeight(s uint64) uint64 {
	return 1 + (clamp(s, 2, 262144)-2)*9999/262142
}

// cpuMax is v2's cpu.max for a quota and period; "" when neither is set.
func cpuMax(quota int64, period uint64) string {
	if quota <= 0 && period == 0 {
		return ""
	}
	q := "max"
	if quota > 0 {
		q = strconv.FormatInt(quota, 10)
	}
	if period == 0 {
		period = 100000
	}
	return fmt.Sprintf("%s %d", q, period)
}

// ThreadGroup returns c's sub-group name for single threads (a vCPU's),
// in the cpu controller only. It does not create it.
func (c *Cgroup) ThreadGroup(name string) *Cgroup {
	return &Cgroup{h: c.h, rel: filepath.Join(c.rel, name), ctrls: []string{"cpu"}, fs: c.fs, retry: c.retry}
}

// CreateThreadGroup makes the thread group g, a sub-group of a cgroup
// that exists, and bounds its CPU time by quota per period
// (microseconds; zero: not set). On cgroup v2 g is made a threaded
// cgroup and the cpu controller is enabled for it.
func (g *Cgroup) CreateThreadGroup(period uint64, quota int64) error {
	dir := g.Dirs()[0]
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("cgroup: %w", err)
	}
	if g.h.V2 {
		if err := g.fs.write(filepath.Join(dir, "cgroup.type"), "threaded"); err != nil {
			return err
		}
		if err := g.fs.write(filepath.Join(filepath.Dir(dir), "cgroup.subtree_control"), "+cpu"); err != nil {
			return err
		}
		if q := cpuMax(quota, period); q != "" {
			return g.fs.write(filepath.Join(dir, "cpu.max"), q)
		}
		return nil
	}
	if period > 0 {
		if err := g.fs.write(filepath.Join(dir, "cpu.cfs_period_us"), strconv.FormatUint(period, 10)); err != nil {
			return err
		}
	}
	if quota > 0 {
		return g.fs.write(filepath.Join(dir, "cpu.cfs_quota_us"), strconv.FormatInt(quota, 10))
	}
	return nil
}

// AddThread moves the single thread tid into g (v1 tasks, v2
// cgroup.threads); its process's other threads stay where they are.
func (g *Cgroup) AddThread(tid int) error {
	name := "tasks"
	if g.h.V2 {
		name = "cgroup.threads"
	}
	for _, d := range g.Dirs() {
		if err := g.fs.write(filepath.Join(d, name), strconv.Itoa(tid)); err != nil {
			return err
		}
	}
	return nil
}

// RemoveTree removes the (empty) cgroup and its sub-groups (thread
// groups, one level deep). A cgroup that does not exist is not an error.
func (c *Cgroup) RemoveTree() error {
	var errs []error
	for _, d := range c.Dirs() {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() {
				if err := removeDir(filepath.Join(d, e.Name())); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(append(errs, c.Remove())...)
}

// removeDir removes an empty cgroup directory, waiting out EBUSY while
// the kernel releases the last exited threads.
func removeDir(d string) error {
	var err error
	for i := 0; i < 200; i++ {
		err = os.Remove(d)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("cgroup: %w", err)
}
