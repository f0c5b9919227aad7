package host

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
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
// reported as shadowed. A file is accepted only if tr trusts it (see
// Trust): a regular executable, owned by root or tr.UID and writable by no
// one else, in directories no one else may change, reached through
// symlinks that pass the same checks, and with its pinned content.
func Scan(dirs []string, tr Trust) (map[string]Candidate, []Rejected) {
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
			if err := tr.accept(name, path); err != nil {
				rejected = append(rejected, Rejected{path, err.Error()})
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

// accept checks a driver file as launching it will: an unpinned file by
// its path, a pinned one also by its content.
func (tr Trust) accept(name, path string) error {
	if _, ok := tr.SHA256[name]; !ok {
		_, err := tr.resolve(path)
		return err
	}
	f, err := tr.open(name, path)
	if err != nil {
		return err
	}
	return f.Close()
}
