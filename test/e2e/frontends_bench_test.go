package e2e

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// BenchmarkFrontEnds compares virtd's two front ends on the same daemon,
// driver and domains: virtd's own client over gRPC, and go-libvirt over
// libvirt's RPC protocol. Each op makes the call once through each, in
// alternating order; grpc-p50-us and libvirt-p50-us are the medians per
// call, and libvirt/grpc their ratio, measured in the same run.
func BenchmarkFrontEnds(b *testing.B) {
	d := prodDaemon(b, "qemu")
	ctx := context.Background()
	const uri = "qemu:///system"
	c := d.open(uri)
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(d.libvirtSock()), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(uri); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Disconnect() })
	s := newDomainSet(c, "qemu")
	s.define(b, new([]time.Duration))
	lvDoms := make([]golibvirt.Domain, len(s.doms))
	for i, dom := range s.doms {
		var err error
		if lvDoms[i], err = l.DomainLookupByName(dom.Name()); err != nil {
			b.Fatal(err)
		}
	}
	for _, call := range []struct {
		name          string
		grpc, libvirt func(i int) error
	}{
		{"version",
			func(int) error { _, err := c.Version(ctx); return err },
			func(int) error { _, err := l.ConnectGetVersion(); return err }},
		{"lookup-info",
			func(i int) error {
				dom, err := c.LookupByName(ctx, s.doms[i].Name())
				if err == nil {
					_, err = dom.Info(ctx)
				}
				return err
			},
			func(i int) error {
				dom, err := l.DomainLookupByName(lvDoms[i].Name)
				if err == nil {
					_, _, _, _, _, err = l.DomainGetInfo(dom)
				}
				return err
			}},
		{"list-1000",
			func(int) error { return checkLen(c.ListDomains(ctx, 0)) },
			func(int) error {
				doms, _, err := l.ConnectListAllDomains(1, 0)
				return checkLen(doms, err)
			}},
		{"dumpxml",
			func(i int) error { _, err := s.doms[i].XML(ctx, false); return err },
			func(i int) error { _, err := l.DomainGetXMLDesc(lvDoms[i], 0); return err }},
		// A call the driver answers (a domain without autostart keeps
		// none), with nothing written: the cost of the hop to it.
		{"autostart-off",
			func(i int) error { return s.doms[i].SetAutostart(ctx, false) },
			func(i int) error { return l.DomainSetAutostart(lvDoms[i], 0) }},
		// Defining a domain again with the same XML updates it: the
		// same work through either front end.
		{"define",
			func(i int) error { _, err := c.DefineXML(ctx, s.xmls[i]); return err },
			func(i int) error { _, err := l.DomainDefineXML(s.xmls[i]); return err }},
	} {
		b.Run(call.name, func(b *testing.B) {
			var g, lv []time.Duration
			timed := func(samples *[]time.Duration, f func(int) error, i int) {
				t0 := time.Now()
				if err := f(i); err != nil {
					b.Fatalf("%s: %v", call.name, err)
				}
				*samples = append(*samples, time.Since(t0))
			}
			for i := 0; i < b.N; i++ {
				k := i % len(s.doms)
				if i%2 == 0 {
					timed(&g, call.grpc, k)
					timed(&lv, call.libvirt, k)
				} else {
					timed(&lv, call.libvirt, k)
					timed(&g, call.grpc, k)
				}
			}
			gp, lp := median(g), median(lv)
			b.ReportMetric(float64(gp.Nanoseconds())/1e3, "grpc-p50-us")
			b.ReportMetric(float64(lp.Nanoseconds())/1e3, "libvirt-p50-us")
			b.ReportMetric(float64(lp)/float64(gp), "libvirt/grpc")
		})
	}
}

// checkLen checks that a list holds the 1,000 domains.
func checkLen[T any](doms []T, err error) error {
	if err == nil && len(doms) < scaleDomains {
		err = fmt.Errorf("listed %d domains, want at least %d", len(doms), scaleDomains)
	}
	return err
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
