package host

import (
	"fmt"
	"testing"
	"time"
)

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

// supervised is a machine on a fake clock, and the deadline of the call
// that is waiting for it.
type supervised struct {
	m        machine
	clock    *fakeClock
	epoch    time.Time
	deadline time.Time
}

// at renders t as seconds since the test began: "+1.5s".
func (s *supervised) at(t time.Time) string { return "+" + t.Sub(s.epoch).String() }

// event is one thing that happens to the machine; it returns, in words,
// what the machine decided.
type event func(s *supervised) string

// call is a new call that wants the driver; callAgain, the same call once
// it has waited.
var (
	call      event = func(s *supervised) string { s.deadline = time.Time{}; return callAgain(s) }
	callAgain event = func(s *supervised) string {
		v, until := s.m.call(&s.deadline)
		switch v {
		case callIt:
			return "call"
		case launchIt:
			return "launch"
		case refuseRemoved:
			return "refuse: removed"
		case refuseBroken:
			return "refuse: broken: " + s.m.lastErr
		case refuseLate:
			return "refuse: restart at " + s.at(until)
		}
		if until.IsZero() {
			return "wait"
		}
		return "wait until " + s.at(until)
	}
)

func started(launched bool) event {
	return func(s *supervised) string {
		if s.m.started(launched) {
			return "stop at once"
		}
		return "running"
	}
}

func startFailed(reason string, broken bool) event {
	return func(s *supervised) string { s.m.startFailed(reason, broken); return string(s.m.state) }
}

func exits(status string) event {
	return func(s *supervised) string {
		note := s.m.exited(status, "last stderr: bye")
		if !note.crashed {
			return "stopped: " + note.cause
		}
		out := "crashed: " + note.cause
		if s.m.state == StateBroken {
			return out + "; broken"
		}
		out += "; next start " + s.at(s.m.nextStart)
		if note.restart {
			out += ", restart wanted"
		}
		return out
	}
}

func stop(why string) event {
	return func(s *supervised) string { return fmt.Sprint(s.m.stop(why)) }
}

func hangs(why string) event {
	return func(s *supervised) string { return fmt.Sprint(s.m.hangs(why)) }
}

func guests(n int) event {
	return func(s *supervised) string { s.m.keptAlive(n); return "" }
}

var (
	idle    event = func(s *supervised) string { return fmt.Sprint(s.m.idle()) }
	open    event = func(s *supervised) string { s.m.open(); return "" }
	release event = func(s *supervised) string { s.m.release(); return "" }
	rescan  event = func(s *supervised) string { return fmt.Sprint(s.m.rescanned()) }
	remove  event = func(s *supervised) string { s.m.remove(); return "" }
	// look shows the machine's state and counts.
	look event = func(s *supervised) string {
		return fmt.Sprintf("%s crashes=%d restarts=%d", s.m.state, s.m.crashes, s.m.restarts)
	}
	lastErr event = func(s *supervised) string { return s.m.lastErr }
)

// step: after the clock moves on by wait, an event, and what the machine
// must say to it.
type step struct {
	wait time.Duration
	e    event
	want string
}

func TestMachine(t *testing.T) {
	const s = time.Second
	// A driver that runs: a call launches it and it starts.
	run := []step{{0, call, "launch"}, {0, started(true), "running"}}
	seq := func(parts ...[]step) []step {
		var all []step
		for _, p := range parts {
			all = append(all, p...)
		}
		return all
	}
	// crashAfter: the process runs for d, then dies; the next call
	// launches it again at once.
	crashAfter := func(d time.Duration, want string) []step {
		return []step{{d, exits("signal: killed"), want}}
	}
	for _, tc := range []struct {
		name  string
		cfg   func(*Config)
		steps []step
	}{
		{"the first restart is immediate, then the backoff doubles up to the cap", nil, seq(run,
			crashAfter(s, "crashed: exited during the call (signal: killed); next start +1s"),
			[]step{{0, call, "launch"}, {0, started(true), "running"}},
			crashAfter(s, "crashed: exited during the call (signal: killed); next start +3s"),
			[]step{{0, call, "wait until +3s"}, {s, call, "launch"}, {0, started(true), "running"}},
			crashAfter(0, "crashed: exited during the call (signal: killed); next start +5s"),
			[]step{{2 * s, call, "launch"}, {0, started(true), "running"}},
			crashAfter(0, "crashed: exited during the call (signal: killed); next start +9s"),
			[]step{{4 * s, call, "launch"}, {0, started(true), "running"}},
			crashAfter(0, "crashed: exited during the call (signal: killed); next start +13s"),
			[]step{{0, look, "stopped crashes=5 restarts=4"}},
		)},
		{"MaxCrashes crashes in a row mark the driver broken; calls are refused saying why", func(c *Config) { c.MaxCrashes = 3 }, seq(run,
			crashAfter(s, "crashed: exited during the call (signal: killed); next start +1s"),
			run, crashAfter(s, "crashed: exited during the call (signal: killed); next start +3s"),
			[]step{{s, call, "launch"}, {0, started(true), "running"}},
			[]step{{s, exits("exit status 139"), "crashed: exited during the call (exit status 139); broken"}},
			[]step{
				{0, look, "broken crashes=3 restarts=2"},
				{time.Hour, call, "refuse: broken: crashed 3 times in a row; the last time it exited unexpectedly (exit status 139); last stderr: bye"},
			},
		)},
		{"a run of StableAfter or longer starts a new row of crashes", nil, seq(run,
			crashAfter(s, "crashed: exited during the call (signal: killed); next start +1s"),
			run, crashAfter(s, "crashed: exited during the call (signal: killed); next start +3s"),
			[]step{{s, call, "launch"}, {0, started(true), "running"}},
			crashAfter(10*s, "crashed: exited during the call (signal: killed); next start +13s"),
			[]step{{0, look, "stopped crashes=1 restarts=2"}},
		)},
		{"a rescan gives a broken driver another chance, at once; it changes nothing else", func(c *Config) { c.MaxCrashes = 2 }, seq(
			[]step{{0, rescan, "false"}}, run,
			[]step{{0, rescan, "false"}},
			crashAfter(s, "crashed: exited during the call (signal: killed); next start +1s"),
			run, crashAfter(s, "crashed: exited during the call (signal: killed); broken"),
			[]step{{0, rescan, "true"}, {0, look, "stopped crashes=0 restarts=1"}, {0, call, "launch"}},
		)},
		{"a launch that fails for good marks the driver broken; one that may mend does not", nil, []step{
			{0, call, "launch"}, {0, call, "wait"},
			{0, startFailed("driver \"x\": preparing directories: disk full", false), "stopped"},
			{0, call, "launch"},
			{0, startFailed("driver \"x\" (/d/x) refused: not executable", true), "broken"},
			{0, call, `refuse: broken: driver "x" (/d/x) refused: not executable`},
		}},
		{"a call waits for a restart due within RestartWait, from when it first met it; a later one is refused", func(c *Config) { c.RestartWait = 3 * s }, seq(run,
			crashAfter(0, "crashed: exited during the call (signal: killed); next start +0s"),
			run, crashAfter(0, "crashed: exited during the call (signal: killed); next start +1s"),
			[]step{{s, call, "launch"}, {0, started(true), "running"}},
			crashAfter(0, "crashed: exited during the call (signal: killed); next start +3s"),
			// This call may wait until +4s.
			[]step{{0, call, "wait until +3s"}, {2 * s, callAgain, "launch"}, {0, started(true), "running"}},
			crashAfter(0, "crashed: exited during the call (signal: killed); next start +7s"),
			// Past that call's deadline, and past a new call's, +6s; a
			// call a second later may wait until +7s.
			[]step{{0, callAgain, "refuse: restart at +7s"}, {0, call, "refuse: restart at +7s"}, {s, call, "wait until +7s"}},
		)},
		{"a process the host stops ends no crash row, and calls wait for the next", nil, seq(run,
			crashAfter(0, "crashed: exited during the call (signal: killed); next start +0s"),
			run,
			[]step{
				{0, stop("its executable was replaced"), "true"}, {0, stop("idle"), "false"},
				{0, call, "wait"}, {0, hangs("did not answer"), "false"},
				{0, exits("exit status 0"), "stopped: was stopped during the call (its executable was replaced)"},
				{0, look, "stopped crashes=0 restarts=1"},
				{0, call, "launch"}, {0, started(true), "running"}, {0, look, "running crashes=0 restarts=1"},
			},
		)},
		{"a process killed as hung crashed, with the hang as the cause", nil, seq(run, []step{
			{s, hangs("did not answer within 1s"), "true"},
			{0, exits("signal: killed"), "crashed: did not answer within 1s and is being restarted; next start +1s"},
			{0, lastErr, "was killed as hung: it did not answer within 1s"},
			{0, call, "launch"}, {0, started(true), "running"},
			{0, exits("exit status 2"), "crashed: exited during the call (exit status 2); next start +2s"},
		})},
		{"a crash with connections open restarts without waiting for a call", nil, seq(run, []step{
			{0, open, ""},
			{0, exits("signal: killed"), "crashed: exited during the call (signal: killed); next start +0s, restart wanted"},
			{0, release, ""}, {0, call, "launch"}, {0, started(true), "running"},
			{0, exits("signal: killed"), "crashed: exited during the call (signal: killed); next start +1s"},
		})},
		{"idle: only with no connection, no guest and no call for IdleTimeout", func(c *Config) { c.IdleTimeout = 60 * s }, seq(
			[]step{{0, idle, "false"}}, run, []step{
				{59 * s, idle, "false"}, {s, idle, "true"},
				{0, open, ""}, {time.Hour, idle, "false"},
				{0, release, ""}, {59 * s, idle, "false"}, {s, idle, "true"},
				{0, guests(1), ""}, {time.Hour, idle, "false"},
				{0, guests(0), ""}, {0, idle, "true"},
				{0, call, "call"}, {59 * s, idle, "false"}, {s, idle, "true"},
				{0, stop("idle"), "true"}, {time.Hour, idle, "false"},
			})},
		{"a reattached process that dies crashed; the launch after it is a restart, of a process with no guests yet", nil, []step{
			{0, started(false), "running"}, {0, guests(2), ""},
			{0, exits("process gone"), "crashed: exited during the call (process gone); next start +0s"},
			{0, call, "launch"}, {0, started(true), "running"}, {0, look, "running crashes=1 restarts=1"},
			{time.Hour, idle, "true"},
		}},
		{"a removed driver is not started again; a process that started meanwhile is stopped at once", nil, []step{
			{0, call, "launch"}, {0, remove, ""}, {0, call, "refuse: removed"},
			{0, started(true), "stop at once"}, {0, stop("its executable was removed"), "true"},
			{0, exits("exit status 0"), "stopped: was stopped during the call (its executable was removed)"},
			{0, call, "refuse: removed"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{StableAfter: 10 * s, MaxCrashes: 10, BackoffBase: s, BackoffCap: 4 * s, RestartWait: 5 * s, IdleTimeout: time.Minute}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			sv := &supervised{m: newMachine(&cfg, clock), clock: clock, epoch: clock.now}
			for i, st := range tc.steps {
				clock.now = clock.now.Add(st.wait)
				if got := st.e(sv); got != st.want {
					t.Fatalf("step %d, at %s: got %q, want %q", i, sv.at(clock.now), got, st.want)
				}
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	m := newMachine(&Config{BackoffBase: 100 * time.Millisecond, BackoffCap: time.Second}, &fakeClock{})
	for crashes, want := range map[int]time.Duration{1: 0, 2: 100 * time.Millisecond, 3: 200 * time.Millisecond, 4: 400 * time.Millisecond, 6: time.Second, 60: time.Second} {
		m.crashes = crashes
		if got := m.backoff(); got != want {
			t.Errorf("backoff after %d crashes = %s, want %s", crashes, got, want)
		}
	}
}
