package qemu

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on
// every Linux architecture the driver runs on.
const clockTicks = 100

// procStat holds the fields of /proc/<pid>/stat the driver uses.
type procStat struct {
	state     byte
	cpu       time.Duration // utime + stime
	startTime uint64        // field 22, in clock ticks since boot
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	num := func(n int) uint64 {
		v, _ := strconv.ParseUint(string(f[n-3]), 10, 64)
		return v
	}
	return procStat{
		state:     f[0][0],
		cpu:       time.Duration(num(14)+num(15)) * time.Second / clockTicks,
		startTime: num(22),
	}, nil
}

// processAlive reports whether pid is the process that started at
// startTime and has not exited (a zombie counts as exited).
func processAlive(pid int, startTime uint64) bool {
	st, err := readProcStat(pid)
	return err == nil && st.startTime == startTime && st.state != 'Z' && st.state != 'X'
}

// waitPidfd blocks until the process behind pidfd exits. It works for
// processes that are not the driver's children (found again after a
// restart), which wait(2) cannot wait for.
func waitPidfd(fd int) error {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if fds[0].Revents != 0 {
			return nil
		}
	}
}
