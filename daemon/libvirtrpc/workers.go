package libvirtrpc

import "time"

// workers runs calls on goroutines kept from one call to the next. A call
// that goes to a driver runs deep, through the core and gRPC's client, and
// a new goroutine starts with a small stack: with a goroutine per call, the
// runtime grew (copied) the stack on every call, 9% of virtd's CPU in a
// loop of calls that a driver answers.
type workers struct {
	ch chan func()
	// idle is how long a worker waits for a call before it ends.
	idle time.Duration
}

func newWorkers(idle time.Duration) *workers {
	return &workers{ch: make(chan func()), idle: idle}
}

// run runs f on a worker that waits for a call, or on a new one when none
// waits: a call never waits for another to end.
func (w *workers) run(f func()) {
	select {
	case w.ch <- f:
	default:
		go w.loop(f)
	}
}

// loop runs f, then each call run hands it, until none came for w.idle.
func (w *workers) loop(f func()) {
	t := time.NewTimer(w.idle)
	defer t.Stop()
	for {
		f()
		t.Reset(w.idle)
		select {
		case f = <-w.ch:
		case <-t.C:
			return
		}
	}
}
