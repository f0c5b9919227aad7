package domutil

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/virtd/virtd/virt"
)

func TestStatsGroups(t *testing.T) {
	has := virt.StatsState | virt.StatsCPUTotal
	for _, tc := range []struct {
		asked virt.StatsGroups
		flags virt.StatsFlags
		want  virt.StatsGroups
		kind  error
	}{
		{0, 0, has, nil},
		{0, virt.StatsEnforce, has, nil},
		{virt.StatsState, 0, virt.StatsState, nil},
		{virt.StatsState | virt.StatsBlock, 0, virt.StatsState, nil},
		{virt.StatsState | virt.StatsBlock, virt.StatsEnforce | virt.StatsActive, 0, virt.ErrNotSupported},
		{virt.StatsBlock, 0, 0, nil},
		{0, 1 << 29, 0, virt.ErrInvalidArgument},
	} {
		got, err := StatsGroups(tc.asked, has, tc.flags)
		if got != tc.want || (tc.kind == nil) != (err == nil) || (tc.kind != nil && !errors.Is(err, tc.kind)) {
			t.Errorf("StatsGroups(%#x, flags %#x) = %#x, %v; want %#x, %v", tc.asked, tc.flags, got, err, tc.want, tc.kind)
		}
	}
}

func TestStatsBuilder(t *testing.T) {
	var b StatsBuilder
	b.State(virt.StateRunning, virt.RunningBooted)
	b.CPU(3*time.Second, 2*time.Second, time.Second)
	b.CPUTime(-1)
	b.Balloon(1024, 2048)
	b.BalloonMemory([]virt.MemoryStat{{Tag: virt.MemoryActualBalloon, Value: 1024}, {Tag: virt.MemoryRSS, Value: 512}, {Tag: virt.MemoryLastUpdate, Value: 9}})
	b.VCPUs(1, 2)
	b.VCPU(0, VCPURunning, time.Second)
	b.NetCount(2)
	b.Net(1, "vnet0", &virt.InterfaceStats{RxBytes: 10, RxPackets: 1, RxErrs: -1, RxDrop: 0, TxBytes: 20, TxPackets: 2, TxErrs: 0, TxDrop: -1})
	b.BlockCount(1)
	b.Block(0, "vda", "/img")
	b.Block(1, "hdc", "")
	b.BlockIO(0, &BlockIO{RdReqs: 1, RdBytes: 512, RdTimes: time.Microsecond, Capacity: 4096})
	var got []string
	for _, p := range b.Params {
		got = append(got, fmt.Sprintf("%s=%s(%d)", p.Name, p.Format(), p.Type()))
	}
	want := "[state.state=1(1) state.reason=1(1) cpu.time=3000000000(4) cpu.user=2000000000(4) cpu.system=1000000000(4) cpu.time=0(4) " +
		"balloon.current=1024(4) balloon.maximum=2048(4) balloon.rss=512(4) balloon.last-update=9(4) " +
		"vcpu.current=1(2) vcpu.maximum=2(2) vcpu.0.state=1(1) vcpu.0.time=1000000000(4) " +
		"net.count=2(2) net.1.name=vnet0(7) net.1.rx.bytes=10(4) net.1.rx.pkts=1(4) net.1.rx.drop=0(4) " +
		"net.1.tx.bytes=20(4) net.1.tx.pkts=2(4) net.1.tx.errs=0(4) " +
		"block.count=1(2) block.0.name=vda(7) block.0.path=/img(7) block.1.name=hdc(7) " +
		"block.0.rd.reqs=1(4) block.0.rd.bytes=512(4) block.0.rd.times=1000(4) block.0.wr.reqs=0(4) block.0.wr.bytes=0(4) " +
		"block.0.wr.times=0(4) block.0.fl.reqs=0(4) block.0.fl.times=0(4) block.0.allocation=0(4) block.0.capacity=4096(4)]"
	if fmt.Sprint(got) != want {
		t.Errorf("params:\n%v\nwant:\n%s", got, want)
	}
}

func TestDeviceErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		kind error
		text string
	}{
		{NotRunning("web"), virt.ErrFailedPrecondition, "domain 'web' is not running: operation not valid"},
		{NoDisk("web", "vdz"), virt.ErrInvalidArgument, `domain 'web' has no disk "vdz"`},
		{NoInterface("web", "vnet9"), virt.ErrInvalidArgument, `domain 'web' has no interface "vnet9"`},
	} {
		if !errors.Is(tc.err, tc.kind) || len(tc.err.Error()) < len(tc.text) || tc.err.Error()[:len(tc.text)] != tc.text {
			t.Errorf("%v: want %v starting %q", tc.err, tc.kind, tc.text)
		}
	}
	if !SameMAC("52:54:00:AA:bb:cc", "52:54:00:aa:bb:cc") || SameMAC("vnet0", "52:54:00:aa:bb:cc") || SameMAC("52:54:00:aa:bb:cd", "52:54:00:aa:bb:cc") {
		t.Error("SameMAC")
	}
}
