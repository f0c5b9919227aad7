package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Trust is what a driver executable must satisfy to be run as the daemon's
// user: every directory from / down to it, every symlink on the way, and
// the file itself are owned by root or UID and writable by no one else,
// and a pinned file has the pinned content.
type Trust struct {
	// UID is the daemon's own user, which may own driver files and the
	// directories above them besides root.
	UID int
	// SHA256 pins drivers by name to the hex SHA-256 of their executable.
	SHA256 map[string]string
}

// maxSymlinks bounds the symlinks one path may go through, as the kernel's
// ELOOP does.
const maxSymlinks = 40

// untrusted is why a path is not trusted.
type untrusted struct {
	// link and target name the first symlink on the way, if any.
	link, target string
	reason       string
}

func (e *untrusted) Error() string {
	if e.link != "" {
		return fmt.Sprintf("symlink %s -> %s: %s", e.link, e.target, e.reason)
	}
	return e.reason
}

// checked is a driver file that passed the checks: the path it really is
// (no symlink left) and its identity.
type checked struct {
	real     string
	dev, ino uint64
}

// resolve follows path one component at a time from /, as the kernel
// would, and checks each directory it enters, each symlink it follows and
// the regular file it ends at. Because every directory on the real path is
// writable by no one but root and the daemon's user (or is a root-owned
// sticky directory, whose entries others cannot replace), nobody else can
// change what the real path names afterwards.
func (tr Trust) resolve(path string) (checked, error) {
	e := &untrusted{}
	fail := func(format string, args ...any) (checked, error) {
		e.reason = fmt.Sprintf(format, args...)
		return checked{}, e
	}
	if !filepath.IsAbs(path) {
		abs, err := filepath.Abs(path)
		if err != nil {
			return fail("cannot make %s absolute: %v", path, err)
		}
		path = abs
	}
	var root unix.Stat_t
	if err := unix.Lstat("/", &root); err != nil {
		return fail("cannot stat /: %v", err)
	}
	if why := tr.dirProblem(&root); why != "" {
		return fail("directory / %s", why)
	}
	todo := components(path)
	cur, links := "/", 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case ".":
			continue
		case "..":
			// cur has no symlink in it: its parent was checked on the way down.
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		var st unix.Stat_t
		if err := unix.Lstat(next, &st); err != nil {
			return fail("cannot stat %s: %v", next, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			if links++; links > maxSymlinks {
				return fail("more than %d symlinks", maxSymlinks)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return fail("cannot read symlink %s: %v", next, err)
			}
			if e.link == "" {
				e.link, e.target = next, target
				if !filepath.IsAbs(target) {
					e.target = filepath.Join(cur, target)
				}
			}
			if why := tr.ownerProblem(&st); why != "" {
				return fail("symlink %s %s", next, why)
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			todo = append(components(target), todo...)
		case unix.S_IFDIR:
			if why := tr.dirProblem(&st); why != "" {
				return fail("directory %s %s", next, why)
			}
			cur = next
		default:
			if len(todo) > 0 {
				return fail("%s is not a directory", next)
			}
			if why := tr.fileProblem(&st); why != "" {
				if e.link != "" {
					return fail("%s %s", next, why)
				}
				return fail("%s", why)
			}
			return checked{real: next, dev: st.Dev, ino: st.Ino}, nil
		}
	}
	if cur == "/" {
		return fail("/ is a directory")
	}
	return fail("not a regular file (%s is a directory)", cur)
}

func components(path string) []string {
	var out []string
	for _, c := range strings.Split(path, "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

func (tr Trust) ownerProblem(st *unix.Stat_t) string {
	if st.Uid != 0 && int(st.Uid) != tr.UID {
		return fmt.Sprintf("is owned by uid %d, not by root or the daemon's user (uid %d)", st.Uid, tr.UID)
	}
	return ""
}

// dirProblem: a directory others may write to could have its entries
// replaced, unless it is root's and sticky (such as /tmp): there only an
// entry's owner may replace it, and the entry is checked on its own.
func (tr Trust) dirProblem(st *unix.Stat_t) string {
	if why := tr.ownerProblem(st); why != "" {
		return why
	}
	perm := st.Mode & 0o7777
	if perm&0o022 != 0 && !(st.Uid == 0 && perm&unix.S_ISVTX != 0) {
		return fmt.Sprintf("is writable by group or others (mode %04o) and is not a root-owned sticky directory", perm)
	}
	return ""
}

func (tr Trust) fileProblem(st *unix.Stat_t) string {
	perm := st.Mode & 0o7777
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Sprintf("not a regular file (%s)", fileType(st.Mode))
	case perm&0o111 == 0:
		return fmt.Sprintf("not executable (mode %04o)", perm)
	case perm&0o022 != 0:
		return fmt.Sprintf("writable by group or others (mode %04o)", perm)
	}
	return tr.ownerProblem(st)
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device"
	case unix.S_IFIFO:
		return "a fifo"
	case unix.S_IFSOCK:
		return "a socket"
	}
	return "not a file"
}

// open opens the driver file at path for running: it checks the path
// afresh, opens the file it resolved to, and checks the open descriptor
// (the same file, still acceptable, and with the pinned content if name is
// pinned). What is then run is this descriptor, so that a file swapped in
// after the check is never run.
func (tr Trust) open(name, path string) (*os.File, error) {
	c, err := tr.resolve(path)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(c.real, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", c.real, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat of the open %s: %w", c.real, err)
	}
	if st.Dev != c.dev || st.Ino != c.ino {
		f.Close()
		return nil, fmt.Errorf("%s changed while it was being checked", c.real)
	}
	if why := tr.fileProblem(&st); why != "" {
		f.Close()
		return nil, errors.New(why)
	}
	if err := tr.checkPin(name, f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkPin compares the content of f with the SHA-256 pinned for name, if
// any. It reads f from the start, leaving its offset alone.
func (tr Trust) checkPin(name string, f *os.File) error {
	want, ok := tr.SHA256[name]
	if !ok {
		return nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, 1<<62)); err != nil {
		return fmt.Errorf("reading %s to check its SHA-256: %w", f.Name(), err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, want) {
		return fmt.Errorf("its SHA-256 is %s, not %s as pinned by driver_sha256", got, strings.ToLower(want))
	}
	return nil
}

// ParsePin parses a pin as the configuration spells it, NAME=HEX, and
// checks it.
func ParsePin(s string) (name, sum string, err error) {
	name, sum, ok := strings.Cut(s, "=")
	name, sum = strings.TrimSpace(name), strings.ToLower(strings.TrimSpace(sum))
	if !ok || !driverName.MatchString(name) {
		return "", "", fmt.Errorf("driver pin %q: want NAME=SHA256, e.g. qemu=<64 hex digits>", s)
	}
	if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
		return "", "", fmt.Errorf("driver pin %q: the SHA-256 must be 64 hex digits", s)
	}
	return name, sum, nil
}
