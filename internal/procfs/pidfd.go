package procfs

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit is a handle on one process that tells when it exits, without
// polling: a pidfd, waited on through Go's poller.
type Exit struct {
	f *os.File
}

// WatchExit opens a handle on process pid, which must be the process that
// started at startTime (so that a reused pid is never watched in its
// place). A process that is already gone gives an error.
func WatchExit(pid int, startTime uint64) (*Exit, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	e := &Exit{f: os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid))}
	// The pidfd names whatever process had pid when it was opened.
	if !Alive(pid, startTime) {
		e.Close()
		return nil, fmt.Errorf("process %d is gone", pid)
	}
	return e, nil
}

// Wait blocks until the process exits (it is then a zombie or reaped) or
// the handle is closed; it reports whether the process exited.
func (e *Exit) Wait() bool {
	rc, err := e.f.SyscallConn()
	if err != nil {
		return false
	}
	exited := false
	err = rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		exited = err == nil && n > 0
		return exited // false: wait for the poller to say it is readable
	})
	return err == nil && exited
}

// Kill sends the process SIGKILL through the handle: never to another
// process that took its pid after it was reaped. A process that has exited
// already is not an error.
func (e *Exit) Kill() error {
	rc, err := e.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.PidfdSendSignal(int(fd), syscall.SIGKILL, nil, 0)
	}); err != nil {
		return err
	}
	if serr == syscall.ESRCH {
		return nil
	}
	return serr
}

// Close releases the handle; a Wait in progress returns false.
func (e *Exit) Close() error { return e.f.Close() }
