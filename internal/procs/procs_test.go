package procs

import (
	"context"
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
	if len(sets) != len(want) {
		t.Fatalf("GOMAXPROCS set to %v, want %v", sets, want)
	}
	for i := range want {
		if sets[i] != want[i] {
			t.Fatalf("GOMAXPROCS set to %v, want %v", sets, want)
		}
	}
}
