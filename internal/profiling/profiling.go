// Package profiling takes profiles of the calling process in pprof's format
// (gzipped protobuf, as `go tool pprof` reads it), for the daemon and for
// every driver alike: the daemon profiles itself with it, and package
// driver's server shim profiles a driver process with it.
package profiling

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/virtd/virtd/virt"
)

// The kinds of profile. A CPU profile samples for a while; the others are
// snapshots of the moment.
const (
	CPU       = "cpu"
	Heap      = "heap"
	Allocs    = "allocs"
	Goroutine = "goroutine"
)

// Kinds lists the kinds, CPU first.
var Kinds = []string{CPU, Heap, Allocs, Goroutine}

// MaxCPUDuration bounds how long a CPU profile may sample.
const MaxCPUDuration = 300 * time.Second

// Check refuses a kind this package does not take, and a duration that
// does not fit the kind: a CPU profile samples for 1s to MaxCPUDuration,
// a snapshot takes none.
func Check(kind string, d time.Duration) error {
	switch kind {
	case CPU:
		if d < time.Second || d > MaxCPUDuration {
			return fmt.Errorf("a CPU profile samples for 1 to %d seconds, not %s: %w",
				int(MaxCPUDuration/time.Second), seconds(d), virt.ErrInvalidArgument)
		}
	case Heap, Allocs, Goroutine:
		if d != 0 {
			return fmt.Errorf("a %s profile is a snapshot and takes no duration, not %s: %w", kind, seconds(d), virt.ErrInvalidArgument)
		}
	default:
		return fmt.Errorf("unknown profile kind %q (want %s): %w", kind, strings.Join(Kinds, ", "), virt.ErrInvalidArgument)
	}
	return nil
}

// seconds writes d as a number of seconds: "30 seconds", "0.5 seconds".
func seconds(d time.Duration) string {
	if d == time.Second {
		return "1 second"
	}
	return fmt.Sprintf("%g seconds", d.Seconds())
}

// cpuBusy is set while Write takes a CPU profile: the runtime has one CPU
// profiler per process.
var cpuBusy atomic.Bool

// Write takes a profile of this process and writes it to w: a CPU profile
// of d (w gets it whole once d has passed, or nothing when ctx ends
// first), or a snapshot. A second CPU profile while one runs is refused
// with virt.ErrFailedPrecondition.
func Write(ctx context.Context, kind string, d time.Duration, w io.Writer) error {
	if err := Check(kind, d); err != nil {
		return err
	}
	if kind == CPU {
		return writeCPU(ctx, d, w)
	}
	if kind == Heap || kind == Allocs {
		// As net/http/pprof's ?gc=1: the heap as of now, not as of the
		// last collection.
		runtime.GC()
	}
	if err := pprof.Lookup(kind).WriteTo(w, 0); err != nil {
		return virt.Errorf(virt.ErrInternal, "writing the %s profile: %w", kind, err)
	}
	return nil
}

func writeCPU(ctx context.Context, d time.Duration, w io.Writer) error {
	if cpuBusy.Swap(true) {
		return fmt.Errorf("a CPU profile of this process (pid %d) is being taken already, and only one can run at a time; try again when it ends: %w",
			os.Getpid(), virt.ErrFailedPrecondition)
	}
	defer cpuBusy.Store(false)
	// Whole or nothing: the profile is kept until it is complete.
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		// Someone else in the process profiles it (a test run with
		// -cpuprofile, say).
		return fmt.Errorf("cannot start a CPU profile of this process (pid %d): %v: %w", os.Getpid(), err, virt.ErrFailedPrecondition)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		pprof.StopCPUProfile()
		return fmt.Errorf("CPU profile cut short after less than %s: %w", seconds(d), ctx.Err())
	}
	pprof.StopCPUProfile()
	_, err := w.Write(buf.Bytes())
	return err
}
