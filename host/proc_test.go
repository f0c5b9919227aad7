package host

import (
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virtd/virtd/internal/procfs"
)

// runningDriver starts the test driver of a new host and returns its Proc
// and pid.
func runningDriver(t *testing.T, opts ...func(*Config)) (*Proc, int) {
	t.Helper()
	_, p := testDriverProc(t, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.Client(ctx); err != nil {
		t.Fatal(err)
	}
	return p, p.Status().PID
}

// TestStopWaitsForTheExit: a stop returns once the process has exited and
// its exit is handled; that is no crash, and the next call starts a new
// process, not counted as a restart.
func TestStopWaitsForTheExit(t *testing.T) {
	p, pid := runningDriver(t)
	p.stop("the test stops it")
	if !procfs.Gone(pid) {
		t.Fatalf("process %d still runs after the stop returned", pid)
	}
	if st := p.Status(); st.State != StateStopped || st.PID != 0 || st.LastError != "" {
		t.Fatalf("after a stop: %+v, want stopped with no error", st)
	}
	if _, err := p.Client(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.State != StateRunning || st.PID == pid || st.Restarts != 0 {
		t.Fatalf("after a stop and a call: %+v, want a new process, no restart", st)
	}
}

// TestStopKillsADriverThatDoesNotExit: a driver that does not answer the
// request to shut down (here stopped with SIGSTOP) is killed, and the stop
// returns once it is gone.
func TestStopKillsADriverThatDoesNotExit(t *testing.T) {
	p, pid := runningDriver(t)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	stopped := make(chan struct{})
	go func() {
		p.stop("the test stops it")
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(3 * stopWait):
		t.Fatalf("the stop of a driver that does not answer did not return within %s", 3*stopWait)
	}
	if !procfs.Gone(pid) {
		t.Fatalf("process %d still runs after the stop returned", pid)
	}
	if st := p.Status(); st.State != StateStopped {
		t.Fatalf("after the stop: %+v", st)
	}
}

// TestCrashReportsHowTheProcessEnded: a driver killed from outside is a
// crash; its status says how it ended and quotes the last line it wrote
// on stderr before.
func TestCrashReportsHowTheProcessEnded(t *testing.T) {
	p, pid := runningDriver(t)
	eventMaker(t, p)(1) // the driver logs the suspend
	in := p.current()
	killAndWait(t, pid)
	<-in.dead
	st := p.Status()
	want := "exited unexpectedly (signal: killed); last stderr: "
	if st.State != StateStopped || !strings.HasPrefix(st.LastError, want) || !strings.HasSuffix(st.LastError, "info: domain suspended") {
		t.Fatalf("after a crash: %+v; want it to say %q and end with the driver's last line", st, want)
	}
}

// TestAttachedProcessWaitsOnAPidfd: go-plugin's handle on a reattached
// driver says when the process exits, and kills it.
func TestAttachedProcessWaitsOnAPidfd(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	st, err := procfs.ReadStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attachedProcess(cmd.Process.Pid, st.StartTime+1); err == nil {
		t.Fatal("attached to a process with another start time")
	}
	a, err := attachedProcess(cmd.Process.Pid, st.StartTime)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() {
		_ = a.Wait(context.Background())
		close(waited)
	}()
	if err := a.Kill(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-waited
	if !procfs.Gone(cmd.Process.Pid) {
		t.Fatal("Wait returned before the process exited")
	}
}

// killAndWait kills process pid and waits for it to have exited.
func killAndWait(t *testing.T, pid int) {
	t.Helper()
	st, err := procfs.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	e, err := procfs.WatchExit(pid, st.StartTime)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Kill(); err != nil {
		t.Fatal(err)
	}
	if !e.Wait() {
		t.Fatalf("process %d did not exit", pid)
	}
}
