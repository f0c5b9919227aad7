package lxc

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virtd/virtd/internal/lxc/controller"
)

// cmdlineOf reads pid's command line once the process has exec'd: before
// that (the parent's Start may return first) it shows this process's
// command line, or an empty one while inside execve. Both are waited out.
func cmdlineOf(t *testing.T, pid int) []string {
	t.Helper()
	self := string(mustRead(t, "/proc/self/cmdline"))
	var b []byte
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b = mustRead(t, fmt.Sprintf("/proc/%d/cmdline", pid)); len(b) > 0 && string(b) != self {
			break
		}
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// waitSpare waits for the driver's spare controller.
func waitSpare(t testing.TB, drv *Driver) *ctlProc {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		drv.mu.Lock()
		p := drv.spare
		drv.mu.Unlock()
		if p != nil {
			return p
		}
	}
	t.Fatal("no spare controller 10s after a start")
	return nil
}

func waitExited(t *testing.T, p *ctlProc, why string) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the spare controller (pid %d) is still running 10s after %s", p.cmd.Process.Pid, why)
	}
}

// TestSpareController: a start leaves a spare controller waiting; the next
// start uses it, and ps shows each controller's arguments; a dead spare is
// replaced; the spare exits with the driver.
func TestSpareController(t *testing.T) {
	rootfs := testRootFS(t)
	drv, _ := newTestDriver(t)
	ctx := context.Background()
	var uuids []string
	u, _ := startXML(t, drv, domainXML(rootfs, "ct-spare-1", domOpts{}))
	uuids = append(uuids, u)
	spare := waitSpare(t, drv)
	pid := spare.cmd.Process.Pid
	if got := cmdlineOf(t, pid); len(got) != 3 || got[1] != controller.ControllerArg || strings.TrimSpace(got[2]) != "" {
		t.Errorf("spare's command line %q, want the executable, %s and blanks", got, controller.ControllerArg)
	}

	u, d := startXML(t, drv, domainXML(rootfs, "ct-spare-2", domOpts{}))
	uuids = append(uuids, u)
	if int(d.ID) != pid {
		t.Errorf("the second start ran controller %d, not the spare %d", d.ID, pid)
	}
	// What ps shows for the spare that became ct-spare-2's controller:
	// its arguments, then the rest of the room, empty.
	got := cmdlineOf(t, pid)
	if i := slices.Index(got, "-name"); i != 2 || got[i+1] != "ct-spare-2" || got[1] != controller.ControllerArg {
		t.Errorf("controller's command line %q does not name its domain", got)
	}
	if i := slices.Index(got, "-spec"); i < 0 || !strings.HasSuffix(got[i+1], u+".spec") {
		t.Errorf("controller's command line %q does not show its spec", got)
	}

	spare = waitSpare(t, drv)
	if err := spare.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExited(t, spare, "SIGKILL")
	u, d = startXML(t, drv, domainXML(rootfs, "ct-spare-3", domOpts{}))
	uuids = append(uuids, u)
	if d.ID == int32(spare.cmd.Process.Pid) {
		t.Error("a start used the dead spare")
	}

	spare = waitSpare(t, drv)
	for _, u := range uuids {
		if err := drv.DestroyDomain(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	drv.Close()
	waitExited(t, spare, "the driver closed")
}
