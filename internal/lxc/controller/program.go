package controller

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// program is what the container helper (nsinit.c) carries out in the new
// namespaces: every path and flag decided here, in Go, and only executed
// there. It is records of NUL-terminated strings: the op, the number of
// its arguments, the arguments; the first argument of each op but exec is
// the context an error is reported in.
type program struct {
	buf bytes.Buffer
	err error
}

func (p *program) op(name string, args ...string) {
	p.buf.WriteString(name)
	p.buf.WriteByte(0)
	p.buf.WriteString(strconv.Itoa(len(args)))
	p.buf.WriteByte(0)
	for _, a := range args {
		if strings.IndexByte(a, 0) >= 0 && p.err == nil {
			p.err = fmt.Errorf("%s: a NUL byte in %q", name, a)
		}
		p.buf.WriteString(a)
		p.buf.WriteByte(0)
	}
}

func (p *program) mount(ctx, source, target, fstype string, flags uintptr, data string) {
	p.op("mount", ctx, source, target, fstype, strconv.FormatUint(uint64(flags), 10), data)
}

func (p *program) mkdir(ctx, path string) { p.op("mkdir", ctx, path, "755") }

// mountAt mounts a filesystem on target inside root, making the directory.
func (p *program) mountAt(root, target, source, fstype string, flags uintptr, data string) error {
	dst, err := inside(root, target)
	if err != nil {
		return err
	}
	ctx := fmt.Sprintf("mount %s on %s", fstype, target)
	p.mkdir(ctx, dst)
	p.mount(ctx, source, dst, fstype, flags, data)
	return nil
}

// bindFile binds the file src on dst, creating dst.
func (p *program) bindFile(src, dst string) {
	ctx := fmt.Sprintf("bind %s on %s", src, dst)
	p.op("touch", ctx, dst, "666")
	p.mount(ctx, src, dst, "", unix.MS_BIND, "")
}

// containerProgram compiles what the container's first process does:
// mounts, hostname, pivot_root into the root filesystem, and the exec of
// the init. console is the host path of the console pty's slave.
func containerProgram(s *Spec, console string) ([]byte, error) {
	p := &program{}
	p.mount("make mounts private", "", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
	p.op("hostname", "set hostname", s.Hostname)
	if err := p.root(s, console); err != nil {
		return nil, err
	}
	if s.WorkDir != "" {
		p.op("chdir", "init directory "+s.WorkDir, s.WorkDir)
	}
	const path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	env := append([]string{
		"PATH=" + path,
		"TERM=linux",
		"HOME=/",
		"container=lxc-libvirt",
		"container_uuid=" + s.UUID,
		"LIBVIRT_LXC_NAME=" + s.Name,
		"LIBVIRT_LXC_UUID=" + s.UUID,
	}, s.Env...)
	if len(s.Init) == 0 {
		return nil, invalid(fmt.Errorf("container %s: no init", s.Name))
	}
	args := []string{
		fmt.Sprintf("init %q not found in the root filesystem %s", s.Init[0], s.RootFS),
		fmt.Sprintf("init %q in the root filesystem %s is not an executable file", s.Init[0], s.RootFS),
		path, strconv.Itoa(len(s.Init)),
	}
	args = append(append(args, s.Init...), env...)
	p.op("exec", args...)
	if p.err != nil {
		return nil, invalid(p.err)
	}
	return p.buf.Bytes(), nil
}

// root mounts the root filesystem, the extra mounts, /proc, /sys and /dev,
// and pivots into it.
func (p *program) root(s *Spec, console string) error {
	root := s.RootFS
	p.mount("bind root filesystem "+root, root, root, "", unix.MS_BIND|unix.MS_REC, "")
	for _, m := range s.Mounts {
		if err := p.mountExtra(root, m); err != nil {
			return err
		}
	}
	const nsd = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	for _, m := range []struct {
		target, fstype string
		flags          uintptr
		data           string
	}{
		{"/proc", "proc", nsd, ""},
		{"/sys", "sysfs", nsd | unix.MS_RDONLY, ""},
		{"/dev", "tmpfs", unix.MS_NOSUID | unix.MS_STRICTATIME, "mode=755,size=65536k"},
	} {
		if err := p.mountAt(root, m.target, m.fstype, m.fstype, m.flags, m.data); err != nil {
			return err
		}
	}
	dev := filepath.Join(root, "dev")
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		p.bindFile("/dev/"+n, filepath.Join(dev, n))
	}
	if console != "" {
		p.bindFile(console, filepath.Join(dev, "console"))
	}
	if err := p.mountAt(root, "/dev/pts", "devpts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return err
	}
	if err := p.mountAt(root, "/dev/shm", "tmpfs", "tmpfs", nsd, "mode=1777,size=65536k"); err != nil {
		return err
	}
	for _, l := range [][2]string{
		{"ptmx", "pts/ptmx"}, {"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"},
		{"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
	} {
		p.op("symlink", "/dev/"+l[0], l[1], filepath.Join(dev, l[0]))
	}
	p.op("chdir", "root filesystem "+root, root)
	p.op("pivot", "pivot_root into "+root)
	return nil
}

// inside returns root+path, refusing paths that climb out of root.
func inside(root, path string) (string, error) {
	for _, e := range strings.Split(path, "/") {
		if e == ".." {
			return "", invalid(fmt.Errorf("path %q leaves the root filesystem", path))
		}
	}
	return filepath.Join(root, filepath.Clean("/"+path)), nil
}

func (p *program) mountExtra(root string, m Mount) error {
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
		return p.mountAt(root, m.Target, "tmpfs", "tmpfs", flags, data)
	}
	st, err := os.Stat(m.Source)
	if err != nil {
		return invalid(fmt.Errorf("filesystem source %s: %w", m.Source, err))
	}
	ctx := "filesystem target " + m.Target
	if st.IsDir() {
		p.mkdir(ctx, dst)
	} else {
		p.mkdir(ctx, filepath.Dir(dst))
		p.op("touch", ctx, dst, "644")
	}
	p.mount(fmt.Sprintf("bind %s on %s", m.Source, m.Target), m.Source, dst, "", unix.MS_BIND|unix.MS_REC, "")
	if m.ReadOnly {
		// The remount must keep the flags the kernel locks in a user
		// namespace: nosuid, nodev and noexec of the source's mount,
		// which the bind mount has too.
		var sfs unix.Statfs_t
		var keep uintptr
		if unix.Statfs(m.Source, &sfs) == nil {
			for st, ms := range map[int64]uintptr{unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC} {
				if sfs.Flags&st != 0 {
					keep |= ms
				}
			}
		}
		p.mount("make "+m.Target+" read-only", "", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|keep, "")
	}
	return nil
}
