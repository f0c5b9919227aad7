package e2e

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/virtd/virtd/client"
	"github.com/virtd/virtd/internal/testenv"
	"github.com/virtd/virtd/virt"
)

// The contract of the core's view (core.Views), against real driver
// processes: each test fails on a view that breaks it.

// TestViewReadYourWrites: writers on their connections, a reader on
// another; after each write returns, the reader sees it.
func TestViewReadYourWrites(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	reader := d.open("test:///default")
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := d.open("test:///default")
			for i := range 25 {
				name := fmt.Sprintf("w%d-%d", w, i)
				dom, err := c.DefineXML(ctx, domXML(name))
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := reader.LookupByName(ctx, name); err != nil || got.UUID() != dom.UUID() {
					t.Errorf("after define %s: %v", name, err)
					return
				}
				if err := dom.SetAutostart(ctx, true); err != nil {
					t.Error(err)
					return
				}
				if a, err := autostartOf(ctx, reader, dom.UUID()); err != nil || !a {
					t.Errorf("after autostart %s: %v, %v", name, a, err)
					return
				}
				if err := dom.Start(ctx); err != nil {
					t.Error(err)
					return
				}
				if st, err := stateOf(ctx, reader, name); err != nil || st != virt.StateRunning {
					t.Errorf("after start %s: %v, %v", name, st, err)
					return
				}
				if err := dom.Destroy(ctx); err != nil {
					t.Error(err)
					return
				}
				if err := dom.Undefine(ctx); err != nil {
					t.Error(err)
					return
				}
				if _, err := reader.LookupByName(ctx, name); !errors.Is(err, client.ErrNotFound) {
					t.Errorf("after undefine %s: %v", name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func autostartOf(ctx context.Context, c *client.Conn, uuid string) (bool, error) {
	dom, err := c.LookupByUUID(ctx, uuid)
	if err != nil {
		return false, err
	}
	return dom.Autostart(ctx)
}

func stateOf(ctx context.Context, c *client.Conn, name string) (virt.State, error) {
	dom, err := c.LookupByName(ctx, name)
	if err != nil {
		return 0, err
	}
	st, _, err := dom.State(ctx)
	return st, err
}

// TestViewServesReadsWhileDriverStopped: a driver that answers nothing
// (SIGSTOP) does not hold up reads: list, lookup, state and XML come from
// the view. An action waits for the driver, as before.
func TestViewServesReadsWhileDriverStopped(t *testing.T) {
	d := newDaemon(t, []string{"test"}, withArgs("--driver-hang-timeout", "30s"))
	c := d.open("test:///default")
	ctx := ctxT(t)
	if _, err := c.DefineXML(ctx, domXML("still")); err != nil {
		t.Fatal(err)
	}
	// The view has the driver's snapshot (it comes just after the driver
	// starts; until then reads go to the driver).
	eventually(t, 10*time.Second, "the view of the test driver to be ready", func() bool { return d.driverStatus("test").ViewReady })
	pid := int(d.driverStatus("test").PID)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	quick, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	doms, err := c.ListDomains(quick, 0)
	if err != nil || len(doms) != 2 {
		t.Fatalf("list with the driver stopped: %d domains, %v", len(doms), err)
	}
	dom, err := c.LookupByName(quick, "still")
	if err != nil {
		t.Fatalf("lookup with the driver stopped: %v", err)
	}
	if st, _, err := dom.State(quick); err != nil || st != virt.StateShutoff {
		t.Fatalf("state with the driver stopped: %v, %v", st, err)
	}
	if x, err := dom.XML(quick, false); err != nil || !strings.Contains(x, "<name>still</name>") {
		t.Fatalf("XML with the driver stopped: %v", err)
	}
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if err := dom.Start(short); err == nil {
		t.Fatal("an action succeeded with the driver stopped")
	}
}

// needQEMUBinary skips (fails in CI) without QEMU: the QEMU driver
// defines domains only with an emulator found.
func needQEMUBinary(t *testing.T) {
	_, err := exec.LookPath("qemu-system-x86_64")
	testenv.Need(t, err == nil, "qemu-system-x86_64 not found")
}

var (
	uuidLine = regexp.MustCompile(`<uuid>[^<]*</uuid>`)
	nameLine = regexp.MustCompile(`<name>([^<]*)</name>`)
)

// qemuXML is a minimal QEMU domain, defined but never started here.
func qemuXML(name string) string {
	return fmt.Sprintf("<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>", name)
}

// onDisk lists the domains the QEMU driver keeps definitions of under the
// daemon's root: what a new driver process reads when it starts.
func onDisk(t *testing.T, d *daemon) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(filepath.Join(d.root, "etc/virtd/qemu"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".xml") {
			return err
		}
		b, err := os.ReadFile(p)
		if m := nameLine.FindSubmatch(b); err == nil && m != nil {
			names = append(names, string(m[1]))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// listed lists the domains through virtd, by name.
func listed(t *testing.T, c *client.Conn) []string {
	t.Helper()
	doms, err := c.ListDomains(ctxT(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, dom := range doms {
		names = append(names, dom.Name())
	}
	slices.Sort(names)
	return names
}

// burst defines n domains, one after the other, calling kill after the
// first third; it returns the names whose define returned success.
func burst(t *testing.T, d *daemon, prefix string, n int, kill func()) []string {
	t.Helper()
	c := d.open("qemu:///system")
	ctx := ctxT(t)
	var ok []string
	for i := range n {
		if i == n/3 {
			kill()
		}
		name := fmt.Sprintf("%s%03d", prefix, i)
		if _, err := c.DefineXML(ctx, qemuXML(name)); err == nil {
			ok = append(ok, name)
		} else if !errors.Is(err, client.ErrUnavailable) {
			t.Fatalf("define %s: %v", name, err)
		}
	}
	return ok
}

// agreeWithDisk waits for the driver to run again and checks that what
// virtd lists is what the driver has on disk, and holds every domain whose
// define succeeded.
func agreeWithDisk(t *testing.T, d *daemon, c *client.Conn, defined []string) {
	t.Helper()
	eventually(t, 20*time.Second, "the QEMU driver to run again", func() bool {
		return d.driverStatus("qemu").State == "running"
	})
	// The first read after the restart may be the driver's own, until
	// the view has the new process's snapshot; both must agree.
	for range 3 {
		got, want := listed(t, c), onDisk(t, d)
		if !slices.Equal(got, want) {
			t.Fatalf("virtd lists %d domains %v\nthe driver has %d on disk %v", len(got), got, len(want), want)
		}
		for _, name := range defined {
			if !slices.Contains(got, name) {
				t.Errorf("%s was defined (the call returned success) but is not listed", name)
			}
		}
	}
}

// TestViewAfterDriverKilledMidBurst: kill -9 of the driver in the middle
// of a burst of defines; then every read agrees with the driver.
func TestViewAfterDriverKilledMidBurst(t *testing.T) {
	needQEMUBinary(t)
	d := newDaemon(t, []string{"qemu"})
	c := d.open("qemu:///system")
	defined := burst(t, d, "k", 60, func() {
		syscall.Kill(int(d.driverStatus("qemu").PID), syscall.SIGKILL)
	})
	agreeWithDisk(t, d, c, defined)
}

// TestViewAfterDaemonKilledMidBurst: kill -9 of the daemon in the middle
// of a burst of defines (one goroutine defines, another kills); the new
// daemon's view agrees with the driver it reattaches to.
func TestViewAfterDaemonKilledMidBurst(t *testing.T) {
	needQEMUBinary(t)
	d := newDaemon(t, []string{"qemu"})
	c := d.open("qemu:///system")
	ctx := ctxT(t)
	var defined []string
	for i := range 60 {
		if i == 20 {
			d.kill()
			d.start()
			c = d.open("qemu:///system")
		}
		name := fmt.Sprintf("d%03d", i)
		if _, err := c.DefineXML(ctx, qemuXML(name)); err != nil {
			t.Fatalf("define %s: %v", name, err)
		}
		defined = append(defined, name)
	}
	agreeWithDisk(t, d, c, defined)
}

// TestViewRebuiltFromNewDriverProcess: a driver process that comes back
// with other domains on disk (removed and added while it was down) gives a
// view rebuilt from it, not the old one.
func TestViewRebuiltFromNewDriverProcess(t *testing.T) {
	needQEMUBinary(t)
	d := newDaemon(t, []string{"qemu"})
	c := d.open("qemu:///system")
	ctx := ctxT(t)
	file := map[string]string{} // name -> its definition's file
	dir := filepath.Join(d.root, "etc/virtd/qemu")
	for _, name := range []string{"a", "b"} {
		dom, err := c.DefineXML(ctx, qemuXML(name))
		if err != nil {
			t.Fatal(err)
		}
		file[name] = filepath.Join(dir, dom.UUID()+".xml")
	}
	if got := listed(t, c); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("listed %v", got)
	}
	eventually(t, 10*time.Second, "the view of the QEMU driver to be ready", func() bool { return d.driverStatus("qemu").ViewReady })
	pid := int(d.driverStatus("qemu").PID)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile(file["a"])
	if err != nil {
		t.Fatal(err)
	}
	c2 := strings.Replace(string(a), "<name>a</name>", "<name>c</name>", 1)
	c2 = uuidLine.ReplaceAllString(c2, "<uuid>c0c0c0c0-0000-4000-8000-000000000001</uuid>")
	if err := os.WriteFile(filepath.Join(dir, "c0c0c0c0-0000-4000-8000-000000000001.xml"), []byte(c2), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(file["b"]); err != nil {
		t.Fatal(err)
	}
	// The view still answers with the stopped process's domains.
	if got := listed(t, c); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("listed %v while the driver is stopped", got)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "a new QEMU driver process, and its snapshot in the view", func() bool {
		st := d.driverStatus("qemu")
		return st.State == "running" && int(st.PID) != pid && st.ViewReady
	})
	if got := listed(t, c); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("after the new process: listed %v, want [a c]", got)
	}
	if _, err := c.LookupByName(ctx, "b"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("lookup of b, gone from disk: %v", err)
	}
}

// TestViewSeesGuestPowerOffByItself: a guest that powers off on its own
// is seen as shut off by the first read after its event reached a client.
func TestViewSeesGuestPowerOffByItself(t *testing.T) {
	kernel, initrd := guestAssets(t)
	d := newDaemon(t, []string{"qemu"})
	c := d.open("qemu:///system")
	ctx := ctxT(t)
	serial := filepath.Join(t.TempDir(), "serial")
	x := fmt.Sprintf(`<domain type='qemu'><name>selfoff</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><kernel>%s</kernel><initrd>%s</initrd><cmdline>console=ttyS0 quiet virtd.selfoff</cmdline></os>
  <features><acpi/><apic/></features>
  <devices><serial type='file'><source path='%s'/><target port='0'/></serial></devices></domain>`, kernel, initrd, serial)
	dom, err := c.DefineXML(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := c.WatchEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := dom.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// A guest that did not power off is not left running.
	t.Cleanup(func() { _ = dom.Destroy(ctxT(t)) })
	for {
		select {
		case ev, ok := <-stream.Events():
			if !ok {
				t.Fatalf("event stream ended: %v", stream.Err())
			}
			if ev.Type != virt.EventStopped {
				continue
			}
			st, _, err := dom.State(ctx)
			if err != nil || st != virt.StateShutoff {
				t.Fatalf("after the stopped event: state %v, %v", st, err)
			}
			if doms, err := c.ListDomains(ctx, virt.ListActive); err != nil || len(doms) != 0 {
				t.Fatalf("after the stopped event: active domains %v, %v", doms, err)
			}
			return
		case <-ctx.Done():
			t.Fatal("the guest did not power off")
		}
	}
}
