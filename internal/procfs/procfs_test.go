package procfs

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestOwnProcess(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil || st.StartTime == 0 || st.Exited() {
		t.Fatalf("own stat %+v, %v", st, err)
	}
	if !Alive(os.Getpid(), st.StartTime) || Alive(os.Getpid(), st.StartTime+1) {
		t.Fatal("Alive must check the start time")
	}
	if Gone(os.Getpid()) {
		t.Fatal("this process is not gone")
	}
	if st.PPID != os.Getppid() {
		t.Fatalf("PPID %d, want %d", st.PPID, os.Getppid())
	}
}

func TestZombieAndGone(t *testing.T) {
	cmd := exec.Command("sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Not reaped yet: a zombie, which counts as exited.
	deadline := time.Now().Add(5 * time.Second)
	for !Gone(pid) {
		if time.Now().After(deadline) {
			t.Fatal("exited child never seen as gone")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st, err := ReadStat(pid); err != nil || st.State != 'Z' {
		t.Fatalf("unreaped child: %+v, %v; want a zombie", st, err)
	}
	_ = cmd.Wait()
	if _, err := ReadStat(pid); err == nil {
		t.Fatal("a reaped child still has a stat")
	}
	if !Gone(pid) || Alive(pid, 1) {
		t.Fatal("a reaped child is gone")
	}
}

func TestWatchExitSeesExit(t *testing.T) {
	cmd := exec.Command("sh", "-c", "read x; exit 3")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	st, err := ReadStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WatchExit(cmd.Process.Pid, st.StartTime+1); err == nil {
		t.Fatal("WatchExit accepted a process with another start time")
	}
	e, err := WatchExit(cmd.Process.Pid, st.StartTime)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	waited := make(chan bool)
	go func() { waited <- e.Wait() }()
	stdin.Close() // the child goes on and exits
	if !<-waited {
		t.Fatal("Wait returned without the process exiting")
	}
	if !Gone(cmd.Process.Pid) {
		t.Fatal("Wait returned before the process exited")
	}
}

func TestWatchExitCloseEndsWait(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	st, _ := ReadStat(cmd.Process.Pid)
	e, err := WatchExit(cmd.Process.Pid, st.StartTime)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan bool)
	go func() { waited <- e.Wait() }()
	e.Close()
	if <-waited {
		t.Fatal("Wait on a closed handle said the process exited")
	}
}

func TestExitKill(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	st, err := ReadStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	e, err := WatchExit(cmd.Process.Pid, st.StartTime)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Kill(); err != nil {
		t.Fatal(err)
	}
	if !e.Wait() {
		t.Fatal("Wait returned without the killed process exiting")
	}
	if err := cmd.Wait(); err == nil || cmd.ProcessState.String() != "signal: killed" {
		t.Fatalf("the process ended with %v, want killed", err)
	}
	// Reaped: its pid may be anyone's now, and the handle still names it.
	if err := e.Kill(); err != nil {
		t.Fatalf("killing a process that is gone: %v", err)
	}
}

func TestThreadsAndFigures(t *testing.T) {
	// Burn some CPU so the figures are not all zero.
	for end := time.Now().Add(30 * time.Millisecond); time.Now().Before(end); {
	}
	st, err := ReadStat(os.Getpid())
	if err != nil || st.CPU != st.User+st.System || st.RSS == 0 {
		t.Fatalf("own stat %+v, %v: want CPU = User + System, and a resident set", st, err)
	}
	th, err := ReadThreadStat(os.Getpid(), os.Getpid())
	if err != nil || th.StartTime != st.StartTime || th.CPU > st.CPU+time.Second/clockTicks {
		t.Fatalf("main thread's stat %+v, %v; the process's %+v", th, err, st)
	}
	if _, err := ReadThreadStat(os.Getpid(), 1); err == nil {
		t.Fatal("pid 1 is no thread of this process")
	}
}
