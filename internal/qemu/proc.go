package qemu

import (
	"net"
	"os"
	"os/exec"

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

// startListening starts cmd with the listening socket ln as its fd 3,
// then makes ln non-blocking again. os/exec hands ExtraFiles over in
// blocking mode (os.File.Fd), and the child shares the socket's flags:
// QEMU's main loop, polling a listener it had just accepted its one client
// from, was seen blocked in accept(2) for good, with QMP's greeting sent
// and nothing answered (a probe in CI, its main thread in
// __skb_wait_for_more_packets). Non-blocking, that accept fails with
// EAGAIN and the loop goes on. The child only reaches its main loop long
// after Start returns. Only for QEMU: the helpers that take a socket the
// same way (swtpm, virtiofsd) may accept in blocking mode, on purpose.
func startListening(cmd *exec.Cmd, ln *os.File) error {
	cmd.ExtraFiles = []*os.File{ln}
	if err := cmd.Start(); err != nil {
		return err
	}
	if rc, err := ln.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = unix.SetNonblock(int(fd), true) })
	}
	return nil
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
