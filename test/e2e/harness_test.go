// Package e2e holds virtd's process-level tests: they build the real
// binaries once, start real daemons on temporary roots and drive them
// through the client library and virtsh.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/virtd/virtd/client"
)

// binDir holds the binaries TestMain built: virtd, virtsh,
// virtd-driver-test, the driver fixtures as virtd-driver-<name>, and
// fixture-roconvert.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "virtd-e2e-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	if err := buildAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildAll(dir string) error {
	targets := map[string]string{
		"virtd":              "./cmd/virtd",
		"virtsh":             "./cmd/virtsh",
		"virtd-driver-test":  "./cmd/driver-test",
		"virtd-driver-qemu":  "./cmd/driver-qemu",
		"virtd-driver-lxc":   "./cmd/driver-lxc",
		"virtd-driver-xen":   "./cmd/driver-xen",
		"virtd-driver-other": "./test/e2e/fixtures/other",
		"fixture-roconvert":  "./test/e2e/fixtures/roconvert",
		"fixture-connprobe":  "./test/e2e/fixtures/connprobe",
	}
	for _, f := range []string{"exits", "garbage", "hangs", "apiv2", "crashloop", "lax"} {
		targets["virtd-driver-"+f] = "./test/e2e/fixtures/" + f
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	// VIRTD_E2E_RACE builds the daemon and the test driver with the race
	// detector; a race they report fails the test that saw it.
	race := map[string]bool{}
	if os.Getenv("VIRTD_E2E_RACE") != "" {
		race["virtd"], race["virtd-driver-test"] = true, true
	}
	// The rest are built as the packages are (the Makefile's build):
	// without cgo but for the drivers that need it, and without gRPC's
	// x/net/trace, so that the benchmarks measure what is shipped.
	cgo := map[string]bool{"virtd-driver-lxc": true, "virtd-driver-xen": true}
	for out, pkg := range targets {
		args := []string{"build", "-tags", "grpcnotrace", "-o", filepath.Join(dir, out)}
		if race[out] {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir = root
		if !race[out] && !cgo[out] {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %v\n%s", pkg, err, b)
		}
	}
	return nil
}

func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(b))), nil
}

// daemon is a virtd process on a private root.
type daemon struct {
	t         testing.TB
	root      string
	driverDir string
	runDir    string
	args      []string
	cmd       *exec.Cmd
	log       *logBuf
	exited    chan struct{}
}

type daemonOpt func(*daemon)

func withArgs(args ...string) daemonOpt { return func(d *daemon) { d.args = append(d.args, args...) } }

// newDaemon prepares a root whose driver directory holds the named
// drivers, and starts virtd on it.
func newDaemon(t testing.TB, drivers []string, opts ...daemonOpt) *daemon {
	t.Helper()
	// Short paths: unix socket names are limited to 108 bytes.
	root, err := os.MkdirTemp("", "vd")
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, root: root, driverDir: filepath.Join(root, "drivers"), runDir: filepath.Join(root, "run/virtd")}
	if err := os.MkdirAll(d.driverDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range drivers {
		d.install(name)
	}
	for _, o := range opts {
		o(d)
	}
	t.Cleanup(func() {
		d.stop()
		killUnder(root)
		if strings.Contains(d.log.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector reported a data race in virtd or a driver")
		}
		if t.Failed() {
			t.Logf("virtd log:\n%s", d.log.String())
		}
		os.RemoveAll(root)
	})
	d.start()
	return d
}

// install copies the built driver into the driver directory.
func (d *daemon) install(name string) string {
	d.t.Helper()
	dst := filepath.Join(d.driverDir, "virtd-driver-"+name)
	copyFile(d.t, filepath.Join(binDir, "virtd-driver-"+name), dst, 0o755)
	return dst
}

func copyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".tmp", b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst+".tmp", mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".tmp", dst); err != nil {
		t.Fatal(err)
	}
}

func (d *daemon) start() {
	d.t.Helper()
	args := append([]string{"--root", d.root, "--driver-dir", d.driverDir, "--driver-start-timeout", "3s", "--log-level", "debug"}, d.args...)
	d.cmd = exec.Command(filepath.Join(binDir, "virtd"), args...)
	if d.log == nil {
		d.log = &logBuf{}
	}
	d.cmd.Stderr = d.log
	d.cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.exited = make(chan struct{})
	go func(cmd *exec.Cmd, ch chan struct{}) { _ = cmd.Wait(); close(ch) }(d.cmd, d.exited)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(d.sock()); err == nil {
			if c, err := client.Open(context.Background(), "test:///default", client.WithSocket(d.sock())); err == nil || !errors.Is(err, client.ErrUnavailable) {
				if c != nil {
					c.Close(context.Background())
				}
				return
			}
		}
		select {
		case <-d.exited:
			d.t.Fatalf("virtd exited at start: %v\n%s", d.cmd.ProcessState, d.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.t.Fatalf("virtd did not come up within 15s\n%s", d.log.String())
}

// stop sends SIGTERM and waits for the daemon to exit.
func (d *daemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// kill sends SIGKILL and waits for the daemon to exit.
func (d *daemon) kill() {
	_ = d.cmd.Process.Kill()
	<-d.exited
}

func (d *daemon) sock() string      { return filepath.Join(d.runDir, "virtd-sock") }
func (d *daemon) roSock() string    { return filepath.Join(d.runDir, "virtd-sock-ro") }
func (d *daemon) adminSock() string { return filepath.Join(d.runDir, "virtd-admin-sock") }

func (d *daemon) open(uri string) *client.Conn {
	d.t.Helper()
	c, err := client.Open(ctxT(d.t), uri, client.WithSocket(d.sock()))
	if err != nil {
		d.t.Fatalf("open %s: %v", uri, err)
	}
	d.t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func (d *daemon) admin() *client.Admin {
	d.t.Helper()
	a, err := client.OpenAdmin(ctxT(d.t), client.WithSocket(d.adminSock()))
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { a.Close() })
	return a
}

// driverStatus returns the admin view of one driver.
func (d *daemon) driverStatus(name string) client.DriverStatus {
	d.t.Helper()
	list, err := d.admin().Drivers(ctxT(d.t))
	if err != nil {
		d.t.Fatal(err)
	}
	for _, s := range list.Drivers {
		if s.Name == name {
			return s
		}
	}
	d.t.Fatalf("driver %q not listed", name)
	return client.DriverStatus{}
}

// virtsh runs the CLI against this daemon.
func (d *daemon) virtsh(args ...string) (stdout, stderr string, code int) {
	d.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "virtsh"), args...)
	cmd.Env = []string{"VIRTD_RUN_DIR=" + d.runDir, "PATH=" + os.Getenv("PATH")}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			d.t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// mustVirtsh runs virtsh and fails the test unless it succeeds.
func (d *daemon) mustVirtsh(args ...string) string {
	d.t.Helper()
	out, errs, code := d.virtsh(args...)
	if code != 0 {
		d.t.Fatalf("virtsh %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// killUnder kills every process whose executable lies under root: the
// drivers a test left running.
func killUnder(root string) {
	for _, pid := range pidsUnder(root) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func pidsUnder(root string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && strings.HasPrefix(exe, root+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// logBuf collects a daemon's stderr; it is written and read concurrently.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func regexpMatch(expr, s string) bool { return regexp.MustCompile(expr).MatchString(s) }

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }
