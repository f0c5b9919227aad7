// Package defdir handles the directory of persistent definitions that the
// QEMU and LXC drivers share the layout of: DIR/UUID.xml, and an autostart
// mark DIR/autostart/UUID. Earlier versions named both by the domain's
// name, which a name may not safely be (see domxml.CheckName).
package defdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/virtd/virtd/internal/atomicfile"
)

// RenameLegacy moves a definition an earlier version wrote by name (path,
// holding doc, with its autostart mark) to the files named by uuid in dir;
// mark is what the driver writes in an autostart mark. It reports whether
// the definition is to be used: not when uuid's file exists already (an
// earlier rename stopped after the copy), and then removes path. On an
// error, path stays where it is, and is used.
func RenameLegacy(dir, path string, doc []byte, uuid string, mark []byte) (use bool, err error) {
	legacy := strings.TrimSuffix(filepath.Base(path), ".xml")
	def := filepath.Join(dir, uuid+".xml")
	if _, err := os.Stat(def); err == nil {
		return false, os.Remove(path)
	}
	if err := atomicfile.Rewrite(def, doc, 0o600); err != nil {
		return true, fmt.Errorf("renaming %s to %s: %w", path, def, err)
	}
	oldMark := filepath.Join(dir, "autostart", legacy)
	if _, err := os.Stat(oldMark); err == nil {
		if err := atomicfile.Rewrite(filepath.Join(dir, "autostart", uuid), mark, 0o600); err != nil {
			return true, fmt.Errorf("renaming %s: %w", oldMark, err)
		}
		if err := os.Remove(oldMark); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, err
		}
	}
	return true, os.Remove(path)
}

// Remove unlinks a definition or an autostart mark; one that is not there
// is no error. Unlike os.Remove it never tries path as a directory: a
// missing mark, the common case, costs one system call, not two.
func Remove(path string) error {
	if err := unix.Unlink(path); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "unlink", Path: path, Err: err}
	}
	return nil
}
