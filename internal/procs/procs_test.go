package procs

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestPolicy(t *testing.T) {
	p := Policy{Up: 0.85, Down: 0.6, DownAfter: 3}
	for _, tc := range []struct {
		name          string
		cur, max      int
		busy          float64
		low           int
		want, wantLow int
	}{
		{"idle stays at one", 1, 4, 0.1, 0, 1, 1},
		{"busy one P rises to every P", 1, 4, 0.9, 0, 4, 0},
		{"just under the bar stays", 1, 4, 0.84, 0, 1, 0},
		{"a single CPU cannot rise", 1, 1, 2, 0, 1, 0},
		{"several Ps busy stay", 4, 4, 0.7, 2, 4, 0},
		{"a quiet interval is counted", 4, 4, 0.3, 1, 4, 2},
		{"quiet long enough falls to one", 4, 4, 0.3, 2, 1, 0},
		{"a busy interval resets the count", 4, 4, 1.5, 2, 4, 0},
	} {
		got, gotLow := p.next(tc.cur, tc.max, tc.busy, tc.low)
		if got != tc.want || gotLow != tc.wantLow {
			t.Errorf("%s: next(%d, %d, %.2f, %d) = %d, %d; want %d, %d", tc.name, tc.cur, tc.max, tc.busy, tc.low, got, gotLow, tc.want, tc.wantLow)
		}
	}
}

// TestGovernorFollowsCPU drives the governor with a CPU clock: one P at
// the start, every P while the process keeps more than a core busy, one P
// again once it has been quiet for a while.
func TestGovernorFollowsCPU(t *testing.T) {
	var cpu time.Duration
	var sets []int
	ticks := make(chan time.Time)
	cpus := make(chan time.Duration) // the reading taken at each tick
	g := &Governor{Max: 8, Policy: Policy{Up: 0.85, Down: 0.6, DownAfter: 2}, CPU: func() time.Duration { return <-cpus },
		Set: func(n int) { sets = append(sets, n) }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx, ticks) }()
	now := time.Unix(1000, 0)
	// Each step: CPU used over 100 ms of wall time.
	for _, used := range []time.Duration{0, 10, 95, 150, 140, 20, 30, 10} {
		cpu += used * time.Millisecond
		now = now.Add(100 * time.Millisecond)
		ticks <- now
		cpus <- cpu
	}
	cancel()
	<-done
	// 0: the first reading; 10 ms: quiet; 95 ms: 0.95 of a core, up to 8;
	// 150 and 140: busy; 20, then 30 ms: quiet twice, down to 1; 10: quiet.
	// At the end, every P again.
	want := []int{1, 8, 1, 8}
	if !slices.Equal(sets, want) {
		t.Fatalf("GOMAXPROCS set to %v, want %v", sets, want)
	}
}

func TestTrimPolicy(t *testing.T) {
	tr := Trim{Alloc: 1000, Idle: 0.05, After: 3}
	for _, tc := range []struct {
		name      string
		quiet     int
		busy      float64
		allocated uint64
		wantQuiet int
		wantTrim  bool
	}{
		{"a busy interval resets the count", 2, 0.5, 5000, 0, false},
		{"at the bar is busy", 2, 0.05, 5000, 0, false},
		{"a quiet interval is counted", 0, 0.01, 5000, 1, false},
		{"quiet long enough after allocating trims", 2, 0.01, 1000, 3, true},
		{"quiet longer still trims", 7, 0, 1000, 8, true},
		{"too little allocated does not trim", 2, 0.01, 999, 3, false},
	} {
		q, trim := tr.next(tc.quiet, tc.busy, tc.allocated)
		if q != tc.wantQuiet || trim != tc.wantTrim {
			t.Errorf("%s: next(%d, %.2f, %d) = %d, %v; want %d, %v", tc.name, tc.quiet, tc.busy, tc.allocated, q, trim, tc.wantQuiet, tc.wantTrim)
		}
	}
}

// TestGovernorTrims drives the trim with a CPU clock and an allocation
// counter: memory goes back once per quiet spell that follows enough
// allocation, never while the process is busy; with Max 0, GOMAXPROCS is
// never touched.
func TestGovernorTrims(t *testing.T) {
	type reading struct {
		step  int
		cpu   time.Duration
		alloc uint64
	}
	ticks := make(chan time.Time)
	readings := make(chan reading)
	var cur reading // the Run goroutine's: the reading of this tick
	var freedAt []int
	g := &Governor{Trim: Trim{Alloc: 1 << 20, Idle: 0.05, After: 2},
		CPU:       func() time.Duration { cur = <-readings; return cur.cpu },
		Allocated: func() uint64 { return cur.alloc },
		Free:      func() { freedAt = append(freedAt, cur.step) },
		Set:       func(n int) { t.Errorf("GOMAXPROCS set to %d with Max 0", n) }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); g.Run(ctx, ticks) }()
	now := time.Unix(1000, 0)
	var cpu time.Duration
	var alloc uint64
	// Each step: CPU used over 100 ms of wall time, and KiB allocated.
	for i, s := range []struct{ used, kib int }{
		{0, 3000},  // 0: the first reading (3000 KiB allocated at start-up)
		{1, 0},     // 1: quiet
		{1, 0},     // 2: quiet twice, with start-up's allocation: trim
		{0, 0},     // 3: quiet, nothing new allocated
		{50, 2000}, // 4: busy, allocating
		{1, 10},    // 5: quiet
		{80, 10},   // 6: busy again
		{1, 0},     // 7: quiet
		{2, 0},     // 8: quiet twice: trim
		{1, 500},   // 9: quiet, 500 KiB: not enough
		{1, 600},   // 10: 1,100 KiB since the trim: trim
	} {
		cpu += time.Duration(s.used) * time.Millisecond
		alloc += uint64(s.kib) << 10
		now = now.Add(100 * time.Millisecond)
		ticks <- now
		readings <- reading{i, cpu, alloc}
	}
	cancel()
	<-done
	want := []int{2, 8, 10}
	if !slices.Equal(freedAt, want) {
		t.Fatalf("memory given back at steps %v, want %v", freedAt, want)
	}
}

// TestAllocated: the counter the trim reads grows with what the process
// allocates.
func TestAllocated(t *testing.T) {
	before := allocated()
	buf := make([]byte, 4<<20)
	buf[len(buf)-1] = 1
	if got := allocated() - before; got < 4<<20 {
		t.Fatalf("allocated grew by %d bytes after a 4 MiB allocation", got)
	}
}
