package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virtd/virtd/internal/lxc/controller"
	"github.com/virtd/virtd/internal/procfs"
	"github.com/virtd/virtd/internal/testenv"
)

// containerRoot returns the busybox root filesystem test/lxc/setup.sh
// builds. CI must have it (make test runs the setup); elsewhere the test
// skips.
func containerRoot(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("VIRTD_LXC_ROOTFS")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, ".cache/lxc-test/rootfs")
	}
	if _, err := os.Lstat(filepath.Join(dir, "sbin/init")); err != nil {
		testenv.Missing(t, dir+" missing: run test/lxc/setup.sh (make test does)")
	}
	return dir
}

func containerXML(t *testing.T, name string) string {
	x := fmt.Sprintf(`<domain type='lxc'>
  <name>%s</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type>exe</type><init>/sbin/init</init></os>
  <devices>
    <filesystem type='mount'><source dir='%s'/><target dir='/'/></filesystem>
    <console type='pty'><target type='lxc' port='0'/></console>
  </devices>
</domain>`, name, containerRoot(t))
	path := filepath.Join(t.TempDir(), name+".xml")
	if err := os.WriteFile(path, []byte(x), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// initPID reads a running container's init pid from the driver's state.
func initPID(t *testing.T, d *daemon, uuid string) int {
	t.Helper()
	var st struct {
		InitPID int `json:"init_pid"`
	}
	b, err := os.ReadFile(filepath.Join(d.runDir, "lxc", uuid+".state"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil || st.InitPID <= 0 {
		t.Fatalf("container state %s: %v", b, err)
	}
	return st.InitPID
}

func TestLXCContainersSurviveDriverAndDaemonKills(t *testing.T) {
	d := newDaemon(t, []string{"lxc"})
	c := []string{"-c", "lxc:///system"}
	uuids := map[string]string{}
	t.Cleanup(func() {
		for name := range uuids {
			d.virtsh(append(c, "destroy", name)...)
		}
	})
	for _, name := range []string{"ct1", "ct2"} {
		d.mustVirtsh(append(c, "define", containerXML(t, name))...)
		d.mustVirtsh(append(c, "start", name)...)
		uuids[name] = strings.TrimSpace(d.mustVirtsh(append(c, "domuuid", name)...))
	}
	inits := map[string]int{}
	for name, uuid := range uuids {
		inits[name] = initPID(t, d, uuid)
		if !alive(inits[name]) {
			t.Fatalf("%s: init %d not running", name, inits[name])
		}
	}

	drvPID := d.driverStatus("lxc").PID
	// The driver keeps a spare controller, which must not outlive it.
	var spare int
	eventually(t, 10*time.Second, "the driver's spare controller", func() bool {
		spare = spareController(int(drvPID))
		return spare > 0
	})
	if err := syscall.Kill(int(drvPID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the spare controller to exit with its driver", func() bool { return procfs.Gone(spare) })
	eventually(t, 20*time.Second, "the LXC driver to come back with both containers", func() bool {
		out, _, code := d.virtsh(append(c, "list")...)
		return code == 0 && regexpMatch(`(?m)ct1\s+running`, out) && regexpMatch(`(?m)ct2\s+running`, out)
	})

	d.kill()
	d.start()
	out := d.mustVirtsh(append(c, "list")...)
	for name, uuid := range uuids {
		if !regexpMatch(`(?m)^\s*\d+\s+`+name+`\s+running\s*$`, out) {
			t.Fatalf("after a virtd restart %s is not listed running:\n%s", name, out)
		}
		if now := initPID(t, d, uuid); now != inits[name] || !alive(now) {
			t.Fatalf("%s: init pid %d became %d", name, inits[name], now)
		}
	}

	for name := range uuids {
		d.mustVirtsh(append(c, "shutdown", name)...)
	}
	for name := range uuids {
		eventually(t, 30*time.Second, name+" shut off", func() bool {
			out, _, _ := d.virtsh(append(c, "domstate", name, "--reason")...)
			return strings.TrimSpace(out) == "shut off (shutdown)"
		})
		if alive(inits[name]) {
			t.Fatalf("%s: init %d still runs after shutdown", name, inits[name])
		}
	}
}

func TestLXCImportStartAndConsole(t *testing.T) {
	d := newDaemon(t, []string{"lxc"})
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte("lxc.uts.name = imported\nlxc.rootfs.path = "+containerRoot(t)+"\nlxc.cgroup.memory.limit_in_bytes = 128M\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := d.mustVirtsh("-c", "lxc:///system", "domxml-from-native", "lxc-tools", cfg)
	if !strings.Contains(out, "<name>imported</name>") || !strings.Contains(out, "type=\"lxc\"") && !strings.Contains(out, "type='lxc'") {
		t.Fatalf("domxml-from-native lxc-tools:\n%s", out)
	}
	// The imported XML defines and starts; its console shows init's line.
	conn := d.open("lxc:///system")
	dom, err := conn.DefineXML(ctxT(t), out)
	if err != nil {
		t.Fatalf("define the imported XML: %v", err)
	}
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dom.Destroy(ctxT(t)) })
	con, err := dom.OpenConsole(ctxT(t), "")
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	seen := collect(con)
	eventually(t, 20*time.Second, "init's line on the console", func() bool {
		return strings.Contains(seen.String(), "imported up")
	})
}

// spareController finds the spare controller a driver process keeps: its
// child whose command line has no arguments after the controller mode's.
func spareController(driverPID int) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) != 3 || args[1] != controller.ControllerArg || strings.TrimSpace(args[2]) != "" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if st, err := procfs.ReadStat(pid); err == nil && st.PPID == driverPID && !st.Exited() {
			return pid
		}
	}
	return 0
}
