package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/virtd/virtd/client"
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
)

// The hostile-load benchmarks measure virtd's memory (its peak resident
// set, VmHWM) while a local user does what the limits are for, and how a
// well-behaved client is served meanwhile. Each runs on a daemon of its
// own, at the default limits unless it says otherwise.

// statusKiB reads a field of /proc/PID/status, in KiB.
func statusKiB(b *testing.B, pid int, field string) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kib, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kib
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// wellBehaved is a client that looks a domain up and reads its state in a
// loop until stop, recording latencies and failures.
type wellBehaved struct {
	start    time.Time
	samples  []time.Duration
	failures []error
	done     chan struct{}
}

func startWellBehaved(b *testing.B, d *daemon, stop <-chan struct{}) *wellBehaved {
	c := d.open("test:///default")
	w := &wellBehaved{start: time.Now(), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		ctx := context.Background()
		for {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			dom, err := c.LookupByName(ctx, "test")
			if err == nil {
				_, _, err = dom.State(ctx)
			}
			w.samples = append(w.samples, time.Since(t0))
			if err != nil {
				w.failures = append(w.failures, err)
			}
			time.Sleep(time.Millisecond) // a client at its own pace, not a load
		}
	}()
	return w
}

func (w *wellBehaved) report(b *testing.B) {
	<-w.done
	if len(w.samples) == 0 {
		b.Fatal("the well-behaved client made no call")
	}
	latencies(b, w.samples, time.Since(w.start))
	b.ReportMetric(float64(len(w.failures)), "good-failures")
	if len(w.failures) > 0 {
		b.Errorf("the well-behaved client failed %d of %d times; the first: %v", len(w.failures), len(w.samples), w.failures[0])
	}
}

func reportMemory(b *testing.B, d *daemon, idleKiB float64) {
	pid := d.cmd.Process.Pid
	b.ReportMetric(idleKiB/1024, "idle-MiB")
	b.ReportMetric(statusKiB(b, pid, "VmRSS")/1024, "rss-MiB")
	b.ReportMetric(statusKiB(b, pid, "VmHWM")/1024, "peak-MiB")
}

// rawConn is a bare gRPC connection to virtd with a connection opened on
// it, for clients that behave as no library would.
func rawConn(b *testing.B, socket string) (apiv1.VirtServiceClient, string, *grpc.ClientConn) {
	cc, err := grpc.NewClient("passthrough:///virtd", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}))
	if err != nil {
		b.Fatal(err)
	}
	api := apiv1.NewVirtServiceClient(cc)
	resp, err := api.Open(context.Background(), &apiv1.OpenRequest{Uri: "test:///default", ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	return api, resp.GetConnection(), cc
}

// BenchmarkHostileIdleConnections: 5,000 connections opened on the
// read-only socket and left idle.
func BenchmarkHostileIdleConnections(b *testing.B) {
	const n = 5000
	// Room for the benchmark's own clients beside the 5,000.
	d := benchDaemon(b, "--max-clients", strconv.Itoa(n+10))
	idle := statusKiB(b, d.cmd.Process.Pid, "VmRSS")
	stop := make(chan struct{})
	good := startWellBehaved(b, d, stop)
	b.ResetTimer()
	for range b.N {
		conns := make([]*client.Conn, 0, n)
		for range n {
			c, err := client.OpenReadOnly(context.Background(), "test:///default", client.WithSocket(d.roSock()))
			if err != nil {
				b.Fatalf("connection %d: %v", len(conns), err)
			}
			conns = append(conns, c)
		}
		reportMemory(b, d, idle)
		for _, c := range conns {
			c.Close(context.Background())
		}
	}
	b.StopTimer()
	close(stop)
	good.report(b)
}

// BenchmarkHostileEventStreams: 3,000 event streams (8 on each of 375
// connections, max_client_streams) whose client never reads, while 2,000
// events happen.
func BenchmarkHostileEventStreams(b *testing.B) {
	const conns, perConn, events = 375, 8, 2000
	d := benchDaemon(b)
	idle := statusKiB(b, d.cmd.Process.Pid, "VmRSS")
	stop := make(chan struct{})
	good := startWellBehaved(b, d, stop)
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithCancel(context.Background())
		var ccs []*grpc.ClientConn
		for range conns {
			api, id, cc := rawConn(b, d.roSock())
			ccs = append(ccs, cc)
			for range perConn {
				s, err := api.WatchEvents(ctx)
				if err == nil {
					err = s.Send(&apiv1.WatchEventsRequest{Connection: id, Credit: 1 << 20})
				}
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.Header(); err != nil {
					b.Fatal(err)
				}
				// Never read.
			}
		}
		c := d.open("test:///default")
		dom, err := c.LookupByName(ctx, "test")
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < events; i += 2 {
			if err := dom.Suspend(ctx); err != nil {
				b.Fatal(err)
			}
			if err := dom.Resume(ctx); err != nil {
				b.Fatal(err)
			}
		}
		reportMemory(b, d, idle)
		cancel()
		for _, cc := range ccs {
			cc.Close()
		}
	}
	b.StopTimer()
	close(stop)
	good.report(b)
}

// BenchmarkHostileLargeCalls: 16 clients each sending calls of the
// largest size allowed (just under max_message_size), 20 apiece, on the
// read-only socket; calls refused at max_inflight_bytes are counted.
func BenchmarkHostileLargeCalls(b *testing.B) {
	const clients, calls = 16, 20
	d := benchDaemon(b)
	idle := statusKiB(b, d.cmd.Process.Pid, "VmRSS")
	stop := make(chan struct{})
	good := startWellBehaved(b, d, stop)
	// The largest request: 4 MiB less the request's own framing.
	doc := bigXML("big", 4<<20-64)
	var refused, served atomic.Int64
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		for range clients {
			c, err := client.OpenReadOnly(context.Background(), "test:///default", client.WithSocket(d.roSock()))
			if err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range calls {
					_, err := c.DomainXMLToNative(context.Background(), "test-native", doc)
					switch {
					case errors.Is(err, client.ErrResourceExhausted):
						refused.Add(1)
					case errors.Is(err, client.ErrNotSupported):
						served.Add(1) // it reached the driver, which has no such format
					default:
						b.Errorf("a large call: %v", err)
					}
				}
			}()
		}
		wg.Wait()
		reportMemory(b, d, idle)
	}
	b.StopTimer()
	close(stop)
	b.ReportMetric(float64(refused.Load()), "refused")
	b.ReportMetric(float64(served.Load()), "served")
	good.report(b)
}
