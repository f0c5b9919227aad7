// Package procs sets a process's GOMAXPROCS from its load: one while the
// process keeps less than a core busy, every core it may use once it needs
// more. It also gives the memory a burst of work left behind back to the
// system once the process is quiet again.
//
// A daemon that mostly waits for its clients answers a call faster with
// one P: the goroutines a call passes through (the reader of a socket, the
// handler, a writer) hand over to each other on one thread, where with
// several Ps each hand-over wakes a thread on another CPU, and a CPU that
// was idle takes long to wake, most of all in a virtual machine. Measured
// on a 2-core VM against virtd's libvirt socket: a GetHostname call took
// 55 us at the median with one P and 110 us with two. Under load the other
// cores are worth their wake-ups, so the governor gives them back as soon
// as one P is not enough.
//
// Go's runtime keeps the heap a burst of work grew: a collection runs only
// when the heap reaches its goal (4 MiB at least), and the scavenger hands
// free pages back slowly, so a daemon that went quiet holds its last
// burst's garbage for minutes. Measured twelve seconds after defining,
// listing and undefining 1,000 domains: virtd held 8.0 MiB of anonymous
// memory and its QEMU driver 6.5, and 5.4 and 5.3 after the trim.
package procs

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"golang.org/x/sys/unix"
)

// Policy is when the governor moves: Up is the share of one core the
// process must use over an interval, with one P, to get every P back; Down
// the share under which it returns to one P, once that has held for
// DownAfter intervals in a row.
type Policy struct {
	Up, Down  float64
	DownAfter int
}

// DefaultPolicy raises at 85% of a core and lowers after a second (at the
// default interval) under 60%. On a 2-core VM a lower bar (70%) gave
// virtd's gRPC API a tenth more calls per second with 16 goroutines, but
// in one side-by-side run with it a list of 1,000 domains took 1.62 ms and
// a lookup + info 198 us, against about 1 ms and 155 us at 85%: what a
// rise during a run of sequential calls would cost. The two were not
// measured apart.
var DefaultPolicy = Policy{Up: 0.85, Down: 0.6, DownAfter: 5}

// Trim is when the governor gives memory back: once the process has
// allocated at least Alloc bytes since the last time, and then used less
// than Idle of a core for After intervals in a row.
type Trim struct {
	Alloc uint64
	Idle  float64
	After int
}

// DefaultTrim gives memory back after ten seconds (at the default
// interval) under 1% of a core, once a MiB has been allocated. The heap
// grows again with the next burst, page by page. With a trim after one
// second under 1% of a core, in runs of the libvirt-anchor harness's part
// b on a 2-core VM, alternating with the build before, lookup + info and
// dumpxml of 1,000 domains were slower in 3 of 4 pairs (by up to a fifth,
// within that machine's noise; under 5%, undefine was slower in 6 of 7);
// the cause was not found. Ten seconds keeps the trim away from any run
// of calls.
var DefaultTrim = Trim{Alloc: 1 << 20, Idle: 0.01, After: 50}

// next is the trim policy: the number of quiet intervals in a row after
// one in which the process used busy cores' worth of CPU (quiet so far
// before it), and whether to give memory back now, with allocated bytes
// allocated since the last time.
func (t Trim) next(quiet int, busy float64, allocated uint64) (int, bool) {
	if busy >= t.Idle {
		return 0, false
	}
	quiet++
	return quiet, quiet >= t.After && allocated >= t.Alloc
}

// StreamWorkers is how many goroutines a gRPC server of virtd's or of a
// driver keeps to serve streams (grpc.NumStreamWorkers). A call then runs
// on a goroutine whose stack has grown before, where a new goroutine per
// call has its stack grown (copied) again: 5% of the QEMU driver's CPU in
// a loop of calls. A stream that stays open (an event or record stream,
// go-plugin's stdio and broker streams, a console) holds its worker while
// it is open, so there are more workers than CPUs: with one per CPU, the
// driver's record and stdio streams took both. gRPC runs a stream on a new
// goroutine when every worker is busy.
func StreamWorkers() uint32 { return uint32(runtime.NumCPU()) + 8 }

// DefaultInterval is how often the governor looks at the process's CPU
// time.
const DefaultInterval = 200 * time.Millisecond

// next is the policy: the P count after an interval in which the process
// used busy cores' worth of CPU with cur Ps, and low, the number of
// intervals in a row under Down so far.
func (p Policy) next(cur, max int, busy float64, low int) (int, int) {
	if busy < p.Down {
		low++
	} else {
		low = 0
	}
	switch {
	case cur == 1 && busy >= p.Up && max > 1:
		return max, 0
	case cur > 1 && low >= p.DownAfter:
		return 1, 0
	}
	return cur, low
}

// Governor adjusts GOMAXPROCS between 1 and Max, and gives memory back
// when the process goes quiet.
type Governor struct {
	// Max 0 leaves GOMAXPROCS alone: the governor only trims.
	Max      int
	Policy   Policy
	Trim     Trim
	Interval time.Duration
	// CPU returns the process's CPU time so far; Set sets GOMAXPROCS;
	// Allocated returns the bytes allocated so far; Free collects and
	// gives free memory back; without both, the governor does not trim.
	// Tests replace them.
	CPU       func() time.Duration
	Set       func(int)
	Allocated func() uint64
	Free      func()
	// Changed, if set, hears each change of GOMAXPROCS.
	Changed func(procs int, busy float64)
}

// New returns a governor of this process, between one P and the
// GOMAXPROCS the runtime chose (every CPU the process may use).
func New() *Governor {
	return &Governor{Max: runtime.GOMAXPROCS(0), Policy: DefaultPolicy, Trim: DefaultTrim, Interval: DefaultInterval,
		CPU: processCPU, Set: func(n int) { runtime.GOMAXPROCS(n) }, Allocated: allocated, Free: debug.FreeOSMemory}
}

// Start sets one P (unless Max is 0) and runs the governor until stop is
// called; stop returns once every P is given back.
func (g *Governor) Start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	if g.Max > 0 {
		g.Set(1)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Run(ctx, nil)
	}()
	return func() {
		cancel()
		<-done
	}
}

// Run sets one P (unless Max is 0), then acts at each tick until ctx
// ends, from the CPU time used since the tick before (the first tick only
// takes its readings). When ctx ends it gives back every P, for whatever
// the process does next. tick nil means a ticker at g.Interval.
func (g *Governor) Run(ctx context.Context, tick <-chan time.Time) {
	if tick == nil {
		t := time.NewTicker(g.Interval)
		defer t.Stop()
		tick = t.C
	}
	st := state{procs: 1}
	if g.Max > 0 {
		g.Set(st.procs)
	}
	var last time.Time
	var lastCPU time.Duration
	for {
		select {
		case <-ctx.Done():
			if g.Max > 0 && st.procs != g.Max {
				g.Set(g.Max)
			}
			return
		case now := <-tick:
			cpu := g.CPU()
			if wall := now.Sub(last); !last.IsZero() && wall > 0 {
				busy := float64(cpu-lastCPU) / float64(wall)
				g.govern(&st, busy)
				g.trim(&st, busy)
			}
			last, lastCPU = now, cpu
		}
	}
}

// state is what the governor carries from one tick to the next.
type state struct {
	procs, low int    // GOMAXPROCS; intervals in a row under Policy.Down
	quiet      int    // intervals in a row under Trim.Idle
	trimmed    uint64 // bytes allocated at the last trim (none: the start)
}

// govern sets GOMAXPROCS after an interval with busy cores' worth of CPU.
func (g *Governor) govern(st *state, busy float64) {
	if g.Max == 0 {
		return
	}
	n, low := g.Policy.next(st.procs, g.Max, busy, st.low)
	st.low = low
	if n == st.procs {
		return
	}
	st.procs = n
	g.Set(n)
	if g.Changed != nil {
		g.Changed(n, busy)
	}
}

// trim gives memory back when the Trim policy says so.
func (g *Governor) trim(st *state, busy float64) {
	if g.Allocated == nil || g.Free == nil {
		return
	}
	quiet, now := g.Trim.next(st.quiet, busy, g.Allocated()-st.trimmed)
	st.quiet = quiet
	if now {
		g.Free()
		st.trimmed = g.Allocated()
	}
}

// allocated is the bytes the process has allocated on its heap so far.
func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// processCPU is the user and system time of the whole process.
func processCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
