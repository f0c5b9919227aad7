package host

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStartTime returns a process's start time (field 22 of
// /proc/<pid>/stat, in clock ticks since boot) and whether it is a zombie.
// Together with the pid it names one process, even after pid reuse.
func procStartTime(pid int) (start uint64, zombie bool, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return 0, false, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	return start, fields[0] == "Z", err
}

// procAlive reports whether the process pid, started at start, still runs.
func procAlive(pid int, start uint64) bool {
	got, zombie, err := procStartTime(pid)
	return err == nil && !zombie && got == start
}
