package hostinfo

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/virtd/virtd/virt"
)

func TestNodeCPUStats(t *testing.T) {
	old := statFile
	t.Cleanup(func() { statFile = old })
	statFile = writeFile(t, "stat", "cpu  100 10 50 1000 5 2 3 4 0 0\ncpu0 60 10 30 500 5 2 3 4 0 0\ncpu1 40 0 20 500 0 0 0 0 0 0\nintr 1 2 3\n")
	tick := time.Second / clockTicks
	for _, tc := range []struct {
		cpu  int
		want virt.NodeCPUStats
	}{
		{-1, virt.NodeCPUStats{Kernel: 55 * tick, User: 110 * tick, Idle: 1000 * tick, IOWait: 5 * tick}},
		{0, virt.NodeCPUStats{Kernel: 35 * tick, User: 70 * tick, Idle: 500 * tick, IOWait: 5 * tick}},
		{1, virt.NodeCPUStats{Kernel: 20 * tick, User: 40 * tick, Idle: 500 * tick}},
	} {
		got, err := NodeCPUStats(t.Context(), tc.cpu)
		if err != nil || *got != tc.want {
			t.Errorf("NodeCPUStats(%d) = %+v, %v; want %+v", tc.cpu, got, err, tc.want)
		}
	}
	for _, cpu := range []int{2, -2} {
		if _, err := NodeCPUStats(t.Context(), cpu); !errors.Is(err, virt.ErrInvalidArgument) {
			t.Errorf("NodeCPUStats(%d): %v", cpu, err)
		}
	}
	statFile = old
	if s, err := NodeCPUStats(t.Context(), virt.NodeCPUStatsAll); err != nil || s.Idle+s.User == 0 {
		t.Errorf("this host: %+v, %v", s, err)
	}
}

func TestNodeMemoryStats(t *testing.T) {
	oldMem, oldNode := meminfoFile, nodeDir
	t.Cleanup(func() { meminfoFile, nodeDir = oldMem, oldNode })
	meminfoFile = writeFile(t, "meminfo", "MemTotal:       16318436 kB\nMemFree:         1000 kB\nMemAvailable:   9000 kB\nBuffers:          200 kB\nCached:          3000 kB\nSwapCached:         0 kB\n")
	nodeDir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(nodeDir, "node1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(nodeDir, "node1", "meminfo"), []byte("Node 1 MemTotal:  8000 kB\nNode 1 MemFree:  700 kB\nNode 1 MemUsed:  7300 kB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := NodeMemoryStats(t.Context(), virt.NodeMemoryStatsAll)
	if err != nil || *got != (virt.NodeMemoryStats{TotalKiB: 16318436, FreeKiB: 1000, BuffersKiB: 200, CachedKiB: 3000}) {
		t.Errorf("NodeMemoryStats(all) = %+v, %v", got, err)
	}
	got, err = NodeMemoryStats(t.Context(), 1)
	if err != nil || *got != (virt.NodeMemoryStats{TotalKiB: 8000, FreeKiB: 700}) {
		t.Errorf("NodeMemoryStats(1) = %+v, %v", got, err)
	}
	for _, cell := range []int{0, 2, -2} {
		if _, err := NodeMemoryStats(t.Context(), cell); !errors.Is(err, virt.ErrInvalidArgument) {
			t.Errorf("NodeMemoryStats(%d): %v", cell, err)
		}
	}
	// Without NUMA, cell 0 is the host.
	nodeDir = filepath.Join(nodeDir, "absent")
	if got, err := NodeMemoryStats(t.Context(), 0); err != nil || got.TotalKiB != 16318436 {
		t.Errorf("NodeMemoryStats(0) without NUMA = %+v, %v", got, err)
	}
	meminfoFile, nodeDir = oldMem, oldNode
	if s, err := NodeMemoryStats(t.Context(), virt.NodeMemoryStatsAll); err != nil || s.TotalKiB == 0 || s.FreeKiB > s.TotalKiB {
		t.Errorf("this host: %+v, %v", s, err)
	}
}
