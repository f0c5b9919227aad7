package host

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
)

// Prefix is the file name prefix of every driver executable.
const Prefix = "virtd-driver-"

var driverName = regexp.MustCompile(`^[a-z0-9][a-z0-9_]*$`)

// Candidate is a driver executable found in a driver directory.
type Candidate struct {
	Name string
	Path string
}

// Rejected is a file in a driver directory that is not accepted as a
// driver, with the reason.
type Rejected struct {
	Path   string
	Reason string
}

// Scan reads the driver directories in order and returns the drivers found,
// by name, and every file rejected, with the reason. A name found in two
// directories is taken from the first, as PATH does; the later file is
// reported as shadowed. Files are accepted only if they are regular,
// executable, owned by root or by uid, and not writable by group or others.
func Scan(dirs []string, uid int) (map[string]Candidate, []Rejected) {
	found := map[string]Candidate{}
	var rejected []Rejected
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if !os.IsNotExist(err) {
				rejected = append(rejected, Rejected{Path: dir, Reason: fmt.Sprintf("cannot read directory: %v", err)})
			}
			continue
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), Prefix) {
				continue
			}
			path := filepath.Join(dir, e.Name())
			name := strings.TrimPrefix(e.Name(), Prefix)
			if !driverName.MatchString(name) {
				rejected = append(rejected, Rejected{path, fmt.Sprintf("driver name %q is not valid (lowercase letters, digits and _ only)", name)})
				continue
			}
			if reason := check(path, uid); reason != "" {
				rejected = append(rejected, Rejected{path, reason})
				continue
			}
			if first, ok := found[name]; ok {
				rejected = append(rejected, Rejected{path, "shadowed by " + first.Path})
				continue
			}
			found[name] = Candidate{Name: name, Path: path}
		}
	}
	sort.Slice(rejected, func(i, j int) bool { return rejected[i].Path < rejected[j].Path })
	return found, rejected
}

// check returns why a driver file is not acceptable, or "".
func check(path string, uid int) string {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Sprintf("cannot stat: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Sprintf("not a regular file (%s)", fi.Mode().Type())
	}
	perm := fi.Mode().Perm()
	if perm&0o111 == 0 {
		return fmt.Sprintf("not executable (mode %04o)", perm)
	}
	if perm&0o022 != 0 {
		return fmt.Sprintf("writable by group or others (mode %04o)", perm)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "cannot read file owner"
	}
	if st.Uid != 0 && int(st.Uid) != uid {
		return fmt.Sprintf("owned by uid %d, not by root or the daemon's user (uid %d)", st.Uid, uid)
	}
	return ""
}
