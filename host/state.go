package host

import (
	"fmt"
	"time"
)

// State is where a driver process is in its life.
type State string

// Driver states.
const (
	StateStopped  State = "stopped"
	StateStarting State = "starting"
	StateRunning  State = "running"
	// StateBroken: the driver failed in a way a retry will not mend (bad
	// handshake, crash loop, refused file). A rescan, or a new file,
	// clears it.
	StateBroken State = "broken"
)

// Clock tells the time; tests give the machine a fake one.
type Clock interface{ Now() time.Time }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// machine holds the rules of supervising one driver. Events go in (a call
// wants the driver, the process started or failed to, exited, was found
// hung, a stop or a rescan happened), decisions come out (send the call,
// launch, wait until a time, refuse, stop, restart). It does no I/O and
// starts nothing: Proc feeds it under its mutex and carries its decisions
// out.
type machine struct {
	cfg   *Config
	clock Clock

	state     State
	crashes   int       // in a row, each within StableAfter of its start
	restarts  int       // starts after a crash
	nextStart time.Time // no start before, after a crash
	lastErr   string
	removed   bool // the executable is gone: no start from here on
	conns     int
	lastUsed  time.Time

	// Of the process that runs (state running):
	startedAt time.Time
	guests    int    // from its last keep-alive
	stopping  bool   // no new call goes to it
	stopWhy   string // why it is being stopped
	hung      string // why it was killed as hung
}

func newMachine(cfg *Config, clock Clock) machine {
	return machine{cfg: cfg, clock: clock, state: StateStopped}
}

// verdict is what a call that wants the driver does next.
type verdict int

const (
	callIt   verdict = iota // send the call to the running process
	launchIt                // start the driver; other calls wait for it
	waitIt                  // wait for a change, or until the time given
	refuseRemoved
	refuseBroken
	refuseLate // the next restart is later than the call may wait
)

// call decides for a call that wants the driver. A call waits for a driver
// that starts or whose process is being stopped (the next one serves it),
// and for a restart after a crash if it is due before *deadline: zero the
// first time the call meets one, it is then set RestartWait from now.
func (m *machine) call(deadline *time.Time) (verdict, time.Time) {
	now := m.clock.Now()
	switch {
	case m.removed:
		return refuseRemoved, time.Time{}
	case m.state == StateBroken:
		return refuseBroken, time.Time{}
	case m.state == StateRunning && !m.stopping:
		m.lastUsed = now
		return callIt, time.Time{}
	case m.state != StateStopped:
		return waitIt, time.Time{}
	case !now.Before(m.nextStart):
		m.state = StateStarting
		return launchIt, time.Time{}
	}
	if deadline.IsZero() {
		*deadline = now.Add(m.cfg.RestartWait)
	}
	if m.nextStart.After(*deadline) {
		return refuseLate, m.nextStart
	}
	return waitIt, m.nextStart
}

// reattaching: the host connects to a process a previous daemon left.
func (m *machine) reattaching() { m.state = StateStarting }

// notStarted: there was no process to reattach to.
func (m *machine) notStarted() { m.state = StateStopped }

// startFailed: the launch failed, for reason; broken when a retry will
// not mend it.
func (m *machine) startFailed(reason string, broken bool) {
	m.lastErr, m.state = reason, StateStopped
	if broken {
		m.state = StateBroken
	}
}

// started: a process runs, launched by this host or reattached. A launch
// after a crash counts as a restart. It reports whether the process must
// be stopped at once: its executable was removed meanwhile.
func (m *machine) started(launched bool) (stop bool) {
	if launched && m.crashes > 0 {
		m.restarts++
	}
	now := m.clock.Now()
	m.state, m.startedAt, m.lastUsed = StateRunning, now, now
	m.guests, m.stopping, m.stopWhy, m.hung = 0, false, "", ""
	return m.removed
}

// keptAlive: the process answered a keep-alive, running guests.
func (m *machine) keptAlive(guests int) { m.guests = guests }

// idle reports whether the running process has had no connection, no
// call and no guest for the idle timeout.
func (m *machine) idle() bool {
	return m.state == StateRunning && !m.stopping && m.conns == 0 && m.guests == 0 &&
		m.clock.Now().Sub(m.lastUsed) >= m.cfg.IdleTimeout
}

// stop: the host wants the running process to end, for why. It reports
// whether to stop it: not when nothing runs or a stop is under way.
func (m *machine) stop(why string) bool {
	if m.state != StateRunning || m.stopping {
		return false
	}
	m.stopping, m.stopWhy = true, why
	return true
}

// hangs: the running process did not answer (why). It reports whether to
// kill it, which then counts as a crash; a process being stopped is left
// to its stop.
func (m *machine) hangs(why string) bool {
	if m.state != StateRunning || m.stopping {
		return false
	}
	m.hung = why
	return true
}

// exitNote is what the machine decided at a process's exit.
type exitNote struct {
	cause   string // what a call the process broke says of it
	crashed bool
	report  string // of a crash: what happened, for the log and subscribers
	// restart: connections use the driver, so it is started again at
	// restartAt without waiting for a call.
	restart   bool
	restartAt time.Time
}

// exited: the running process ended; status says how, stderr quotes its
// last words. Unless the host stopped it, that is a crash: the restart
// waits a backoff that doubles with each crash in a row (the first is
// immediate), and MaxCrashes in a row mark the driver broken. A process
// that ran StableAfter or longer starts a new row.
func (m *machine) exited(status, stderr string) exitNote {
	now := m.clock.Now()
	if m.stopping || m.removed {
		m.state, m.crashes = StateStopped, 0
		// Stopped with connections open (its executable was replaced):
		// the next process comes at once, as after a crash, so that it
		// serves reads and events without waiting for a call.
		return exitNote{
			cause:   fmt.Sprintf("was stopped during the call (%s)", m.stopWhy),
			restart: m.conns > 0 && !m.removed, restartAt: now,
		}
	}
	if now.Sub(m.startedAt) < m.cfg.StableAfter {
		m.crashes++
	} else {
		m.crashes = 1
	}
	note := exitNote{
		crashed: true,
		cause:   fmt.Sprintf("exited during the call (%s)", status),
		report:  fmt.Sprintf("exited unexpectedly (%s); %s", status, stderr),
	}
	if m.hung != "" {
		note.report = "was killed as hung: it " + m.hung
		note.cause = m.hung + " and is being restarted"
	}
	if m.crashes >= m.cfg.MaxCrashes {
		m.state = StateBroken
		m.lastErr = fmt.Sprintf("crashed %d times in a row; the last time it %s", m.crashes, note.report)
		return note
	}
	m.state, m.lastErr = StateStopped, note.report
	m.nextStart = now.Add(m.backoff())
	note.restart, note.restartAt = m.conns > 0, m.nextStart
	return note
}

// backoff is the wait before the restart after the crashes in a row.
func (m *machine) backoff() time.Duration {
	if m.crashes <= 1 {
		return 0
	}
	d := m.cfg.BackoffBase << (m.crashes - 2)
	if d > m.cfg.BackoffCap || d <= 0 {
		d = m.cfg.BackoffCap
	}
	return d
}

// rescanned: the driver's file was found again. A broken driver gets
// another chance, at once. It reports whether the state changed.
func (m *machine) rescanned() bool {
	if m.state != StateBroken {
		return false
	}
	m.state, m.crashes, m.nextStart = StateStopped, 0, time.Time{}
	return true
}

// remove: the driver's file is gone; it is not started again.
func (m *machine) remove() { m.removed = true }

// open and release count a client connection.
func (m *machine) open() { m.conns++ }

func (m *machine) release() {
	if m.conns > 0 {
		m.conns--
	}
	m.lastUsed = m.clock.Now()
}
