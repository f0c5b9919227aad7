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
