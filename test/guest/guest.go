// Package guest builds initramfs images and boots them under QEMU (TCG),
// for the tests that need a kernel our machines do not run: the LXC
// driver on cgroup v2 (test/cgroupv2) and the Xen driver on a real Xen
// hypervisor (test/xen). A guest's init reports on its console with
// "MARKER: value" lines, which Boot collects.
package guest

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/virtd/virtd/internal/testenv"
)

// Missing skips outside CI and fails in it, where make test has run the
// set-up scripts (see testenv.Missing).
func Missing(t testing.TB, what string) {
	t.Helper()
	testenv.Missing(t, what+": run make test-assets")
}

// Run runs a command in dir and returns its output; it fails t if the
// command fails.
func Run(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Initramfs is an initramfs being assembled in Root.
type Initramfs struct {
	Root string
	t    testing.TB
}

// NewInitramfs starts an initramfs with busybox and the given applets in
// /bin.
func NewInitramfs(t testing.TB, applets ...string) *Initramfs {
	t.Helper()
	r := &Initramfs{Root: filepath.Join(t.TempDir(), "root"), t: t}
	for _, d := range []string{"bin", "sbin", "lib/modules", "proc", "sys", "dev", "tmp", "run"} {
		r.Mkdir(d)
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		Missing(t, "busybox is not installed")
	}
	r.Copy(busybox, "bin/busybox")
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(r.Root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// Mkdir makes a directory (and its parents) in the image.
func (r *Initramfs) Mkdir(dir string) {
	r.t.Helper()
	if err := os.MkdirAll(filepath.Join(r.Root, dir), 0o755); err != nil {
		r.t.Fatal(err)
	}
}

// Copy copies a host file (what a symbolic link points to) or a directory
// tree (as it is, links kept) to dst in the image.
func (r *Initramfs) Copy(src, dst string) {
	r.t.Helper()
	r.Mkdir(filepath.Dir(dst))
	flags := "-L"
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		flags = "-a"
	}
	Run(r.t, "", "cp", flags, src, filepath.Join(r.Root, dst))
}

// CopyWithLibs copies the executable path to dst in the image, and the
// shared libraries ldd names to the paths they have on the host.
func (r *Initramfs) CopyWithLibs(path, dst string) {
	r.t.Helper()
	r.Copy(path, dst)
	out, _ := exec.Command("ldd", path).Output() // a static file has none
	for _, m := range regexp.MustCompile(`(?m)(/\S+) \(0x`).FindAllStringSubmatch(string(out), -1) {
		if _, err := os.Stat(filepath.Join(r.Root, m[1])); err != nil {
			r.Copy(m[1], m[1])
		}
	}
}

// Write writes a file (an init script: mode 0755) into the image.
func (r *Initramfs) Write(name, text string, mode os.FileMode) {
	r.t.Helper()
	r.Mkdir(filepath.Dir(name))
	if err := os.WriteFile(filepath.Join(r.Root, name), []byte(text), mode); err != nil {
		r.t.Fatal(err)
	}
}

// Pack writes the image as a gzipped cpio archive and returns its path.
func (r *Initramfs) Pack() string {
	r.t.Helper()
	img := r.Root + ".cpio.gz"
	Run(r.t, r.Root, "sh", "-c", "find . | cpio -o -H newc --quiet | gzip -1 >"+img)
	return img
}

// Boot runs qemu-system-x86_64 under TCG with args (kernel, initrd,
// command line...) until the guest powers off or ctx ends, and returns its
// console (serial) output.
func Boot(ctx context.Context, t testing.TB, args ...string) string {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		Missing(t, "qemu-system-x86_64 is not installed")
	}
	cmd := exec.CommandContext(ctx, qemu, append([]string{"-accel", "tcg", "-nographic", "-no-reboot",
		"-serial", "stdio", "-monitor", "none", "-display", "none", "-nodefaults"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var console strings.Builder
	_, _ = io.Copy(&console, bufio.NewReader(stdout))
	if err := cmd.Wait(); err != nil {
		t.Logf("qemu: %v %s", err, stderr.String())
	}
	return console.String()
}

// Field returns the value of the last "marker: value" line of a console
// log ("" if none); what a console prints before the marker (escape
// sequences) is ignored.
func Field(log, marker string) string {
	v := ""
	for _, line := range strings.Split(log, "\n") {
		if _, after, ok := strings.Cut(strings.TrimRight(line, "\r"), marker+": "); ok {
			v = after
		}
	}
	return v
}

// TestResults returns the names of the tests a "go test -v" output says
// passed and failed.
func TestResults(log string) (passed, failed []string) {
	for _, m := range regexp.MustCompile(`(?m)^\s*--- (PASS|FAIL): (\S+)`).FindAllStringSubmatch(log, -1) {
		if m[1] == "PASS" {
			passed = append(passed, m[2])
		} else {
			failed = append(failed, m[2])
		}
	}
	return passed, failed
}
