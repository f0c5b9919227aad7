package testdriver

import (
	"context"
	"testing"
	"time"

	"github.com/virtd/virtd/virt"
)

// TestStatsFollowRunningTime: the figures are derived from the time the
// domain has run, so they stand still while it is paused and follow the
// documented rates.
func TestStatsFollowRunningTime(t *testing.T) {
	drv := newTest(t)
	ctx := context.Background()
	dev := "<vcpu>2</vcpu><devices><disk type='file'><source file='/img'/><target dev='vda'/></disk>" +
		"<interface type='bridge'><source bridge='br0'/><target dev='vnet3'/></interface></devices>"
	d := mustDefine(t, drv, domXML("web", dev))
	if _, err := drv.StartDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := drv.SuspendDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	read := func() virt.TypedParams {
		t.Helper()
		recs, err := drv.DomainStats(ctx, []string{d.UUID}, 0, 0)
		if err != nil || len(recs) != 1 {
			t.Fatalf("DomainStats = %v, %v", recs, err)
		}
		return recs[0].Params
	}
	a := read()
	time.Sleep(20 * time.Millisecond)
	b := read()
	cpu, _ := a.Get("cpu.time")
	if again, _ := b.Get("cpu.time"); again != cpu || cpu.(uint64) < uint64(50*time.Millisecond) {
		t.Errorf("paused: cpu.time %v, then %v; want at least 50ms, standing still", cpu, again)
	}
	t0 := time.Duration(cpu.(uint64))
	for name, want := range map[string]any{
		"state.state":     int32(virt.StatePaused),
		"vcpu.0.time":     uint64(t0 / 2),
		"block.0.rd.reqs": uint64(t0 / (10 * time.Millisecond)),
		"net.0.rx.pkts":   uint64(t0 / (5 * time.Millisecond)),
		"balloon.rss":     uint64(32 * 1024),
		"cpu.user":        uint64(t0 * 3 / 4),
	} {
		if got, _ := a.Get(name); got != want {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	st, err := drv.BlockStats(ctx, d.UUID, "")
	if err != nil || st.RdReq != int64(t0/(10*time.Millisecond)) {
		t.Errorf("BlockStats of every disk = %+v, %v", st, err)
	}
}
