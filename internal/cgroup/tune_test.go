package cgroup

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var testTune = Tune{
	CPUShares: 2048, CPUPeriod: 50000, CPUQuota: 25000,
	MemoryHard: 512 << 20, MemorySoft: 256 << 20, MemorySwapHard: 768 << 20,
}

// TestTuneV1 creates a cgroup with tuning values and a thread group in
// the host's cgroup v1 hierarchies, reads them back, and removes both.
func TestTuneV1(t *testing.T) {
	base := v1Cgroup(t)
	h := base.h
	c := h.OpenWith(testParent, testName(t)+"-tuned", []string{"cpu", "cpuacct", "memory"})
	tune := testTune
	if _, err := os.Stat(filepath.Join(h.Mounts["memory"], "memory.memsw.limit_in_bytes")); err != nil {
		// No swap accounting on this kernel.
		tune.MemorySwapHard = 0
	}
	if err := c.CreateTuned(tune); err != nil {
		t.Fatal(err)
	}
	defer c.RemoveTree()
	for _, f := range []struct{ ctrl, name, want string }{
		{"cpu", "cpu.shares", "2048"},
		{"cpu", "cpu.cfs_period_us", "50000"},
		{"cpu", "cpu.cfs_quota_us", "25000"},
		{"memory", "memory.limit_in_bytes", "536870912"},
		{"memory", "memory.soft_limit_in_bytes", "268435456"},
	} {
		if got, err := c.Stat(f.ctrl, f.name); err != nil || got != f.want {
			t.Errorf("%s = %q (%v), want %s", f.name, got, err, f.want)
		}
	}
	if tune.MemorySwapHard > 0 {
		if got, _ := c.Stat("memory", "memory.memsw.limit_in_bytes"); got != "805306368" {
			t.Errorf("memory.memsw.limit_in_bytes = %q, want 805306368", got)
		}
	}
	// Only the controllers asked for.
	if dirs := c.Dirs(); len(dirs) != 3 && !(len(dirs) == 2 && h.Mounts["cpu"] == h.Mounts["cpuacct"]) {
		t.Errorf("dirs %v, want cpu, cpuacct and memory", dirs)
	}
	if _, err := os.Stat(filepath.Join(h.Mounts["pids"], c.rel)); err == nil {
		t.Errorf("cgroup made in the pids hierarchy too")
	}

	g := c.ThreadGroup("vcpu0")
	if err := g.CreateThreadGroup(40000, 10000); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.Stat("cpu", "cpu.cfs_quota_us"); got != "10000" {
		t.Errorf("vcpu0 cpu.cfs_quota_us = %q, want 10000", got)
	}
	// A thread group's quota above its parent's is the kernel's error.
	if err := c.ThreadGroup("vcpu1").CreateThreadGroup(50000, 40000); err == nil {
		t.Errorf("a thread quota above the cgroup's was accepted")
	}
	if err := c.RemoveTree(); err != nil {
		t.Fatal(err)
	}
	if c.Exists() || g.Exists() {
		t.Errorf("cgroup still exists after RemoveTree")
	}
}

// TestTuneV2Writes checks the files and values written on cgroup v2 (this
// machine's v2 hierarchy has no controllers, so the kernel's files are
// replaced by a recorder in memory).
func TestTuneV2Writes(t *testing.T) {
	root := t.TempDir()
	h := &Hierarchy{V2: true, Root: root}
	k := &fakeKernel{files: map[string]string{}, onWrite: func(*fakeKernel, string, string) {}}
	c := h.OpenWith("machine", "dom", nil)
	c.fs = k
	if err := os.MkdirAll(c.Dirs()[0], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyTune(testTune); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"cpu.weight=79", // 1 + (2048-2)*9999/262142, rounded down
		"cpu.max=25000 50000",
		"memory.max=536870912",
		"memory.high=268435456",
		"memory.swap.max=268435456", // swap alone: 768 MiB - 512 MiB
	}
	if !slices.Equal(k.writes, want) {
		t.Errorf("writes %v, want %v", k.writes, want)
	}

	k.writes = nil
	g := c.ThreadGroup("vcpu0")
	if err := g.CreateThreadGroup(0, 30000); err != nil {
		t.Fatal(err)
	}
	if err := g.AddThread(1234); err != nil {
		t.Fatal(err)
	}
	want = []string{"cgroup.type=threaded", "cgroup.subtree_control=+cpu", "cpu.max=30000 100000", "cgroup.threads=1234"}
	if !slices.Equal(k.writes, want) {
		t.Errorf("thread group writes %v, want %v", k.writes, want)
	}
	if _, err := os.Stat(filepath.Join(root, "machine", "dom", "vcpu0")); err != nil {
		t.Errorf("thread group directory: %v", err)
	}
}

func TestTuneRefusesSwapBelowMemory(t *testing.T) {
	h := &Hierarchy{V2: true, Root: t.TempDir()}
	c := h.Open("machine", "dom")
	c.fs = &fakeKernel{files: map[string]string{}, onWrite: func(*fakeKernel, string, string) {}}
	err := c.ApplyTune(Tune{MemoryHard: 2 << 20, MemorySwapHard: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "above the memory and swap limit") {
		t.Fatalf("got %v", err)
	}
}
