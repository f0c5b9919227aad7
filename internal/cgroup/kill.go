package cgroup

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Kill sends SIGKILL to every process in the cgroup and waits, up to
// timeout, until it is empty; Remove can then remove it.
//
// On cgroup v2 the kernel (Linux 5.14 and later) kills them all at once
// when 1 is written to cgroup.kill, frozen ones and ones forked meanwhile
// included, and cgroup.events says "populated 0" when they are gone.
// Without cgroup.kill, and on cgroup v1, the cgroup is frozen so that no
// process forks one that the list misses, each listed process is sent
// SIGKILL, and the cgroup is thawed so that they die (a frozen process
// acts on SIGKILL only when thawed); this until the cgroup is empty.
func (c *Cgroup) Kill(timeout time.Duration) error {
	if !c.Exists() {
		return nil
	}
	deadline := time.Now().Add(timeout)
	if c.h.V2 {
		err := c.fs.write(c.file("", "cgroup.kill"), "1")
		if err == nil {
			return c.waitEmpty(timeout)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		// Before Linux 5.14 (or the cgroup is gone: then the
		// first round finds no cgroup.procs).
	}
	for {
		n, err := c.signalAll()
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s: %d processes still alive after %v", c.rel, n, timeout)
		}
		// Let the killed processes exit before the next round.
		if c.h.V2 {
			if err := c.waitEmpty(min(time.Until(deadline), 50*time.Millisecond)); err == nil {
				return nil
			}
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// signalAll freezes the cgroup, sends SIGKILL to each of its processes and
// thaws it. It returns how many it signalled. A cgroup that does not
// freeze is signalled all the same.
func (c *Cgroup) signalAll() (int, error) {
	_ = c.Freeze()
	pids, err := c.Pids()
	for _, p := range pids {
		// ESRCH: it exited meanwhile.
		_ = unix.Kill(p, unix.SIGKILL)
	}
	_ = c.Thaw()
	return len(pids), err
}

// waitEmpty waits, up to timeout, for the v2 cgroup.events to say
// "populated 0". A cgroup that is gone is empty.
func (c *Cgroup) waitEmpty(timeout time.Duration) error {
	events := c.file("", "cgroup.events")
	w, err := c.fs.watch(events)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer w.close()
	_, err = c.waitEvent(w, events, "populated", "0", timeout)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cgroup %s: processes still alive: %w", c.rel, err)
	}
	return nil
}
