package core_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/core/inproc"
	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/qemu"
	"github.com/virtd/virtd/internal/testdriver"
	"github.com/virtd/virtd/virt"
)

// TestReadYourWrites: writers on their own connections change their
// domains while readers on others read; after each write returns, a read
// on another connection sees it. A view that applied the reply's record
// after the call returned, or let an older record win, fails.
func TestReadYourWrites(t *testing.T) {
	drv := testdriver.New(driver.Env{})
	c, _ := newCore(t, drv)
	ctx := ctxFor(t)
	reader := openConn(t, c, core.ReadOnly)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 { // readers keep the view busy meanwhile
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if _, err := reader.ListDomains(ctx, 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var writers sync.WaitGroup
	for w := range 8 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			conn := openConn(t, c, core.ReadWrite)
			for i := range 10 {
				name := fmt.Sprintf("w%d-%d", w, i)
				d, err := conn.DefineDomain(ctx, fmt.Sprintf("<domain type='test'><name>%s</name><memory>1024</memory></domain>", name))
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := reader.LookupDomain(ctx, virt.ByName(name)); err != nil || got.UUID != d.UUID {
					t.Errorf("after define: lookup %s = %+v, %v", name, got, err)
					return
				}
				if err := conn.SetDomainAutostart(ctx, d.UUID, true); err != nil {
					t.Error(err)
					return
				}
				if a, err := reader.DomainAutostart(ctx, d.UUID); err != nil || !a {
					t.Errorf("after autostart: %v, %v", a, err)
					return
				}
				if _, err := conn.StartDomain(ctx, d.UUID); err != nil {
					t.Error(err)
					return
				}
				if st, _, err := reader.DomainState(ctx, d.UUID); err != nil || st != virt.StateRunning {
					t.Errorf("after start: %v, %v", st, err)
					return
				}
				if err := conn.DestroyDomain(ctx, d.UUID); err != nil {
					t.Error(err)
					return
				}
				if err := conn.UndefineDomain(ctx, d.UUID); err != nil {
					t.Error(err)
					return
				}
				if _, err := reader.LookupDomain(ctx, virt.ByName(name)); !isNotFound(err) {
					t.Errorf("after undefine: lookup %s: %v", name, err)
					return
				}
			}
		}()
	}
	writers.Wait()
	stop.Store(true)
	wg.Wait()
	agree(t, reader, drv)
}

// TestCreateReadYourWrites: a domain created on one connection is seen
// at once, running and transient, on another, and is gone there at once
// when it is destroyed; a create that fails after it changed a domain
// (a start that failed half way) shows that change too.
func TestCreateReadYourWrites(t *testing.T) {
	drv := &failingCreate{Driver: testdriver.New(driver.Env{})}
	c, _ := newCore(t, drv)
	ctx := ctxFor(t)
	conn := openConn(t, c, core.ReadWrite)
	reader := openConn(t, c, core.ReadOnly)
	for i := range 20 {
		name := fmt.Sprintf("tr-%d", i)
		d, err := conn.CreateDomain(ctx, fmt.Sprintf("<domain type='test'><name>%s</name><memory>1024</memory></domain>", name))
		if err != nil {
			t.Fatal(err)
		}
		if d.Persistent || d.State != virt.StateRunning {
			t.Fatalf("CreateDomain = %+v, want running and transient", d)
		}
		got, err := reader.LookupDomain(ctx, virt.ByName(name))
		if err != nil || got.UUID != d.UUID || got.Persistent || got.State != virt.StateRunning || got.ID != d.ID {
			t.Fatalf("after create: lookup %s = %+v, %v; want %+v", name, got, err, d)
		}
		if x, err := reader.DomainXML(ctx, d.UUID, false); err != nil || !strings.Contains(x, fmt.Sprintf(`id="%d"`, d.ID)) {
			t.Fatalf("after create: live XML %v\n%s", err, x)
		}
		if err := conn.DestroyDomain(ctx, d.UUID); err != nil {
			t.Fatal(err)
		}
		if _, err := reader.LookupDomain(ctx, virt.ByName(name)); !isNotFound(err) {
			t.Fatalf("after destroy: lookup %s: %v, want not found", name, err)
		}
	}
	def, err := conn.DefineDomain(ctx, "<domain type='test'><name>p</name><memory>1024</memory></domain>")
	if err != nil {
		t.Fatal(err)
	}
	drv.fail.Store(true)
	if _, err := conn.CreateDomain(ctx, "<domain type='test'><name>p</name><memory>1024</memory></domain>"); !errors.Is(err, virt.ErrInternal) {
		t.Fatalf("failing create: %v", err)
	}
	if a, err := reader.DomainAutostart(ctx, def.UUID); err != nil || !a {
		t.Errorf("after a failed create that changed the domain: autostart %v, %v; want true", a, err)
	}
	agree(t, reader, drv)
}

// failingCreate fails CreateDomain, once fail is set, after it changed the
// domain of the name (marked it autostart), as a start that failed half
// way may leave a domain.
type failingCreate struct {
	driver.Driver
	fail atomic.Bool
}

func (f *failingCreate) CreateDomain(ctx context.Context, xml string) (*virt.Domain, error) {
	if !f.fail.Load() {
		return f.Driver.CreateDomain(ctx, xml)
	}
	d, err := f.LookupDomain(ctx, virt.ByName("p"))
	if err != nil {
		return nil, err
	}
	if err := f.SetDomainAutostart(ctx, d.UUID, true); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("the emulator died: %w", virt.ErrInternal)
}

func isNotFound(err error) bool { return err != nil && virt.KindOf(err) == virt.ErrNotFound }

// agree checks that what conn reads (from the view) is what the driver
// answers.
func agree(t *testing.T, conn *core.Conn, drv driver.Driver) {
	t.Helper()
	ctx := ctxFor(t)
	fromView, err := conn.ListDomains(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	fromDriver, err := drv.ListDomains(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromView, fromDriver) {
		t.Errorf("the view lists\n%+v\nthe driver\n%+v", fromView, fromDriver)
	}
}

// counting is the test driver, counting the calls for host facts.
type counting struct {
	driver.Driver
	facts atomic.Int32
}

func (c *counting) Info(ctx context.Context) (*driver.Info, error) {
	c.facts.Add(1)
	return c.Driver.Info(ctx)
}

// TestFactsAreKept: the version, hostname, capabilities and node info are
// read from the driver once, then answered from what the core keeps.
func TestFactsAreKept(t *testing.T) {
	drv := &counting{Driver: testdriver.New(driver.Env{})}
	c, _ := newCore(t, drv)
	ctx := ctxFor(t)
	conn := openConn(t, c, core.ReadOnly)
	before := drv.facts.Load()
	began := time.Now()
	for range 10 {
		if _, err := conn.Version(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Hostname(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Capabilities(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Kept facts are read again once a second: a loop slowed past that
	// (a loaded machine, the race detector) may read them once more.
	if n, most := drv.facts.Load()-before, 1+int32(time.Since(began)/time.Second); n < 1 || n > most {
		t.Errorf("30 reads of host facts made %d calls to the driver, want 1 (at most %d)", n, most)
	}
}

// TestPathChangesReachVersion: a qemu-system-* binary added to the QEMU
// driver's search path, or replaced in it, shows in the next version and
// capabilities the core answers, though it keeps them.
func TestPathChangesReachVersion(t *testing.T) {
	real, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("no qemu-system-x86_64")
	}
	dir, bin := t.TempDir(), t.TempDir()
	drv, err := qemu.NewWithConfig(hclog.NewNullLogger(), qemu.Config{
		ConfigDir: filepath.Join(dir, "state"), RunDir: filepath.Join(dir, "run"), LogDir: filepath.Join(dir, "log"),
		BootIDFile: filepath.Join(dir, "no-boot-id"), Path: bin,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	c, _ := newCore(t, drv)
	ctx := ctxFor(t)
	conn, err := c.Open(ctx, "qemu:///system", core.ReadOnly)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	version := func() uint64 {
		t.Helper()
		v, err := conn.Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v.HypervisorVersion
	}
	if v := version(); v != 0 {
		t.Fatalf("no QEMU on the path: version %d", v)
	}
	emu := filepath.Join(bin, "qemu-system-x86_64")
	if err := os.Symlink(real, emu); err != nil {
		t.Fatal(err)
	}
	if v := version(); v == 0 {
		t.Fatal("QEMU added to the path: no version")
	}
	if caps, err := conn.Capabilities(ctx); err != nil || !containsArch(caps, "x86_64") {
		t.Fatalf("QEMU added to the path: capabilities %v\n%s", err, caps)
	}
	fake := filepath.Join(bin, ".new")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fake, emu); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != 0 {
		t.Fatalf("QEMU replaced by another binary: version %d, want none", v)
	}
}

func containsArch(caps, arch string) bool {
	return strings.Contains(caps, "<arch>"+arch+"</arch>")
}

// TestDriversShowViewReady: the admin view of the drivers says whether
// reads are answered from the view.
func TestDriversShowViewReady(t *testing.T) {
	c, _ := newCore(t)
	if l := c.Drivers(); len(l.Drivers) != 1 || !l.Drivers[0].ViewReady {
		t.Errorf("with views: %+v", l.Drivers)
	}
	ds, err := inproc.New(context.Background(), nil, testdriver.New(driver.Env{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ds.Close)
	if l := core.New(core.Config{Drivers: ds}).Drivers(); len(l.Drivers) != 1 || l.Drivers[0].ViewReady {
		t.Errorf("without views: %+v", l.Drivers)
	}
}
