package packaging

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virtd/virtd/daemon"
	"github.com/virtd/virtd/internal/testenv"
)

// suite is the Debian release the root is built from.
const suite = "bookworm"

// TestDebianRoot installs, changes, upgrades and purges the .deb packages
// in a clean Debian 12 root (debootstrap, minbase), with dist/ served as a
// local package directory and Debian's archive reached the way this
// machine's apt reaches it. virtd runs first as an init system without
// socket activation starts it, then, once virtd-libvirt-compat is
// installed, as systemd would from the installed socket units, and
// Debian's own virsh reaches it with no ?socket= in its URI.
func TestDebianRoot(t *testing.T) {
	testenv.Need(t, os.Geteuid() == 0, "the Debian root test needs root (debootstrap, chroot, mount)")
	needTools(t, "apt-get install debootstrap dpkg-dev", "debootstrap", "dpkg-scanpackages", "chroot", "mount", "umount", "tar")
	sources, err := debianSources()
	if err != nil {
		testenv.Missing(t, err.Error())
	}
	start := time.Now()
	v1, v2 := version, nextVersion(version)
	dist1 := buildPackages(t, v1)
	t.Logf("packages %s built (%s)", v1, time.Since(start).Round(time.Second))

	r := newRoot(t, sources)
	r.publish(dist1, v1)
	base := r.installed()

	// The KVM set: the daemon, the QEMU driver, QEMU, and not one Xen package.
	r.apt("install", "virtd-daemon-kvm", "virtd-client")
	kvm := r.installed()
	for name := range kvm {
		if strings.Contains(name, "xen") {
			t.Errorf("installing virtd-daemon-kvm installed %s", name)
		}
	}
	if _, err := os.Stat(r.path("/usr/libexec/virtd/drivers/virtd-driver-xen")); err == nil {
		t.Errorf("virtd-driver-xen is installed with virtd-daemon-kvm")
	}

	// virtd sees the QEMU driver alone; driver packages come and go while
	// it runs, and the maintainer scripts make it rescan.
	d := r.startVirtd(nil)
	r.waitDrivers("installed with virtd-daemon-kvm", "qemu")
	r.apt("install", "virtd-driver-lxc")
	r.waitDrivers("after installing virtd-driver-lxc", "lxc", "qemu")
	r.apt("remove", "virtd-driver-lxc")
	r.waitDrivers("after removing virtd-driver-lxc", "qemu")
	r.apt("install", "virtd")
	full := r.installed()
	r.waitDrivers("after installing virtd", "lxc", "qemu", "test", "xen")

	// A domain defined before an upgrade is still there after it.
	xml := "<domain type='qemu'>\n  <name>pkgtest</name>\n  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n" +
		"  <os><type arch='x86_64'>hvm</type></os>\n</domain>\n"
	if err := os.WriteFile(r.path("/root/pkgtest.xml"), []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	r.sh("virtsh -c qemu:///system define /root/pkgtest.xml")
	r.wantDomain("before the upgrade", "pkgtest")

	// virtd-libvirt-compat and libvirt's daemon packages: dpkg installs
	// neither next to the other.
	compat := "/srv/virtd/" + filepath.Base(debFile(dist1, "virtd-libvirt-compat", v1))
	libvirtDaemons := []string{"libvirt-daemon", "libvirt-daemon-system"}
	for _, name := range libvirtDaemons {
		fake := r.fakeDeb(name, "9.0.0-4+deb12u2")
		r.sh("dpkg -i " + fake)
		r.wantRefused("dpkg -i "+compat, "conflicting packages - not installing virtd-libvirt-compat")
		r.sh("dpkg --purge " + name)
	}
	// Installed with Debian's virsh (no libvirt daemon comes with it), it
	// puts libvirt's socket units in place, and a systemd starting virtd
	// from them has virtd serve libvirt's protocol at libvirt's paths.
	r.apt("install", "virtd-libvirt-compat", "libvirt-clients")
	for _, name := range libvirtDaemons {
		r.wantRefused("dpkg -i "+r.fakeDeb(name, "9.0.0-4+deb12u2"), "conflicting packages - not installing "+name)
	}
	for _, f := range []string{"virtd-libvirt.socket", "virtd-libvirt-ro.socket", "virtd.service.d/libvirt-compat.conf"} {
		if _, err := os.Stat(r.path("/usr/lib/systemd/system/" + f)); err != nil {
			t.Errorf("virtd-libvirt-compat installed no %s: %v", f, err)
		}
	}
	d.stop(t)
	sockets := r.systemdSockets()
	d = r.startVirtd(sockets)
	for path, mode := range map[string]os.FileMode{daemon.LibvirtStandardSocket: 0o600, daemon.LibvirtStandardSocketRO: 0o666} {
		if st, err := os.Stat(r.path(path)); err != nil || st.Mode().Type() != os.ModeSocket || st.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want a socket of mode %v", path, st.Mode(), err, mode)
		}
	}
	if _, err := os.Stat(r.path("/run/virtd/" + daemon.SocketLibvirt)); err == nil {
		t.Errorf("virtd listens on /run/virtd/%s besides the passed socket", daemon.SocketLibvirt)
	}
	r.wantVirshDomain("with virtd-libvirt-compat", "pkgtest")
	// A connection with no URI opens the first hypervisor whose driver
	// can run guests here: QEMU's.
	if out := strings.TrimSpace(r.sh("virsh uri")); out != "qemu:///system" {
		t.Errorf("virsh uri with no URI given: %q, want qemu:///system", out)
	}
	if out := r.sh("virsh -c qemu:///system version --daemon"); !strings.Contains(out, "Running against daemon: 9.0.0") {
		t.Errorf("virsh version --daemon:\n%s\nwant libvirt's level, 9.0.0", out)
	}

	dist2 := buildPackages(t, v2)
	r.publish(dist2, v2)
	var ours []string
	for name := range r.installed() {
		if name == "virtd" || strings.HasPrefix(name, "virtd-") {
			ours = append(ours, name)
		}
	}
	r.apt(append([]string{"install"}, ours...)...)
	for name, p := range r.installed() {
		if slices.Contains(ours, name) && p.version != v2 {
			t.Errorf("%s is at %s after the upgrade, want %s", name, p.version, v2)
		}
	}
	// Without systemd nothing restarts virtd: do what the unit's restart
	// does. The sockets stay with systemd while virtd is away.
	d.stop(t)
	for _, path := range []string{daemon.LibvirtStandardSocket, daemon.LibvirtStandardSocketRO} {
		if _, err := os.Stat(r.path(path)); err != nil {
			t.Errorf("virtd removed the socket systemd passed it: %v", err)
		}
	}
	d = r.startVirtd(sockets)
	r.waitDrivers("after the upgrade", "lxc", "qemu", "test", "xen")
	r.wantDomain("after the upgrade", "pkgtest")
	r.wantVirshDomain("after the upgrade", "pkgtest")
	if out := r.sh("virtsh -c qemu:///system version --daemon"); !strings.Contains(out, "Running against daemon: "+v2) {
		t.Errorf("virtsh version --daemon after the upgrade:\n%s\nwant %s", out, v2)
	}
	// The QEMU driver ran through the upgrade: the old process was stopped
	// and the call above started the new one.
	if out := r.sh("virtsh drivers"); !regexp.MustCompile(`(?m)^\s*qemu\s+running\s.*\s` + regexp.QuoteMeta(v2) + `\s`).MatchString(out) {
		t.Errorf("after the upgrade the QEMU driver is not the new one:\n%s", out)
	}

	// Purging leaves no configuration behind; removing the daemon stops it.
	r.apt(append([]string{"purge"}, ours...)...)
	if !d.exited(10 * time.Second) {
		t.Errorf("virtd still runs after virtd-daemon was removed")
	}
	r.killAll()
	for name, p := range r.installed() {
		if strings.Contains(name, "virtd") {
			t.Errorf("%s %s is still installed after the purge", name, p.version)
		}
	}
	var left []string
	_ = filepath.Walk(r.path("/etc/virtd"), func(p string, info os.FileInfo, err error) error {
		if err == nil {
			left = append(left, strings.TrimPrefix(p, r.root))
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("left after the purge: %q", left)
	}
	if _, err := os.Stat(r.path("/usr/lib/systemd/system/virtd.service.d")); err == nil {
		t.Errorf("/usr/lib/systemd/system/virtd.service.d is left after the purge")
	}

	// Figures for the packager's notes.
	var b strings.Builder
	fmt.Fprintf(&b, "package sizes (%s):\n", v1)
	files, _ := filepath.Glob(filepath.Join(dist1, "*"))
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "  %10d  %s\n", st.Size(), filepath.Base(f))
		}
	}
	ourSize := func(set map[string]pkgState) (n int) {
		for name, p := range set {
			if strings.HasPrefix(name, "virtd") {
				n += p.size
			}
		}
		return n
	}
	addedSize := func(set map[string]pkgState) (n, count int) {
		for name, p := range set {
			if _, ok := base[name]; !ok {
				n += p.size
				count++
			}
		}
		return n, count
	}
	kn, kc := addedSize(kvm)
	fn, fc := addedSize(full)
	fmt.Fprintf(&b, "installed size, KVM set (virtd-daemon-kvm virtd-client): ours %d KiB; with dependencies %d KiB in %d packages\n", ourSize(kvm), kn, kc)
	fmt.Fprintf(&b, "installed size, full set (+ virtd): ours %d KiB; with dependencies %d KiB in %d packages\n", ourSize(full), fn, fc)
	fmt.Fprintf(&b, "test time %s", time.Since(start).Round(time.Second))
	t.Log(b.String())
}

// source is one apt source of Debian's archive.
type source struct {
	uri, signedBy string
	suites        []string
	components    []string
}

// debianSources reads this machine's apt sources (one-line and deb822) and
// returns those of the Debian release the root is built from: the suite
// itself, its updates and its security suite.
func debianSources() ([]source, error) {
	files := []string{"/etc/apt/sources.list"}
	more, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	files = append(files, more...)
	var all []source
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		switch {
		case strings.HasSuffix(f, ".sources"):
			all = append(all, parseDeb822(string(b))...)
		case strings.HasSuffix(f, ".list"):
			all = append(all, parseOneLine(string(b))...)
		}
	}
	var out []source
	found := false
	for _, s := range all {
		var suites []string
		for _, su := range s.suites {
			if su == suite || strings.HasPrefix(su, suite+"-") {
				suites = append(suites, su)
				found = found || su == suite
			}
		}
		if len(suites) > 0 {
			s.suites = suites
			out = append(out, s)
		}
	}
	if !found {
		return nil, fmt.Errorf("no apt source for Debian %s in /etc/apt/sources.list or /etc/apt/sources.list.d", suite)
	}
	return out, nil
}

func parseDeb822(text string) []source {
	var out []source
	for _, stanza := range strings.Split(text, "\n\n") {
		fields := map[string]string{}
		for _, l := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "#") {
				continue
			}
			if k, v, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(l, " ") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if !slices.Contains(strings.Fields(fields["types"]), "deb") || fields["enabled"] == "no" {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			out = append(out, source{uri: uri, signedBy: fields["signed-by"],
				suites: strings.Fields(fields["suites"]), components: strings.Fields(fields["components"])})
		}
	}
	return out
}

func parseOneLine(text string) []source {
	var out []source
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(l, "deb ") {
			continue
		}
		l = strings.TrimSpace(strings.TrimPrefix(l, "deb "))
		var s source
		if strings.HasPrefix(l, "[") {
			opts, rest, _ := strings.Cut(l[1:], "]")
			for _, o := range strings.Fields(opts) {
				if v, ok := strings.CutPrefix(o, "signed-by="); ok {
					s.signedBy = v
				}
			}
			l = rest
		}
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		s.uri, s.suites, s.components = f[0], []string{f[1]}, f[2:]
		out = append(out, s)
	}
	return out
}

// root is a Debian root under test.
type root struct {
	t    *testing.T
	root string
	log  string // virtd's log, kept outside the root
}

// newRoot unpacks a clean Debian root, debootstrapping it first when the
// cache under .cache/packaging has none, mounts /proc in it, and points its
// apt at Debian's archive and at a local package directory, /srv/virtd.
// Cleanup stops every process running in it, unmounts and removes it.
func newRoot(t *testing.T, sources []source) *root {
	cache := filepath.Join(repoRoot, ".cache/packaging")
	tarball := filepath.Join(cache, suite+"-minbase.tar")
	archives := filepath.Join(cache, "archives")
	if err := os.MkdirAll(archives, 0o755); err != nil {
		t.Fatal(err)
	}
	mirror := ""
	for _, s := range sources {
		if slices.Contains(s.suites, suite) {
			mirror = s.uri
			break
		}
	}
	if _, err := os.Stat(tarball); err != nil {
		start := time.Now()
		tmp, err := os.MkdirTemp(cache, "debootstrap")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		out, err := exec.Command("debootstrap", "--variant=minbase", suite, tmp, mirror).CombinedOutput()
		if err != nil {
			if bytes.Contains(out, []byte("Failed getting release file")) {
				testenv.Missing(t, fmt.Sprintf("debootstrap cannot reach %s:\n%s", mirror, lastLines(out, 30)))
			}
			t.Fatalf("debootstrap %s from %s: %v\n%s", suite, mirror, err, lastLines(out, 30))
		}
		if out, err := exec.Command("tar", "-C", tmp, "-cf", tarball+".tmp", ".").CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, out)
		}
		if err := os.Rename(tarball+".tmp", tarball); err != nil {
			t.Fatal(err)
		}
		t.Logf("debootstrap --variant=minbase %s: %s (cached in %s)", suite, time.Since(start).Round(time.Second), tarball)
	}
	dir, err := os.MkdirTemp("", "virtd-debian-root")
	if err != nil {
		t.Fatal(err)
	}
	r := &root{t: t, root: dir, log: filepath.Join(t.TempDir(), "virtd.log")}
	t.Cleanup(r.cleanup)
	if out, err := exec.Command("tar", "-C", dir, "-xf", tarball).CombinedOutput(); err != nil {
		t.Fatalf("untar the root: %v\n%s", err, out)
	}
	if err := syscall.Mount("proc", r.path("/proc"), "proc", 0, ""); err != nil {
		t.Fatalf("mount /proc in the root: %v", err)
	}
	// apt: Debian's archive as this machine reaches it, and our packages.
	var deb822 strings.Builder
	for _, s := range sources {
		fmt.Fprintf(&deb822, "Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\n", s.uri, strings.Join(s.suites, " "), strings.Join(s.components, " "))
		if s.signedBy != "" {
			fmt.Fprintf(&deb822, "Signed-By: %s\n", s.signedBy)
			if _, err := os.Stat(r.path(s.signedBy)); err != nil {
				r.copyIn(s.signedBy, s.signedBy)
			}
		}
		deb822.WriteString("\n")
	}
	r.write("/etc/apt/sources.list", "")
	r.write("/etc/apt/sources.list.d/debian.sources", deb822.String())
	r.write("/etc/apt/sources.list.d/virtd.list", "deb [trusted=yes] file:/srv/virtd ./\n")
	r.copyIn("/etc/resolv.conf", "/etc/resolv.conf")
	// Downloaded Debian packages are kept between runs.
	debs, _ := filepath.Glob(filepath.Join(archives, "*.deb"))
	for _, f := range debs {
		r.copyIn(f, "/var/cache/apt/archives/"+filepath.Base(f))
	}
	return r
}

func (r *root) path(p string) string { return filepath.Join(r.root, p) }

func (r *root) write(p, content string) {
	r.t.Helper()
	if err := os.MkdirAll(filepath.Dir(r.path(p)), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(r.path(p), []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

func (r *root) copyIn(from, to string) {
	r.t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		r.t.Fatal(err)
	}
	r.write(to, string(b))
}

// publish adds the .deb files of version v to the root's local package
// directory and indexes it (dpkg-scanpackages) for apt.
func (r *root) publish(dist, v string) {
	r.t.Helper()
	repo := r.path("/srv/virtd")
	debs, _ := filepath.Glob(filepath.Join(dist, "*_"+v+"_*.deb"))
	if len(debs) == 0 {
		r.t.Fatalf("no .deb files for %s in %s", v, dist)
	}
	for _, f := range debs {
		r.copyIn(f, "/srv/virtd/"+filepath.Base(f))
	}
	cmd := exec.Command("dpkg-scanpackages", "--multiversion", ".")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		r.t.Fatalf("dpkg-scanpackages: %v", err)
	}
	if err := os.WriteFile(filepath.Join(repo, "Packages"), out, 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.sh("apt-get update -q")
}

// command builds a command that runs in the root with a clean environment.
func (r *root) command(args ...string) *exec.Cmd {
	cmd := exec.Command("chroot", append([]string{r.root}, args...)...)
	cmd.Env = r.env()
	return cmd
}

// env is the clean environment of what runs in the root.
func (r *root) env() []string {
	return []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}
}

// sh runs a shell command in the root and returns its output.
func (r *root) sh(script string) string {
	r.t.Helper()
	out, err := r.command("sh", "-c", script).CombinedOutput()
	if err != nil {
		r.t.Fatalf("in the root: %s: %v\n%s", script, err, lastLines(out, 40))
	}
	return string(out)
}

func (r *root) apt(args ...string) {
	r.t.Helper()
	start := time.Now()
	r.sh("apt-get -y -q --no-install-recommends " + strings.Join(args, " "))
	r.t.Logf("apt-get %s: %s", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
}

type pkgState struct {
	version string
	size    int // Installed-Size, KiB
}

// installed returns the packages installed in the root.
func (r *root) installed() map[string]pkgState {
	r.t.Helper()
	out := r.sh(`dpkg-query -W -f '${db:Status-Status} ${Package} ${Version} ${Installed-Size}\n'`)
	m := map[string]pkgState{}
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != "installed" {
			continue
		}
		size := 0
		if len(f) > 3 {
			size, _ = strconv.Atoi(f[3])
		}
		m[f[1]] = pkgState{version: f[2], size: size}
	}
	return m
}

// virtdProc is a virtd running in the root, in the foreground, as root.
type virtdProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startVirtd starts virtd in the root. With sockets nil, the way an init
// system without socket activation would: virtd binds its sockets itself.
// Otherwise the way systemd starts a Type=notify service its sockets
// trigger: it passes them (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID) and
// waits for READY=1 on NOTIFY_SOCKET.
func (r *root) startVirtd(sockets *systemdSockets) *virtdProc {
	r.t.Helper()
	log, err := os.OpenFile(r.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	args := []string{"/usr/sbin/virtd", "--driver-idle-timeout", "10m"}
	cmd := r.command(args...)
	var notify *net.UnixConn
	if sockets != nil {
		// LISTEN_PID is virtd's pid: sh's, which exec keeps through
		// chroot to virtd. The notification socket is abstract, so the
		// chroot does not hide it.
		cmd = exec.Command("sh", append([]string{"-c", `LISTEN_PID=$$; export LISTEN_PID; exec chroot "$0" "$@"`, r.root}, args...)...)
		cmd.Env = r.env()
		name := fmt.Sprintf("@virtd-pkgtest-notify-%d", os.Getpid())
		if notify, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"}); err != nil {
			r.t.Fatal(err)
		}
		defer notify.Close()
		cmd.Env = append(cmd.Env, fmt.Sprintf("LISTEN_FDS=%d", len(sockets.files)),
			"LISTEN_FDNAMES="+strings.Join(sockets.names, ":"), "NOTIFY_SOCKET="+name)
		cmd.ExtraFiles = sockets.files
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	d := &virtdProc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); log.Close(); close(d.done) }()
	ready := make(chan struct{})
	if notify != nil {
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := notify.Read(buf)
				if err != nil {
					return
				}
				if slices.Contains(strings.Split(string(buf[:n]), "\n"), "READY=1") {
					close(ready)
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if notify == nil {
			if _, err := os.Stat(r.path("/run/virtd/virtd-admin-sock")); err == nil {
				return d
			}
		}
		select {
		case <-ready:
			return d
		case <-d.done:
			r.t.Fatalf("virtd exited at start:\n%s", r.virtdLog())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("virtd did not get ready in 15s:\n%s", r.virtdLog())
		}
	}
}

// systemdSockets are the sockets systemd would hold for virtd.service in
// the root: one for each installed socket unit whose Service= is
// virtd.service, bound at its ListenStream= with its SocketMode= and
// DirectoryMode=, named by its FileDescriptorName=. Like systemd, the test
// keeps them while virtd stops and starts, and closes them at its end.
type systemdSockets struct {
	names []string
	files []*os.File
}

func (r *root) systemdSockets() *systemdSockets {
	r.t.Helper()
	units, _ := filepath.Glob(r.path("/usr/lib/systemd/system/*.socket"))
	s := &systemdSockets{}
	for _, unit := range units {
		sock := parseUnit(r.t, unit)["Socket"]
		if !slices.Equal(sock["Service"], []string{"virtd.service"}) {
			continue
		}
		if len(sock["ListenStream"]) != 1 || len(sock["FileDescriptorName"]) != 1 {
			r.t.Fatalf("%s: want one ListenStream= and one FileDescriptorName=: %q", unit, sock)
		}
		mode := func(key string, def os.FileMode) os.FileMode {
			if v := sock[key]; len(v) > 0 {
				m, err := strconv.ParseUint(v[0], 8, 32)
				if err != nil {
					r.t.Fatalf("%s: %s=%q", unit, key, v[0])
				}
				return os.FileMode(m)
			}
			return def
		}
		path := r.path(sock["ListenStream"][0])
		if err := os.MkdirAll(filepath.Dir(path), mode("DirectoryMode", 0o755)); err != nil {
			r.t.Fatal(err)
		}
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			r.t.Fatalf("%s: %v", unit, err)
		}
		if err := os.Chmod(path, mode("SocketMode", 0o666)); err != nil {
			r.t.Fatal(err)
		}
		f, err := l.File()
		l.SetUnlinkOnClose(false) // the file stays listening
		l.Close()
		if err != nil {
			r.t.Fatal(err)
		}
		s.names = append(s.names, sock["FileDescriptorName"][0])
		s.files = append(s.files, f)
	}
	if len(s.files) == 0 {
		r.t.Fatal("no installed socket unit starts virtd.service")
	}
	r.t.Cleanup(func() {
		for _, f := range s.files {
			f.Close()
		}
	})
	return s
}

// fakeDeb builds an empty package of that name and version, with no
// dependencies, into the root and returns its path there.
func (r *root) fakeDeb(name, v string) string {
	r.t.Helper()
	dir := r.t.TempDir()
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: virtd tests <tests@example.org>\nDescription: a stand-in for %s\n", name, v, name)
	if err := os.MkdirAll(filepath.Join(dir, "DEBIAN"), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "DEBIAN/control"), []byte(control), 0o644); err != nil {
		r.t.Fatal(err)
	}
	deb := "/root/fake/" + name + ".deb"
	if err := os.MkdirAll(r.path("/root/fake"), 0o755); err != nil {
		r.t.Fatal(err)
	}
	run(r.t, "dpkg-deb", "--root-owner-group", "--build", dir, r.path(deb))
	return deb
}

// wantRefused runs a shell command in the root that must fail saying want.
func (r *root) wantRefused(script, want string) {
	r.t.Helper()
	out, err := r.command("sh", "-c", script).CombinedOutput()
	if err == nil || !strings.Contains(string(out), want) {
		r.t.Errorf("%s: %v, want a refusal saying %q:\n%s", script, err, want, out)
	}
}

// wantVirshDomain checks that Debian's virsh, given libvirt's URI with no
// socket, lists the domain on both of libvirt's sockets.
func (r *root) wantVirshDomain(when, name string) {
	r.t.Helper()
	for _, ro := range []string{"", "-r "} {
		out := r.sh("virsh " + ro + "-c qemu:///system list --all --name")
		if !slices.Contains(lines(out), name) {
			r.t.Errorf("%s: virsh %slist --all --name does not list %s:\n%s", when, ro, name, out)
		}
	}
}

func (d *virtdProc) exited(within time.Duration) bool {
	select {
	case <-d.done:
		return true
	case <-time.After(within):
		return false
	}
}

func (d *virtdProc) stop(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if !d.exited(15 * time.Second) {
		t.Fatal("virtd did not stop on SIGTERM in 15s")
	}
}

func (r *root) virtdLog() string {
	b, _ := os.ReadFile(r.log)
	return string(lastLines(b, 40))
}

// drivers returns the driver names `virtsh drivers` lists.
func (r *root) drivers() ([]string, string, error) {
	out, err := r.command("virtsh", "drivers").CombinedOutput()
	if err != nil {
		return nil, string(out), err
	}
	var names []string
	rows := strings.Split(string(out), "\n")
	for _, l := range rows[min(2, len(rows)):] { // after the header and its rule
		if strings.TrimSpace(l) == "" {
			break
		}
		names = append(names, strings.Fields(l)[0])
	}
	return sorted(names), string(out), nil
}

// waitDrivers waits until `virtsh drivers` lists exactly want, without
// asking virtd to rescan: the packages' scripts must have done it.
func (r *root) waitDrivers(when string, want ...string) {
	r.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, out, err := r.drivers()
		if err == nil && slices.Equal(got, sorted(want)) {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: virtsh drivers lists %q, want %q (%v):\n%s\nvirtd's log:\n%s", when, got, want, err, out, r.virtdLog())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *root) wantDomain(when, name string) {
	r.t.Helper()
	out := r.sh("virtsh -c qemu:///system list --all --name")
	if !slices.Contains(lines(out), name) {
		r.t.Fatalf("%s: domain %s is not defined; list --all --name:\n%s", when, name, out)
	}
}

// killAll kills every process whose root directory is the test root: the
// virtd and driver processes the test started there.
func (r *root) killAll() {
	for range 50 {
		procs, _ := filepath.Glob("/proc/[0-9]*")
		found := false
		for _, p := range procs {
			if link, err := os.Readlink(p + "/root"); err == nil && link == r.root {
				pid, _ := strconv.Atoi(filepath.Base(p))
				_ = syscall.Kill(pid, syscall.SIGKILL)
				found = true
			}
		}
		if !found {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cleanup keeps the downloaded Debian packages, stops what runs in the
// root, unmounts everything under it and removes it, unless something is
// still mounted there.
func (r *root) cleanup() {
	r.killAll()
	debs, _ := filepath.Glob(r.path("/var/cache/apt/archives/*.deb"))
	for _, f := range debs {
		dst := filepath.Join(repoRoot, ".cache/packaging/archives", filepath.Base(f))
		if _, err := os.Stat(dst); err != nil {
			_ = exec.Command("cp", f, dst).Run()
		}
	}
	for _, m := range r.mounts() {
		if err := syscall.Unmount(m, 0); err != nil {
			_ = syscall.Unmount(m, syscall.MNT_DETACH)
		}
	}
	if left := r.mounts(); len(left) > 0 {
		r.t.Errorf("still mounted, %s kept: %q", r.root, left)
		return
	}
	if r.t.Failed() {
		r.t.Logf("virtd's log:\n%s", r.virtdLog())
	}
	os.RemoveAll(r.root)
}

// mounts lists the mount points under the root, deepest first.
func (r *root) mounts() []string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range lines(string(b)) {
		if f := strings.Fields(l); len(f) > 1 && (f[1] == r.root || strings.HasPrefix(f[1], r.root+"/")) {
			out = append(out, f[1])
		}
	}
	slices.Reverse(out)
	return out
}

func lastLines(b []byte, n int) []byte {
	ls := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return bytes.Join(ls, []byte("\n"))
}
