package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/virtd/virtd/client"
	"github.com/virtd/virtd/driver"
)

// benchDaemon starts a daemon with the test driver for a benchmark.
func benchDaemon(b *testing.B, args ...string) *daemon {
	b.Helper()
	return newDaemon(b, []string{"test"}, withArgs(args...))
}

// latencies reports p50 and p99 of the samples, and calls per second.
func latencies(b *testing.B, samples []time.Duration, total time.Duration) {
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	pct := func(p float64) float64 {
		return float64(samples[int(p*float64(len(samples)-1))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(len(samples))/total.Seconds(), "calls/s")
}

// directClient dials the driver process itself, bypassing virtd, from the
// record virtd keeps of it.
func directClient(b testing.TB, d *daemon, name string) *driver.Client {
	raw, err := os.ReadFile(filepath.Join(d.runDir, "drivers", name+".json"))
	if err != nil {
		b.Fatal(err)
	}
	var rec struct {
		Addr string `json:"addr"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		b.Fatal(err)
	}
	cc, err := grpc.NewClient("unix:"+rec.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	return driver.NewClient(cc)
}

// BenchmarkDomainInfo compares a domain info call through virtd with the
// same call straight to the driver process: the second hop's cost.
func BenchmarkDomainInfo(b *testing.B) {
	d := benchDaemon(b)
	ctx := context.Background()
	c, err := client.Open(ctx, "test:///default", client.WithSocket(d.sock()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	dom, err := c.LookupByName(ctx, "test")
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, call func() error) {
		samples := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			t0 := time.Now()
			if err := call(); err != nil {
				b.Fatal(err)
			}
			samples = append(samples, time.Since(t0))
		}
		latencies(b, samples, time.Since(start))
	}
	b.Run("virtd", func(b *testing.B) {
		run(b, func() error { _, err := dom.Info(ctx); return err })
	})
	b.Run("direct", func(b *testing.B) {
		drv := directClient(b, d, "test")
		run(b, func() error { _, err := drv.DomainInfo(ctx, dom.UUID()); return err })
	})
}

// BenchmarkList10000 lists 10,000 domains through virtd.
func BenchmarkList10000(b *testing.B) {
	d := benchDaemon(b)
	ctx := context.Background()
	c, err := client.Open(ctx, "test:///default", client.WithSocket(d.sock()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	drv := directClient(b, d, "test")
	for i := 1; i < 10000; i++ { // plus the default domain
		if _, err := drv.DefineDomain(ctx, domXML(fmt.Sprintf("dom%05d", i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		doms, err := c.ListDomains(ctx, 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(doms) != 10000 {
			b.Fatalf("listed %d domains", len(doms))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/list")
}

// BenchmarkColdDriver measures the first call to a driver that is not
// running: launch, handshake, identity check and the call itself.
func BenchmarkColdDriver(b *testing.B) {
	d := benchDaemon(b, "--driver-idle-timeout", "100ms")
	ctx := context.Background()
	a, err := client.OpenAdmin(ctx, client.WithSocket(d.adminSock()))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	state := func() string {
		list, err := a.Drivers(ctx)
		if err != nil {
			b.Fatal(err)
		}
		return list.Drivers[0].State
	}
	// The default domain runs: destroy it so that the driver may go idle.
	stopGuest := func(c *client.Conn) {
		dom, err := c.LookupByName(ctx, "test")
		if err != nil {
			b.Fatal(err)
		}
		if err := dom.Destroy(ctx); err != nil {
			b.Fatal(err)
		}
		c.Close(ctx)
	}
	if c, err := client.Open(ctx, "test:///default", client.WithSocket(d.sock())); err != nil {
		b.Fatal(err)
	} else {
		stopGuest(c)
	}
	samples := make([]time.Duration, 0, b.N)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		// Wait until the driver has stopped as idle.
		for deadline := time.Now().Add(10 * time.Second); state() != "stopped"; {
			if time.Now().After(deadline) {
				b.Fatal("driver did not stop as idle")
			}
			time.Sleep(10 * time.Millisecond)
		}
		t0 := time.Now()
		c, err := client.Open(ctx, "test:///default", client.WithSocket(d.sock()))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Hostname(ctx); err != nil {
			b.Fatal(err)
		}
		el := time.Since(t0)
		samples, total = append(samples, el), total+el
		stopGuest(c) // and let it go idle again
	}
	latencies(b, samples, total)
}

// BenchmarkQEMU20Guests starts 20 diskless guests at once through virtd
// and reports the wall time, then the QEMU driver's memory (RSS) with the
// 20 running.
func BenchmarkQEMU20Guests(b *testing.B) {
	d := newDaemon(b, []string{"qemu"})
	ctx := context.Background()
	c, err := client.Open(ctx, "qemu:///system", client.WithSocket(d.sock()))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	const n = 20
	for i := 0; i < b.N; i++ {
		doms := make([]*client.Domain, n)
		for j := range doms {
			x := fmt.Sprintf(`<domain type='qemu'><name>b%d-%d</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os></domain>`, i, j)
			if doms[j], err = c.DefineXML(ctx, x); err != nil {
				b.Fatal(err)
			}
		}
		t0 := time.Now()
		errs := make(chan error, n)
		for _, dom := range doms {
			go func() { errs <- dom.Start(ctx) }()
		}
		for range doms {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), "ms/20-starts")
		b.ReportMetric(float64(rssKiB(b, int(d.driverStatus("qemu").PID)))/1024, "MiB-driver-rss")
		for _, dom := range doms {
			if err := dom.Destroy(ctx); err != nil {
				b.Fatal(err)
			}
			if err := dom.Undefine(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// rssKiB reads a process's resident memory.
func rssKiB(b *testing.B, pid int) uint64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kib
		}
	}
	return 0
}
