package host

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/virtd/virtd/internal/testenv"
)

const nobody = 65534

// mkdir makes a directory with mode, in chmod(2)'s numbers (0o1777 is
// sticky).
func mkdir(t *testing.T, path string, mode uint32) string {
	t.Helper()
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// TestScanChecksDirectoriesLinksAndPins: each way a file root did not put
// there could be run as root is refused with its own reason, and the
// drivers beside it are still found.
func TestScanChecksDirectoriesLinksAndPins(t *testing.T) {
	testenv.Need(t, os.Getuid() == 0, "needs root to make files owned by others")
	top := t.TempDir() // root's, 0700, under the sticky /tmp
	drivers := mkdir(t, filepath.Join(top, "drivers"), 0o755)
	writeExe(t, filepath.Join(drivers, "virtd-driver-good"), 0o755)
	writeExe(t, filepath.Join(drivers, "virtd-driver-pinned"), 0o755)
	writeExe(t, filepath.Join(drivers, "virtd-driver-badpin"), 0o755)

	// A driver directory anyone may write to: whatever is in it may have
	// been put there by anyone.
	open := mkdir(t, filepath.Join(top, "open"), 0o777)
	writeExe(t, filepath.Join(open, "virtd-driver-inopen"), 0o755)

	// A symlink into a world-writable directory that is not sticky.
	writeExe(t, filepath.Join(open, "target"), 0o755)
	symlink(t, filepath.Join(open, "target"), filepath.Join(drivers, "virtd-driver-linkopen"))

	// A symlink to a file another user owns, in a safe directory.
	safe := mkdir(t, filepath.Join(top, "safe"), 0o755)
	writeExe(t, filepath.Join(safe, "theirs"), 0o755)
	chown(t, filepath.Join(safe, "theirs"), nobody)
	symlink(t, "../safe/theirs", filepath.Join(drivers, "virtd-driver-linktheirs"))

	// A symlink to a good file through a good directory: followed.
	writeExe(t, filepath.Join(safe, "ours"), 0o755)
	symlink(t, "../safe/ours", filepath.Join(drivers, "virtd-driver-linkgood"))

	// A root-owned sticky directory like /tmp: a root-owned child that
	// passes on its own is safe; another user's symlink in it is not.
	sticky := mkdir(t, filepath.Join(top, "sticky"), 0o1777)
	sub := mkdir(t, filepath.Join(sticky, "sub"), 0o755)
	writeExe(t, filepath.Join(sub, "ours"), 0o755)
	symlink(t, filepath.Join(sub, "ours"), filepath.Join(drivers, "virtd-driver-sticky"))
	symlink(t, filepath.Join(sub, "ours"), filepath.Join(sticky, "theirlink"))
	chown(t, filepath.Join(sticky, "theirlink"), nobody)
	symlink(t, filepath.Join(sticky, "theirlink"), filepath.Join(drivers, "virtd-driver-stickylink"))

	// A directory owned by another user above a good file.
	theirDir := mkdir(t, filepath.Join(top, "theirdir"), 0o755)
	chown(t, theirDir, nobody)
	writeExe(t, filepath.Join(theirDir, "virtd-driver-intheirs"), 0o755)

	sum := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return sha256Hex(b)
	}
	tr := Trust{UID: 0, SHA256: map[string]string{
		"pinned": sum(filepath.Join(drivers, "virtd-driver-pinned")),
		"badpin": strings.Repeat("ab", 32),
	}}
	found, rejected := Scan([]string{drivers, open, theirDir}, tr)
	for _, name := range []string{"good", "pinned", "linkgood", "sticky"} {
		if _, ok := found[name]; !ok {
			t.Errorf("%s: not found; rejected: %+v", name, rejected)
		}
	}
	reasons := map[string]string{}
	for _, r := range rejected {
		reasons[strings.TrimPrefix(filepath.Base(r.Path), Prefix)] = r.Reason
	}
	want := map[string][]string{
		"inopen":      {"directory " + open + " is writable by group or others (mode 0777) and is not a root-owned sticky directory"},
		"linkopen":    {"symlink " + filepath.Join(drivers, "virtd-driver-linkopen") + " -> " + filepath.Join(open, "target"), "directory " + open + " is writable"},
		"linktheirs":  {"symlink " + filepath.Join(drivers, "virtd-driver-linktheirs") + " -> " + filepath.Join(safe, "theirs"), "is owned by uid 65534"},
		"stickylink":  {"symlink " + filepath.Join(sticky, "theirlink") + " is owned by uid 65534"},
		"intheirs":    {"directory " + theirDir + " is owned by uid 65534"},
		"badpin":      {"its SHA-256 is " + sum(filepath.Join(drivers, "virtd-driver-badpin")), "not " + strings.Repeat("ab", 32) + " as pinned"},
		"target":      nil, // not named virtd-driver-*: not looked at
		"linkgood":    nil,
		"good":        nil,
		"pinned":      nil,
		"sticky":      nil,
		"nonexistent": nil,
	}
	for name, subs := range want {
		got, ok := reasons[name]
		if subs == nil {
			if ok {
				t.Errorf("%s rejected: %s", name, got)
			}
			continue
		}
		for _, s := range subs {
			if !strings.Contains(got, s) {
				t.Errorf("%s: reason %q, want it to contain %q", name, got, s)
			}
		}
	}
	if len(rejected) != 6 {
		t.Errorf("rejected %d files, want 6: %+v", len(rejected), rejected)
	}
}

func TestResolveFollowsRelativeLinksAndRefusesLoops(t *testing.T) {
	top := t.TempDir()
	dir := mkdir(t, filepath.Join(top, "a", "b"), 0o755)
	writeExe(t, filepath.Join(dir, "exe"), 0o755)
	symlink(t, "b", filepath.Join(top, "a", "link"))
	symlink(t, "../link/./exe", filepath.Join(top, "a", "b", "rel"))
	c, err := Trust{UID: os.Getuid()}.resolve(filepath.Join(top, "a", "b", "rel"))
	if err != nil || c.real != filepath.Join(dir, "exe") {
		t.Fatalf("resolve: %+v, %v; want %s", c, err, filepath.Join(dir, "exe"))
	}
	symlink(t, "loop2", filepath.Join(top, "loop1"))
	symlink(t, "loop1", filepath.Join(top, "loop2"))
	if _, err := (Trust{UID: os.Getuid()}).resolve(filepath.Join(top, "loop1")); err == nil || !strings.Contains(err.Error(), "more than 40 symlinks") {
		t.Fatalf("a symlink loop: %v", err)
	}
	if _, err := (Trust{UID: os.Getuid()}).resolve(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("a directory: %v", err)
	}
}

// TestOpenChecksTheDescriptor: open refuses a file that changed between
// the path's check and the open.
func TestOpenChecksTheDescriptor(t *testing.T) {
	top := t.TempDir()
	exe := filepath.Join(top, "virtd-driver-x")
	writeExe(t, exe, 0o755)
	tr := Trust{UID: os.Getuid()}
	f, err := tr.open("x", exe)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c, err := tr.resolve(exe)
	if err != nil || c.ino != st.Ino {
		t.Fatalf("resolve: %+v, %v", c, err)
	}
	if _, _, err := ParsePin("x=" + strings.Repeat("0", 63)); err == nil {
		t.Error("a 63-digit pin was accepted")
	}
	if name, sum, err := ParsePin(" qemu = " + strings.Repeat("AB", 32)); err != nil || name != "qemu" || sum != strings.Repeat("ab", 32) {
		t.Errorf("ParsePin: %q %q %v", name, sum, err)
	}
}
