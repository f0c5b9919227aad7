// Package packaging tests virtd's packages as a packager and a user meet
// them: the .rpm and .deb files' names, requirements and file lists, and
// the .deb files installed, upgraded and purged in a clean Debian 12 root.
// The packages are built by scripts/packages.sh, as `make packages` does.
package packaging

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/virtd/virtd/internal/testenv"
)

var (
	repoRoot string // the repository's top directory
	version  string // the VERSION file's
	distBase string // one dist directory per built version under it
)

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	repoRoot = filepath.Clean(filepath.Join(wd, "../.."))
	b, err := os.ReadFile(filepath.Join(repoRoot, "VERSION"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	version = strings.TrimSpace(string(b))
	distBase, err = os.MkdirTemp("", "virtd-dist")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(distBase)
	os.Exit(code)
}

func needTools(t *testing.T, hint string, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, fmt.Sprintf("%s is not installed (%s)", tool, hint))
		}
	}
}

var builds sync.Map // version -> *buildResult

type buildResult struct {
	once sync.Once
	dir  string
	err  error
}

// buildPackages builds every package at version v with scripts/packages.sh
// into a directory of its own, once per test binary, and returns it.
func buildPackages(t *testing.T, v string) string {
	t.Helper()
	r, _ := builds.LoadOrStore(v, &buildResult{})
	b := r.(*buildResult)
	b.once.Do(func() {
		b.dir = filepath.Join(distBase, v)
		cmd := exec.Command("bash", filepath.Join(repoRoot, "scripts/packages.sh"))
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "VERSION="+v, "DIST="+b.dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("scripts/packages.sh with VERSION=%s: %v\n%s", v, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

// nextVersion returns v with its last number raised by one: 0.1.0 -> 0.1.1.
func nextVersion(v string) string {
	i := strings.LastIndexAny(v, ".")
	n, err := strconv.Atoi(v[i+1:])
	if err != nil {
		return v + ".1"
	}
	return v[:i+1] + strconv.Itoa(n+1)
}

// pkg is what one package must be.
type pkg struct {
	name         string
	debDeps      []string // Depends of the .deb, as written there
	rpmReqs      []string // Requires of the .rpm, as rpm -qpR prints them
	debConflicts []string // Conflicts of the .deb
	rpmConflicts []string // Conflicts of the .rpm, as rpm -qp --conflicts prints them
	files        []string // regular files and directories it holds
	config       []string // configuration files
	driver       bool     // carries the driver maintainer scripts
	scripts      string   // a command its maintainer scripts run, when it has scripts but is no driver
}

// expected lists every package at version v.
func expected(v string) []pkg {
	eq := func(name string) string { return name + " (= " + v + ")" }
	req := func(name string) string { return name + " = " + v }
	driver := func(name string, debDeps, rpmReqs []string) pkg {
		return pkg{
			name:    "virtd-driver-" + name,
			debDeps: append([]string{eq("virtd-daemon")}, debDeps...),
			rpmReqs: append([]string{req("virtd-daemon")}, rpmReqs...),
			files:   []string{"/usr/libexec/virtd/drivers/virtd-driver-" + name},
			driver:  true,
		}
	}
	return []pkg{
		{
			name: "virtd-daemon",
			files: []string{
				"/etc/virtd", "/etc/virtd/virtd.conf",
				"/usr/lib/systemd/system/virtd-admin.socket", "/usr/lib/systemd/system/virtd-ro.socket",
				"/usr/lib/systemd/system/virtd.service", "/usr/lib/systemd/system/virtd.socket",
				"/usr/lib/tmpfiles.d/virtd.conf", "/usr/libexec/virtd/drivers", "/usr/sbin/virtd",
				"/usr/share/doc/virtd-daemon/README.md", "/var/lib/virtd", "/var/log/virtd",
			},
			config:  []string{"/etc/virtd/virtd.conf"},
			scripts: "systemctl",
		},
		{name: "virtd-client", files: []string{"/usr/bin/virtsh"}},
		driver("qemu", nil, nil),
		driver("lxc", nil, nil),
		driver("xen",
			[]string{"libc6 (>= 2.34)", "libxenmisc4.17 (>= 4.17.0)", "libxentoollog1 (>= 4.17.0)", "libyajl2 (>= 2.0.4)"},
			[]string{"xen-libs", "yajl"}),
		driver("test", nil, nil),
		{
			name:    "virtd-daemon-kvm",
			debDeps: []string{eq("virtd-daemon"), eq("virtd-driver-qemu"), "qemu-system-x86"},
			rpmReqs: []string{req("virtd-daemon"), req("virtd-driver-qemu"), "qemu-kvm"},
		},
		{
			name:    "virtd-daemon-qemu",
			debDeps: []string{eq("virtd-daemon"), eq("virtd-driver-qemu"), "qemu-system"},
			rpmReqs: []string{req("virtd-daemon"), req("virtd-driver-qemu"), "qemu"},
		},
		{
			name:    "virtd-daemon-xen",
			debDeps: []string{eq("virtd-daemon"), eq("virtd-driver-xen"), "xen-system-amd64"},
			rpmReqs: []string{req("virtd-daemon"), req("virtd-driver-xen"), "xen"},
		},
		{
			name:    "virtd-daemon-lxc",
			debDeps: []string{eq("virtd-daemon"), eq("virtd-driver-lxc")},
			rpmReqs: []string{req("virtd-daemon"), req("virtd-driver-lxc")},
		},
		{
			name:         "virtd-libvirt-compat",
			debDeps:      []string{eq("virtd-daemon")},
			rpmReqs:      []string{req("virtd-daemon")},
			debConflicts: []string{"libvirt-daemon", "libvirt-daemon-system"},
			rpmConflicts: []string{"libvirt-daemon", "libvirt-daemon-proxy"},
			files: []string{
				"/usr/lib/systemd/system/virtd-libvirt.socket", "/usr/lib/systemd/system/virtd-libvirt-ro.socket",
				"/usr/lib/systemd/system/virtd.service.d", "/usr/lib/systemd/system/virtd.service.d/libvirt-compat.conf",
			},
			scripts: "systemctl",
		},
		{
			name: "virtd",
			debDeps: []string{eq("virtd-daemon"), eq("virtd-client"), eq("virtd-driver-qemu"),
				eq("virtd-driver-lxc"), eq("virtd-driver-xen"), eq("virtd-driver-test")},
			rpmReqs: []string{req("virtd-daemon"), req("virtd-client"), req("virtd-driver-qemu"),
				req("virtd-driver-lxc"), req("virtd-driver-xen"), req("virtd-driver-test")},
		},
	}
}

func debArch() string { return runtime.GOARCH }

func rpmArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

func debFile(dist, name, v string) string {
	return filepath.Join(dist, fmt.Sprintf("%s_%s_%s.deb", name, v, debArch()))
}

func rpmFile(dist, name, v string) string {
	return filepath.Join(dist, fmt.Sprintf("%s-%s-1.%s.rpm", name, v, rpmArch()))
}

// run runs a command and returns its standard output; it fails the test
// with both outputs on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// lines splits output into its non-empty trimmed lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

func sameSet(a, b []string) bool {
	return strings.Join(sorted(a), "\n") == strings.Join(sorted(b), "\n")
}
