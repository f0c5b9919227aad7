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
