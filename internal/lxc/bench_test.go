package lxc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkContainers measures, on the busybox root filesystem, the
// latency from DefineDomain to a running container, median of 20, in two
// ways: starts 100 ms apart (one container started on a quiet host: the
// driver's spare controller is ready; the first start has none and is
// reported on its own), and 20 starts back to back (each start's new spare
// competes with the next start). Then the memory of the driver, the 20
// controllers and the spare. Run it with -benchtime=1x:
//
//	go test ./internal/lxc -run '^$' -bench Containers -benchtime=1x
func BenchmarkContainers(b *testing.B) {
	rootfs := testRootFS(b)
	const n = 20
	// The controllers run the real driver executable, not this test
	// binary, built as scripts/packages.sh builds it.
	exe := shortTempDir(b) + "/virtd-driver-lxc"
	if out, err := exec.Command("go", "build", "-tags", "netgo,osusergo", "-ldflags", "-s -w -linkmode external -extldflags -static",
		"-o", exe, "github.com/virtd/virtd/cmd/driver-lxc").CombinedOutput(); err != nil {
		b.Fatalf("build virtd-driver-lxc: %v\n%s", err, out)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for range b.N {
		td := testDirs{root: shortTempDir(b)}
		opts := td.opts()
		opts.Executable = exe
		drv, err := NewWithOptions(nil, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { drv.Close() })
		ctx := context.Background()
		startAll := func(gap time.Duration) (lat []time.Duration, ctls []int) {
			for i := range n {
				time.Sleep(gap)
				t0 := time.Now()
				d, err := drv.DefineDomain(ctx, domainXML(rootfs, fmt.Sprintf("bench-%d", i), domOpts{}))
				if err != nil {
					b.Fatal(err)
				}
				s, err := drv.StartDomain(ctx, d.UUID)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				ctls = append(ctls, int(s.ID))
			}
			return lat, ctls
		}
		destroyAll := func() {
			ds, _ := drv.ListDomains(ctx, 0)
			for _, d := range ds {
				_ = drv.DestroyDomain(ctx, d.UUID)
				_ = drv.UndefineDomain(ctx, d.UUID)
			}
		}
		median := func(lat []time.Duration) time.Duration {
			lat = slices.Clone(lat)
			slices.Sort(lat)
			return lat[len(lat)/2]
		}

		lat, _ := startAll(100 * time.Millisecond)
		b.ReportMetric(ms(lat[0]), "ms/first-start")
		b.ReportMetric(ms(median(lat[1:])), "ms/start-median")
		b.ReportMetric(ms(slices.Max(lat[1:])), "ms/start-max")
		destroyAll()
		time.Sleep(200 * time.Millisecond)

		lat, ctls := startAll(0)
		b.ReportMetric(ms(median(lat)), "ms/burst-start-median")
		ctls = append(ctls, waitSpare(b, drv).cmd.Process.Pid) // the last spare
		driverKiB := memKiB(os.Getpid(), "Rss")
		var ctlKiB, ctlPssKiB uint64
		for _, p := range ctls {
			ctlKiB += memKiB(p, "Rss")
			ctlPssKiB += memKiB(p, "Pss")
		}
		b.ReportMetric(float64(driverKiB)/1024, "MiB-driver-rss")
		b.ReportMetric(float64(ctlKiB)/1024, "MiB-controllers-rss")
		// RSS counts the executable's pages each controller shares with
		// the others once per controller; PSS divides them among them.
		b.ReportMetric(float64(ctlPssKiB)/1024, "MiB-controllers-pss")
		b.ReportMetric(float64(len(ctls)), "controllers")
		destroyAll()
	}
}

// memKiB is a process's resident (field "Rss") or proportional ("Pss")
// set size.
func memKiB(pid int, field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
