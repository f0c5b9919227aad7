package client_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/virtd/virtd/client"
	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/testdriver"
)

func openAdmin(t *testing.T, socket string) *client.Admin {
	t.Helper()
	a, err := client.OpenAdmin(testCtx(t), client.WithSocket(socket))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// burnCPU keeps a CPU busy in this process until stop is closed, so that a
// CPU profile has samples, in a function of its own.
func burnCPU(stop <-chan struct{}) {
	b := []byte("virtd")
	for {
		select {
		case <-stop:
			return
		default:
		}
		for range 1000 {
			s := sha256.Sum256(b)
			b = s[:]
		}
	}
}

func parseProfile(t *testing.T, what string, b []byte) *profile.Profile {
	t.Helper()
	p, err := profile.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %d bytes that do not parse as a pprof profile: %v", what, len(b), err)
	}
	return p
}

func hasFunc(p *profile.Profile, suffix string) bool {
	for _, f := range p.Function {
		if strings.HasSuffix(f.Name, suffix) {
			return true
		}
	}
	return false
}

// TestProfileDaemon takes profiles of the daemon's own process (here, the
// test's) through the real core and gRPC front end: a CPU profile holds
// samples of the work done while it ran, a heap profile its sample types,
// a goroutine profile the daemon's goroutines.
func TestProfileDaemon(t *testing.T) {
	s := start(t)
	a := openAdmin(t, s.AdminSocket)
	ctx := testCtx(t)

	stop := make(chan struct{})
	go burnCPU(stop)
	var cpu bytes.Buffer
	err := a.Profile(ctx, client.ProfileOptions{Kind: client.ProfileCPU, Seconds: 1}, &cpu)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	p := parseProfile(t, "CPU profile", cpu.Bytes())
	if len(p.SampleType) != 2 || p.SampleType[0].Type != "samples" || p.SampleType[1].Type != "cpu" {
		t.Errorf("CPU profile sample types %v, want samples and cpu", p.SampleType)
	}
	if len(p.Sample) == 0 || p.DurationNanos < int64(900*time.Millisecond) {
		t.Errorf("CPU profile of %s with %d samples", time.Duration(p.DurationNanos), len(p.Sample))
	}
	if !hasFunc(p, "client_test.burnCPU") {
		t.Errorf("CPU profile holds no sample of burnCPU, which ran the whole time")
	}

	var heap bytes.Buffer
	if err := a.Profile(ctx, client.ProfileOptions{Kind: client.ProfileHeap}, &heap); err != nil {
		t.Fatal(err)
	}
	p = parseProfile(t, "heap profile", heap.Bytes())
	var types []string
	for _, st := range p.SampleType {
		types = append(types, st.Type)
	}
	if got := strings.Join(types, " "); got != "alloc_objects alloc_space inuse_objects inuse_space" {
		t.Errorf("heap profile sample types %q", got)
	}

	var gor bytes.Buffer
	if err := a.Profile(ctx, client.ProfileOptions{Kind: client.ProfileGoroutine}, &gor); err != nil {
		t.Fatal(err)
	}
	p = parseProfile(t, "goroutine profile", gor.Bytes())
	if !hasFunc(p, "daemon.(*admin).Profile") {
		t.Errorf("goroutine profile lacks the front end's Profile, which was serving it")
	}
}

// TestProfileOneCPUProfileAtATime: of two CPU profiles of the daemon asked
// for at once, one is taken and the other refused, saying why.
func TestProfileOneCPUProfileAtATime(t *testing.T) {
	s := start(t)
	a := openAdmin(t, s.AdminSocket)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	var errs [2]error
	var bufs [2]bytes.Buffer
	for i := range 2 {
		wg.Go(func() { errs[i] = a.Profile(ctx, client.ProfileOptions{Kind: client.ProfileCPU, Seconds: 1}, &bufs[i]) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("two CPU profiles at once: %v and %v; want one taken and one refused", errs[0], errs[1])
	}
	for i, err := range errs {
		if err == nil {
			parseProfile(t, "CPU profile", bufs[i].Bytes())
			continue
		}
		if !errors.Is(err, client.ErrFailedPrecondition) || !strings.HasPrefix(err.Error(), "profiling virtd: a CPU profile of this process (pid ") ||
			!strings.Contains(err.Error(), "is being taken already") {
			t.Errorf("the refused profile: %v", err)
		}
		if bufs[i].Len() != 0 {
			t.Errorf("the refused profile wrote %d bytes", bufs[i].Len())
		}
	}
}

func TestProfileBadInput(t *testing.T) {
	s := start(t)
	a := openAdmin(t, s.AdminSocket)
	ctx := testCtx(t)
	for _, c := range []struct {
		opts client.ProfileOptions
		kind error
		want string
	}{
		{client.ProfileOptions{Kind: "block"}, client.ErrInvalidArgument,
			`unknown profile kind "block" (want cpu, heap, allocs, goroutine): invalid argument`},
		{client.ProfileOptions{}, client.ErrInvalidArgument, `unknown profile kind ""`},
		{client.ProfileOptions{Kind: "cpu"}, client.ErrInvalidArgument,
			"a CPU profile samples for 1 to 300 seconds, not 0 seconds: invalid argument"},
		{client.ProfileOptions{Kind: "cpu", Seconds: -3}, client.ErrInvalidArgument, "not -3 seconds"},
		{client.ProfileOptions{Kind: "cpu", Seconds: 301}, client.ErrInvalidArgument, "not 301 seconds"},
		{client.ProfileOptions{Kind: "cpu", Seconds: 1 << 40}, client.ErrInvalidArgument, "a profile of 1099511627776 seconds is out of range"},
		{client.ProfileOptions{Kind: "heap", Seconds: 5}, client.ErrInvalidArgument,
			"a heap profile is a snapshot and takes no duration, not 5 seconds: invalid argument"},
		{client.ProfileOptions{Kind: "heap", Driver: "nosuch"}, client.ErrNotFound,
			`no driver named "nosuch" (installed: test): not found`},
		// The in-process test driver is this process: there is no
		// process of its own to profile.
		{client.ProfileOptions{Kind: "heap", Driver: "test"}, client.ErrNotSupported,
			`profiling driver "test": this driver is not a process of its own that can profile itself: not supported`},
	} {
		var buf bytes.Buffer
		err := a.Profile(ctx, c.opts, &buf)
		if !errors.Is(err, c.kind) || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Profile(%+v) = %v; want %v containing %q", c.opts, err, c.kind, c.want)
		}
		if buf.Len() != 0 {
			t.Errorf("Profile(%+v) wrote %d bytes", c.opts, buf.Len())
		}
	}
}

// profDriver is a driver that profiles itself, as the host side of a
// driver process does: it writes a fake profile of a few messages.
type profDriver struct {
	driver.Driver
	mu   sync.Mutex
	asks []string
}

func (d *profDriver) Profile(_ context.Context, kind string, dur time.Duration, w io.Writer) error {
	d.mu.Lock()
	d.asks = append(d.asks, fmt.Sprintf("%s %s", kind, dur))
	d.mu.Unlock()
	_, err := w.Write(fakeProfile)
	return err
}

var fakeProfile = bytes.Repeat([]byte("not a real profile\n"), 10000)

// TestProfileDriver: a driver's profile is the driver's own, asked for
// with the kind and duration given, and arrives whole.
func TestProfileDriver(t *testing.T) {
	drv := &profDriver{Driver: testdriver.New(driver.Env{})}
	s := start(t, drv)
	a := openAdmin(t, s.AdminSocket)
	ctx := testCtx(t)
	var cpu, heap bytes.Buffer
	if err := a.Profile(ctx, client.ProfileOptions{Driver: "test", Kind: client.ProfileCPU, Seconds: 2}, &cpu); err != nil {
		t.Fatal(err)
	}
	if err := a.Profile(ctx, client.ProfileOptions{Driver: "test", Kind: client.ProfileHeap}, &heap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cpu.Bytes(), fakeProfile) || !bytes.Equal(heap.Bytes(), fakeProfile) {
		t.Errorf("the driver's profile arrived as %d and %d bytes, want %d", cpu.Len(), heap.Len(), len(fakeProfile))
	}
	if got := strings.Join(drv.asks, ", "); got != "cpu 2s, heap 0s" {
		t.Errorf("the driver was asked for %q", got)
	}
}
