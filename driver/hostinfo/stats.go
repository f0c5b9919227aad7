package hostinfo

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/virtd/virtd/virt"
)

// Files the node statistics are read from; tests point them elsewhere.
var (
	statFile = "/proc/stat"
	nodeDir  = "/sys/devices/system/node"
)

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux
// architecture virtd runs on.
const clockTicks = 100

// NodeCPUStats returns the time the host's CPUs spent in each state since
// boot, from /proc/stat, as libvirt's virNodeGetCPUStats does on Linux:
// kernel is system, irq and softirq; user is user and nice. cpu is an
// online CPU's number, or virt.NodeCPUStatsAll for their sum; another is
// an invalid argument. It is the NodeCPUStats of a driver whose guests run
// on the host's own kernel.
func NodeCPUStats(ctx context.Context, cpu int) (*virt.NodeCPUStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cpu < virt.NodeCPUStatsAll {
		return nil, fmt.Errorf("CPU number %d: want a CPU's number or -1 for all: %w", cpu, virt.ErrInvalidArgument)
	}
	want := "cpu"
	if cpu != virt.NodeCPUStatsAll {
		want += strconv.Itoa(cpu)
	}
	f, err := os.Open(statFile)
	if err != nil {
		return nil, virt.Errorf(virt.ErrInternal, "node CPU stats: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != want {
			continue
		}
		// cpuN user nice system idle iowait irq softirq ...
		if len(fields) < 8 {
			return nil, fmt.Errorf("node CPU stats: %s: short line for %s: %w", statFile, want, virt.ErrInternal)
		}
		var v [7]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(fields[i+1], 10, 64); err != nil {
				return nil, virt.Errorf(virt.ErrInternal, "node CPU stats: %s: %w", statFile, err)
			}
		}
		ticks := func(n uint64) time.Duration { return time.Duration(n) * time.Second / clockTicks }
		user, nice, system, idle, iowait, irq, softirq := v[0], v[1], v[2], v[3], v[4], v[5], v[6]
		return &virt.NodeCPUStats{
			Kernel: ticks(system + irq + softirq),
			User:   ticks(user + nice),
			Idle:   ticks(idle),
			IOWait: ticks(iowait),
		}, nil
	}
	if err := sc.Err(); err != nil {
		return nil, virt.Errorf(virt.ErrInternal, "node CPU stats: %s: %w", statFile, err)
	}
	return nil, fmt.Errorf("CPU number %d is not an online CPU of this host: %w", cpu, virt.ErrInvalidArgument)
}

// NodeMemoryStats returns the host's memory from /proc/meminfo, or one
// NUMA cell's from /sys/devices/system/node/node<cell>/meminfo, as
// libvirt's virNodeGetMemoryStats does on Linux (a cell's file counts
// neither buffers nor cache: they are 0). cell is a cell's number or
// virt.NodeMemoryStatsAll; a host without NUMA has cell 0, the whole
// memory. Another cell is an invalid argument.
func NodeMemoryStats(ctx context.Context, cell int) (*virt.NodeMemoryStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := meminfoFile
	switch {
	case cell < virt.NodeMemoryStatsAll:
		return nil, fmt.Errorf("cell number %d: want a NUMA cell's number or -1 for all: %w", cell, virt.ErrInvalidArgument)
	case cell >= 0:
		path = filepath.Join(nodeDir, "node"+strconv.Itoa(cell), "meminfo")
		if _, err := os.Stat(path); err != nil {
			if _, derr := os.Stat(nodeDir); cell == 0 && os.IsNotExist(derr) {
				path = meminfoFile // no NUMA: one cell, the host
				break
			}
			return nil, fmt.Errorf("cell number %d is out of range: %w", cell, virt.ErrInvalidArgument)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, virt.Errorf(virt.ErrInternal, "node memory stats: %w", err)
	}
	defer f.Close()
	var st virt.NodeMemoryStats
	fields := map[string]*uint64{
		"MemTotal:": &st.TotalKiB, "MemFree:": &st.FreeKiB,
		"Buffers:": &st.BuffersKiB, "Cached:": &st.CachedKiB,
	}
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "MemTotal:  8048988 kB", or in a cell's file
		// "Node 0 MemTotal:  8048988 kB".
		line := strings.Fields(sc.Text())
		if len(line) >= 2 && line[0] == "Node" {
			line = line[2:]
		}
		if len(line) < 2 {
			continue
		}
		if p, ok := fields[line[0]]; ok {
			if *p, err = strconv.ParseUint(line[1], 10, 64); err != nil {
				return nil, virt.Errorf(virt.ErrInternal, "node memory stats: %s: %w", path, err)
			}
			found++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, virt.Errorf(virt.ErrInternal, "node memory stats: %s: %w", path, err)
	}
	if found == 0 {
		return nil, fmt.Errorf("node memory stats: %s has no memory lines: %w", path, virt.ErrInternal)
	}
	return &st, nil
}
