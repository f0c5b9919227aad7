package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virtd/virtd/client"
	"github.com/virtd/virtd/internal/testenv"
	"github.com/virtd/virtd/virt"
)

// guestAssets returns the kernel and initramfs test/qemu/setup.sh builds.
// CI must have them (make test runs the setup); elsewhere the test skips.
func guestAssets(t *testing.T) (kernel, initrd string) {
	t.Helper()
	dir := os.Getenv("VIRTD_QEMU_TEST_ASSETS")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, ".cache/qemu-test")
	}
	kernel, initrd = filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initramfs.cpio.gz")
	for _, f := range []string{kernel, initrd} {
		if _, err := os.Stat(f); err != nil {
			testenv.Missing(t, f+" missing: run test/qemu/setup.sh (make test does)")
		}
	}
	return kernel, initrd
}

// guestXML is a small guest that boots the test kernel; its serial console
// goes to a file (serial == path) or a pty (serial == "").
func guestXML(t *testing.T, name, serial string) string {
	kernel, initrd := guestAssets(t)
	dev := "<serial type='pty'><target port='0'/></serial><console type='pty'><target port='0'/></console>"
	if serial != "" {
		dev = fmt.Sprintf("<serial type='file'><source path='%s'/><target port='0'/></serial>", serial)
	}
	x := fmt.Sprintf(`<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><kernel>%s</kernel><initrd>%s</initrd><cmdline>console=ttyS0 quiet</cmdline></os>
  <features><acpi/><apic/></features>
  <devices>%s</devices>
</domain>`, name, kernel, initrd, dev)
	path := filepath.Join(t.TempDir(), name+".xml")
	if err := os.WriteFile(path, []byte(x), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitMarker waits until the guest wrote the marker to its serial file.
func waitMarker(t *testing.T, serial, marker string) {
	t.Helper()
	eventually(t, 60*time.Second, marker+" in "+serial, func() bool {
		b, _ := os.ReadFile(serial)
		return bytes.Contains(b, []byte(marker))
	})
}

// qemuPID finds the QEMU process of a guest by its -name argument.
func qemuPID(t *testing.T, name string) int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.HasPrefix(b, []byte("qemu-system")) && !bytes.Contains(b, []byte("/qemu-system")) {
			continue
		}
		for _, arg := range bytes.Split(b, []byte{0}) {
			if string(arg) == "guest="+name || strings.HasPrefix(string(arg), "guest="+name+",") {
				if alive(pid) {
					return pid
				}
			}
		}
	}
	return 0
}

func TestQEMUGuestsSurviveDriverAndDaemonKills(t *testing.T) {
	d := newDaemon(t, []string{"qemu"})
	c := []string{"-c", "qemu:///system"}
	logs := map[string]string{}
	for _, name := range []string{"g1", "g2"} {
		logs[name] = filepath.Join(t.TempDir(), name+".serial")
		d.mustVirtsh(append(c, "define", guestXML(t, name, logs[name]))...)
		d.mustVirtsh(append(c, "start", name)...)
	}
	t.Cleanup(func() {
		for _, name := range []string{"g1", "g2"} {
			if pid := qemuPID(t, name); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	pids := map[string]int{}
	for name, log := range logs {
		waitMarker(t, log, "VIRTD-GUEST-UP")
		if pids[name] = qemuPID(t, name); pids[name] == 0 {
			t.Fatalf("no QEMU process for %s", name)
		}
	}

	// kill -9 the driver: the guests keep running and stay manageable.
	drvPID := d.driverStatus("qemu").PID
	if err := syscall.Kill(int(drvPID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the QEMU driver to come back", func() bool {
		out, _, code := d.virtsh(append(c, "list")...)
		return code == 0 && strings.Contains(out, "g1") && strings.Contains(out, "g2")
	})
	if st := d.driverStatus("qemu"); st.PID == drvPID || st.Restarts != 1 {
		t.Fatalf("driver after kill -9: %+v", st)
	}

	// kill -9 virtd and start it again: same guests, same processes.
	d.kill()
	d.start()
	out := d.mustVirtsh(append(c, "list")...)
	for name, pid := range pids {
		if !regexpMatch(`(?m)^\s*\d+\s+`+name+`\s+running\s*$`, out) {
			t.Fatalf("after a virtd restart %s is not listed running:\n%s", name, out)
		}
		if now := qemuPID(t, name); now != pid {
			t.Fatalf("%s: QEMU pid %d became %d", name, pid, now)
		}
	}

	// Shut them down cleanly, through ACPI.
	for _, name := range []string{"g1", "g2"} {
		d.mustVirtsh(append(c, "shutdown", name)...)
	}
	for name, log := range logs {
		waitMarker(t, log, "VIRTD-GUEST-POWERBUTTON")
		eventually(t, 60*time.Second, name+" shut off", func() bool {
			out, _, _ := d.virtsh(append(c, "domstate", name, "--reason")...)
			return strings.TrimSpace(out) == "shut off (shutdown)"
		})
		if alive(pids[name]) {
			t.Fatalf("%s: QEMU process %d still runs after shutdown", name, pids[name])
		}
	}
}

// TestQEMUCreateTransient: virtsh create boots a real guest from a file
// without defining it: it runs, is listed transient, is found again
// transient by a driver killed and restarted under it, and is gone, QEMU
// and all, once destroyed, with a Stopped event and no Undefined one.
func TestQEMUCreateTransient(t *testing.T) {
	d := newDaemon(t, []string{"qemu"})
	c := []string{"-c", "qemu:///system"}
	serial := filepath.Join(t.TempDir(), "tr.serial")
	file := guestXML(t, "tr", serial)
	t.Cleanup(func() {
		if pid := qemuPID(t, "tr"); pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if out := d.mustVirtsh(append(c, "create", file)...); out != "Domain 'tr' created from "+file+"\n\n" {
		t.Fatalf("virtsh create: %q", out)
	}
	waitMarker(t, serial, "VIRTD-GUEST-UP")
	pid := qemuPID(t, "tr")
	if pid == 0 {
		t.Fatal("no QEMU process for the created guest")
	}
	transient := func(when string) {
		t.Helper()
		if out := d.mustVirtsh(append(c, "list", "--transient")...); !regexpMatch(`(?m)^\s*\d+\s+tr\s+running\s*$`, out) {
			t.Fatalf("%s: tr is not listed running and transient:\n%s", when, out)
		}
		if out := d.mustVirtsh(append(c, "list", "--all", "--persistent", "--name")...); strings.Contains(out, "tr") {
			t.Fatalf("%s: tr is listed persistent:\n%s", when, out)
		}
		if out := d.mustVirtsh(append(c, "dominfo", "tr")...); !strings.Contains(out, "Persistent:     no\n") || !strings.Contains(out, "State:          running\n") {
			t.Fatalf("%s: dominfo tr:\n%s", when, out)
		}
	}
	transient("after create")
	if _, errs, code := d.virtsh(append(c, "create", file)...); code == 0 || !strings.Contains(errs, "domain 'tr' already exists") {
		t.Errorf("a second create of tr: exit %d, %q; want already exists", code, errs)
	}

	// kill -9 the driver: the new one finds the guest again, transient.
	// (A connection is open, so the driver comes back without a call.)
	conn := d.open("qemu:///system")
	drvPID := d.driverStatus("qemu").PID
	if err := syscall.Kill(int(drvPID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the QEMU driver to come back", func() bool {
		st := d.driverStatus("qemu")
		return st.PID != drvPID && st.State == "running"
	})
	transient("after a driver restart")
	if now := qemuPID(t, "tr"); now != pid {
		t.Fatalf("QEMU pid %d became %d across the driver restart", pid, now)
	}

	ctx := ctxT(t)
	events, err := conn.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if out := d.mustVirtsh(append(c, "destroy", "tr")...); out != "Domain 'tr' destroyed\n\n" {
		t.Fatalf("virtsh destroy: %q", out)
	}
	if out := d.mustVirtsh(append(c, "list", "--all", "--name")...); strings.Contains(out, "tr") {
		t.Fatalf("tr is still listed after destroy:\n%s", out)
	}
	if _, errs, code := d.virtsh(append(c, "domstate", "tr")...); code != 1 || !strings.Contains(errs, "no domain with matching name 'tr'") {
		t.Errorf("domstate tr after destroy: exit %d, %q", code, errs)
	}
	if alive(pid) {
		t.Errorf("QEMU %d still runs after destroy", pid)
	}
	// Stopped (destroyed), then nothing of tr before the Defined event of
	// a domain defined afterwards.
	fence := d.mustVirtsh(append(c, "define", guestXML(t, "fence", ""))...)
	var got []string
	timeout := time.After(30 * time.Second)
	for done := false; !done; {
		select {
		case e := <-events:
			if e.Domain.Name == "fence" {
				done = true
			} else {
				got = append(got, e.Domain.Name+" "+e.Type.String()+" "+virt.EventDetailString(e.Type, e.Detail))
			}
		case <-timeout:
			t.Fatalf("no event of the fence domain (%q); events so far: %v", fence, got)
		}
	}
	if fmt.Sprint(got) != "[tr Stopped Destroyed]" {
		t.Errorf("events: %v, want [tr Stopped Destroyed]", got)
	}
}

func TestQEMUConsoleAndCrash(t *testing.T) {
	d := newDaemon(t, []string{"qemu"})
	conn := d.open("qemu:///system")
	ctx := ctxT(t)
	xml, err := os.ReadFile(guestXML(t, "con", ""))
	if err != nil {
		t.Fatal(err)
	}
	dom, err := conn.DefineXML(ctx, string(xml))
	if err != nil {
		t.Fatal(err)
	}
	events, err := conn.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := dom.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dom.Destroy(ctxT(t)) })
	if x, err := dom.XML(ctx, false); err != nil || !strings.Contains(x, "/dev/pts/") {
		t.Fatalf("live XML lacks the pty path: %v\n%s", err, x)
	}

	// The console: what we type comes back from the guest's echo loop.
	con, err := dom.OpenConsole(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	seen := collect(con)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(seen.String(), "VIRTD-ECHO:hello") {
		if time.Now().After(deadline) {
			t.Fatalf("no echo on the console; saw %q", seen.String())
		}
		if _, err := con.Write([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	con.Close()

	// kill -9 the QEMU process: the domain ends shut off (crashed).
	pid := qemuPID(t, "con")
	if pid == 0 {
		t.Fatal("no QEMU process")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Type == virt.EventStopped {
				if e.Detail != virt.StoppedCrashed {
					t.Fatalf("stopped event detail %s, want Crashed", virt.EventDetailString(e.Type, e.Detail))
				}
				st, reason, err := dom.State(ctx)
				if err != nil || st != virt.StateShutoff || reason != virt.ShutoffCrashed {
					t.Fatalf("state after the crash: %s (%s), %v", st, virt.ReasonString(st, reason), err)
				}
				return
			}
		case <-timeout:
			t.Fatal("no stopped event after QEMU was killed")
		}
	}
}

// collect copies everything r yields into a buffer safe to read while it
// fills, until r ends.
func collect(r io.Reader) *logBuf {
	b := &logBuf{}
	go func() { _, _ = io.Copy(b, r) }()
	return b
}

func TestQEMUBadInputLeavesNothing(t *testing.T) {
	d := newDaemon(t, []string{"qemu"})
	conn := d.open("qemu:///system")
	ctx := ctxT(t)
	cases := map[string]struct {
		xml  string
		want string
		kind error
	}{
		"slash in name":      {`<domain type='qemu'><name>a/b</name><memory>65536</memory><os><type>hvm</type></os></domain>`, "a/b", client.ErrInvalidArgument},
		"unsupported device": {`<domain type='qemu'><name>h</name><memory>65536</memory><os><type>hvm</type></os><devices><hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0' bus='1' slot='0' function='0'/></source></hostdev></devices></domain>`, "domain/devices/hostdev", client.ErrNotSupported},
		"bad value":          {`<domain type='qemu'><name>w</name><memory>65536</memory><os><type>hvm</type></os><devices><watchdog model='bogus'/></devices></domain>`, "<watchdog model='bogus'>", client.ErrInvalidArgument},
	}
	for name, tc := range cases {
		if _, err := conn.DefineXML(ctx, tc.xml); !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %v naming %q", name, err, tc.kind, tc.want)
		}
	}
	missing := `<domain type='qemu'><name>nokernel</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type><kernel>/nonexistent/vmlinuz</kernel></os></domain>`
	dom, err := conn.DefineXML(ctx, missing)
	if err != nil {
		t.Fatal(err)
	}
	if err := dom.Start(ctx); err == nil || !strings.Contains(err.Error(), "/nonexistent/vmlinuz") {
		t.Fatalf("start with a missing kernel: %v", err)
	}
	if pid := qemuPID(t, "nokernel"); pid != 0 {
		t.Fatalf("a failed start left QEMU %d behind", pid)
	}
	runDir := filepath.Join(d.runDir, "qemu")
	entries, _ := os.ReadDir(runDir)
	for _, e := range entries {
		if strings.Contains(e.Name(), dom.UUID()) {
			t.Errorf("a failed start left %s behind", filepath.Join(runDir, e.Name()))
		}
	}
	if st, _, _ := dom.State(ctx); st != virt.StateShutoff {
		t.Fatalf("state after a failed start: %s", st)
	}
	out, errs, code := d.virtsh("-c", "qemu:///system", "domxml-to-native", "qemu-argv", guestXML(t, "argv", ""))
	if code != 0 || !strings.Contains(out, "-kernel") || !strings.Contains(out, "guest=argv") {
		t.Fatalf("domxml-to-native qemu-argv: exit %d %q %q", code, out, errs)
	}
}
