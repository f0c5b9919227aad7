package e2e

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/virtd/virtd/client"
)

// The benchmarks of this file are the rows on which virtd is compared
// with libvirtd: plain calls, 1,000 domains, and the memory of virtd and
// its drivers. Each runs a daemon of
// its own at the default log level, as virtd runs in production, with
// the QEMU driver (qemu:///system, the comparison's URI) and the test
// driver (test:///default, no hypervisor behind it).

// benchDrivers are the drivers these benchmarks run on: name, URI and the
// domain type their definitions use.
var benchDrivers = []struct{ name, uri, domType string }{
	{"qemu", "qemu:///system", "qemu"},
	{"test", "test:///default", "test"},
}

// prodDaemon starts a daemon with the given drivers at the default log
// level (the harness starts daemons at debug).
func prodDaemon(b *testing.B, drivers ...string) *daemon {
	b.Helper()
	return newDaemon(b, drivers, withArgs("--log-level", "info"))
}

// BenchmarkGetVersion measures the version call, which goes through
// virtd to the driver, with 1, 16 and 64 goroutines sharing one
// connection and with 16 connections used by one goroutine each.
func BenchmarkGetVersion(b *testing.B) {
	benchCalls(b, func(ctx context.Context, c *client.Conn) error {
		_, err := c.Version(ctx)
		return err
	})
}

// BenchmarkGetHostname is BenchmarkGetVersion for the hostname call: the
// plain round trip through virtd to the driver and back.
func BenchmarkGetHostname(b *testing.B) {
	benchCalls(b, func(ctx context.Context, c *client.Conn) error {
		_, err := c.Hostname(ctx)
		return err
	})
}

// benchCalls runs call on each driver of benchDrivers, one daemon for
// both. ns/op is wall time per call (all goroutines together), calls/s
// its inverse, and allocs/op and B/op are the client side's (this
// process's).
func benchCalls(b *testing.B, call func(context.Context, *client.Conn) error) {
	d := prodDaemon(b, "qemu", "test")
	ctx := context.Background()
	for _, drv := range benchDrivers {
		conns := make([]*client.Conn, 16)
		for i := range conns {
			conns[i] = d.open(drv.uri)
			if err := call(ctx, conns[i]); err != nil { // the driver starts, the connection is up
				b.Fatalf("%s: %v", drv.uri, err)
			}
		}
		for _, g := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/g=%d", drv.name, g), func(b *testing.B) {
				concurrent(b, g, func(int) error { return call(ctx, conns[0]) })
			})
		}
		b.Run(drv.name+"/conns=16", func(b *testing.B) {
			concurrent(b, len(conns), func(w int) error { return call(ctx, conns[w]) })
		})
	}
}

// concurrent makes b.N calls from the given number of goroutines (worker
// w calls call(w)) and reports calls per second and the client's
// allocations. The first error stops the workers and fails b.
func concurrent(b *testing.B, workers int, call func(w int) error) {
	var (
		next    atomic.Int64
		errOnce sync.Once
		first   error
		wg      sync.WaitGroup
	)
	b.ReportAllocs()
	b.ResetTimer()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := call(w); err != nil {
					errOnce.Do(func() { first = err })
					next.Store(math.MaxInt64 / 2) // the others stop
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if first != nil {
		b.Fatal(first)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// scaleDomains is how many domains BenchmarkDomains1000 and BenchmarkRSS
// define.
const scaleDomains = 1000

// minimalXML is a minimal domain: name, uuid, memory, vcpu and os type,
// the definition libvirt is measured with.
func minimalXML(domType string, i int) string {
	return fmt.Sprintf(`<domain type='%s'><name>bench-%05d</name><uuid>6a1c9e2d-0000-4000-8000-%012d</uuid>`+
		`<memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`, domType, i, i)
}

// domainSet is the 1,000 domains of one benchmark, defined or not.
type domainSet struct {
	c    *client.Conn
	xmls []string
	doms []*client.Domain // nil while not defined
}

func newDomainSet(c *client.Conn, domType string) *domainSet {
	s := &domainSet{c: c, xmls: make([]string, scaleDomains)}
	for i := range s.xmls {
		s.xmls[i] = minimalXML(domType, i)
	}
	return s
}

// each runs f(0) to f(n-1), appending the duration of each to samples.
func each(b *testing.B, n int, samples *[]time.Duration, f func(i int) error) {
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := f(i); err != nil {
			b.Fatal(err)
		}
		*samples = append(*samples, time.Since(t0))
	}
}

func (s *domainSet) define(b *testing.B, samples *[]time.Duration) {
	doms := make([]*client.Domain, len(s.xmls))
	each(b, len(s.xmls), samples, func(i int) (err error) {
		doms[i], err = s.c.DefineXML(context.Background(), s.xmls[i])
		return err
	})
	s.doms = doms
}

func (s *domainSet) undefine(b *testing.B, samples *[]time.Duration) {
	each(b, len(s.doms), samples, func(i int) error { return s.doms[i].Undefine(context.Background()) })
	s.doms = nil
}

// ensure defines the domains, outside the timer, unless they are.
func (s *domainSet) ensure(b *testing.B) {
	if s.doms == nil {
		b.StopTimer()
		s.define(b, new([]time.Duration))
		b.StartTimer()
	}
}

// BenchmarkDomains1000 defines 1,000 minimal domains, lists them, looks
// each up and reads its info, reads each one's XML and undefines each,
// as libvirt's comparison does. An op is one phase over the 1,000 (one
// list for list); p50 and p99 are per call (a lookup and an info call
// together for lookup-info), calls/s over the phase. Each sub-benchmark
// defines or undefines the domains it needs outside its timer, so each
// may run alone.
func BenchmarkDomains1000(b *testing.B) {
	for _, drv := range benchDrivers {
		b.Run(drv.name, func(b *testing.B) {
			d := prodDaemon(b, drv.name)
			ctx := context.Background()
			c := d.open(drv.uri)
			before, err := c.ListDomains(ctx, 0) // the test driver has one of its own
			if err != nil {
				b.Fatal(err)
			}
			s := newDomainSet(c, drv.domType)
			phase := func(name string, op func(b *testing.B, samples *[]time.Duration)) {
				b.Run(name, func(b *testing.B) {
					var samples []time.Duration
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						op(b, &samples)
					}
					b.StopTimer()
					latencies(b, samples, b.Elapsed())
				})
			}
			phase("define", func(b *testing.B, samples *[]time.Duration) {
				if s.doms != nil {
					b.StopTimer()
					s.undefine(b, new([]time.Duration))
					b.StartTimer()
				}
				s.define(b, samples)
			})
			phase("list", func(b *testing.B, samples *[]time.Duration) {
				s.ensure(b)
				each(b, 1, samples, func(int) error {
					doms, err := c.ListDomains(ctx, 0)
					if err == nil && len(doms) != len(before)+scaleDomains {
						err = fmt.Errorf("listed %d domains, want %d", len(doms), len(before)+scaleDomains)
					}
					return err
				})
			})
			phase("lookup-info", func(b *testing.B, samples *[]time.Duration) {
				s.ensure(b)
				each(b, len(s.doms), samples, func(i int) error {
					dom, err := c.LookupByName(ctx, s.doms[i].Name())
					if err == nil {
						_, err = dom.Info(ctx)
					}
					return err
				})
			})
			phase("dumpxml", func(b *testing.B, samples *[]time.Duration) {
				s.ensure(b)
				each(b, len(s.doms), samples, func(i int) error {
					_, err := s.doms[i].XML(ctx, false)
					return err
				})
			})
			phase("undefine", func(b *testing.B, samples *[]time.Duration) {
				s.ensure(b)
				s.undefine(b, samples)
			})
		})
	}
}

// BenchmarkRSS reports the resident memory (VmRSS) of virtd and of the
// driver processes it runs, summed, the way libvirt's comparison sums
// libvirtd and virtlogd: idle (1.5 s after the first call on a new
// daemon) and 0.5 s after 1,000 domains were defined: total-*, and per
// process, virtd-* for the daemon and drivers-* for the drivers.
func BenchmarkRSS(b *testing.B) {
	for _, drv := range benchDrivers {
		b.Run(drv.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				d := prodDaemon(b, drv.name)
				c := d.open(drv.uri)
				if _, err := c.Version(context.Background()); err != nil {
					b.Fatal(err)
				}
				time.Sleep(1500 * time.Millisecond)
				virtdIdle, drvIdle := daemonRSS(b, d)
				newDomainSet(c, drv.domType).define(b, new([]time.Duration))
				time.Sleep(500 * time.Millisecond)
				virtdN, drvN := daemonRSS(b, d)
				b.ReportMetric(virtdIdle+drvIdle, "total-idle-MiB")
				b.ReportMetric(virtdN+drvN, "total-1000-MiB")
				b.ReportMetric(virtdIdle, "virtd-idle-MiB")
				b.ReportMetric(drvIdle, "drivers-idle-MiB")
				b.ReportMetric(virtdN, "virtd-1000-MiB")
				b.ReportMetric(drvN, "drivers-1000-MiB")
				d.stop()
				killUnder(d.root)
			}
		})
	}
}

// daemonRSS returns the resident memory of virtd and the sum over its
// driver processes (every process run from under its root), in MiB.
func daemonRSS(b *testing.B, d *daemon) (virtd, drivers float64) {
	pids := pidsUnder(d.root)
	if len(pids) == 0 {
		b.Fatal("no driver process runs")
	}
	for _, pid := range pids {
		drivers += float64(rssKiB(b, pid)) / 1024
	}
	return float64(rssKiB(b, d.cmd.Process.Pid)) / 1024, drivers
}
