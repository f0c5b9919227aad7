package qemu

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// listenFile makes a listening unix socket at path and returns it as a
// file, for a child process (QEMU, swtpm, virtiofsd) to take as fd 3: the
// socket exists before the child runs, so nobody waits for it to appear.
// The socket file stays when the returned file is closed.
func listenFile(path string) (*os.File, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	f, err := ln.File()
	ln.Close()
	if err != nil {
		os.Remove(path)
	}
	return f, err
}

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
