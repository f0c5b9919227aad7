// Package cgroup manages one Linux control group per guest (an LXC
// container, a QEMU domain): its limits (memory, pids, cpu), its counters
// (memory in use, CPU time), the freezer, and killing and removing
// everything in it. It speaks cgroup v1
// (one hierarchy per controller, as on our build machines) and cgroup v2
// (one unified hierarchy), chosen by Detect from what the host mounts.
package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Controllers are the v1 controllers a container's cgroup uses.
var Controllers = []string{"memory", "pids", "cpu", "cpuacct", "freezer"}

// Hierarchy is where the host mounts its cgroups.
type Hierarchy struct {
	// V2 is true when every controller is in the unified hierarchy at Root.
	V2   bool
	Root string
	// Mounts maps a v1 controller to its mount point.
	Mounts map[string]string
}

// String describes the hierarchy, for logs and health reasons.
func (h *Hierarchy) String() string {
	if h.V2 {
		return "cgroup v2 at " + h.Root
	}
	return "cgroup v1"
}

// Detect finds the hierarchy to use: cgroup v2 when a unified hierarchy
// offers the memory, pids and cpu controllers, otherwise cgroup v1 with
// every controller in Controllers mounted.
func Detect() (*Hierarchy, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	v1 := map[string]string{}
	var v2roots []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || pf[3] != "/" {
			continue
		}
		switch qf[0] {
		case "cgroup2":
			v2roots = append(v2roots, pf[4])
		case "cgroup":
			for _, o := range strings.Split(qf[2], ",") {
				if _, seen := v1[o]; !seen {
					v1[o] = pf[4]
				}
			}
		}
	}
	for _, root := range v2roots {
		b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
		if err != nil {
			continue
		}
		have := strings.Fields(string(b))
		if contains(have, "memory") && contains(have, "pids") && contains(have, "cpu") {
			return &Hierarchy{V2: true, Root: root}, nil
		}
	}
	var missing []string
	for _, c := range Controllers {
		if v1[c] == "" {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("cgroups: controllers %s are mounted neither in cgroup v1 nor in a cgroup v2 hierarchy", strings.Join(missing, ", "))
	}
	return &Hierarchy{Mounts: v1}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Limits are a container's limits; zero means "no limit" (or the default).
type Limits struct {
	MemoryBytes uint64
	PidsMax     int64
	CPUShares   uint64
	// CPUQuota is in microseconds per CPUPeriod; negative or zero: none.
	CPUQuota  int64
	CPUPeriod uint64
}

// Cgroup is one container's cgroup, named parent/name in every hierarchy.
type Cgroup struct {
	h *Hierarchy
	// rel is parent/name.
	rel string
	// ctrls are the v1 controllers whose hierarchies the cgroup is in:
	// Controllers when nil.
	ctrls []string
	// fs reads, writes and watches the control files: the kernel's,
	// except in tests.
	fs files
	// retry bounds the freezer's waits.
	retry retry
}

// Open returns the cgroup parent/name; it does not create it.
func (h *Hierarchy) Open(parent, name string) *Cgroup {
	return &Cgroup{h: h, rel: filepath.Join(parent, name), fs: kernelFiles{}, retry: defaultRetry}
}

// Dirs returns every directory the cgroup has (or would have).
func (c *Cgroup) Dirs() []string {
	if c.h.V2 {
		return []string{filepath.Join(c.h.Root, c.rel)}
	}
	seen := map[string]bool{}
	var out []string
	ctrls := c.ctrls
	if ctrls == nil {
		ctrls = Controllers
	}
	for _, ctrl := range ctrls {
		d := filepath.Join(c.h.Mounts[ctrl], c.rel)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

func (c *Cgroup) file(ctrl, name string) string {
	if c.h.V2 {
		return filepath.Join(c.h.Root, c.rel, name)
	}
	return filepath.Join(c.h.Mounts[ctrl], c.rel, name)
}

// Create makes the cgroup (and its parents) and applies lim.
func (c *Cgroup) Create(lim Limits) error {
	if c.h.V2 {
		if err := c.createV2(); err != nil {
			return err
		}
	} else {
		for _, d := range c.Dirs() {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("cgroup: %w", err)
			}
		}
	}
	return c.apply(lim)
}

func (c *Cgroup) createV2() error {
	// Each level must delegate the controllers to the next.
	dir := c.h.Root
	parts := strings.Split(c.rel, string(filepath.Separator))
	for i, p := range parts {
		if err := c.fs.write(filepath.Join(dir, "cgroup.subtree_control"), "+memory +pids +cpu"); err != nil {
			return err
		}
		dir = filepath.Join(dir, p)
		if err := os.Mkdir(dir, 0o755); err != nil && !(errors.Is(err, os.ErrExist) && i < len(parts)-1) {
			if !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("cgroup: %w", err)
			}
		}
	}
	return nil
}

func (c *Cgroup) apply(lim Limits) error {
	if c.h.V2 {
		if lim.MemoryBytes > 0 {
			if err := c.fs.write(c.file("memory", "memory.max"), strconv.FormatUint(lim.MemoryBytes, 10)); err != nil {
				return err
			}
			_ = c.fs.write(c.file("memory", "memory.swap.max"), "0")
		}
		if lim.PidsMax > 0 {
			if err := c.fs.write(c.file("pids", "pids.max"), strconv.FormatInt(lim.PidsMax, 10)); err != nil {
				return err
			}
		}
		if lim.CPUShares > 0 {
			w := 1 + (clamp(lim.CPUShares, 2, 262144)-2)*9999/262142
			if err := c.fs.write(c.file("cpu", "cpu.weight"), strconv.FormatUint(w, 10)); err != nil {
				return err
			}
		}
		if lim.CPUQuota > 0 || lim.CPUPeriod > 0 {
			q, p := "max", uint64(100000)
			if lim.CPUQuota > 0 {
				q = strconv.FormatInt(lim.CPUQuota, 10)
			}
			if lim.CPUPeriod > 0 {
				p = lim.CPUPeriod
			}
			if err := c.fs.write(c.file("cpu", "cpu.max"), fmt.Sprintf("%s %d", q, p)); err != nil {
				return err
			}
		}
		return nil
	}
	if lim.MemoryBytes > 0 {
		if err := c.fs.write(c.file("memory", "memory.limit_in_bytes"), strconv.FormatUint(lim.MemoryBytes, 10)); err != nil {
			return err
		}
		// With swap accounting, the same limit for memory and swap
		// together: the container cannot escape its limit into swap.
		if _, err := os.Stat(c.file("memory", "memory.memsw.limit_in_bytes")); err == nil {
			if err := c.fs.write(c.file("memory", "memory.memsw.limit_in_bytes"), strconv.FormatUint(lim.MemoryBytes, 10)); err != nil {
				return err
			}
		}
	}
	if lim.PidsMax > 0 {
		if err := c.fs.write(c.file("pids", "pids.max"), strconv.FormatInt(lim.PidsMax, 10)); err != nil {
			return err
		}
	}
	if lim.CPUShares > 0 {
		if err := c.fs.write(c.file("cpu", "cpu.shares"), strconv.FormatUint(lim.CPUShares, 10)); err != nil {
			return err
		}
	}
	if lim.CPUPeriod > 0 {
		if err := c.fs.write(c.file("cpu", "cpu.cfs_period_us"), strconv.FormatUint(lim.CPUPeriod, 10)); err != nil {
			return err
		}
	}
	if lim.CPUQuota > 0 {
		if err := c.fs.write(c.file("cpu", "cpu.cfs_quota_us"), strconv.FormatInt(lim.CPUQuota, 10)); err != nil {
			return err
		}
	}
	return nil
}

func clamp(v, lo, hi uint64) uint64 {
	return min(max(v, lo), hi)
}

// Add moves process pid into the cgroup (in every hierarchy).
func (c *Cgroup) Add(pid int) error {
	for _, d := range c.Dirs() {
		if err := c.fs.write(filepath.Join(d, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// Pids lists the processes in the cgroup.
func (c *Cgroup) Pids() ([]int, error) {
	s, err := c.fs.read(c.file("pids", "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(s) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// Exists reports whether any of the cgroup's directories exists.
func (c *Cgroup) Exists() bool {
	for _, d := range c.Dirs() {
		if _, err := os.Stat(d); err == nil {
			return true
		}
	}
	return false
}

// MemoryUsage returns the memory the cgroup's processes use, in bytes.
func (c *Cgroup) MemoryUsage() (uint64, error) {
	return c.memoryValue("memory.usage_in_bytes", "memory.current")
}

// MemoryLimit returns the cgroup's memory limit in bytes (0: none).
func (c *Cgroup) MemoryLimit() (uint64, error) {
	return c.memoryValue("memory.limit_in_bytes", "memory.max")
}

// memoryValue reads a number from the memory controller's file v1 or v2,
// as the hierarchy is; "max" is 0.
func (c *Cgroup) memoryValue(v1, v2 string) (uint64, error) {
	name := v1
	if c.h.V2 {
		name = v2
	}
	s, err := c.fs.read(c.file("memory", name))
	if err != nil || s == "max" {
		return 0, err
	}
	return strconv.ParseUint(s, 10, 64)
}

// OOMKills returns how many processes of the cgroup the kernel's OOM
// killer has killed.
func (c *Cgroup) OOMKills() (uint64, error) {
	name := "memory.oom_control"
	if c.h.V2 {
		name = "memory.events"
	}
	s, err := c.fs.read(c.file("memory", name))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			return strconv.ParseUint(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("cgroup %s: no oom_kill counter in %s", c.rel, name)
}

// CPUUsage returns the CPU time the cgroup's processes used.
func (c *Cgroup) CPUUsage() (time.Duration, error) {
	if c.h.V2 {
		s, err := c.fs.read(c.file("cpu", "cpu.stat"))
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(s, "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				n, err := strconv.ParseInt(v, 10, 64)
				return time.Duration(n) * time.Microsecond, err
			}
		}
		return 0, fmt.Errorf("cgroup %s: no usage_usec in cpu.stat", c.rel)
	}
	s, err := c.fs.read(c.file("cpuacct", "cpuacct.usage"))
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return time.Duration(n), err
}

// CPUSplit returns the CPU time the cgroup's processes spent in user space
// and in the kernel (cpuacct.stat in USER_HZ ticks on v1, cpu.stat's
// user_usec and system_usec on v2).
func (c *Cgroup) CPUSplit() (user, system time.Duration, err error) {
	ctrl, name, userKey, sysKey, unit := "cpuacct", "cpuacct.stat", "user ", "system ", time.Second/100
	if c.h.V2 {
		ctrl, name, userKey, sysKey, unit = "cpu", "cpu.stat", "user_usec ", "system_usec ", time.Microsecond
	}
	s, err := c.fs.read(c.file(ctrl, name))
	if err != nil {
		return 0, 0, err
	}
	found := 0
	for _, line := range strings.Split(s, "\n") {
		for key, d := range map[string]*time.Duration{userKey: &user, sysKey: &system} {
			if v, ok := strings.CutPrefix(line, key); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("cgroup %s: %s: %w", c.rel, name, err)
				}
				*d = time.Duration(n) * unit
				found++
			}
		}
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("cgroup %s: no user and system times in %s", c.rel, name)
	}
	return user, system, nil
}

// Stat reads one counter file of a controller ("memory", "memory.failcnt").
func (c *Cgroup) Stat(ctrl, name string) (string, error) {
	return c.fs.read(c.file(ctrl, name))
}

// Remove removes the (empty) cgroup from every hierarchy; a cgroup that
// does not exist is not an error. The shared parent stays.
func (c *Cgroup) Remove() error {
	var errs []error
	for _, d := range c.Dirs() {
		var err error
		for i := 0; i < 200; i++ {
			err = os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			// EBUSY while the last exited processes are released.
			time.Sleep(5 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cgroup: %w", err))
		}
	}
	return errors.Join(errs...)
}
