package client_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virtd/virtd/client"
	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/testdriver"
	"github.com/virtd/virtd/virt"
)

// devicesXML is a test domain with a disk and an interface.
const devicesXML = `<domain type='test'><name>dev</name><memory>65536</memory><vcpu>2</vcpu>
<devices>
  <disk type='file' device='disk'><source file='/var/lib/virtd/dev.img'/><target dev='vda' bus='virtio'/></disk>
  <interface type='bridge'><mac address='52:54:00:aa:bb:cc'/><source bridge='br0'/><target dev='vnet7'/></interface>
</devices></domain>`

func TestDomainStats(t *testing.T) {
	s := start(t)
	ctx := testCtx(t)
	rw := openTest(t, s)
	d, err := rw.DefineXML(ctx, devicesXML)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Statistics are reads: a read-only connection may have them.
	ro, err := client.OpenReadOnly(ctx, "test:///default", client.WithSocket(s.ROSocket))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close(context.Background())
	all, err := ro.GetAllDomainStats(ctx, nil, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Domain.Name() != "test" || all[1].Domain.Name() != "dev" || all[1].Domain.ID() != 2 {
		t.Fatalf("records of every domain: %+v", all)
	}
	rec := all[1]
	for name, want := range map[string]any{
		"state.state": int32(virt.StateRunning), "state.reason": virt.RunningBooted,
		"vcpu.current": uint32(2), "vcpu.maximum": uint32(2), "vcpu.1.state": int32(1),
		"balloon.maximum": uint64(65536), "net.count": uint32(1), "net.0.name": "vnet7",
		"block.count": uint32(1), "block.0.name": "vda", "block.0.path": "/var/lib/virtd/dev.img",
	} {
		if got, ok := rec.Params.Get(name); !ok || got != want {
			t.Errorf("%s = %#v (%v), want %#v", name, got, ok, want)
		}
	}
	for _, name := range []string{"cpu.time", "cpu.user", "cpu.system", "vcpu.0.time", "net.0.rx.bytes", "net.0.tx.pkts", "block.0.rd.reqs", "block.0.wr.bytes", "balloon.rss"} {
		if v, ok := rec.Params.Get(name); !ok {
			t.Errorf("no %s", name)
		} else if _, ok := v.(uint64); !ok {
			t.Errorf("%s is a %T, want an unsigned long long", name, v)
		}
	}

	// One domain, one group; the figures move on between two calls.
	cpu := func() uint64 {
		t.Helper()
		recs, err := ro.GetAllDomainStats(ctx, []*client.Domain{d}, virt.StatsCPUTotal, 0)
		if err != nil || len(recs) != 1 || len(recs[0].Params) != 3 {
			t.Fatalf("GetAllDomainStats(dev, cpu-total) = %+v, %v", recs, err)
		}
		v, _ := recs[0].Params.Get("cpu.time")
		return v.(uint64)
	}
	first := cpu()
	time.Sleep(20 * time.Millisecond)
	if second := cpu(); second <= first {
		t.Errorf("cpu.time %d, then %d", first, second)
	}
	if _, err := ro.GetAllDomainStats(ctx, nil, 1<<30, virt.StatsEnforce); !errors.Is(err, client.ErrNotSupported) {
		t.Errorf("enforcing a group the driver lacks: %v", err)
	}
	inactive, err := ro.GetAllDomainStats(ctx, nil, virt.StatsState, virt.StatsInactive)
	if err != nil || len(inactive) != 0 {
		t.Errorf("inactive domains: %+v, %v; want none", inactive, err)
	}

	// The per-device calls, with the handle of the read-only connection.
	dd, err := ro.LookupByName(ctx, "dev")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	b, err := dd.BlockStats(ctx, "vda")
	if err != nil || b.RdReq <= 0 || b.RdBytes != 4096*b.RdReq || b.Errs != 0 {
		t.Errorf("BlockStats(vda) = %+v, %v", b, err)
	}
	if byPath, err := dd.BlockStats(ctx, "/var/lib/virtd/dev.img"); err != nil || byPath.RdReq < b.RdReq {
		t.Errorf("BlockStats by path = %+v, %v", byPath, err)
	}
	if _, err := dd.BlockStats(ctx, "vdb"); !errors.Is(err, client.ErrInvalidArgument) || !strings.Contains(err.Error(), `"vdb"`) {
		t.Errorf("BlockStats(vdb): %v", err)
	}
	for _, name := range []string{"vnet7", "52:54:00:AA:BB:CC"} {
		if n, err := dd.InterfaceStats(ctx, name); err != nil || n.RxPackets <= 0 || n.RxBytes != 1500*n.RxPackets || n.TxDrop != 0 {
			t.Errorf("InterfaceStats(%s) = %+v, %v", name, n, err)
		}
	}
	if _, err := dd.InterfaceStats(ctx, "vnet0"); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("InterfaceStats(vnet0): %v", err)
	}
	ms, err := dd.MemoryStats(ctx)
	if err != nil || len(ms) == 0 {
		t.Fatalf("MemoryStats = %v, %v", ms, err)
	}
	if ms[2] != (virt.MemoryStat{Tag: virt.MemoryActualBalloon, Value: 65536}) {
		t.Errorf("MemoryStats = %v, want the balloon at 65536 KiB", ms)
	}

	// A stopped domain has no counters.
	if err := d.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := dd.BlockStats(ctx, "vda"); !errors.Is(err, client.ErrFailedPrecondition) {
		t.Errorf("BlockStats of a stopped domain: %v", err)
	}
	if _, err := dd.MemoryStats(ctx); !errors.Is(err, client.ErrFailedPrecondition) {
		t.Errorf("MemoryStats of a stopped domain: %v", err)
	}
}

func TestNodeStatsAndDomainCapabilities(t *testing.T) {
	s := start(t)
	c := openTest(t, s)
	ctx := testCtx(t)
	all, err := c.NodeCPUStats(ctx, virt.NodeCPUStatsAll)
	if err != nil || all.Idle <= 0 || all.User <= 0 {
		t.Errorf("NodeCPUStats(all) = %+v, %v", all, err)
	}
	if _, err := c.NodeCPUStats(ctx, 16); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("NodeCPUStats(16) of the test node's 16 CPUs: %v", err)
	}
	m, err := c.NodeMemoryStats(ctx, virt.NodeMemoryStatsAll)
	if err != nil || *m != (virt.NodeMemoryStats{TotalKiB: 3145728, FreeKiB: 1048576, BuffersKiB: 65536, CachedKiB: 524288}) {
		t.Errorf("NodeMemoryStats(all) = %+v, %v", m, err)
	}
	x, err := c.DomainCapabilities(ctx, "", "x86_64", "", "test")
	if err != nil || !strings.Contains(x, "<domain>test</domain>") || !strings.Contains(x, "<arch>x86_64</arch>") {
		t.Errorf("DomainCapabilities = %s, %v", x, err)
	}
	if _, err := c.DomainCapabilities(ctx, "", "", "", "kvm"); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("DomainCapabilities(kvm) of the test driver: %v", err)
	}
}

// hidden is the test driver with its optional calls hidden.
type hidden struct{ driver.Driver }

func TestStatsNotSupported(t *testing.T) {
	s := start(t, hidden{testdriver.New(driver.Env{})})
	c := openTest(t, s)
	ctx := testCtx(t)
	if _, err := c.GetAllDomainStats(ctx, nil, 0, 0); !errors.Is(err, client.ErrNotSupported) {
		t.Errorf("GetAllDomainStats: %v", err)
	}
	if _, err := c.DomainCapabilities(ctx, "", "", "", ""); !errors.Is(err, client.ErrNotSupported) {
		t.Errorf("DomainCapabilities: %v", err)
	}
}

// counting is the test driver, counting its DomainStats calls.
type counting struct {
	*testdriver.Driver
	mu    sync.Mutex
	calls int
}

func (c *counting) DomainStats(ctx context.Context, uuids []string, groups virt.StatsGroups, flags virt.StatsFlags) ([]virt.DomainStats, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.Driver.DomainStats(ctx, uuids, groups, flags)
}

// TestStatsReachTheDriver: virtd answers plain reads from its view, but
// not statistics: each call reaches the driver.
func TestStatsReachTheDriver(t *testing.T) {
	drv := &counting{Driver: testdriver.New(driver.Env{}).(*testdriver.Driver)}
	s := start(t, drv)
	c := openTest(t, s)
	ctx := testCtx(t)
	for i := range 3 {
		if _, err := c.GetAllDomainStats(ctx, nil, virt.StatsState, 0); err != nil {
			t.Fatal(err)
		}
		drv.mu.Lock()
		n := drv.calls
		drv.mu.Unlock()
		if n != i+1 {
			t.Fatalf("after %d calls the driver had %d", i+1, n)
		}
	}
}
