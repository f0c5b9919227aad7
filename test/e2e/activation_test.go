package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/virtd/virtd/client"
)

// TestSocketActivation starts virtd the way systemd's socket units do:
// systemd-socket-activate holds virtd's three sockets and libvirt's two
// (where the virtd-libvirt-compat package puts them: a directory of their
// own) and starts virtd on the first connection; with --timeout virtd
// exits once idle.
func TestSocketActivation(t *testing.T) {
	activate, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Fatal("systemd-socket-activate (Debian package systemd) is needed: run make deps")
	}
	root, err := os.MkdirTemp("", "vd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killUnder(root); os.RemoveAll(root) })
	drivers := filepath.Join(root, "drivers")
	run := filepath.Join(root, "run/virtd")
	lvRun := filepath.Join(root, "run/libvirt")
	for _, dir := range []string{drivers, run, lvRun} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, filepath.Join(binDir, "virtd-driver-test"), filepath.Join(drivers, "virtd-driver-test"), 0o755)
	rw, ro, admin := filepath.Join(run, "virtd-sock"), filepath.Join(run, "virtd-sock-ro"), filepath.Join(run, "virtd-admin-sock")
	lv, lvRO := filepath.Join(lvRun, "libvirt-sock"), filepath.Join(lvRun, "libvirt-sock-ro")
	cmd := exec.Command(activate, "-l", rw, "-l", ro, "-l", admin, "-l", lv, "-l", lvRO,
		"--fdname=virtd-sock:virtd-sock-ro:virtd-admin-sock:libvirt-sock:libvirt-sock-ro",
		filepath.Join(binDir, "virtd"), "--root", root, "--driver-dir", drivers, "--timeout", "2")
	log := &logBuf{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("log:\n%s", log.String())
		}
	})
	eventually(t, 10*time.Second, "the activator's sockets", func() bool {
		_, err := os.Stat(admin)
		return err == nil
	})

	// The first connection starts virtd on the passed sockets.
	c, err := client.Open(ctxT(t), "test:///default", client.WithSocket(rw))
	if err != nil {
		t.Fatalf("open through the activated socket: %v", err)
	}
	if _, err := c.LookupByName(ctxT(t), "test"); err != nil {
		t.Fatal(err)
	}
	ro2, err := client.OpenReadOnly(ctxT(t), "test:///default", client.WithSocket(ro))
	if err != nil {
		t.Fatalf("read-only activated socket: %v", err)
	}
	if _, err := ro2.DefineXML(ctxT(t), domXML("x")); !strings.Contains(errString(err), "read-only") {
		t.Fatalf("define on the activated read-only socket: %v", err)
	}
	a, err := client.OpenAdmin(ctxT(t), client.WithSocket(admin))
	if err != nil {
		t.Fatal(err)
	}
	if list, err := a.Drivers(ctxT(t)); err != nil || len(list.Drivers) != 1 {
		t.Fatalf("admin on the activated socket: %+v, %v", list, err)
	}
	if !strings.Contains(log.String(), "socket_activated=true") {
		t.Fatalf("virtd did not use the passed sockets:\n%s", log.String())
	}
	// libvirt's protocol on the passed libvirt sockets, read-only on the
	// second; virtd binds no libvirt socket of its own.
	l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(lv), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI("test:///default"); err != nil {
		t.Fatalf("libvirt protocol on the activated libvirt-sock: %v", err)
	}
	if _, err := l.DomainLookupByName("test"); err != nil {
		t.Fatalf("libvirt lookup: %v", err)
	}
	lro := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(lvRO), dialers.WithLocalTimeout(5*time.Second)))
	if err := lro.ConnectToURI("test:///default"); err != nil {
		t.Fatalf("libvirt protocol on the activated libvirt-sock-ro: %v", err)
	}
	if _, err := lro.DomainDefineXML(domXML("y")); !strings.Contains(errString(err), "read-only") {
		t.Fatalf("define on the activated libvirt-sock-ro: %v", err)
	}
	for _, name := range []string{"libvirt-sock", "libvirt-sock-ro"} {
		if _, err := os.Stat(filepath.Join(run, name)); err == nil {
			t.Errorf("virtd listens on %s of its own besides the passed one", filepath.Join(run, name))
		}
	}
	_ = lro.Disconnect()
	_ = l.Disconnect()
	a.Close()
	ro2.Close(ctxT(t))
	c.Close(ctxT(t))

	// virtd stays while a guest runs; once the test domain is destroyed
	// and no client is left, it exits.
	c, err = client.Open(ctxT(t), "test:///default", client.WithSocket(rw))
	if err != nil {
		t.Fatal(err)
	}
	dom, err := c.LookupByName(ctxT(t), "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	c.Close(ctxT(t))
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("virtd exited with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("socket-activated virtd --timeout 2 did not exit when idle")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
