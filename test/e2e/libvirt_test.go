package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"golang.org/x/sys/unix"

	"github.com/virtd/virtd/internal/testenv"
)

// libvirt's own clients (virsh 9.0, python3-libvirt, go-libvirt) against
// virtd's libvirt socket, and the real drivers behind it.

func (d *daemon) libvirtSock() string { return filepath.Join(d.runDir, "libvirt-sock") }

// lvURI is the URI libvirt's clients use to reach virtd's socket for a
// driver URI such as qemu:///system.
func (d *daemon) lvURI(uri string) string {
	scheme, rest, _ := strings.Cut(uri, "://")
	return fmt.Sprintf("%s+unix://%s?socket=%s", scheme, rest, d.libvirtSock())
}

func virshPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("virsh")
	if err != nil {
		testenv.Missing(t, "virsh not installed: apt-get install --no-install-recommends libvirt-clients")
	}
	return p
}

// virshEnv keeps virsh from starting a libvirt daemon of its own and from
// writing into the real home directory.
func virshEnv(t *testing.T) []string {
	home := t.TempDir()
	return []string{"LIBVIRT_AUTOSTART=0", "HOME=" + home, "XDG_CONFIG_HOME=" + home, "XDG_CACHE_HOME=" + home,
		"XDG_RUNTIME_DIR=" + home, "PATH=" + os.Getenv("PATH"), "LANG=C"}
}

// virsh runs virsh on uri through virtd's libvirt socket.
func (d *daemon) virsh(t *testing.T, uri string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(virshPath(t), append([]string{"-c", d.lvURI(uri)}, args...)...)
	cmd.Env = virshEnv(t)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("virsh %s hangs\n%s%s", strings.Join(args, " "), out.String(), errb.String())
	}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

func (d *daemon) mustVirsh(t *testing.T, uri string, args ...string) string {
	t.Helper()
	out, errs, code := d.virsh(t, uri, args...)
	if code != 0 {
		t.Fatalf("virsh %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// wantVirsh runs virsh and checks that its output has every one of want.
func (d *daemon) wantVirsh(t *testing.T, uri string, args []string, want ...string) string {
	t.Helper()
	out := d.mustVirsh(t, uri, args...)
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("virsh %s: output lacks %q:\n%s", strings.Join(args, " "), w, out)
		}
	}
	return out
}

// virshLifecycle walks one domain through what virsh users do, with the
// checks that matter to them. xmlPath defines a domain named name.
func virshLifecycle(t *testing.T, d *daemon, uri, name, xmlPath, hvType string, shutdown bool) {
	d.wantVirsh(t, uri, []string{"version"}, "Using library: libvirt 9.0.0", "Running hypervisor: "+hvType)
	d.wantVirsh(t, uri, []string{"define", xmlPath}, fmt.Sprintf("Domain '%s' defined", name))
	d.wantVirsh(t, uri, []string{"list", "--all"}, name, "shut off")
	d.wantVirsh(t, uri, []string{"start", name}, fmt.Sprintf("Domain '%s' started", name))
	d.wantVirsh(t, uri, []string{"dominfo", name}, "Name:           "+name, "State:          running", "Persistent:     yes", "Security model: none")
	d.wantVirsh(t, uri, []string{"domstate", "--reason", name}, "running (booted)")
	d.wantVirsh(t, uri, []string{"dumpxml", name}, "<name>"+name+"</name>")
	d.wantVirsh(t, uri, []string{"domstats", name}, fmt.Sprintf("Domain: '%s'", name), "state.state=1", "cpu.time=")
	d.wantVirsh(t, uri, []string{"nodememstats"}, "total  :")
	d.wantVirsh(t, uri, []string{"domcapabilities"}, "<domainCapabilities>")
	d.wantVirsh(t, uri, []string{"suspend", name}, fmt.Sprintf("Domain '%s' suspended", name))
	d.wantVirsh(t, uri, []string{"domstate", "--reason", name}, "paused (user)")
	d.wantVirsh(t, uri, []string{"resume", name}, fmt.Sprintf("Domain '%s' resumed", name))
	d.wantVirsh(t, uri, []string{"list"}, name, "running")
	if shutdown {
		d.wantVirsh(t, uri, []string{"shutdown", name}, fmt.Sprintf("Domain '%s' is being shutdown", name))
		eventually(t, 60*time.Second, name+" shut off after shutdown", func() bool {
			out, _, _ := d.virsh(t, uri, "domstate", name)
			return strings.Contains(out, "shut off")
		})
		d.mustVirsh(t, uri, "start", name)
	}
	d.wantVirsh(t, uri, []string{"destroy", name}, fmt.Sprintf("Domain '%s' destroyed", name))
	d.wantVirsh(t, uri, []string{"domstate", "--reason", name}, "shut off (destroyed)")
	d.wantVirsh(t, uri, []string{"domstats", "--list-shutoff"}, fmt.Sprintf("Domain: '%s'", name), "state.state=5")
	d.wantVirsh(t, uri, []string{"undefine", name}, fmt.Sprintf("Domain '%s' has been undefined", name))
	out, errs, code := d.virsh(t, uri, "dominfo", name)
	if code == 0 || !strings.Contains(errs, fmt.Sprintf("failed to get domain '%s'", name)) {
		t.Errorf("dominfo of an undefined domain: exit %d\n%s%s", code, out, errs)
	}

	// A transient domain: it runs, and is gone once it stops.
	doc, err := os.ReadFile(xmlPath)
	if err != nil {
		t.Fatal(err)
	}
	tname := name + "-t"
	tpath := filepath.Join(t.TempDir(), tname+".xml")
	if err := writeFile(tpath, strings.Replace(string(doc), "<name>"+name+"</name>", "<name>"+tname+"</name>", 1)); err != nil {
		t.Fatal(err)
	}
	d.wantVirsh(t, uri, []string{"create", tpath}, fmt.Sprintf("Domain '%s' created from %s", tname, tpath))
	d.wantVirsh(t, uri, []string{"dominfo", tname}, "State:          running", "Persistent:     no")
	d.wantVirsh(t, uri, []string{"list", "--transient"}, tname)
	d.wantVirsh(t, uri, []string{"destroy", tname}, fmt.Sprintf("Domain '%s' destroyed", tname))
	out, errs, code = d.virsh(t, uri, "dominfo", tname)
	if code == 0 || !strings.Contains(errs, fmt.Sprintf("failed to get domain '%s'", tname)) {
		t.Errorf("dominfo of a transient domain after destroy: exit %d\n%s%s", code, out, errs)
	}
}

func TestVirshTestDriver(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	uri := "test:///default"
	xmlPath := filepath.Join(t.TempDir(), "v.xml")
	if err := writeFile(xmlPath, `<domain type='test'><name>v1</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`); err != nil {
		t.Fatal(err)
	}
	virshLifecycle(t, d, uri, "v1", xmlPath, "Test", true)

	// Errors read as libvirt's.
	_, errs, code := d.virsh(t, uri, "start", "nosuch")
	if code == 0 || !strings.Contains(errs, "failed to get domain 'nosuch'") {
		t.Errorf("start of an unknown domain: exit %d: %s", code, errs)
	}
	bad := filepath.Join(t.TempDir(), "bad.xml")
	if err := writeFile(bad, "<domain type='test'><name>x</name"); err != nil {
		t.Fatal(err)
	}
	_, errs, code = d.virsh(t, uri, "define", bad)
	if code == 0 || !strings.Contains(errs, "XML") {
		t.Errorf("define of malformed XML: exit %d: %s", code, errs)
	}
}

// TestVirshEventLoop: `virsh event --loop --all` sees the lifecycle events
// of what another client does.
func TestVirshEventLoop(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	uri := "test:///default"
	xmlPath := filepath.Join(t.TempDir(), "ev.xml")
	if err := writeFile(xmlPath, `<domain type='test'><name>ev</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`); err != nil {
		t.Fatal(err)
	}
	d.mustVirsh(t, uri, "define", xmlPath)
	cmd := exec.Command(virshPath(t), "-c", d.lvURI(uri), "event", "--loop", "--all")
	cmd.Env = virshEnv(t)
	out := &logBuf{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// virsh says nothing once it is registered: start and destroy until
	// its registration has taken and both events show.
	eventually(t, 30*time.Second, "virsh event shows the start and destroy", func() bool {
		d.mustVirsh(t, uri, "start", "ev")
		d.mustVirsh(t, uri, "destroy", "ev")
		s := out.String()
		return strings.Contains(s, "event 'lifecycle' for domain 'ev': Started Booted") &&
			strings.Contains(s, "event 'lifecycle' for domain 'ev': Stopped Destroyed")
	})
	if cmd.ProcessState != nil {
		t.Fatalf("virsh event ended: %s", out.String())
	}
}

func TestVirshQEMU(t *testing.T) {
	d := newDaemon(t, []string{"qemu"})
	uri := "qemu:///system"
	xmlPath := guestXML(t, "vq", "")
	virshLifecycle(t, d, uri, "vq", xmlPath, "QEMU", false)
	d.wantVirsh(t, uri, []string{"domxml-to-native", "qemu-argv", xmlPath}, "qemu-system-x86_64", "-name guest=vq")
}

func TestVirshLXC(t *testing.T) {
	d := newDaemon(t, []string{"lxc"})
	virshLifecycle(t, d, "lxc:///system", "vl", containerXML(t, "vl"), "LXC", false)
}

// TestVirshConsole: `virsh console` reaches a real QEMU guest's serial
// console, through a pty as a user's terminal would be.
func TestVirshConsole(t *testing.T) {
	d := newDaemon(t, []string{"qemu"})
	uri := "qemu:///system"
	d.mustVirsh(t, uri, "define", guestXML(t, "vcon", ""))
	d.mustVirsh(t, uri, "start", "vcon")
	t.Cleanup(func() { d.virsh(t, uri, "destroy", "vcon") })

	master, slave := openPTY(t)
	cmd := exec.Command(virshPath(t), "-c", d.lvURI(uri), "console", "vcon")
	cmd.Env = virshEnv(t)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	seen := collect(master)
	eventually(t, 20*time.Second, "virsh console connects", func() bool {
		return strings.Contains(seen.String(), "Connected to domain")
	})
	// What we type comes back from the guest's echo loop.
	eventually(t, 90*time.Second, "the guest echoes through virsh console", func() bool {
		if _, err := master.Write([]byte("hello\r")); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(seen.String(), "VIRTD-ECHO:hello")
	})
	// Ctrl+] leaves the console, and virsh exits cleanly. virsh sees the
	// escape only as the first byte of what it reads, and it may read it
	// with the last "hello": send it until virsh is gone.
	var exitErr error
	eventually(t, 20*time.Second, "virsh console exits on Ctrl+]", func() bool {
		select {
		case exitErr = <-exited:
			exited <- exitErr
			return true
		default:
		}
		_, _ = master.Write([]byte{0x1d})
		return false
	})
	if exitErr != nil {
		t.Errorf("virsh console exited with %v:\n%s", exitErr, seen.String())
	}
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// TestPythonLibvirt: python3-libvirt's lifecycle with callbacks on its
// default event loop, and the calls management tools make.
func TestPythonLibvirt(t *testing.T) {
	const python = "/usr/bin/python3" // the bindings live in the system interpreter
	if err := exec.Command(python, "-c", "import libvirt").Run(); err != nil {
		testenv.Missing(t, "python3-libvirt not installed: apt-get install --no-install-recommends python3-libvirt")
	}
	d := newDaemon(t, []string{"test"})
	xmlPath := filepath.Join(t.TempDir(), "py.xml")
	if err := writeFile(xmlPath, `<domain type='test'><name>py</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "testdata/libvirt_client.py", d.lvURI("test:///default"), xmlPath)
	cmd.Env = virshEnv(t)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
		t.Fatalf("python3-libvirt: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// lvDial connects go-libvirt to virtd's libvirt socket on uri.
func (d *daemon) lvDial(t *testing.T, uri string) *golibvirt.Libvirt {
	t.Helper()
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(d.libvirtSock()), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(golibvirt.ConnectURI(uri)); err != nil {
		t.Fatalf("go-libvirt connect %s: %v", uri, err)
	}
	t.Cleanup(func() { _ = l.Disconnect() })
	return l
}

// TestLibvirtClientsThroughDriverKill: go-libvirt clients keep calling
// while the driver is killed: a call in flight gets a libvirt error, never
// a dropped connection, and the same connections go on once the driver is
// back.
func TestLibvirtClientsThroughDriverKill(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	uri := "test:///default"
	const clients = 16
	conns := make([]*golibvirt.Libvirt, clients)
	for i := range conns {
		conns[i] = d.lvDial(t, uri)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls, ok, failed atomic.Int64
	var firstErr atomic.Value
	bad := make(chan error, clients)
	for i, l := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Info of a running domain asks the driver itself: the
				// test driver's own domain "test", which runs again in
				// a new driver process.
				dom, err := l.DomainLookupByName("test")
				if err == nil {
					_, _, _, _, _, err = l.DomainGetInfo(dom)
				}
				calls.Add(1)
				if err == nil {
					ok.Add(1)
				} else {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					var le golibvirt.Error
					if !errors.As(err, &le) {
						bad <- fmt.Errorf("client %d: not a libvirt error: %v", i, err)
						return
					}
				}
			}
		}()
	}
	eventually(t, 10*time.Second, "calls flowing", func() bool { return calls.Load() > 200 })
	pid := int(d.driverStatus("test").PID)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the driver restarted", func() bool {
		st := d.driverStatus("test")
		return st.State == "running" && st.PID != int64(pid)
	})
	before := ok.Load()
	eventually(t, 10*time.Second, "calls answered after the restart", func() bool { return ok.Load() > before+200 })
	close(stop)
	wg.Wait()
	close(bad)
	for err := range bad {
		t.Error(err)
	}
	// Every connection still answers.
	for i, l := range conns {
		if _, err := l.ConnectGetHostname(); err != nil {
			t.Errorf("client %d after the kill: %v", i, err)
		}
	}
	t.Logf("%d calls, %d failed with libvirt errors while the driver was down (the first: %v)", calls.Load(), failed.Load(), firstErr.Load())
}

// TestLibvirtClientsThroughDaemonRestart: a virtd restart ends the
// clients' connections with an error; a new connection sees every domain
// as it was.
func TestLibvirtClientsThroughDaemonRestart(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	uri := "test:///default"
	l := d.lvDial(t, uri)
	dom, err := l.DomainDefineXML(`<domain type='test'><name>r1</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.DomainCreate(dom); err != nil {
		t.Fatal(err)
	}
	if _, err := l.DomainDefineXML(`<domain type='test'><name>r2</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`); err != nil {
		t.Fatal(err)
	}
	d.kill()
	select {
	case <-l.Disconnected():
	case <-time.After(10 * time.Second):
		t.Fatal("the client's connection did not end with the daemon")
	}
	if _, err := l.ConnectGetHostname(); err == nil {
		t.Error("a call on the dead connection succeeded")
	}
	d.start()
	l2 := d.lvDial(t, uri)
	st, _, err := l2.DomainGetState(dom, 0)
	if err != nil || st != int32(golibvirt.DomainRunning) {
		t.Errorf("r1 after the restart: state %d, %v; want running", st, err)
	}
	r2, err := l2.DomainLookupByName("r2")
	if err != nil {
		t.Fatal(err)
	}
	if st, _, err := l2.DomainGetState(r2, 0); err != nil || st != int32(golibvirt.DomainShutoff) {
		t.Errorf("r2 after the restart: state %d, %v; want shut off", st, err)
	}
}

// TestLibvirtSockets: where libvirt's sockets are, with what modes, how a
// path is moved or a socket turned off, and which URI a connection with
// none gets.
func TestLibvirtSockets(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	for name, mode := range map[string]os.FileMode{"libvirt-sock": 0o600, "libvirt-sock-ro": 0o666} {
		fi, err := os.Stat(filepath.Join(d.runDir, name))
		if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want a socket of mode %o", name, fi.Mode(), err, mode)
		}
	}
	// No drivers that can run guests, no default: the error says so.
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(d.libvirtSock())))
	err := l.ConnectToURI("")
	var le golibvirt.Error
	if !errors.As(err, &le) || le.Code != uint32(golibvirt.ErrNoConnect) || !strings.Contains(le.Message, "uri_default") {
		t.Errorf("open with no URI and no hypervisor driver: %v", err)
	}
	d.stop()

	moved := filepath.Join(d.root, "elsewhere", "lv.sock")
	d2 := newDaemon(t, []string{"test"}, withArgs("--libvirt-sock", moved, "--libvirt-sock-ro", "none", "--uri-default", "test:///default"))
	if _, err := os.Stat(filepath.Join(d2.runDir, "libvirt-sock-ro")); !os.IsNotExist(err) {
		t.Errorf("libvirt-sock-ro turned off, but: %v", err)
	}
	l2 := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(moved)))
	if err := l2.ConnectToURI(""); err != nil {
		t.Fatal(err)
	}
	defer l2.Disconnect()
	if uri, err := l2.ConnectGetUri(); err != nil || uri != "test:///default" {
		t.Errorf("GET_URI with uri_default: %q, %v", uri, err)
	}
}

// TestLibvirtQEMUReboot: a real guest's reset reaches libvirt's clients as
// the reboot event, and the guest runs on.
func TestLibvirtQEMUReboot(t *testing.T) {
	d := newDaemon(t, []string{"qemu"})
	uri := "qemu:///system"
	d.mustVirsh(t, uri, "define", guestXML(t, "vrb", ""))
	d.mustVirsh(t, uri, "start", "vrb")
	t.Cleanup(func() { d.virsh(t, uri, "destroy", "vrb") })
	l := d.lvDial(t, uri)
	reboots, err := l.SubscribeEvents(t.Context(), golibvirt.DomainEventIDReboot, golibvirt.OptDomain{})
	if err != nil {
		t.Fatal(err)
	}
	d.wantVirsh(t, uri, []string{"reboot", "vrb"}, "Domain 'vrb' is being rebooted")
	select {
	case e := <-reboots:
		if m, ok := e.(*golibvirt.DomainEventCallbackRebootMsg); !ok || m.Msg.Dom.Name != "vrb" {
			t.Errorf("reboot event: %#v", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no reboot event after virsh reboot")
	}
	d.wantVirsh(t, uri, []string{"domstate", "vrb"}, "running")
}
