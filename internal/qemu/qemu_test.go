package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/virtd/virtd/internal/procfs"
	"github.com/virtd/virtd/internal/testenv"
	"github.com/virtd/virtd/virt"
)

// These tests run real QEMU under TCG. CI installs it (test/qemu/setup.sh);
// only a machine without it skips them.

func needQEMU(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		missing(t, "qemu-system-x86_64 is not installed")
	}
}

// bootAssets returns the kernel and initramfs test/qemu/setup.sh builds.
func bootAssets(t testing.TB) (kernel, initrd string) {
	t.Helper()
	needQEMU(t)
	dir := os.Getenv("VIRTD_QEMU_TEST_ASSETS")
	if dir == "" {
		dir = filepath.Join("..", "..", ".cache", "qemu-test")
	}
	kernel, initrd = filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initramfs.cpio.gz")
	for _, p := range []string{kernel, initrd} {
		if _, err := os.Stat(p); err != nil {
			missing(t, fmt.Sprintf("%s is missing", p))
		}
	}
	kernel, _ = filepath.Abs(kernel)
	initrd, _ = filepath.Abs(initrd)
	return kernel, initrd
}

func missing(t testing.TB, what string) {
	t.Helper()
	testenv.Missing(t, what+": run test/qemu/setup.sh")
}

func testConfig(dir string) Config {
	return Config{
		ConfigDir: filepath.Join(dir, "state"),
		RunDir:    filepath.Join(dir, "run"),
		LogDir:    filepath.Join(dir, "log"),
		// No autostart in tests unless asked for.
		BootIDFile: filepath.Join(dir, "no-boot-id"),
	}
}

// newDriverWithPath builds a driver on dir that looks for QEMU binaries in
// path only; it is closed when t ends.
func newDriverWithPath(t testing.TB, dir, path string) *Driver {
	t.Helper()
	cfg := testConfig(dir)
	cfg.Path = path
	drv, err := NewWithConfig(hclog.NewNullLogger(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drv.Close() })
	return drv
}

// newTestDriver builds a driver on temporary directories; at the end of
// the test every guest it still runs is destroyed.
func newTestDriver(t testing.TB) (*Driver, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "vq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	drv := newDriverOn(t, dir)
	return drv, dir
}

func newDriverOn(t testing.TB, dir string) *Driver {
	t.Helper()
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}})
	drv, err := NewWithConfig(logger, testConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyAll(drv) })
	return drv
}

func destroyAll(drv *Driver) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	doms, _ := drv.ListDomains(ctx, virt.ListActive)
	for _, d := range doms {
		_ = drv.DestroyDomain(ctx, d.UUID)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func disklessXML(name string) string {
	return fmt.Sprintf(`<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os><features><acpi/></features></domain>`, name)
}

func bootXML(name, kernel, initrd, serial, cmdline string) string {
	return fmt.Sprintf(`<domain type='qemu'><name>%s</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type><kernel>%s</kernel><initrd>%s</initrd><cmdline>console=ttyS0 quiet %s</cmdline></os>
<features><acpi/><apic/></features>
<devices><serial type='file'><source path='%s'/><target port='0'/></serial><console type='file'><source path='%s'/></console></devices>
</domain>`, name, kernel, initrd, cmdline, serial, serial)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func define(t testing.TB, drv *Driver, doc string) *virt.Domain {
	t.Helper()
	d, err := drv.DefineDomain(ctxT(t), doc)
	if err != nil {
		t.Fatalf("DefineDomain: %v", err)
	}
	return d
}

func pidOf(t testing.TB, drv *Driver, uuid string) int {
	t.Helper()
	d, err := drv.doms.Find(virt.ByUUID(uuid))
	if err != nil {
		t.Fatalf("domain %s: %v", uuid, err)
	}
	defer d.Unlock()
	if d.Priv.inst == nil {
		t.Fatalf("domain %s has no process", uuid)
	}
	return d.Priv.inst.rec.Pid
}

func wantState(t testing.TB, drv *Driver, uuid string, state virt.State, reason int32) {
	t.Helper()
	st, r, err := drv.DomainState(ctxT(t), uuid)
	if err != nil {
		t.Fatal(err)
	}
	if st != state || r != reason {
		t.Fatalf("state %s (%s), want %s (%s)", st, virt.ReasonString(st, r), state, virt.ReasonString(state, reason))
	}
}

func waitState(t testing.TB, drv *Driver, uuid string, state virt.State, timeout time.Duration) int32 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, r, err := drv.DomainState(ctxT(t), uuid)
		if err != nil {
			t.Fatal(err)
		}
		if st == state {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %s (%s) after %v, want %s", st, virt.ReasonString(st, r), timeout, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nextEvent returns the next event for uuid.
func nextEvent(t testing.TB, ch <-chan virt.Event, uuid string) virt.Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("event stream closed")
			}
			if ev.Domain.UUID == uuid {
				return ev
			}
		case <-timeout:
			t.Fatal("no event within 30s")
		}
	}
}

func wantEvent(t testing.TB, ch <-chan virt.Event, uuid string, typ virt.EventType, detail int32) {
	t.Helper()
	ev := nextEvent(t, ch, uuid)
	if ev.Type != typ || ev.Detail != detail {
		t.Fatalf("event %s/%s, want %s/%s", ev.Type, virt.EventDetailString(ev.Type, ev.Detail), typ, virt.EventDetailString(typ, detail))
	}
}

// runFiles lists what is left under the run directory besides the
// capabilities cache.
func runFiles(t testing.TB, dir string) []string {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(dir, "run"))
	var out []string
	for _, e := range entries {
		if e.Name() != "capabilities" && e.Name() != "log" {
			out = append(out, e.Name())
		}
	}
	return out
}

func processGone(pid int) bool {
	err := syscall.Kill(pid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return true
	}
	st, err := procfs.ReadStat(pid)
	return err != nil || st.State == 'Z'
}

func TestStartSuspendResumeDestroy(t *testing.T) {
	needQEMU(t)
	drv, dir := newTestDriver(t)
	ctx := ctxT(t)
	events, _ := drv.WatchEvents(ctx)
	d := define(t, drv, disklessXML("life"))
	wantEvent(t, events, d.UUID, virt.EventDefined, virt.DefinedAdded)

	began := time.Now()
	got, err := drv.StartDomain(ctx, d.UUID)
	if err != nil {
		t.Fatalf("StartDomain: %v", err)
	}
	t.Logf("define-to-running: %v", time.Since(began))
	if got.State != virt.StateRunning || got.ID <= 0 {
		t.Fatalf("after start: %+v", got)
	}
	wantEvent(t, events, d.UUID, virt.EventStarted, virt.StartedBooted)
	wantState(t, drv, d.UUID, virt.StateRunning, virt.RunningBooted)
	pid := pidOf(t, drv, d.UUID)
	if processGone(pid) {
		t.Fatalf("QEMU pid %d is not running", pid)
	}
	if sid, _ := unix.Getsid(pid); sid != pid {
		t.Errorf("QEMU session %d, want its own (%d)", sid, pid)
	}
	for _, f := range []string{d.UUID + ".qmp", d.UUID + ".pid", d.UUID + ".json"} {
		if _, err := os.Stat(filepath.Join(dir, "run", f)); err != nil {
			t.Errorf("runtime file: %v", err)
		}
	}
	if n, _ := drv.RunningGuests(ctx); n != 1 {
		t.Errorf("RunningGuests = %d, want 1", n)
	}
	live, _ := drv.DomainXML(ctx, d.UUID, false)
	if !strings.Contains(live, fmt.Sprintf("id=\"%d\"", got.ID)) {
		t.Errorf("live XML lacks the id:\n%s", live)
	}
	if _, err := drv.StartDomain(ctx, d.UUID); !errors.Is(err, virt.ErrFailedPrecondition) {
		t.Errorf("second start: %v, want failed precondition", err)
	}

	if err := drv.SuspendDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, d.UUID, virt.EventSuspended, virt.SuspendedPaused)
	wantState(t, drv, d.UUID, virt.StatePaused, virt.PausedUser)
	if err := drv.SuspendDomain(ctx, d.UUID); !errors.Is(err, virt.ErrFailedPrecondition) {
		t.Errorf("suspending twice: %v", err)
	}
	if err := drv.ResumeDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, d.UUID, virt.EventResumed, virt.ResumedUnpaused)
	wantState(t, drv, d.UUID, virt.StateRunning, virt.RunningUnpaused)

	// The guest burns CPU in its BIOS: the CPU time grows.
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := drv.DomainInfo(ctx, d.UUID)
		if err != nil {
			t.Fatal(err)
		}
		if info.CPUTime > 0 {
			if info.MaxMemoryKiB != 65536 || info.VCPUs != 1 {
				t.Errorf("info %+v", info)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("CPU time stays zero")
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := drv.DestroyDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, d.UUID, virt.EventStopped, virt.StoppedDestroyed)
	wantState(t, drv, d.UUID, virt.StateShutoff, virt.ShutoffDestroyed)
	if !processGone(pid) {
		t.Errorf("QEMU pid %d still runs after destroy", pid)
	}
	if left := runFiles(t, dir); len(left) != 0 {
		t.Errorf("stale runtime files after destroy: %v", left)
	}
	if n, _ := drv.RunningGuests(ctx); n != 0 {
		t.Errorf("RunningGuests = %d, want 0", n)
	}
	if err := drv.DestroyDomain(ctx, d.UUID); !errors.Is(err, virt.ErrFailedPrecondition) {
		t.Errorf("destroying a stopped domain: %v", err)
	}
	// The definition stays and starts again.
	if _, err := drv.StartDomain(ctx, d.UUID); err != nil {
		t.Fatalf("start after destroy: %v", err)
	}
}

func TestKilledQEMUIsCrashed(t *testing.T) {
	needQEMU(t)
	drv, dir := newTestDriver(t)
	ctx := ctxT(t)
	d := define(t, drv, disklessXML("victim"))
	if _, err := drv.StartDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	events, _ := drv.WatchEvents(ctx)
	pid := pidOf(t, drv, d.UUID)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, d.UUID, virt.EventStopped, virt.StoppedCrashed)
	wantState(t, drv, d.UUID, virt.StateShutoff, virt.ShutoffCrashed)
	if left := runFiles(t, dir); len(left) != 0 {
		t.Errorf("stale runtime files after a crash: %v", left)
	}
}

func TestRecoveryAfterDriverRestart(t *testing.T) {
	needQEMU(t)
	drv1, dir := newTestDriver(t)
	ctx := ctxT(t)
	a := define(t, drv1, disklessXML("survivor"))
	b := define(t, drv1, disklessXML("dies-unseen"))
	for _, d := range []*virt.Domain{a, b} {
		if _, err := drv1.StartDomain(ctx, d.UUID); err != nil {
			t.Fatal(err)
		}
	}
	if err := drv1.SuspendDomain(ctx, a.UUID); err != nil {
		t.Fatal(err)
	}
	pidA, pidB := pidOf(t, drv1, a.UUID), pidOf(t, drv1, b.UUID)
	idA := mustLookup(t, drv1, a.UUID).ID
	liveA, err := drv1.DomainXML(ctx, a.UUID, false)
	if err != nil || !strings.Contains(liveA, fmt.Sprintf("<domain type=\"qemu\" id=\"%d\">", idA)) {
		t.Fatalf("live XML of a running guest: %v\n%s", err, liveA)
	}
	drv1.Close() // the driver goes away; the guests stay

	if err := syscall.Kill(pidB, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for !processGone(pidB) {
		time.Sleep(10 * time.Millisecond)
	}

	drv2 := newDriverOn(t, dir)
	got := mustLookup(t, drv2, a.UUID)
	if got.State != virt.StatePaused || got.ID != idA {
		t.Fatalf("recovered domain: %+v, want paused with id %d", got, idA)
	}
	if p := pidOf(t, drv2, a.UUID); p != pidA {
		t.Errorf("recovered pid %d, want %d", p, pidA)
	}
	if x, err := drv2.DomainXML(ctx, a.UUID, false); err != nil || x != liveA {
		t.Errorf("recovered live XML (%v):\n%s\nwant the first driver's:\n%s", err, x, liveA)
	}
	wantState(t, drv2, b.UUID, virt.StateShutoff, virt.ShutoffCrashed)
	if _, err := os.Stat(filepath.Join(dir, "run", b.UUID+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale record of the dead guest: %v", err)
	}
	if n, _ := drv2.RunningGuests(ctx); n != 1 {
		t.Errorf("RunningGuests = %d, want 1", n)
	}
	// The recovered guest is managed over its reconnected monitor.
	events, _ := drv2.WatchEvents(ctx)
	if err := drv2.ResumeDomain(ctx, a.UUID); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, a.UUID, virt.EventResumed, virt.ResumedUnpaused)
	// A new start gets an ID above the recovered one.
	if _, err := drv2.StartDomain(ctx, b.UUID); err != nil {
		t.Fatal(err)
	}
	if idB := mustLookup(t, drv2, b.UUID).ID; idB <= idA {
		t.Errorf("new id %d not above recovered id %d", idB, idA)
	}
	wantEvent(t, events, b.UUID, virt.EventStarted, virt.StartedBooted)
	// Killed from outside, a recovered guest (not the driver's child) is
	// seen as crashed too.
	if err := syscall.Kill(pidA, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, a.UUID, virt.EventStopped, virt.StoppedCrashed)
	if err := drv2.DestroyDomain(ctx, b.UUID); err != nil {
		t.Fatal(err)
	}
	if left := runFiles(t, dir); len(left) != 0 {
		t.Errorf("stale runtime files: %v", left)
	}
}

// TestCreatedAfterDriverRestart: guests created from XML (transient) are
// found again by a new driver process, still transient, and still vanish
// when they stop: destroyed, or killed from outside; one that died while
// no driver ran is gone, files and all.
func TestCreatedAfterDriverRestart(t *testing.T) {
	needQEMU(t)
	drv1, dir := newTestDriver(t)
	ctx := ctxT(t)
	created := map[string]*virt.Domain{}
	for _, name := range []string{"destroyed", "killed", "dies-unseen"} {
		d, err := drv1.CreateDomain(ctx, disklessXML(name))
		if err != nil {
			t.Fatalf("CreateDomain(%s): %v", name, err)
		}
		if d.Persistent || d.State != virt.StateRunning {
			t.Fatalf("CreateDomain(%s) = %+v, want running and transient", name, d)
		}
		created[name] = d
	}
	unseen := created["dies-unseen"]
	pidUnseen := pidOf(t, drv1, unseen.UUID)
	drv1.Close() // the driver goes away; the guests stay
	if err := syscall.Kill(pidUnseen, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for !processGone(pidUnseen) {
		time.Sleep(10 * time.Millisecond)
	}

	drv2 := newDriverOn(t, dir)
	for _, name := range []string{"destroyed", "killed"} {
		want := created[name]
		got := mustLookup(t, drv2, want.UUID)
		if got.Persistent || got.State != virt.StateRunning || got.ID != want.ID || got.Name != name {
			t.Errorf("%s after the restart: %+v, want running and transient with ID %d", name, got, want.ID)
		}
	}
	if _, err := drv2.LookupDomain(ctx, virt.ByUUID(unseen.UUID)); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("a transient guest that died while the driver was away: %v, want not found", err)
	}
	if doms, _ := drv2.ListDomains(ctx, virt.ListTransient); len(doms) != 2 {
		t.Errorf("transient domains after the restart: %+v, want 2", doms)
	}
	// Its name is in use still.
	if _, err := drv2.CreateDomain(ctx, disklessXML("killed")); !errors.Is(err, virt.ErrAlreadyExists) {
		t.Errorf("create with the name of a transient domain found again: %v, want already exists", err)
	}

	events, _ := drv2.WatchEvents(ctx)
	if err := drv2.DestroyDomain(ctx, created["destroyed"].UUID); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, created["destroyed"].UUID, virt.EventStopped, virt.StoppedDestroyed)
	killed := created["killed"]
	if err := syscall.Kill(pidOf(t, drv2, killed.UUID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, killed.UUID, virt.EventStopped, virt.StoppedCrashed)
	for _, d := range created {
		if _, err := drv2.LookupDomain(ctx, virt.ByUUID(d.UUID)); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("%s after it stopped: %v, want not found", d.Name, err)
		}
	}
	if doms, _ := drv2.ListDomains(ctx, 0); len(doms) != 0 {
		t.Errorf("domains left: %+v", doms)
	}
	if left := runFiles(t, dir); len(left) != 0 {
		t.Errorf("stale runtime files: %v", left)
	}
	// No Undefined event followed the stops: the next event is that of
	// a domain defined now.
	fence := define(t, drv2, disklessXML("fence"))
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Domain.UUID == fence.UUID {
				return
			}
			t.Errorf("event %s/%s of %s after it stopped", ev.Type, virt.EventDetailString(ev.Type, ev.Detail), ev.Domain.Name)
		case <-timeout:
			t.Fatal("no event of the fence domain within 30s")
		}
	}
}

func mustLookup(t testing.TB, drv *Driver, uuid string) *virt.Domain {
	t.Helper()
	d, err := drv.LookupDomain(ctxT(t), virt.ByUUID(uuid))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// notQcow2 is a file that is not a qcow2 image.
func notQcow2(t *testing.T) string {
	f := filepath.Join(t.TempDir(), "raw.img")
	if err := os.WriteFile(f, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestBadInputLeavesNothing(t *testing.T) {
	needQEMU(t)
	drv, dir := newTestDriver(t)
	ctx := ctxT(t)
	cases := []struct {
		name, xml string
		atStart   bool
		kind      error
		mention   string
	}{
		{"missing emulator", `<domain type='qemu'><name>e</name><memory>65536</memory><devices><emulator>/nonexistent/qemu</emulator></devices></domain>`,
			false, virt.ErrNotFound, "/nonexistent/qemu"},
		{"missing kernel", `<domain type='qemu'><name>k</name><memory>65536</memory><os><type>hvm</type><kernel>/nonexistent/vmlinuz</kernel></os></domain>`,
			true, virt.ErrNotFound, "/nonexistent/vmlinuz"},
		{"missing disk", `<domain type='qemu'><name>d</name><memory>65536</memory><devices><disk type='file'><source file='/nonexistent/disk.img'/><target dev='vda'/></disk></devices></domain>`,
			true, virt.ErrNotFound, "/nonexistent/disk.img"},
		{"unsupported device", `<domain type='qemu'><name>u</name><memory>65536</memory><devices><shmem name='x'/></devices></domain>`,
			false, virt.ErrNotSupported, "shmem"},
		{"slash in name", `<domain type='qemu'><name>a/b</name><memory>65536</memory></domain>`, false, virt.ErrInvalidArgument, "a/b"},
		{"unknown machine type", `<domain type='qemu'><name>m</name><memory>65536</memory><os><type machine='pc-i440fx-99.0'>hvm</type></os></domain>`,
			false, virt.ErrInvalidArgument, "machine='pc-i440fx-99.0'>: the emulator has no such machine type"},
		{"qemu refuses", `<domain type='qemu'><name>q</name><memory>65536</memory><devices><disk type='file'><driver name='qemu' type='qcow2'/><source file='` + notQcow2(t) + `'/><target dev='vda'/></disk></devices></domain>`,
			true, virt.ErrInternal, "qcow2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := drv.DefineDomain(ctx, tc.xml)
			if tc.atStart {
				if err != nil {
					t.Fatalf("define: %v", err)
				}
				_, err = drv.StartDomain(ctx, d.UUID)
				wantState(t, drv, d.UUID, virt.StateShutoff, stateAfterFailedStart(tc.kind))
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q (kind %v), want kind %v naming %q", err, virt.KindOf(err), tc.kind, tc.mention)
			}
			if left := runFiles(t, dir); len(left) != 0 {
				t.Errorf("runtime files left behind: %v", left)
			}
			if n, _ := drv.RunningGuests(ctx); n != 0 {
				t.Errorf("RunningGuests = %d", n)
			}
		})
	}
}

func stateAfterFailedStart(kind error) int32 {
	if kind == virt.ErrInternal {
		return virt.ShutoffFailed
	}
	return virt.ShutoffUnknown
}

// waitMarker waits for a line on the guest's serial console file.
func waitMarker(t testing.TB, path, marker string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), marker) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q on the serial console within %v; console:\n%s", marker, timeout, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRealBootAndACPIShutdown(t *testing.T) {
	kernel, initrd := bootAssets(t)
	drv, dir := newTestDriver(t)
	ctx := ctxT(t)
	serial := filepath.Join(dir, "console.log")
	d := define(t, drv, bootXML("booter", kernel, initrd, serial, ""))
	events, _ := drv.WatchEvents(ctx)
	began := time.Now()
	if _, err := drv.StartDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	waitMarker(t, serial, "VIRTD-GUEST-UP", 60*time.Second)
	t.Logf("booted to userspace in %v", time.Since(began))
	wantEvent(t, events, d.UUID, virt.EventStarted, virt.StartedBooted)
	if err := drv.ShutdownDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, d.UUID, virt.EventShutdown, virt.ShutdownGuest)
	wantEvent(t, events, d.UUID, virt.EventStopped, virt.StoppedShutdown)
	wantState(t, drv, d.UUID, virt.StateShutoff, virt.ShutoffShutdown)
	waitMarker(t, serial, "VIRTD-GUEST-POWERBUTTON", time.Second)
	if left := runFiles(t, dir); len(left) != 0 {
		t.Errorf("stale runtime files: %v", left)
	}
}

func TestRealBootGuestPowersItselfOff(t *testing.T) {
	kernel, initrd := bootAssets(t)
	drv, dir := newTestDriver(t)
	ctx := ctxT(t)
	serial := filepath.Join(dir, "console.log")
	d := define(t, drv, bootXML("selfoff", kernel, initrd, serial, "virtd.selfoff"))
	events, _ := drv.WatchEvents(ctx)
	if _, err := drv.StartDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, events, d.UUID, virt.EventStarted, virt.StartedBooted)
	wantEvent(t, events, d.UUID, virt.EventShutdown, virt.ShutdownGuest)
	wantEvent(t, events, d.UUID, virt.EventStopped, virt.StoppedShutdown)
	wantState(t, drv, d.UUID, virt.StateShutoff, virt.ShutoffShutdown)
	waitMarker(t, serial, "VIRTD-GUEST-SELFOFF", time.Second)
}

func TestPtyConsoleInLiveXML(t *testing.T) {
	needQEMU(t)
	drv, _ := newTestDriver(t)
	ctx := ctxT(t)
	d := define(t, drv, `<domain type='qemu'><name>pty</name><memory unit='MiB'>64</memory>
<devices><console type='pty'/><graphics type='vnc' autoport='yes'/></devices></domain>`)
	if _, err := drv.StartDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	live, _ := drv.DomainXML(ctx, d.UUID, false)
	if !strings.Contains(live, "path=\"/dev/pts/") || !strings.Contains(live, "tty=\"/dev/pts/") {
		t.Errorf("live XML lacks the pty path:\n%s", live)
	}
	if strings.Contains(live, "port=\"-1\"") || !strings.Contains(live, "port=\"59") {
		t.Errorf("live XML lacks the VNC port:\n%s", live)
	}
	inactive, _ := drv.DomainXML(ctx, d.UUID, true)
	if strings.Contains(inactive, "/dev/pts/") || !strings.Contains(inactive, "port=\"-1\"") {
		t.Errorf("inactive XML shows live values:\n%s", inactive)
	}
}

func TestCapabilitiesAndInfo(t *testing.T) {
	needQEMU(t)
	drv, _ := newTestDriver(t)
	ctx := ctxT(t)
	caps, err := drv.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<arch name=\"x86_64\">", "qemu-system-x86_64</emulator>", "canonical=\"pc-i440fx-", "<domain type=\"qemu\">"} {
		if !strings.Contains(caps, want) {
			t.Errorf("capabilities lack %s", want)
		}
	}
	info, err := drv.Info(ctx)
	if err != nil || info.HypervisorVersion < 1000000 || info.Name != "qemu" {
		t.Errorf("Info = %+v, %v", info, err)
	}
	drv.cfg.Path = t.TempDir()
	drv.caps = newCapsCache(drv.cfg)
	info, _ = drv.Info(ctx)
	if info.HealthReason == "" || info.Health.String() != "unavailable" {
		t.Errorf("without QEMU: %+v", info)
	}
	for _, u := range []string{"qemu:///system", "qemu:///session", "qemu+unix:///system?socket=/x"} {
		if err := drv.CheckURI(ctx, u); err != nil {
			t.Errorf("CheckURI(%s): %v", u, err)
		}
	}
	for _, u := range []string{"qemu:///default", "test:///default", "qemu://host/system/x"} {
		if err := drv.CheckURI(ctx, u); !errors.Is(err, virt.ErrInvalidArgument) {
			t.Errorf("CheckURI(%s) = %v", u, err)
		}
	}
}

func TestPersistenceAndAutostart(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	drv := newDriverOn(t, dir)
	ctx := ctxT(t)
	d := define(t, drv, disklessXML("keeper"))
	if err := drv.SetDomainAutostart(ctx, d.UUID, true); err != nil {
		t.Fatal(err)
	}
	drv.Close()
	if err := os.WriteFile(filepath.Join(dir, "boot-id"), []byte("boot-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(dir)
	cfg.BootIDFile = filepath.Join(dir, "boot-id")
	drv2, err := NewWithConfig(hclog.NewNullLogger(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyAll(drv2) })
	waitState(t, drv2, d.UUID, virt.StateRunning, 30*time.Second)
	if on, _ := drv2.DomainAutostart(ctx, d.UUID); !on {
		t.Error("autostart mark lost")
	}
	if err := drv2.DestroyDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	drv2.Close()
	// Same boot: not started again.
	drv3, err := NewWithConfig(hclog.NewNullLogger(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { destroyAll(drv3) })
	// Its autostart pass is over before the state is read.
	select {
	case <-drv3.autostarted:
	case <-ctx.Done():
		t.Fatal("the autostart pass did not end")
	}
	wantState(t, drv3, d.UUID, virt.StateShutoff, virt.ShutoffUnknown)
	if err := drv3.UndefineDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", d.UUID+".xml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("definition file after undefine: %v", err)
	}
	if _, err := os.Stat(drv3.autostartPath(d.UUID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("autostart mark after undefine: %v", err)
	}
}
