package driver_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/drivertest"
	"github.com/virtd/virtd/internal/testdriver"
	driverv1 "github.com/virtd/virtd/proto/virtd/driver/v1"
	"github.com/virtd/virtd/virt"
)

// TestProfileThroughShims: every driver served by the shims answers
// Profile, whatever it implements: a heap snapshot and a goroutine one
// arrive and parse, and a CPU profile asked for while another runs
// is refused as a failed precondition, the kind kept across the wire.
func TestProfileThroughShims(t *testing.T) {
	d := drivertest.Pair(t, testdriver.New(driver.Env{}))
	p, ok := d.(driver.Profiler)
	if !ok {
		t.Fatalf("the host side of a driver, %T, is not a driver.Profiler", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var heap bytes.Buffer
	if err := p.Profile(ctx, "heap", 0, &heap); err != nil {
		t.Fatal(err)
	}
	prof, err := profile.Parse(bytes.NewReader(heap.Bytes()))
	if err != nil {
		t.Fatalf("the heap profile (%d bytes) does not parse: %v", heap.Len(), err)
	}
	if len(prof.SampleType) == 0 || len(prof.Mapping) == 0 {
		t.Errorf("heap profile: sample types %v, %d mappings", prof.SampleType, len(prof.Mapping))
	}
	// The goroutine profile names every goroutine's stack, among them the
	// shim serving this very call.
	var gor bytes.Buffer
	if err := p.Profile(ctx, "goroutine", 0, &gor); err != nil {
		t.Fatal(err)
	}
	if prof, err = profile.Parse(&gor); err != nil {
		t.Fatal(err)
	}
	if !hasFunction(prof, "github.com/virtd/virtd/driver.(*server).Profile") {
		t.Errorf("goroutine profile lacks the shim's Profile")
	}

	var wg sync.WaitGroup
	var errs [2]error
	var cpu [2]bytes.Buffer
	for i := range 2 {
		wg.Go(func() { errs[i] = p.Profile(ctx, "cpu", time.Second, &cpu[i]) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("two CPU profiles at once: %v and %v; want one taken and one refused", errs[0], errs[1])
	}
	for i, err := range errs {
		if err == nil {
			if _, perr := profile.Parse(&cpu[i]); perr != nil {
				t.Errorf("the CPU profile does not parse: %v", perr)
			}
		} else if !errors.Is(err, virt.ErrFailedPrecondition) || !strings.Contains(err.Error(), "being taken already") {
			t.Errorf("the second CPU profile: %v, want a failed precondition saying one is being taken", err)
		}
	}

	err = p.Profile(ctx, "block", 0, &bytes.Buffer{})
	if !errors.Is(err, virt.ErrInvalidArgument) || !strings.Contains(err.Error(), `"block"`) {
		t.Errorf("unknown kind: %v, want an invalid argument naming it", err)
	}
	err = p.Profile(ctx, "cpu", 0, &bytes.Buffer{})
	if !errors.Is(err, virt.ErrInvalidArgument) || !strings.Contains(err.Error(), "not 0 seconds") {
		t.Errorf("CPU profile of 0s: %v, want an invalid argument naming the duration", err)
	}
}

func hasFunction(p *profile.Profile, name string) bool {
	for _, f := range p.Function {
		if f.Name == name {
			return true
		}
	}
	return false
}

// oldDriver serves the driver API as a driver built before Profile and
// CreateDomain did.
type oldDriver struct {
	driverv1.UnimplementedDriverServiceServer
}

// oldDriverClient returns the host side of a driver built before the
// calls it lacks, served on an in-memory connection until t ends.
func oldDriverClient(t *testing.T) *driver.Client {
	t.Helper()
	l := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	driverv1.RegisterDriverServiceServer(s, oldDriver{})
	go s.Serve(l)
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient("passthrough:///old", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return driver.NewClient(cc)
}

func TestProfileOfOlderDriver(t *testing.T) {
	err := oldDriverClient(t).Profile(context.Background(), "heap", 0, &bytes.Buffer{})
	if !errors.Is(err, virt.ErrNotSupported) || !strings.Contains(err.Error(), "built without profiling") {
		t.Errorf("Profile of a driver without it: %v, want not supported, saying why", err)
	}
}
