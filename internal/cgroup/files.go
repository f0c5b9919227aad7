package cgroup

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// files is how a Cgroup reads, writes and watches its control files. The
// kernel's files (kernelFiles) are the only implementation outside tests;
// a test puts another in their place to force what the kernel does only
// by chance, such as a v1 freezer that stays in FREEZING.
type files interface {
	read(path string) (string, error)
	write(path, value string) error
	// watch starts watching path (a v2 cgroup.events file) for changes.
	watch(path string) (watcher, error)
}

// watcher waits for a watched file to change.
type watcher interface {
	// wait returns true when the file may have changed since watch or
	// the last wait, false when d passed first.
	wait(d time.Duration) (bool, error)
	close()
}

// kernelFiles are the cgroup file systems' own files.
type kernelFiles struct{}

func (kernelFiles) read(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cgroup: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (kernelFiles) write(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		return fmt.Errorf("cgroup: write %q to %s: %w", value, path, err)
	}
	return nil
}

// watch uses inotify: the kernel reports a modification of cgroup.events
// each time one of its values ("populated", "frozen") changes.
func (kernelFiles) watch(path string) (watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("cgroup: inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY|unix.IN_DELETE_SELF); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cgroup: watch %s: %w", path, &os.PathError{Op: "inotify_add_watch", Path: path, Err: err})
	}
	return inotifyWatcher(fd), nil
}

type inotifyWatcher int

func (w inotifyWatcher) wait(d time.Duration) (bool, error) {
	deadline := time.Now().Add(d)
	for {
		// Rounded up: poll must not return before the deadline.
		ms := max(int((time.Until(deadline)+time.Millisecond-1)/time.Millisecond), 0)
		fds := []unix.PollFd{{Fd: int32(w), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("cgroup: poll inotify: %w", err)
		}
		if n == 0 {
			return false, nil
		}
		// Drain the events: only "something changed" matters.
		var buf [4096]byte
		for {
			if _, err := unix.Read(int(w), buf[:]); err != nil {
				break
			}
		}
		return true, nil
	}
}

func (w inotifyWatcher) close() { unix.Close(int(w)) }
