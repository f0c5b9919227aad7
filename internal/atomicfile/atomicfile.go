// Package atomicfile writes files so that a reader, or a process killed
// mid-write, sees the old content or the new, never a mix.
package atomicfile

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// WriteFile writes data to path through a temporary file in the same
// directory, fsync and rename, then syncs the directory so that the rename
// itself survives a crash of the machine.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	if err := write(path, data, perm, true); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Rewrite writes data to path through a temporary file, fsync and rename,
// as libvirt's virFileRewrite does for definitions: after a crash of the
// machine the file holds the old content or the new, whole, but a rename
// just before the crash may be lost (the old file comes back). It saves
// WriteFile's sync of the directory, which on ext4 costs about as much as
// the rest of a define.
func Rewrite(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

// Replace writes data to path through a temporary file and a rename, as
// WriteFile does, but without the fsyncs: for the run directory's files,
// which must survive a process killed mid-write but not a reboot (they
// describe processes that a reboot ends), and which lie on the start path
// of every domain.
func Replace(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

func write(path string, data []byte, perm os.FileMode, sync bool) error {
	tmp, err := createTemp(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil && sync {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// rename(2) alone: os.Rename first looks whether path is a
		// directory, which rename(2) refuses for a file anyway.
		if rerr := unix.Rename(tmp.Name(), path); rerr != nil {
			err = &os.LinkError{Op: "rename", Old: tmp.Name(), New: path, Err: rerr}
		}
	}
	if err != nil {
		_ = unix.Unlink(tmp.Name())
	}
	return err
}

// createTemp creates a new file in dir, named for base (tempPrefix), and
// opens it as a plain blocking file. os.CreateTemp offers a regular file to
// the runtime's poller, which refuses it: four fcntl calls and an
// epoll_ctl on every write of a definition or a record.
func createTemp(dir, base string) (*os.File, error) {
	prefix := filepath.Join(dir, tempPrefix(base))
	for range 10000 {
		name := prefix + strconv.FormatUint(uint64(rand.Uint32()), 10)
		fd, err := unix.Open(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), name), nil
		case !errors.Is(err, unix.EEXIST):
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
	}
	return nil, &os.PathError{Op: "createtemp", Path: prefix + "*", Err: fs.ErrExist}
}

// OverwriteMax is the most Overwrite writes in place: one page, which the
// kernel copies in one step, so that a signal cannot cut the write short.
const OverwriteMax = 4096

// Overwrite writes data over the existing file path, in place, with one
// write at offset 0, followed by pad bytes up to the file's old length
// when data is shorter (the file never shrinks: pad must be something its
// readers skip, such as a space after JSON). It does so only when the
// result fits in OverwriteMax bytes, and reports whether it did: when it
// did not (no file, or too long), the caller falls back to Replace.
//
// A process killed in the middle leaves the old content or the new, as
// with Replace, but a concurrent reader may see a mix, and a crash of the
// machine may leave one: it is for run-directory files that only their
// writer reads, at its next start. What it saves is the rename over the
// old file, which ext4 turns into a flush of the new file's data
// (auto_da_alloc): 150-400 us against a few.
func Overwrite(path string, data []byte, pad byte) (bool, error) {
	if len(data) > OverwriteMax {
		return false, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return false, err
	}
	buf := data
	if old := st.Size(); old > int64(len(data)) {
		if old > OverwriteMax {
			return false, nil
		}
		buf = make([]byte, old)
		copy(buf, data)
		for i := len(data); i < len(buf); i++ {
			buf[i] = pad
		}
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		return false, err
	}
	return true, f.Close()
}

// SyncDir makes a directory's entries durable: a remove or a rename in it
// survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// tempPrefix names the temporary files of this process for a file: its pid
// in the name tells Clean whether their writer still runs.
func tempPrefix(base string) string {
	return "." + base + ".tmp." + strconv.Itoa(os.Getpid()) + "."
}

// writerPID returns the pid in a temporary file's name, if it is one.
func writerPID(name string) (int, bool) {
	if !strings.HasPrefix(name, ".") {
		return 0, false
	}
	i := strings.LastIndex(name, ".tmp.")
	if i < 0 {
		return 0, false
	}
	pid, _, ok := strings.Cut(name[i+len(".tmp."):], ".")
	n, err := strconv.Atoi(pid)
	return n, ok && err == nil && n > 0
}

// Clean removes, under dir and its subdirectories, the temporary files of
// writers that no longer run: what a writer killed in the middle of
// WriteFile or Replace left behind. A process calls it on the directories
// it owns when it starts, so that such leftovers neither pile up nor get
// read. A missing dir is fine. It returns the files it removed.
func Clean(dir string) ([]string, error) {
	var removed []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		pid, ok := writerPID(d.Name())
		if !ok || unix.Kill(pid, 0) != unix.ESRCH {
			return nil // not ours, or its writer still runs
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removed = append(removed, path)
		return nil
	})
	return removed, err
}
