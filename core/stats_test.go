package core_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/testdriver"
	"github.com/virtd/virtd/virt"
)

// testUUID is the test driver's default domain, "test", which runs.
const testUUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"

// TestStatsReachTheDriver: statistics are reads a read-only connection
// may make, and each reaches the driver, so the figures move between two
// calls (the view keeps none).
func TestStatsReachTheDriver(t *testing.T) {
	c, _ := newCore(t)
	ctx := ctxFor(t)
	conn := openConn(t, c, core.ReadOnly)
	cpuTime := func() uint64 {
		t.Helper()
		recs, err := conn.DomainStats(ctx, []string{testUUID}, virt.StatsCPUTotal, virt.StatsEnforce)
		if err != nil || len(recs) != 1 || recs[0].Domain.Name != "test" {
			t.Fatalf("DomainStats(test) = %+v, %v", recs, err)
		}
		v, _ := recs[0].Params.Get("cpu.time")
		n, ok := v.(uint64)
		if !ok {
			t.Fatalf("cpu.time = %#v", v)
		}
		return n
	}
	first := cpuTime()
	time.Sleep(10 * time.Millisecond)
	if second := cpuTime(); second <= first {
		t.Errorf("cpu.time %d, then %d: want it to grow", first, second)
	}
	if _, err := conn.BlockStats(ctx, testUUID, "vda"); !errors.Is(err, virt.ErrInvalidArgument) {
		t.Errorf("BlockStats of a disk test lacks: %v", err)
	}
	if _, err := conn.InterfaceStats(ctx, testUUID, "vnet0"); !errors.Is(err, virt.ErrInvalidArgument) {
		t.Errorf("InterfaceStats of an interface test lacks: %v", err)
	}
	if ms, err := conn.MemoryStats(ctx, testUUID); err != nil || len(ms) == 0 {
		t.Errorf("MemoryStats(test) = %v, %v", ms, err)
	}
	if s, err := conn.NodeCPUStats(ctx, virt.NodeCPUStatsAll); err != nil || s.Idle == 0 {
		t.Errorf("NodeCPUStats = %+v, %v", s, err)
	}
	if s, err := conn.NodeMemoryStats(ctx, virt.NodeMemoryStatsAll); err != nil || s.TotalKiB == 0 {
		t.Errorf("NodeMemoryStats = %+v, %v", s, err)
	}
	if x, err := conn.DomainCapabilities(ctx, "", "", "", ""); err != nil || !strings.Contains(x, "<domain>test</domain>") {
		t.Errorf("DomainCapabilities = %q, %v", x, err)
	}
}

// plain is the test driver with its optional calls hidden.
type plain struct{ driver.Driver }

// TestStatsNotSupported: a driver without the calls gets a clean
// not-supported that names the feature.
func TestStatsNotSupported(t *testing.T) {
	c, _ := newCore(t, plain{testdriver.New(driver.Env{})})
	ctx := ctxFor(t)
	conn := openConn(t, c, core.ReadOnly)
	for name, call := range map[string]func() error{
		"DomainStats":     func() error { _, err := conn.DomainStats(ctx, nil, 0, 0); return err },
		"BlockStats":      func() error { _, err := conn.BlockStats(ctx, testUUID, ""); return err },
		"InterfaceStats":  func() error { _, err := conn.InterfaceStats(ctx, testUUID, "vnet0"); return err },
		"MemoryStats":     func() error { _, err := conn.MemoryStats(ctx, testUUID); return err },
		"NodeCPUStats":    func() error { _, err := conn.NodeCPUStats(ctx, -1); return err },
		"NodeMemoryStats": func() error { _, err := conn.NodeMemoryStats(ctx, -1); return err },
	} {
		if err := call(); !errors.Is(err, virt.ErrNotSupported) || !strings.Contains(err.Error(), driver.FeatureStats) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := conn.DomainCapabilities(ctx, "", "", "", ""); !errors.Is(err, virt.ErrNotSupported) || !strings.Contains(err.Error(), driver.FeatureDomainCapabilities) {
		t.Errorf("DomainCapabilities: %v", err)
	}
}
