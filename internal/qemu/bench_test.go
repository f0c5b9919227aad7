package qemu

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkStartDiskless measures define-to-running latency of a diskless
// guest: DefineDomain, then StartDomain until it returns running (QEMU
// started paused, QMP greeting, live values read, cont). It reports the
// median and p90 besides the mean.
func BenchmarkStartDiskless(b *testing.B) {
	needQEMU(b)
	drv, _ := newTestDriver(b)
	ctx := context.Background()
	var took []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		began := time.Now()
		d, err := drv.DefineDomain(ctx, disklessXML(fmt.Sprintf("bench-%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := drv.StartDomain(ctx, d.UUID); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(began))
		b.StopTimer()
		if err := drv.DestroyDomain(ctx, d.UUID); err != nil {
			b.Fatal(err)
		}
		if err := drv.UndefineDomain(ctx, d.UUID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	slices.Sort(took)
	if n := len(took); n > 0 {
		b.ReportMetric(float64(took[n/2].Microseconds())/1000, "median-ms")
		b.ReportMetric(float64(took[n*9/10].Microseconds())/1000, "p90-ms")
	}
}

// BenchmarkSuspendEvent measures, in the driver's process, a suspend or a
// resume from the call to its lifecycle event: QEMU's stop or cont over
// QMP and the driver's own work, without the daemon's hops. One op is a
// suspend and a resume.
func BenchmarkSuspendEvent(b *testing.B) {
	needQEMU(b)
	drv, _ := newTestDriver(b)
	ctx := context.Background()
	d, err := drv.DefineDomain(ctx, disklessXML("bench-suspend"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := drv.StartDomain(ctx, d.UUID); err != nil {
		b.Fatal(err)
	}
	evctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := drv.WatchEvents(evctx)
	if err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	for b.Loop() {
		for _, op := range []func(context.Context, string) error{drv.SuspendDomain, drv.ResumeDomain} {
			began := time.Now()
			if err := op(ctx, d.UUID); err != nil {
				b.Fatal(err)
			}
			<-events
			took = append(took, time.Since(began))
		}
	}
	slices.Sort(took)
	if n := len(took); n > 0 {
		b.ReportMetric(float64(took[n/2].Microseconds()), "median-us")
		b.ReportMetric(float64(took[n*9/10].Microseconds()), "p90-us")
	}
}

// BenchmarkDefine measures DefineDomain of a minimal definition: parsing,
// checks, implicit devices, address assignment and the write to disk. The
// emulator's probe (one QEMU run the first time a host defines a domain,
// for its machine types) is made before the timer starts.
func BenchmarkDefine(b *testing.B) {
	needQEMU(b)
	drv, _ := newTestDriver(b)
	ctx := context.Background()
	if _, err := drv.caps.probe(ctx, emulator{path: drv.caps.find("qemu-system-x86_64"), arch: "x86_64"}); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		d, err := drv.DefineDomain(ctx, disklessXML(fmt.Sprintf("bench-%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := drv.UndefineDomain(ctx, d.UUID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
