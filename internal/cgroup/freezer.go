package cgroup

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// retry bounds how long the freezer tries. Open sets defaultRetry; tests
// set a schedule that gives up at once.
type retry struct {
	// freezeAttempts bounds the writes of FROZEN to a v1 freezer.state.
	freezeAttempts int
	// pause runs before attempt 1, 2, ... (not before the first, 0):
	// the v1 freezer tells nobody when it is done, so its state is
	// polled.
	pause func(attempt int)
	// timeout bounds the wait for a v2 cgroup.events to show the
	// freeze or thaw done.
	timeout time.Duration
}

// defaultRetry writes FROZEN up to 200 times in about 1.5s: the first ten
// at once (a task that was forking or exiting is usually caught by the
// next write), then with a pause growing to 10ms.
var defaultRetry = retry{
	freezeAttempts: 200,
	pause: func(attempt int) {
		if attempt >= 10 {
			time.Sleep(min(time.Duration(attempt)*100*time.Microsecond, 10*time.Millisecond))
		}
	},
	timeout: 5 * time.Second,
}

// FreezeError is the error of a freeze that did not complete. The cgroup
// was thawed again, so that none of its processes is left stopped while
// others run; Now says the state that left it in.
type FreezeError struct {
	// Cgroup is the cgroup's parent/name.
	Cgroup string
	// File is the file that shows the state: freezer.state (v1) or
	// cgroup.events (v2).
	File string
	// Stuck is the state the freeze stopped in: "FREEZING" (v1) or
	// "frozen 0" (v2).
	Stuck string
	// Now is the state after the thaw: "THAWED" or "frozen 0" when it
	// worked.
	Now string
	// Err is why the freeze stopped, joined with the thaw's error if
	// that failed too.
	Err error
}

func (e *FreezeError) Error() string {
	msg := "cgroup " + e.Cgroup + ": could not freeze"
	if e.Stuck != "" {
		msg += " (" + e.File + " " + e.Stuck + ")"
	}
	return fmt.Sprintf("%s: %v; after the thaw %s is %s", msg, e.Err, e.File, e.Now)
}

func (e *FreezeError) Unwrap() error { return e.Err }

// Freeze stops every process in the cgroup and returns once they all are.
// A freeze that does not complete in time is undone: the cgroup is thawed
// again and the error is a *FreezeError.
func (c *Cgroup) Freeze() error {
	if c.h.V2 {
		return c.freezeV2()
	}
	return c.freezeV1()
}

// freezeV1 writes FROZEN to freezer.state until it reads back FROZEN. The
// kernel freezes the tasks it can and reports FREEZING while some are not
// frozen yet (one was forking, or moved in meanwhile); each write of
// FROZEN tries those again.
func (c *Cgroup) freezeV1() error {
	path := c.file("freezer", "freezer.state")
	state := ""
	for i := range c.retry.freezeAttempts {
		if i > 0 {
			c.retry.pause(i)
		}
		if err := c.fs.write(path, "FROZEN"); err != nil {
			return c.abandonFreeze(state, err)
		}
		s, err := c.fs.read(path)
		if err != nil {
			return c.abandonFreeze(state, err)
		}
		state = s
		switch s {
		case "FROZEN":
			return nil
		case "FREEZING":
		default:
			return c.abandonFreeze(s, fmt.Errorf("unexpected state %q after writing FROZEN", s))
		}
	}
	return c.abandonFreeze(state, fmt.Errorf("still %s after writing FROZEN %d times", state, c.retry.freezeAttempts))
}

// freezeV2 writes 1 to cgroup.freeze and waits for cgroup.events to say
// "frozen 1".
func (c *Cgroup) freezeV2() error {
	events := c.file("", "cgroup.events")
	w, err := c.fs.watch(events)
	if err != nil {
		return err
	}
	defer w.close()
	if err := c.fs.write(c.file("", "cgroup.freeze"), "1"); err != nil {
		return c.abandonFreeze("", err)
	}
	got, err := c.waitEvent(w, events, "frozen", "1", c.retry.timeout)
	if err != nil {
		return c.abandonFreeze(got, err)
	}
	return nil
}

// abandonFreeze thaws the cgroup after a freeze failed with err in state
// stuck, and returns the *FreezeError that says so.
func (c *Cgroup) abandonFreeze(stuck string, err error) error {
	e := &FreezeError{Cgroup: c.rel, File: "freezer.state", Stuck: stuck, Err: err}
	if c.h.V2 {
		e.File = "cgroup.events"
		if stuck != "" {
			e.Stuck = "frozen " + stuck
		}
	}
	if terr := c.Thaw(); terr != nil {
		e.Err = errors.Join(err, terr)
	}
	now, serr := c.freezerState()
	if serr != nil {
		now = "unreadable (" + serr.Error() + ")"
	}
	e.Now = now
	return e
}

// freezerState is the content of freezer.state (v1: THAWED, FREEZING or
// FROZEN) or the frozen line of cgroup.events (v2: "frozen 0" or
// "frozen 1").
func (c *Cgroup) freezerState() (string, error) {
	if !c.h.V2 {
		return c.fs.read(c.file("freezer", "freezer.state"))
	}
	s, err := c.fs.read(c.file("", "cgroup.events"))
	if err != nil {
		return "", err
	}
	return "frozen " + eventValue(s, "frozen"), nil
}

// Thaw lets the processes of a frozen cgroup run again.
func (c *Cgroup) Thaw() error {
	if !c.h.V2 {
		path := c.file("freezer", "freezer.state")
		if err := c.fs.write(path, "THAWED"); err != nil {
			return err
		}
		s, err := c.fs.read(path)
		if err != nil {
			return err
		}
		if s != "THAWED" {
			return fmt.Errorf("cgroup %s: freezer.state is %s after writing THAWED", c.rel, s)
		}
		return nil
	}
	events := c.file("", "cgroup.events")
	w, err := c.fs.watch(events)
	if err != nil {
		return err
	}
	defer w.close()
	if err := c.fs.write(c.file("", "cgroup.freeze"), "0"); err != nil {
		return err
	}
	if _, err := c.waitEvent(w, events, "frozen", "0", c.retry.timeout); err != nil {
		return fmt.Errorf("cgroup %s: thaw: %w", c.rel, err)
	}
	return nil
}

// Frozen reports whether the cgroup is frozen. A v1 cgroup in FREEZING is
// not: some of its processes still run.
func (c *Cgroup) Frozen() (bool, error) {
	s, err := c.freezerState()
	if err != nil {
		return false, err
	}
	return s == "FROZEN" || s == "frozen 1", nil
}

// waitEvent waits, up to timeout, for the line "key want" in the v2
// cgroup.events at path, which w watches. It returns the value last read.
func (c *Cgroup) waitEvent(w watcher, path, key, want string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		s, err := c.fs.read(path)
		if err != nil {
			return "", err
		}
		got := eventValue(s, key)
		if got == want {
			return got, nil
		}
		left := time.Until(deadline)
		changed := false
		if left > 0 {
			if changed, err = w.wait(left); err != nil {
				return got, err
			}
		}
		if !changed {
			return got, fmt.Errorf("cgroup.events still says %q after %v", key+" "+got, timeout)
		}
	}
}

// eventValue returns the value of key in the content of a cgroup.events
// file ("populated 1\nfrozen 0"), or "" when it has none.
func eventValue(events, key string) string {
	for _, line := range strings.Split(events, "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
