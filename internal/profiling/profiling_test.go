package profiling

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/virtd/virtd/virt"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		kind string
		d    time.Duration
		want string // "" when valid
	}{
		{CPU, time.Second, ""},
		{CPU, MaxCPUDuration, ""},
		{Heap, 0, ""},
		{Allocs, 0, ""},
		{Goroutine, 0, ""},
		{CPU, 0, "a CPU profile samples for 1 to 300 seconds, not 0 seconds: invalid argument"},
		{CPU, -5 * time.Second, "not -5 seconds"},
		{CPU, 301 * time.Second, "not 301 seconds"},
		{CPU, 500 * time.Millisecond, "not 0.5 seconds"},
		{Heap, time.Second, "a heap profile is a snapshot and takes no duration, not 1 second: invalid argument"},
		{"", 0, `unknown profile kind "" (want cpu, heap, allocs, goroutine): invalid argument`},
		{"block", time.Second, `unknown profile kind "block"`},
	} {
		err := Check(c.kind, c.d)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Check(%q, %s) = %v", c.kind, c.d, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, virt.ErrInvalidArgument)):
			t.Errorf("Check(%q, %s) = %v, want an invalid argument containing %q", c.kind, c.d, err, c.want)
		}
	}
}

func burn(stop <-chan struct{}) {
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

// TestOneCPUProfileAtATime: of two CPU profiles asked for at once, one is
// taken (and has the samples of the work done meanwhile) and the other is
// refused as a failed precondition, writing nothing.
func TestOneCPUProfileAtATime(t *testing.T) {
	stop := make(chan struct{})
	go burn(stop)
	defer close(stop)
	var bufs [2]bytes.Buffer
	var errs [2]error
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { errs[i] = Write(context.Background(), CPU, time.Second, &bufs[i]) })
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok = i
		case !errors.Is(err, virt.ErrFailedPrecondition) || !strings.Contains(err.Error(), "is being taken already"):
			t.Errorf("the refused profile: %v, want a failed precondition saying one is being taken", err)
		case bufs[i].Len() != 0:
			t.Errorf("the refused profile wrote %d bytes", bufs[i].Len())
		}
	}
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("want one profile taken and one refused, got %v and %v", errs[0], errs[1])
	}
	p, err := profile.Parse(&bufs[ok])
	if err != nil {
		t.Fatalf("the CPU profile does not parse: %v", err)
	}
	if len(p.Sample) == 0 || len(p.SampleType) != 2 || p.SampleType[1].Type != "cpu" {
		t.Fatalf("CPU profile: %d samples of %v", len(p.Sample), p.SampleType)
	}
	found := false
	for _, f := range p.Function {
		found = found || strings.HasSuffix(f.Name, "profiling.burn")
	}
	if !found {
		t.Errorf("no sample in burn, which ran the whole time")
	}
	// Done: the next one may run.
	if err := Write(context.Background(), CPU, time.Second, &bytes.Buffer{}); err != nil {
		t.Errorf("a CPU profile after the first: %v", err)
	}
}

func TestCPUProfileCutShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var buf bytes.Buffer
	start := time.Now()
	err := Write(ctx, CPU, 10*time.Second, &buf)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Write = %v after %s, want the context's error at once", err, time.Since(start))
	}
	if buf.Len() != 0 {
		t.Errorf("a profile cut short wrote %d bytes", buf.Len())
	}
}

func TestSnapshots(t *testing.T) {
	for _, c := range []struct{ kind, sampleType string }{
		{Heap, "inuse_space"}, {Allocs, "alloc_space"}, {Goroutine, "goroutine"},
	} {
		var buf bytes.Buffer
		if err := Write(context.Background(), c.kind, 0, &buf); err != nil {
			t.Fatalf("%s: %v", c.kind, err)
		}
		p, err := profile.Parse(&buf)
		if err != nil {
			t.Fatalf("%s: the profile does not parse: %v", c.kind, err)
		}
		var types []string
		for _, st := range p.SampleType {
			types = append(types, st.Type)
		}
		if !strings.Contains(strings.Join(types, " "), c.sampleType) {
			t.Errorf("%s profile: sample types %v, want %s among them", c.kind, types, c.sampleType)
		}
	}
}
