package lxc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/internal/cgroup"
	"github.com/virtd/virtd/internal/testenv"
	"github.com/virtd/virtd/virt"
)

func TestMain(m *testing.M) {
	// The test binary is also the controller and the container process.
	RunHelper()
	code := m.Run()
	// The tests' cgroups are gone; their shared parent goes too.
	if h, err := cgroup.Detect(); err == nil {
		_ = h.Open(testCgroupParent, "").Remove()
	}
	os.Exit(code)
}

const testCgroupParent = "virtd-lxc-test"

// testRootFS returns the busybox root filesystem test/lxc/setup.sh builds.
// Without it a test fails under CI and is skipped elsewhere.
func testRootFS(t testing.TB) string {
	t.Helper()
	p := os.Getenv("VIRTD_LXC_ROOTFS")
	if p == "" {
		dir, _ := os.Getwd()
		for dir != "/" {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			dir = filepath.Dir(dir)
		}
		p = filepath.Join(dir, ".cache", "lxc-test", "rootfs")
	}
	if _, err := os.Stat(filepath.Join(p, "bin", "busybox")); err != nil {
		testenv.Missing(t, fmt.Sprintf("no busybox root filesystem at %s: run test/lxc/setup.sh", p))
	}
	testenv.Need(t, os.Geteuid() == 0, "the lxc tests need root")
	return p
}

// shortTempDir is a temporary directory with a short path (unix socket
// paths are limited to 108 bytes), removed when t ends.
func shortTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "vlxc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

type testDirs struct{ root string }

func (td testDirs) opts() Options {
	return Options{
		ConfigDir: filepath.Join(td.root, "etc"), StateDir: filepath.Join(td.root, "lib"),
		RunDir: filepath.Join(td.root, "run"), LogDir: filepath.Join(td.root, "log"),
		CgroupParent: testCgroupParent, NoAutostart: true,
	}
}

// newTestDriver makes a driver on fresh directories; when t ends, every
// container it runs is destroyed and the driver closed.
func newTestDriver(t testing.TB) (*Driver, testDirs) {
	t.Helper()
	td := testDirs{root: shortTempDir(t)}
	return openTestDriver(t, td), td
}

func openTestDriver(t testing.TB, td testDirs) *Driver {
	t.Helper()
	logger := hclog.New(&hclog.LoggerOptions{Output: hclog.DefaultOutput, Level: hclog.Warn})
	drv, err := NewWithOptions(logger, td.opts())
	if err != nil {
		t.Fatalf("NewWithOptions: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		drv.mu.Lock()
		closed := drv.closed // a closed driver handed its containers on
		drv.mu.Unlock()
		ds, _ := drv.ListDomains(ctx, virt.ListActive)
		for _, d := range ds {
			if closed {
				break
			}
			_ = drv.DestroyDomain(ctx, d.UUID)
		}
		drv.Close()
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(td.root, "log", "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, b)
			}
		}
		// Whatever a test's controllers left in the run directory means
		// something was not cleaned up.
		socks, _ := filepath.Glob(filepath.Join(td.root, "run", "*.sock"))
		for _, s := range socks {
			t.Errorf("controller socket %s left behind", s)
		}
	})
	return drv
}

// domainXML is a container on the busybox root filesystem; extra goes
// inside <devices>, os is the <os> content after <type>.
type domOpts struct {
	memKiB  int
	init    []string
	devices string
	top     string
}

func domainXML(rootfs, name string, o domOpts) string {
	if o.memKiB == 0 {
		o.memKiB = 65536
	}
	if o.init == nil {
		o.init = []string{"/sbin/init"}
	}
	var os strings.Builder
	fmt.Fprintf(&os, "<init>%s</init>", o.init[0])
	for _, a := range o.init[1:] {
		fmt.Fprintf(&os, "<initarg>%s</initarg>", xmlEscape(a))
	}
	return fmt.Sprintf(`<domain type='lxc'>
  <name>%s</name>
  <memory unit='KiB'>%d</memory>
  <vcpu>1</vcpu>
  <os><type>exe</type>%s</os>%s
  <devices>
    <filesystem type='mount'><source dir='%s'/><target dir='/'/></filesystem>
    <console type='pty'><target type='lxc' port='0'/></console>%s
  </devices>
</domain>`, name, o.memKiB, os.String(), o.top, rootfs, o.devices)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;").Replace(s)
}

// startXML defines and starts a domain, returning its UUID.
func startXML(t testing.TB, drv *Driver, doc string) (string, *virt.Domain) {
	t.Helper()
	ctx := context.Background()
	d, err := drv.DefineDomain(ctx, doc)
	if err != nil {
		t.Fatalf("DefineDomain: %v", err)
	}
	s, err := drv.StartDomain(ctx, d.UUID)
	if err != nil {
		t.Fatalf("StartDomain: %v", err)
	}
	return d.UUID, s
}

// initPID returns the container init's pid on the host.
func initPID(t testing.TB, drv *Driver, uuid string) int {
	t.Helper()
	d, err := drv.doms.Find(virt.ByUUID(uuid))
	if err != nil {
		t.Fatalf("domain %s: %v", uuid, err)
	}
	defer d.Unlock()
	if d.Priv.run == nil {
		t.Fatalf("domain %s is not running", uuid)
	}
	return d.Priv.run.initPID
}

// waitFile waits until path exists with content, and returns it.
func waitFile(t testing.TB, path string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 && strings.HasSuffix(string(b), "\n") {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written within %v", path, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testCgroup is the cgroup of a domain of the test drivers.
func testCgroup(t testing.TB, uuid string) *cgroup.Cgroup {
	t.Helper()
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	return h.Open(testCgroupParent, uuid)
}

// outDir is a host directory bind-mounted into a container, writable by
// every uid (a container root may be mapped).
func outDir(t testing.TB) string {
	d := shortTempDir(t)
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}

func bindXML(src, dst string, readonly bool) string {
	ro := ""
	if readonly {
		ro = "<readonly/>"
	}
	return fmt.Sprintf("\n    <filesystem type='mount'><source dir='%s'/><target dir='%s'/>%s</filesystem>", src, dst, ro)
}

func runCmd(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
