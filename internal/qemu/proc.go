package qemu

import (
	"golang.org/x/sys/unix"
)

// waitPidfd blocks until the process behind pidfd exits. It works for
// processes that are not the driver's children (found again after a
// restart), which wait(2) cannot wait for.
func waitPidfd(fd int) error {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if fds[0].Revents != 0 {
			return nil
		}
	}
}
