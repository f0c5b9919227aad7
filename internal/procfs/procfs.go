// Package procfs reads what virtd needs of /proc/<pid>/stat: a process's
// state, CPU time and start time. The start time, with the pid, names one
// process even after its pid is reused, which is how drivers and the host
// recognise a process they find again after a restart.
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture virtd runs on.
const clockTicks = 100

// Stat holds the fields of /proc/<pid>/stat virtd uses.
type Stat struct {
	State     byte          // R, S, D, Z, ...
	PPID      int           // the parent's pid
	CPU       time.Duration // utime + stime
	User      time.Duration // utime
	System    time.Duration // stime
	StartTime uint64        // field 22, in clock ticks since boot
	RSS       uint64        // resident set, in bytes
}

// ReadStat reads /proc/<pid>/stat: the figures of the whole process.
func ReadStat(pid int) (Stat, error) {
	return readStat("/proc/" + strconv.Itoa(pid) + "/stat")
}

// ReadThreadStat reads /proc/<pid>/task/<tid>/stat: the figures of one
// thread of the process pid.
func ReadThreadStat(pid, tid int) (Stat, error) {
	return readStat("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/stat")
}

func readStat(path string) (Stat, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Stat{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("%s: malformed", path)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 22 {
		return Stat{}, fmt.Errorf("%s: malformed", path)
	}
	num := func(n int) uint64 {
		v, _ := strconv.ParseUint(string(f[n-3]), 10, 64)
		return v
	}
	ticks := func(n uint64) time.Duration { return time.Duration(n) * time.Second / clockTicks }
	return Stat{
		State:     f[0][0],
		PPID:      int(num(4)),
		CPU:       ticks(num(14) + num(15)),
		User:      ticks(num(14)),
		System:    ticks(num(15)),
		StartTime: num(22),
		RSS:       num(24) * uint64(os.Getpagesize()),
	}, nil
}

// Exited reports whether the process is gone or a zombie.
func (s Stat) Exited() bool { return s.State == 'Z' || s.State == 'X' }

// Alive reports whether pid is the process that started at startTime and
// has not exited (a zombie, not yet reaped, counts as exited).
func Alive(pid int, startTime uint64) bool {
	st, err := ReadStat(pid)
	return err == nil && st.StartTime == startTime && !st.Exited()
}

// Gone reports whether pid has exited, whoever it was.
func Gone(pid int) bool {
	st, err := ReadStat(pid)
	return err != nil || st.Exited()
}
