package procfs

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Exit is a handle on one process that tells when it exits, without
// polling: a pidfd, waited on through Go's poller.
type Exit struct {
	f   *os.File
	pid int
}

// WatchExit opens a handle on process pid, which must be the process that
// started at startTime (so that a reused pid is never watched in its
// place). A process that is already gone gives an error.
func WatchExit(pid int, startTime uint64) (*Exit, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	e := &Exit{f: os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid)), pid: pid}
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

// Status returns how a child of this process exited ("exit status 1",
// "signal: killed"), without reaping it. It fails for a process that is
// not a child of this one, or that was reaped already.
func (e *Exit) Status() (string, error) {
	rc, err := e.f.SyscallConn()
	if err != nil {
		return "", err
	}
	var info unix.Siginfo
	var werr error
	err = rc.Control(func(fd uintptr) {
		for {
			werr = unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
			if !errors.Is(werr, syscall.EINTR) {
				return
			}
		}
	})
	if err != nil {
		return "", err
	}
	if werr != nil {
		return "", werr
	}
	// For SIGCHLD the union after the first four words holds si_pid,
	// si_uid and si_status.
	raw := (*[32]byte)(unsafe.Pointer(&info))
	pid := *(*int32)(unsafe.Pointer(&raw[16]))
	status := *(*int32)(unsafe.Pointer(&raw[24]))
	if pid == 0 {
		return "", fmt.Errorf("process %d has not exited", e.pid)
	}
	switch info.Code {
	case cldExited:
		return fmt.Sprintf("exit status %d", status), nil
	case cldKilled, cldDumped:
		s := "signal: " + syscall.Signal(status).String()
		if info.Code == cldDumped {
			s += " (core dumped)"
		}
		return s, nil
	}
	return fmt.Sprintf("exit code %d, status %d", info.Code, status), nil
}

// si_code values of SIGCHLD (asm-generic/siginfo.h).
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// Close releases the handle; a Wait in progress returns false.
func (e *Exit) Close() error { return e.f.Close() }
