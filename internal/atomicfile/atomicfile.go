// Package atomicfile writes files so that a reader, or a process killed
// mid-write, sees the old content or the new, never a mix.
package atomicfile

import (
	"errors"
	"io/fs"
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
	tmp, err := os.CreateTemp(filepath.Dir(path), tempPrefix(filepath.Base(path)))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
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
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
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
	return "." + base + ".tmp." + strconv.Itoa(os.Getpid()) + ".*"
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
