// Package layers checks the import rules ARCHITECTURE.md states, over what
// `go list` says each package depends on (its non-test dependencies,
// direct or not).
package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/virtd/virtd/"

// The drivers' own code, and the package that links libxl.
var drivers = []string{"internal/qemu", "internal/lxc", "internal/xen", "internal/testdriver"}

// rule: packages under one of who may not depend on packages under one
// of mayNot, except those under except.
type rule struct {
	who, mayNot, except []string
	why                 string
}

func list(s ...[]string) []string {
	var out []string
	for _, l := range s {
		out = append(out, l...)
	}
	return out
}

var rules = []rule{
	{who: []string{"virt"}, mayNot: []string{""},
		why: "virt is the vocabulary every part shares: it depends on no other part"},
	{who: []string{"driver"}, mayNot: list([]string{"daemon", "core", "host", "client", "proto/virtd/api"}, drivers),
		why: "the driver library is all a driver author imports: nothing of the daemon, no driver"},
	{who: drivers, mayNot: []string{"daemon", "core", "host", "client", "proto/virtd/api"},
		why: "a driver reaches the daemon only through the driver API (package driver)"},
	{who: []string{"internal/qemu"}, mayNot: []string{"internal/lxc", "internal/xen", "internal/testdriver"}, why: "drivers are independent of each other"},
	{who: []string{"internal/lxc"}, mayNot: []string{"internal/qemu", "internal/xen", "internal/testdriver"}, why: "drivers are independent of each other"},
	{who: []string{"internal/testdriver"}, mayNot: []string{"internal/qemu", "internal/lxc", "internal/xen"}, why: "drivers are independent of each other"},
	{who: []string{"internal/xen"}, mayNot: []string{"internal/qemu", "internal/lxc", "internal/testdriver"}, why: "drivers are independent of each other"},
	{who: []string{""}, mayNot: []string{"internal/xen/libxl"}, except: []string{"internal/xen", "cmd/driver-xen", "test/xen"},
		why: "libxl is cgo and links Xen's libraries: only the Xen driver may carry them"},
	{who: []string{"host"}, mayNot: list([]string{"daemon", "core", "client", "proto/virtd/api"}, drivers),
		why: "host supervises driver processes; it knows the driver API only"},
	{who: []string{"core"}, mayNot: list([]string{"daemon", "client", "proto/virtd/api"}, drivers),
		why: "the core is the front ends' common ground: it knows no wire format of theirs and no driver"},
	{who: []string{"daemon", "cmd/virtd"}, mayNot: list([]string{"client"}, drivers), except: []string{"daemon/daemontest"},
		why: "the daemon holds no hypervisor code (daemontest serves the test driver in process, for tests)"},
	{who: []string{"client", "internal/virtsh", "cmd/virtsh"}, mayNot: list([]string{"daemon", "core", "host", "driver", "proto/virtd/driver"}, drivers),
		why: "clients speak the public API only"},
}

func under(pkg string, prefixes []string) bool {
	for _, p := range prefixes {
		if p == "" || pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

// violations returns "pkg imports dep: why" for each forbidden dependency
// in deps (package -> its dependencies, module-relative).
func violations(deps map[string][]string) []string {
	var out []string
	for pkg, ds := range deps {
		for _, r := range rules {
			if !under(pkg, r.who) || under(pkg, r.except) {
				continue
			}
			for _, d := range ds {
				if d != pkg && under(d, r.mayNot) {
					out = append(out, pkg+" depends on "+d+": "+r.why)
				}
			}
		}
	}
	return out
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module)
		for _, d := range f[1:] {
			if strings.HasPrefix(d, module) {
				deps[pkg] = append(deps[pkg], strings.TrimPrefix(d, module))
			} else if d == strings.TrimSuffix(module, "/") {
				deps[pkg] = append(deps[pkg], "")
			}
		}
		if _, ok := deps[pkg]; !ok {
			deps[pkg] = nil
		}
	}
	for _, want := range []string{"virt", "driver", "host", "core", "daemon", "client", "internal/qemu", "cmd/virtd"} {
		if _, ok := deps[want]; !ok {
			t.Fatalf("go list did not list %s: the rules would check nothing", want)
		}
	}
	for _, v := range violations(deps) {
		t.Error(v)
	}
}

// TestRulesCatchViolations: the check finds each kind of forbidden import.
func TestRulesCatchViolations(t *testing.T) {
	for _, tt := range []struct{ pkg, dep string }{
		{"internal/qemu", "daemon"},
		{"internal/lxc/controller", "host"},
		{"daemon", "internal/xen"},
		{"core", "proto/virtd/api/v1"},
		{"client", "driver/domxml"},
		{"cmd/driver-qemu", "internal/xen/libxl"},
		{"virt", "internal/rpcerr"},
		{"internal/testdriver", "internal/qemu/qmp"},
	} {
		if v := violations(map[string][]string{tt.pkg: {tt.dep}}); len(v) == 0 {
			t.Errorf("%s importing %s is not caught", tt.pkg, tt.dep)
		}
	}
	for _, tt := range []struct{ pkg, dep string }{
		{"internal/xen", "internal/xen/libxl"},
		{"daemon/daemontest", "internal/testdriver"},
		{"core", "host"},
		{"internal/qemu", "driver/domutil"},
	} {
		if v := violations(map[string][]string{tt.pkg: {tt.dep}}); len(v) != 0 {
			t.Errorf("an allowed import is refused: %v", v)
		}
	}
}
