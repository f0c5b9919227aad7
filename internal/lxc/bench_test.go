package lxc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkContainers measures, on the busybox root filesystem, the
// latency from DefineDomain to a running container (median of 20), and
// the memory (RSS) of the driver plus the 20 controllers then running.
// Run it with -benchtime=1x:
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
		var lat []time.Duration
		var ctls []int
		for i := range n {
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
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		driverKiB := memKiB(os.Getpid(), "Rss")
		var ctlKiB, ctlPssKiB uint64
		for _, p := range ctls {
			ctlKiB += memKiB(p, "Rss")
			ctlPssKiB += memKiB(p, "Pss")
		}
		b.ReportMetric(float64(lat[n/2].Microseconds())/1000, "ms/start-median")
		b.ReportMetric(float64(lat[n-1].Microseconds())/1000, "ms/start-max")
		b.ReportMetric(float64(driverKiB)/1024, "MiB-driver-rss")
		b.ReportMetric(float64(ctlKiB)/1024, "MiB-20-controllers-rss")
		b.ReportMetric(float64(driverKiB+ctlKiB)/1024, "MiB-total-rss")
		// RSS counts the executable's pages each controller shares with
		// the others once per controller; PSS divides them among them.
		b.ReportMetric(float64(ctlPssKiB)/1024, "MiB-20-controllers-pss")
		ds, _ := drv.ListDomains(ctx, 0)
		for _, d := range ds {
			_ = drv.DestroyDomain(ctx, d.UUID)
			_ = drv.UndefineDomain(ctx, d.UUID)
		}
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
