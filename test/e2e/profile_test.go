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
	"syscall"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/virtd/virtd/client"
)

// TestProfile: `virtsh profile` writes, as the user who runs it, a pprof
// profile of the process asked for: with --driver test, of the test
// driver's process (its executable, its code, none of the daemon's);
// without, of virtd's. CPU profiles of different processes run at once;
// two of one process do not.
func TestProfile(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	ctx := ctxT(t)

	// The caller: nobody when the test runs as root, so that who wrote
	// the file shows (virtd runs as root); the admin socket is 0600, so
	// it is handed to nobody for the test.
	uid, gid := os.Getuid(), os.Getgid()
	virtsh := filepath.Join(binDir, "virtsh")
	out := t.TempDir()
	if uid == 0 {
		uid, gid = nobody, nobody
		if err := os.Chmod(d.root, 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d.adminSock(), uid, gid); err != nil {
			t.Fatal(err)
		}
		pub := tempDir(t, "vdpub", 0o755)
		virtsh = filepath.Join(pub, "virtsh")
		copyFile(t, filepath.Join(binDir, "virtsh"), virtsh, 0o755)
		out = tempDir(t, "vdprof", 0o700)
		if err := os.Chown(out, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	profileAs := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(virtsh, append([]string{"profile"}, args...)...)
		cmd.Dir = out
		cmd.Env = []string{"VIRTD_RUN_DIR=" + d.runDir, "PATH=/usr/bin:/bin"}
		if uid != os.Getuid() {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		}
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("virtsh profile %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}

	// Keep the daemon and the driver busy, so that CPU profiles have
	// samples: defining parses XML in the driver (lists are the daemon's,
	// from its view).
	c := d.open("test:///default")
	stop := make(chan struct{})
	var busy sync.WaitGroup
	for w := range 2 {
		busy.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = c.ListDomains(ctx, 0)
				if dom, err := c.DefineXML(ctx, domXML(fmt.Sprintf("busy%d-%d", w, i))); err == nil {
					_ = dom.Undefine(ctx)
				}
			}
		})
	}
	defer busy.Wait()
	defer close(stop)

	// A CPU profile of the driver and one of virtd, at once.
	var wg sync.WaitGroup
	wg.Go(func() { profileAs("--driver", "test", "--seconds", "1", "driver.pprof") })
	wg.Go(func() { profileAs("--seconds", "1", "virtd.pprof") })
	wg.Wait()
	profileAs("--driver", "test", "--kind", "goroutine", "driver-goroutines.pprof")
	profileAs("--kind", "goroutine", "virtd-goroutines.pprof")
	if got := profileAs("--driver", "test", "--heap", "driver-heap.pprof"); got != "heap profile of driver 'test' written to driver-heap.pprof\n\n" {
		t.Errorf("virtsh profile --heap printed %q", got)
	}
	if t.Failed() {
		t.FailNow()
	}

	// What sets each process's code apart: the daemon's packages are not
	// in a driver's executable, a driver's serving loop is not run by
	// the daemon.
	daemonCode := []string{"github.com/virtd/virtd/daemon.", "github.com/virtd/virtd/core.", "github.com/virtd/virtd/host."}
	driverCode := []string{"github.com/virtd/virtd/driver.(*server).", "github.com/virtd/virtd/internal/testdriver."}
	// The main mapping is the executable the process runs.
	driverExe, virtdExe := filepath.Join(d.driverDir, "virtd-driver-test"), filepath.Join(binDir, "virtd")
	// Which functions a CPU profile caught is chance (a loaded machine may
	// give a driver few samples): only the snapshots must name theirs.
	for _, c := range []struct {
		file, exe string
		cpu       bool
		has       []string // a function of one of these is in the profile
		hasNot    []string // no function of these is
	}{
		{"driver.pprof", driverExe, true, nil, daemonCode},
		{"virtd.pprof", virtdExe, true, nil, driverCode},
		{"driver-goroutines.pprof", driverExe, false, []string{"github.com/virtd/virtd/driver.Serve"}, daemonCode},
		{"virtd-goroutines.pprof", virtdExe, false, []string{"github.com/virtd/virtd/daemon.Main"}, driverCode},
		{"driver-heap.pprof", driverExe, false, nil, daemonCode},
	} {
		path := filepath.Join(out, c.file)
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid {
			t.Errorf("%s is owned by uid %d, not by the caller (uid %d): virtsh did not write it", c.file, st.Uid, uid)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p, err := profile.Parse(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s does not parse as a pprof profile: %v", c.file, err)
			continue
		}
		if len(p.Mapping) == 0 || p.Mapping[0].File != c.exe {
			t.Errorf("%s: the main mapping is not %s: %v", c.file, c.exe, p.Mapping)
		}
		if c.cpu && (len(p.SampleType) != 2 || p.SampleType[1].Type != "cpu" || len(p.Sample) == 0) {
			t.Errorf("%s: %d samples of %v, want CPU samples", c.file, len(p.Sample), p.SampleType)
		}
		if c.has != nil && !hasFunctionIn(p, c.has) {
			t.Errorf("%s: no function of %v in the profile:\n%s", c.file, c.has, functionNames(p))
		}
		if hasFunctionIn(p, c.hasNot) {
			t.Errorf("%s: functions of %v in the profile:\n%s", c.file, c.hasNot, functionNames(p))
		}
	}

	// Two CPU profiles of the driver at once: one is refused, naming the
	// driver and its process.
	a := d.admin()
	pid := d.driverStatus("test").PID
	var errs [2]error
	for i := range 2 {
		wg.Go(func() {
			errs[i] = a.Profile(ctx, client.ProfileOptions{Driver: "test", Kind: client.ProfileCPU, Seconds: 1}, &bytes.Buffer{})
		})
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("two CPU profiles of the driver at once: %v and %v; want one taken and one refused", errs[0], errs[1])
	}
	refused := errors.Join(errs[:]...)
	want := fmt.Sprintf(`profiling driver "test": a CPU profile of this process (pid %d) is being taken already`, pid)
	if !errors.Is(refused, client.ErrFailedPrecondition) || !strings.Contains(refused.Error(), want) {
		t.Errorf("the refused profile: %v; want a failed precondition containing %q", refused, want)
	}
}

func hasFunctionIn(p *profile.Profile, prefixes []string) bool {
	for _, f := range p.Function {
		for _, pre := range prefixes {
			if strings.HasPrefix(f.Name, pre) {
				return true
			}
		}
	}
	return false
}

func functionNames(p *profile.Profile) string {
	var names []string
	for _, f := range p.Function {
		names = append(names, "  "+f.Name)
	}
	return strings.Join(names, "\n")
}
