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

func TestWatchExitSeesExitAndStatus(t *testing.T) {
	for _, c := range []struct {
		script, status string
	}{
		{"read x; exit 3", "exit status 3"},
		{"read x; kill -9 $$", "signal: killed"},
	} {
		cmd := exec.Command("sh", "-c", c.script)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
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
		if _, err := e.Status(); err == nil {
			t.Fatal("Status of a running child did not fail")
		}
		waited := make(chan bool)
		go func() { waited <- e.Wait() }()
		stdin.Close() // the child goes on and exits
		if !<-waited {
			t.Fatal("Wait returned without the process exiting")
		}
		got, err := e.Status()
		if err != nil || got != c.status {
			t.Errorf("%q: status %q, %v; want %q", c.script, got, err, c.status)
		}
		// Not reaped by Status: Wait still gets it.
		_ = cmd.Wait()
		if cmd.ProcessState.String() != c.status {
			t.Errorf("%q: cmd.Wait says %q", c.script, cmd.ProcessState)
		}
		e.Close()
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
