package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/virtd/virtd/client"
	"github.com/virtd/virtd/internal/procfs"
	"github.com/virtd/virtd/internal/testenv"
	"github.com/virtd/virtd/virt"
)

func TestDriverKilledMidCall(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	c := d.open("test:///default")
	ctx := ctxT(t)
	stream, err := c.WatchEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := int(d.driverStatus("test").PID)

	// Keep calls in flight while the driver is killed: four callers, each
	// counting the calls it has completed.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var mu sync.Mutex
	var failures []error
	calls := make([]atomic.Int64, 4)
	for i := range calls {
		wg.Add(1)
		go func(n *atomic.Int64) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.ListDomains(ctx, 0); err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
				n.Add(1)
			}
		}(&calls[i])
	}
	stopCallers := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopCallers()
	// eachCalled reports whether every caller has completed at least n
	// calls more than it had at since.
	counts := func() []int64 {
		n := make([]int64, len(calls))
		for i := range calls {
			n[i] = calls[i].Load()
		}
		return n
	}
	eachCalled := func(since []int64, n int64) func() bool {
		return func() bool {
			for i, got := range counts() {
				if got < since[i]+n {
					return false
				}
			}
			return true
		}
	}
	eventually(t, 10*time.Second, "each caller to complete a call", eachCalled(counts(), 1))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The event stream was in flight: it must end with unavailable.
	select {
	case _, ok := <-stream.Events():
		for ok {
			_, ok = <-stream.Events()
		}
	case <-time.After(10 * time.Second):
		t.Fatal("event stream did not end when the driver died")
	}
	if err := stream.Err(); !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("event stream ended with %v, want unavailable", err)
	}
	// The callers go on through the death and the restart: each completes
	// two more calls, so at least one begun after the stream ended.
	eventually(t, 10*time.Second, "each caller to complete calls after the driver died", eachCalled(counts(), 2))
	stopCallers()
	mu.Lock()
	for _, err := range failures {
		if !errors.Is(err, client.ErrUnavailable) {
			t.Errorf("a call in flight failed with %v, want unavailable", err)
		}
	}
	mu.Unlock()
	// A new driver process comes without waiting for a call (the callers
	// are connected), and the next call works.
	eventually(t, 10*time.Second, "the driver to be restarted", func() bool {
		st := d.driverStatus("test")
		return st.State == "running" && st.PID != int64(pid)
	})
	if _, err := c.ListDomains(ctx, 0); err != nil {
		t.Fatal(err)
	}
	st := d.driverStatus("test")
	if st.PID == int64(pid) || st.Restarts != 1 || !strings.Contains(st.LastError, "killed") {
		t.Fatalf("after a SIGKILL the driver should be restarted once with the cause kept: %+v", st)
	}
}

// TestHungDriverIsKilled: a driver that is alive but answers nothing (here
// stopped with SIGSTOP) is killed once a keep-alive goes unanswered for the
// hang timeout. An action waiting on it fails with unavailable, saying the
// driver did not answer and that the action may or may not have taken
// effect; a read waiting on it is answered by the new process; a caller's
// deadline that passes first is reported as such; the cause is kept.
func TestHungDriverIsKilled(t *testing.T) {
	d := newDaemon(t, []string{"test"}, withArgs("--driver-hang-timeout", "1s"))
	c := d.open("test:///default")
	ctx := ctxT(t)
	dom, err := c.LookupByName(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	pid := int(d.driverStatus("test").PID)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	eventually(t, 10*time.Second, "the driver to be stopped", func() bool {
		st, err := procfs.ReadStat(pid)
		return err == nil && st.State == 'T'
	})
	shortCtx, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, err := dom.Info(shortCtx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a call whose 300 ms deadline passed returned %v, want deadline exceeded", err)
	}
	callCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var infoErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, infoErr = dom.Info(callCtx)
	}()
	err = dom.Suspend(callCtx)
	wg.Wait()
	if !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), "did not answer within 1s and is being restarted") ||
		!strings.Contains(err.Error(), "may or may not have taken effect") {
		t.Errorf("an action on the hung driver returned %v, want unavailable saying why", err)
	}
	if infoErr != nil {
		t.Errorf("a read on the hung driver returned %v, want it answered by the restarted driver", infoErr)
	}
	eventually(t, 10*time.Second, "the hung driver's process to be gone", func() bool { return !alive(pid) })
	if _, err := c.ListDomains(ctx, 0); err != nil {
		t.Errorf("a call after the hung driver was killed: %v", err)
	}
	st := d.driverStatus("test")
	if st.PID == int64(pid) || !strings.Contains(st.LastError, "killed as hung") || !strings.Contains(st.LastError, "did not answer within 1s") {
		t.Fatalf("after the hang the driver should run anew with the cause kept: %+v", st)
	}
}

func TestDaemonKilledReattachesToDrivers(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			d := newDaemon(t, []string{"test"})
			c := d.open("test:///default")
			if _, err := c.DefineXML(ctxT(t), domXML("keep")); err != nil {
				t.Fatal(err)
			}
			pid := d.driverStatus("test").PID
			if sig == syscall.SIGKILL {
				d.kill()
			} else {
				d.stop()
			}
			if !alive(int(pid)) {
				t.Fatalf("driver %d died with the daemon", pid)
			}
			d.start()
			st := d.driverStatus("test")
			if st.PID != pid || st.State != "running" || st.Restarts != 0 {
				t.Fatalf("after restart: %+v, want the same driver pid %d, running", st, pid)
			}
			c2 := d.open("test:///default")
			if _, err := c2.LookupByName(ctxT(t), "keep"); err != nil {
				t.Fatalf("the in-memory domain did not survive the daemon restart: %v", err)
			}
		})
	}
}

func TestBrokenDriversReportedWhileOthersServe(t *testing.T) {
	d := newDaemon(t, []string{"test", "exits", "garbage", "hangs", "apiv2", "crashloop"})
	// Files that must be rejected at discovery.
	ww := filepath.Join(d.driverDir, "virtd-driver-ww")
	copyFile(t, filepath.Join(binDir, "virtd-driver-test"), ww, 0o777)
	noexec := filepath.Join(d.driverDir, "virtd-driver-noexec")
	copyFile(t, filepath.Join(binDir, "virtd-driver-test"), noexec, 0o644)
	if _, err := d.admin().Rescan(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{
		"exits":   "exited before completing the handshake (exit status 3)",
		"garbage": `printed "Welcome to my hypervisor 1.0!" on stdout`,
		"hangs":   "did not complete the handshake within 3s",
		"apiv2":   "speaks driver API version 2, but this virtd speaks version 1",
	}
	stderrQuote := map[string]string{
		"exits": "cannot open /nonexistent/hypervisor.conf",
		"hangs": "waiting for a lock that never comes",
	}
	var wg sync.WaitGroup
	for name := range want {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			_, err := client.Open(ctxT(t), name+":///default", client.WithSocket(d.sock()))
			if err == nil || !strings.Contains(err.Error(), want[name]) {
				t.Errorf("open %s: %v; want it to say %q", name, err, want[name])
			}
		}(name)
	}
	// The test driver keeps serving while the others fail.
	c := d.open("test:///default")
	if _, err := c.LookupByName(ctxT(t), "test"); err != nil {
		t.Fatalf("test driver while others are broken: %v", err)
	}
	wg.Wait()

	// crashloop completes the handshake, then keeps dying.
	if _, err := client.Open(ctxT(t), "crashloop:///default", client.WithSocket(d.sock())); err != nil {
		t.Logf("first open of crashloop: %v", err)
	}
	eventually(t, 30*time.Second, "crashloop marked broken", func() bool {
		return d.driverStatus("crashloop").State == "broken"
	})

	list, err := d.admin().Drivers(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Drivers {
		switch s.Name {
		case "test":
			if s.State != "running" {
				t.Errorf("test driver: %+v", s)
			}
		case "crashloop":
			if !strings.Contains(s.LastError, "crashed 5 times in a row") || !strings.Contains(s.LastError, "exit status 139") ||
				!strings.Contains(s.LastError, "segmentation fault in the hypervisor library") {
				t.Errorf("crashloop reason: %q", s.LastError)
			}
		default:
			if s.State != "broken" || !strings.Contains(s.LastError, want[s.Name]) {
				t.Errorf("driver %s: state %s, reason %q; want broken with %q", s.Name, s.State, s.LastError, want[s.Name])
			}
			if q := stderrQuote[s.Name]; q != "" && !strings.Contains(s.LastError, q) {
				t.Errorf("driver %s: reason %q does not quote its stderr %q", s.Name, s.LastError, q)
			}
		}
	}
	rejected := map[string]string{}
	for _, r := range list.Rejected {
		rejected[r.Path] = r.Reason
	}
	if !strings.Contains(rejected[ww], "writable by group or others") {
		t.Errorf("world-writable file: %q", rejected[ww])
	}
	if !strings.Contains(rejected[noexec], "not executable") {
		t.Errorf("non-executable file: %q", rejected[noexec])
	}
	out := d.mustVirtsh("drivers")
	for _, w := range []string{"crashloop", "broken", "writable by group or others", "not executable"} {
		if !strings.Contains(out, w) {
			t.Errorf("virtsh drivers lacks %q:\n%s", w, out)
		}
	}
	if _, err := c.ListDomains(ctxT(t), 0); err != nil {
		t.Fatalf("test driver after the broken ones: %v", err)
	}
}

func TestRescanAddsAndDropsDrivers(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	if _, err := client.Open(ctxT(t), "other:///default", client.WithSocket(d.sock())); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("other before install: %v", err)
	}
	path := d.install("other")
	out := d.mustVirtsh("drivers", "--rescan")
	if !strings.Contains(out, "other") {
		t.Fatalf("drivers --rescan does not show the new driver:\n%s", out)
	}
	c := d.open("other:///default")
	if _, err := c.LookupByName(ctxT(t), "test"); err != nil {
		t.Fatalf("the added driver does not serve: %v", err)
	}
	pid := d.driverStatus("other").PID

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	res, err := d.admin().Rescan(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 1 || res.Removed[0] != "other" {
		t.Fatalf("rescan removed %v, want [other]", res.Removed)
	}
	eventually(t, 10*time.Second, "the removed driver's process to stop", func() bool { return !alive(int(pid)) })
	if _, err := client.Open(ctxT(t), "other:///default", client.WithSocket(d.sock())); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("other after removal: %v", err)
	}

	// SIGHUP rescans too.
	d.install("other")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "SIGHUP to pick up the driver", func() bool {
		c, err := client.Open(ctxT(t), "other:///default", client.WithSocket(d.sock()))
		if err == nil {
			c.Close(ctxT(t))
		}
		return err == nil
	})
}

// TestReplacedDriverRestarts: a package upgrade renames a new executable
// over a running driver's; the rescan its maintainer script asks for stops
// the old process, and the new one starts at once, for the connection
// still open (reads alone would not bring it back: the core's view answers
// them). A rescan with nothing replaced stops nothing; a
// virtd started after the upgrade stops the old process it finds.
func TestReplacedDriverRestarts(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	c := d.open("test:///default")
	ctx := ctxT(t)
	if _, err := c.LookupByName(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	old := d.driverStatus("test").PID
	if _, err := d.admin().Rescan(ctx); err != nil {
		t.Fatal(err)
	}
	if now := d.driverStatus("test").PID; now != old || !alive(int(old)) {
		t.Fatalf("a rescan with nothing replaced changed the driver: pid %d, now %d", old, now)
	}

	d.install("test") // a new file, renamed over the old
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the replaced driver's old process to stop", func() bool { return !alive(int(old)) })
	eventually(t, 10*time.Second, "the new driver to run", func() bool {
		st := d.driverStatus("test")
		return st.State == "running" && st.PID != old
	})
	if _, err := c.LookupByName(ctx, "test"); err != nil {
		t.Fatalf("a call after the upgrade: %v", err)
	}
	if log := d.log.String(); !strings.Contains(log, "its executable was replaced") {
		t.Errorf("the daemon's log does not say why the driver stopped:\n%s", log)
	}

	// Replaced while virtd was down: the restarted virtd does not keep the
	// old process it finds.
	old = d.driverStatus("test").PID
	d.kill()
	d.install("test")
	d.start()
	eventually(t, 10*time.Second, "the old driver found at start to stop", func() bool { return !alive(int(old)) })
	c = d.open("test:///default")
	if _, err := c.LookupByName(ctx, "test"); err != nil {
		t.Fatalf("a call after virtd restarted: %v", err)
	}
	if now := d.driverStatus("test").PID; now == old || now == 0 {
		t.Fatalf("after virtd restarted the driver's pid is %d (was %d)", now, old)
	}
}

// stoppedAsIdle gives d's driver "other" (the test driver under another
// name) no guest and no connection, and waits until d stops it as idle:
// d's idle timeout has passed, and its idle check has run, since the call.
func stoppedAsIdle(t *testing.T, d *daemon) {
	t.Helper()
	leaveIdle(t, d, "other")
	eventually(t, 10*time.Second, "the idle driver other to stop", func() bool { return d.driverStatus("other").State == "stopped" })
}

// leaveIdle destroys the default guest of driver name and closes the
// connection it took: the driver is left with nothing to do.
func leaveIdle(t *testing.T, d *daemon, name string) {
	t.Helper()
	ctx := ctxT(t)
	c := d.open(name + ":///default")
	dom, err := c.LookupByName(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := dom.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestIdleDriverStopsAndStartsAgain(t *testing.T) {
	d := newDaemon(t, []string{"test", "other"}, withArgs("--driver-idle-timeout", "500ms"))
	c := d.open("test:///default")
	ctx := ctxT(t)
	dom, err := c.LookupByName(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if st, _, err := dom.State(ctx); err != nil || st != virt.StateRunning {
		t.Fatalf("the test driver's default guest is %v (%v), want running", st, err)
	}
	// A running guest keeps the driver up even with no connection...
	pid := d.driverStatus("test").PID
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// ... past its idle timeout: meanwhile the driver "other", idle since
	// later, is stopped as idle twice (the second time so that the test
	// driver's own checks, on a clock of their own, have run too).
	stoppedAsIdle(t, d)
	stoppedAsIdle(t, d)
	if st := d.driverStatus("test"); st.State != "running" || st.PID != pid {
		t.Fatalf("driver stopped while its guest runs: %+v", st)
	}
	// ... and with none, the idle driver stops.
	leaveIdle(t, d, "test")
	eventually(t, 10*time.Second, "the idle driver to stop", func() bool { return d.driverStatus("test").State == "stopped" })
	if alive(int(pid)) {
		t.Fatalf("idle driver process %d still runs", pid)
	}
	// The next connection starts it again.
	c = d.open("test:///default")
	if _, err := c.LookupByName(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if st := d.driverStatus("test"); st.State != "running" || st.PID == pid || st.Restarts != 0 {
		t.Fatalf("after an idle stop the driver starts afresh (not counted as a restart): %+v", st)
	}
}

func TestOrphanedDriverExitsWhenIdle(t *testing.T) {
	d := newDaemon(t, []string{"test"}, withArgs("--driver-idle-timeout", "1s"))
	c := d.open("test:///default")
	dom, err := c.LookupByName(ctxT(t), "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	pid := d.driverStatus("test").PID
	d.kill()
	if !alive(int(pid)) {
		t.Fatal("driver died with the daemon")
	}
	eventually(t, 15*time.Second, "the orphaned driver to exit by itself", func() bool { return !alive(int(pid)) })
}

func TestDaemonTimeoutExitsWhenIdle(t *testing.T) {
	d := newDaemon(t, []string{"test"}, withArgs("--timeout", "1"))
	// The test driver's running domain keeps virtd up...
	c := d.open("test:///default")
	dom, err := c.LookupByName(ctxT(t), "test")
	if err != nil {
		t.Fatal(err)
	}
	if st, _, err := dom.State(ctxT(t)); err != nil || st != virt.StateRunning {
		t.Fatalf("the test driver's default guest is %v (%v), want running", st, err)
	}
	if err := c.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// ... past its timeout: meanwhile a second virtd, with twice the
	// timeout and idle since later, exits.
	idle := newDaemon(t, []string{"test"}, withArgs("--timeout", "2"))
	ic := idle.open("test:///default")
	if idleDom, err := ic.LookupByName(ctxT(t), "test"); err != nil {
		t.Fatal(err)
	} else if err := idleDom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := ic.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-idle.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("the second virtd, --timeout 2, did not exit while idle")
	}
	select {
	case <-d.exited:
		t.Fatal("virtd --timeout exited while a guest runs")
	default:
	}
	// ... and once it is destroyed and no client is left, virtd exits.
	c = d.open("test:///default")
	if dom, err = c.LookupByName(ctxT(t), "test"); err != nil {
		t.Fatal(err)
	}
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
		if !d.cmd.ProcessState.Success() {
			t.Fatalf("virtd --timeout exited with %v", d.cmd.ProcessState)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("virtd --timeout 1 did not exit while idle")
	}
	if _, err := os.Stat(d.sock()); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

func TestReadWriteSocketModes(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	for path, want := range map[string]os.FileMode{d.sock(): 0o600, d.roSock(): 0o666, d.adminSock(): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", path, fi.Mode().Perm(), want)
		}
	}
	if _, err := client.Open(ctxT(t), "test:///default", client.WithSocket(d.roSock())); !errors.Is(err, virt.ErrPermissionDenied) {
		t.Errorf("read-write open on the read-only socket: %v", err)
	}
}

func TestUnixGroupOpensReadWriteSocketToGroup(t *testing.T) {
	d := newDaemon(t, []string{"test"}, withArgs("--unix-group", "0"))
	fi, err := os.Stat(d.sock())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Sys().(*syscall.Stat_t).Gid != 0 {
		t.Fatalf("read-write socket with --unix-group: mode %04o gid %d, want 0660 and gid 0", fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid)
	}
}

func TestSIGTERMEndsStreamsAndLeavesDrivers(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	c := d.open("test:///default")
	stream, err := c.WatchEvents(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	pid := d.driverStatus("test").PID
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range stream.Events() {
	}
	if err := stream.Err(); !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("event stream at SIGTERM ended with %v", err)
	}
	select {
	case <-d.exited:
		if !d.cmd.ProcessState.Success() {
			t.Fatalf("virtd exited with %v after SIGTERM", d.cmd.ProcessState)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("virtd did not exit after SIGTERM")
	}
	if !alive(int(pid)) {
		t.Fatal("SIGTERM of virtd took its driver down")
	}
	for _, s := range []string{d.sock(), d.roSock(), d.adminSock()} {
		if _, err := os.Stat(s); !os.IsNotExist(err) {
			t.Errorf("socket %s left behind", s)
		}
	}
}

// TestUntrustedDriverFilesRefused: only what root put there runs as root.
// A driver in a directory others may write to, one reached through a
// symlink into such a directory or to another user's file, and one whose
// content is not the SHA-256 pinned in virtd.conf are each refused with
// their own reason, shown by virtsh drivers; the trusted driver serves.
func TestUntrustedDriverFilesRefused(t *testing.T) {
	d := newDaemon(t, []string{"test", "other"})
	open := filepath.Join(d.root, "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(binDir, "virtd-driver-test"), filepath.Join(open, "virtd-driver-inopen"), 0o755)
	copyFile(t, filepath.Join(binDir, "virtd-driver-test"), filepath.Join(open, "target"), 0o755)
	linkOpen := filepath.Join(d.driverDir, "virtd-driver-linkopen")
	if err := os.Symlink(filepath.Join(open, "target"), linkOpen); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(d.root, "theirs")
	copyFile(t, filepath.Join(binDir, "virtd-driver-test"), theirs, 0o755)
	if err := os.Chown(theirs, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	linkTheirs := filepath.Join(d.driverDir, "virtd-driver-linktheirs")
	if err := os.Symlink(theirs, linkTheirs); err != nil {
		t.Fatal(err)
	}
	// Pin "other" to a sum its file does not have, through virtd.conf.
	conf := filepath.Join(d.root, "etc/virtd/virtd.conf")
	wrong := strings.Repeat("0", 64)
	if err := writeFile(conf, "driver_sha256 = \"other="+wrong+"\"\n"); err != nil {
		t.Fatal(err)
	}
	d.args = append(d.args, "--driver-dir", d.driverDir+":"+open)
	d.stop()
	d.start()

	reasons := map[string]string{
		filepath.Join(open, "virtd-driver-inopen"): "directory " + open + " is writable by group or others (mode 0777)",
		linkOpen:   "symlink " + linkOpen + " -> " + filepath.Join(open, "target") + ": directory " + open + " is writable",
		linkTheirs: "symlink " + linkTheirs + " -> " + theirs + ": " + theirs + " is owned by uid 65534",
		filepath.Join(d.driverDir, "virtd-driver-other"): "not " + wrong + " as pinned by driver_sha256",
	}
	list, err := d.admin().Drivers(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range list.Rejected {
		got[r.Path] = r.Reason
	}
	for path, want := range reasons {
		if !strings.Contains(got[path], want) {
			t.Errorf("%s: reason %q, want it to say %q", path, got[path], want)
		}
	}
	for _, s := range list.Drivers {
		if s.Name != "test" {
			t.Errorf("an untrusted driver is listed as installed: %+v", s)
		}
	}
	out := d.mustVirtsh("drivers")
	for _, want := range reasons {
		if !strings.Contains(out, want) {
			t.Errorf("virtsh drivers does not say %q:\n%s", want, out)
		}
	}
	if _, err := client.Open(ctxT(t), "other:///default", client.WithSocket(d.sock())); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("opening the pinned-out driver: %v, want not found", err)
	}
	if _, err := d.open("test:///default").LookupByName(ctxT(t), "test"); err != nil {
		t.Errorf("the trusted driver: %v", err)
	}
}

// TestKilledWritersTempFilesRemoved: a definition's temporary file, as a
// driver killed in the middle of an atomic write leaves it, is removed when
// the driver starts and never read as a definition; so is a driver
// record's, when virtd starts.
func TestKilledWritersTempFilesRemoved(t *testing.T) {
	d := newDaemon(t, []string{"qemu"})
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	ghost := strings.Replace(domXML("ghost"), "type='test'", "type='qemu'", 1)
	defTemp := filepath.Join(d.root, "etc/virtd/qemu", fmt.Sprintf(".ghost.xml.tmp.%d.42", dead.Process.Pid))
	recTemp := filepath.Join(d.runDir, "drivers", fmt.Sprintf(".qemu.json.tmp.%d.7", dead.Process.Pid))
	for _, f := range []string{defTemp, recTemp} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(ghost), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d.stop()
	d.start()
	if _, err := os.Stat(recTemp); !os.IsNotExist(err) {
		t.Errorf("virtd left the record's temporary file: %v", err)
	}
	c := d.open("qemu:///system")
	doms, err := c.ListDomains(ctxT(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, dom := range doms {
		if dom.Name() == "ghost" {
			t.Error("a temporary file was read as a definition")
		}
	}
	if _, err := os.Stat(defTemp); !os.IsNotExist(err) {
		t.Errorf("the qemu driver left the definition's temporary file: %v", err)
	}
}

// TestSocketsNeverReachableWiderThanConfigured: with virtd started under
// umask 000, as a service manager may start it, a user outside the group
// who connects in a loop while virtd restarts 100 times never gets a
// connection on the read-write or the admin socket (and does on the
// read-only one, which shows that the prober works).
func TestSocketsNeverReachableWiderThanConfigured(t *testing.T) {
	testenv.Need(t, os.Geteuid() == 0, "needs root, to run the prober as nobody")
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	d := newDaemon(t, nil)
	if err := os.Chmod(d.root, 0o711); err != nil {
		t.Fatal(err)
	}
	pub := tempDir(t, "vdpub", 0o755)
	probe := filepath.Join(pub, "fixture-connprobe")
	copyFile(t, filepath.Join(binDir, "fixture-connprobe"), probe, 0o755)
	cmd := exec.Command(probe, d.sock(), d.adminSock(), d.roSock())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if i%2 == 0 {
			d.stop()
		} else {
			d.kill() // its sockets stay behind for the next to replace
		}
		d.start()
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var path string
		var n int
		if _, err := fmt.Sscanf(line, "%s %d", &path, &n); err != nil {
			t.Fatalf("prober output %q: %v", line, err)
		}
		got[path] = n
	}
	for _, sock := range []string{d.sock(), d.adminSock()} {
		if got[sock] != 0 {
			t.Errorf("nobody got %d connections on %s", got[sock], sock)
		}
	}
	if got[d.roSock()] == 0 {
		t.Errorf("the prober never connected to the read-only socket: %q", out.String())
	}
	for _, sock := range []string{d.sock(), d.adminSock()} {
		fi, err := os.Stat(sock)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", sock, fi.Mode(), err)
		}
	}
}

// TestCallWaitsForRestartingDriver: an action that arrives while a driver
// that keeps crashing waits out its backoff is served by the next process,
// not refused.
func TestCallWaitsForRestartingDriver(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	c := d.open("test:///default")
	ctx := ctxT(t)
	dom, err := c.LookupByName(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	// The first crash restarts at once; the second, soon after, waits
	// out a backoff.
	pid := d.driverStatus("test").PID
	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the driver to run again", func() bool {
		st := d.driverStatus("test")
		return st.State == "running" && st.PID != pid
	})
	pid = d.driverStatus("test").PID
	if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the driver to wait out its backoff", func() bool {
		return d.driverStatus("test").State != "running"
	})
	if err := dom.Suspend(ctx); err != nil {
		t.Fatalf("an action during the restart: %v", err)
	}
	if st := d.driverStatus("test"); st.State != "running" || st.PID == pid || st.Restarts != 2 {
		t.Fatalf("after the restart: %+v", st)
	}
}

// TestReplacedDriverSwitchesWithoutFailures: while clients keep calling,
// each rescan that finds the driver's file replaced moves them to the new
// process: no call fails, none is sent to the process being stopped.
func TestReplacedDriverSwitchesWithoutFailures(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	ctx := ctxT(t)
	stop := callers(t, d, 4, func(_, n int, dom *client.Domain) error {
		if err := dom.SetAutostart(ctx, n%2 == 0); err != nil {
			return err
		}
		_, err := dom.Autostart(ctx)
		return err
	})
	for i := 0; i < 3; i++ {
		old := d.driverStatus("test").PID
		d.install("test") // a new file, renamed over the old
		if _, err := d.admin().Rescan(ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "the new driver to serve", func() bool {
			st := d.driverStatus("test")
			return !alive(int(old)) && st.State == "running" && st.PID != old
		})
	}
	calls := 0
	var failures []error
	for _, errs := range stop() {
		calls += len(errs)
		for _, err := range errs {
			if err != nil {
				failures = append(failures, err)
			}
		}
	}
	if len(failures) > 0 {
		t.Fatalf("%d of %d calls failed while the driver was replaced; the first: %v", len(failures), calls, failures[0])
	}
}

// callers starts n clients, each with a connection of its own and the test
// domain looked up on it, each calling call(its index, the iteration, the
// domain) again and again until stop is called. stop waits for them and
// returns each call's result, by client.
func callers(t *testing.T, d *daemon, n int, call func(i, iter int, dom *client.Domain) error) (stop func() [][]error) {
	t.Helper()
	done := make(chan struct{})
	results := make([][]error, n)
	var wg sync.WaitGroup
	for i := range n {
		dom, err := d.open("test:///default").LookupByName(ctxT(t), "test")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for iter := 0; ; iter++ {
				select {
				case <-done:
					return
				default:
				}
				results[i] = append(results[i], call(i, iter, dom))
			}
		}()
	}
	return func() [][]error {
		close(done)
		wg.Wait()
		return results
	}
}

// TestKilledDriverGivesNoBareErrors: while clients keep reading and
// changing things, the driver is killed again and again. No read fails (it
// is made again on the new process); an action that fails says that the
// driver died under it and that it may or may not have taken effect; no
// bare transport error reaches a client.
func TestKilledDriverGivesNoBareErrors(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	ctx := ctxT(t)
	// Even clients act, odd ones read.
	stop := callers(t, d, 4, func(i, n int, dom *client.Domain) error {
		if i%2 == 0 {
			return dom.SetAutostart(ctx, n%2 == 0)
		}
		_, err := dom.Info(ctx)
		return err
	})
	// Four crashes in a row: the backoff stays within the restart wait.
	for k := 0; k < 4; k++ {
		pid := d.driverStatus("test").PID
		if err := syscall.Kill(int(pid), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "the driver to run again", func() bool {
			st := d.driverStatus("test")
			return st.State == "running" && st.PID != pid
		})
	}
	actions, failed := 0, 0
	for i, errs := range stop() {
		if i%2 == 0 {
			actions += len(errs)
		}
		for _, err := range errs {
			switch {
			case err == nil:
			case i%2 == 1:
				t.Errorf("a read failed: %v", err)
			case !errors.Is(err, client.ErrUnavailable) || !strings.Contains(err.Error(), `driver "test" (pid `) ||
				!strings.Contains(err.Error(), "may or may not have taken effect"):
				t.Errorf("an action failed without saying why: %v", err)
			default:
				failed++
			}
		}
	}
	t.Logf("%d actions, %d failed as the driver died under them", actions, failed)
}
