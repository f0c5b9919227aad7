package daemon

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// activatedListeners returns the sockets systemd passed by socket
// activation (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES), by name. Names are
// the socket file names (virtd-sock, virtd-sock-ro, virtd-admin-sock, and
// libvirt's libvirt-sock and libvirt-sock-ro), as the units'
// FileDescriptorName= set them; without names, three sockets are taken as
// virtd's own in that order. It returns nil when virtd was not activated.
func activatedListeners() (map[string]net.Listener, error) {
	defer func() {
		for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
			os.Unsetenv(v)
		}
	}()
	if pid, err := strconv.Atoi(os.Getenv("LISTEN_PID")); err != nil || pid != os.Getpid() {
		return nil, nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil, nil
	}
	var names []string
	if s := os.Getenv("LISTEN_FDNAMES"); s != "" {
		names = strings.Split(s, ":")
	}
	if len(names) != n {
		if n != 3 {
			return nil, fmt.Errorf("socket activation passed %d unnamed sockets; name them (FileDescriptorName=) %s, %s and %s", n, SocketRW, SocketRO, SocketAdmin)
		}
		names = []string{SocketRW, SocketRO, SocketAdmin}
	}
	out := map[string]net.Listener{}
	for i := 0; i < n; i++ {
		fd := 3 + i
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), names[i])
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("activated socket %d (%s): %v", fd, names[i], err)
		}
		switch names[i] {
		case SocketRW, SocketRO, SocketAdmin, SocketLibvirt, SocketLibvirtRO:
			if _, dup := out[names[i]]; dup {
				l.Close()
				return nil, fmt.Errorf("socket activation passed two sockets named %q", names[i])
			}
			out[names[i]] = l
		default:
			l.Close()
			return nil, fmt.Errorf("activated socket named %q: want %s, %s, %s, %s or %s", names[i], SocketRW, SocketRO, SocketAdmin, SocketLibvirt, SocketLibvirtRO)
		}
	}
	return out, nil
}

// notify sends a state line to systemd's notification socket, if there is
// one (Type=notify units): "READY=1", "STOPPING=1", "RELOADING=1".
func notify(state string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = conn.Write([]byte(state))
}
