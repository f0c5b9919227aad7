package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// containerConfig is what the controller sends the container process on fd
// 3, once the cgroup and the network interfaces are ready.
type containerConfig struct {
	Spec *Spec `json:"spec"`
	// Console is the host path of the console pty's slave.
	Console string `json:"console"`
}

// File descriptors of the container process.
const (
	configFD = 3 // the containerConfig, then EOF
	errorFD  = 4 // an error message, or EOF when init was exec'd
)

// ContainerMain is the container mode: the process runs as PID 1 in new
// namespaces. It reads its configuration, sets up the network, the mounts
// and the hostname, pivots into the root filesystem and execs the init.
// It returns (with an exit code) only on error, which it reports first to
// the controller.
func ContainerMain() int {
	errPipe := os.NewFile(errorFD, "error")
	unix.CloseOnExec(errorFD)
	fail := func(err error) int {
		fmt.Fprintf(errPipe, "%v", err)
		return 1
	}
	cfgPipe := os.NewFile(configFD, "config")
	var cfg containerConfig
	if err := json.NewDecoder(cfgPipe).Decode(&cfg); err != nil {
		return fail(fmt.Errorf("container: read configuration: %w", err))
	}
	cfgPipe.Close()
	if cfg.Spec == nil {
		return fail(errors.New("container: no configuration received"))
	}
	path, argv, env, err := setupContainer(&cfg)
	if err != nil {
		return fail(err)
	}
	err = unix.Exec(path, argv, env)
	return fail(fmt.Errorf("exec init %q: %w", argv[0], err))
}

func setupContainer(cfg *containerConfig) (string, []string, []string, error) {
	s := cfg.Spec
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return "", nil, nil, fmt.Errorf("make mounts private: %w", err)
	}
	if err := setupNetwork(s); err != nil {
		return "", nil, nil, err
	}
	if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
		return "", nil, nil, fmt.Errorf("set hostname: %w", err)
	}
	if err := setupRoot(s, cfg.Console); err != nil {
		return "", nil, nil, err
	}
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"TERM=linux",
		"HOME=/",
		"container=lxc-libvirt",
		"container_uuid=" + s.UUID,
		"LIBVIRT_LXC_NAME=" + s.Name,
		"LIBVIRT_LXC_UUID=" + s.UUID,
	}
	env = append(env, s.Env...)
	if s.WorkDir != "" {
		if err := os.Chdir(s.WorkDir); err != nil {
			return "", nil, nil, fmt.Errorf("init directory: %w", err)
		}
	}
	path := s.Init[0]
	if !strings.Contains(path, "/") {
		os.Setenv("PATH", env[0][len("PATH="):])
		p, err := exec.LookPath(path)
		if err != nil {
			return "", nil, nil, fmt.Errorf("init %q not found in the root filesystem %s", path, s.RootFS)
		}
		path = p
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", nil, nil, fmt.Errorf("init %q not found in the root filesystem %s", s.Init[0], s.RootFS)
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return "", nil, nil, fmt.Errorf("init %q in the root filesystem %s is not an executable file", s.Init[0], s.RootFS)
	}
	return path, s.Init, env, nil
}

// setupRoot mounts the root filesystem, the extra mounts, /proc, /sys,
// /dev and pivots into it.
func setupRoot(s *Spec, console string) error {
	root := s.RootFS
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind root filesystem %s: %w", root, err)
	}
	for _, m := range s.Mounts {
		if err := mountExtra(root, m); err != nil {
			return err
		}
	}
	const nsd = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := mountAt(root, "/proc", "proc", "proc", nsd, ""); err != nil {
		return err
	}
	if err := mountAt(root, "/sys", "sysfs", "sysfs", nsd|unix.MS_RDONLY, ""); err != nil {
		return err
	}
	if err := mountAt(root, "/dev", "tmpfs", "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return err
	}
	dev := filepath.Join(root, "dev")
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		if err := bindFile("/dev/"+n, filepath.Join(dev, n)); err != nil {
			return err
		}
	}
	if console != "" {
		if err := bindFile(console, filepath.Join(dev, "console")); err != nil {
			return err
		}
	}
	if err := mountAt(root, "/dev/pts", "devpts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return err
	}
	if err := mountAt(root, "/dev/shm", "tmpfs", "tmpfs", nsd, "mode=1777,size=65536k"); err != nil {
		return err
	}
	for name, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return fmt.Errorf("/dev/%s: %w", name, err)
		}
	}
	if err := os.Chdir(root); err != nil {
		return fmt.Errorf("root filesystem: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root into %s: %w", root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach the host root: %w", err)
	}
	return os.Chdir("/")
}

// inside returns root+path, refusing paths that climb out of root.
func inside(root, path string) (string, error) {
	for _, e := range strings.Split(path, "/") {
		if e == ".." {
			return "", fmt.Errorf("path %q leaves the root filesystem", path)
		}
	}
	return filepath.Join(root, filepath.Clean("/"+path)), nil
}

func mountAt(root, target, source, fstype string, flags uintptr, data string) error {
	dst, err := inside(root, target)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", target, err)
	}
	if err := unix.Mount(source, dst, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s: %w", fstype, target, err)
	}
	return nil
}

func bindFile(src, dst string) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o666)
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	f.Close()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, dst, err)
	}
	return nil
}

func mountExtra(root string, m Mount) error {
	dst, err := inside(root, m.Target)
	if err != nil {
		return err
	}
	if m.Tmpfs {
		data := "mode=755"
		if m.SizeBytes > 0 {
			data += fmt.Sprintf(",size=%d", m.SizeBytes)
		}
		var flags uintptr = unix.MS_NOSUID | unix.MS_NODEV
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		return mountAt(root, m.Target, "tmpfs", "tmpfs", flags, data)
	}
	st, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("filesystem source %s: %w", m.Source, err)
	}
	if st.IsDir() {
		err = os.MkdirAll(dst, 0o755)
	} else {
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			var f *os.File
			if f, err = os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				f.Close()
			}
		}
	}
	if err != nil {
		return fmt.Errorf("filesystem target %s: %w", m.Target, err)
	}
	if err := unix.Mount(m.Source, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", m.Source, m.Target, err)
	}
	if m.ReadOnly {
		// A remount must keep the flags the kernel locks in a user
		// namespace (nosuid, nodev, noexec of the source).
		var sfs unix.Statfs_t
		var keep uintptr
		if unix.Statfs(dst, &sfs) == nil {
			for st, ms := range map[int64]uintptr{unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC} {
				if sfs.Flags&st != 0 {
					keep |= ms
				}
			}
		}
		if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|keep, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", m.Target, err)
		}
	}
	return nil
}

// setupNetwork brings the loopback up and configures the interfaces the
// controller moved into the container's network namespace.
func setupNetwork(s *Spec) error {
	if err := linkUp("lo"); err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	for _, ifc := range s.Interfaces {
		args := [][]string{
			{"link", "set", "dev", ifc.peerName(), "name", ifc.GuestName},
		}
		if ifc.MAC != "" {
			args = append(args, []string{"link", "set", "dev", ifc.GuestName, "address", ifc.MAC})
		}
		args = append(args, []string{"link", "set", "dev", ifc.GuestName, "up"})
		for _, a := range ifc.Addrs {
			args = append(args, []string{"addr", "add", a, "dev", ifc.GuestName})
		}
		for _, r := range ifc.Routes {
			args = append(args, []string{"route", "add", r.Dest, "via", r.Gateway, "dev", ifc.GuestName})
		}
		if err := ipBatch(args); err != nil {
			return fmt.Errorf("interface %s: %w", ifc.GuestName, err)
		}
	}
	return nil
}

// linkUp sets an interface up with an ioctl.
func linkUp(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
