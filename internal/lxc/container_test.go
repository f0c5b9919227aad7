package lxc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virtd/virtd/internal/cgroup"
	"github.com/virtd/virtd/internal/netdev/netdevtest"
	"github.com/virtd/virtd/virt"
)

// shInit is an init that runs script with /bin/sh, then execs the test
// init (so the container keeps running with PID 1 the shell's).
func shInit(script string) []string {
	return []string{"/bin/sh", "-c", script + "\nexec /sbin/init"}
}

func TestContainerNamespaces(t *testing.T) {
	rootfs := testRootFS(t)
	drv, _ := newTestDriver(t)
	out := outDir(t)
	name := "ct-basics"
	uuid, dom := startXML(t, drv, domainXML(rootfs, name, domOpts{
		init: shInit("echo $$ > /out/pid; hostname > /out/hostname; cat /proc/mounts > /out/mounts; " +
			"ls /dev > /out/dev; ip -o link show up > /out/links"),
		devices: bindXML(out, "/out", false),
	}))
	if dom.ID <= 0 || dom.State != virt.StateRunning {
		t.Fatalf("started domain: %+v", dom)
	}
	pid := initPID(t, drv, uuid)
	// PID 1 inside is the configured init.
	if got := waitFile(t, filepath.Join(out, "pid"), 5*time.Second); got != "1" {
		t.Errorf("the init's pid inside the container is %s, want 1", got)
	}
	status := string(mustRead(t, fmt.Sprintf("/proc/%d/status", pid)))
	if !strings.Contains(status, fmt.Sprintf("NSpid:\t%d\t1\n", pid)) {
		t.Errorf("host pid %d is not pid 1 of its own pid namespace:\n%s", pid, status)
	}
	var cmdline []string
	for i := 0; i < 100; i++ { // until the shell has exec'd the test init
		cmdline = strings.Split(strings.TrimRight(string(mustRead(t, fmt.Sprintf("/proc/%d/cmdline", pid))), "\x00"), "\x00")
		if len(cmdline) >= 2 && cmdline[1] == "/sbin/init" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(cmdline) < 2 || cmdline[1] != "/sbin/init" {
		t.Errorf("init's command line is %q, want the configured /sbin/init (the test init script)", cmdline)
	}
	if got := waitFile(t, filepath.Join(out, "hostname"), time.Second); got != name {
		t.Errorf("hostname inside is %q, want the domain name %q", got, name)
	}
	mounts := waitFile(t, filepath.Join(out, "mounts"), time.Second)
	for _, want := range []string{"proc /proc proc", "sysfs /sys sysfs ro", "tmpfs /dev tmpfs", "devpts /dev/pts devpts"} {
		if !strings.Contains(mounts, want) {
			t.Errorf("/proc/mounts inside lacks %q:\n%s", want, mounts)
		}
	}
	dev := strings.Fields(waitFile(t, filepath.Join(out, "dev"), time.Second))
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty", "console", "ptmx", "pts"} {
		if !contains(dev, n) {
			t.Errorf("/dev inside lacks %s: %v", n, dev)
		}
	}
	if links := waitFile(t, filepath.Join(out, "links"), time.Second); !strings.Contains(links, ": lo:") {
		t.Errorf("loopback is not up inside:\n%s", links)
	}
	// Own namespaces, not the host's.
	for _, ns := range []string{"pid", "mnt", "uts", "ipc", "net"} {
		host, _ := os.Readlink("/proc/self/ns/" + ns)
		ct, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if host == ct {
			t.Errorf("the container shares the host's %s namespace", ns)
		}
	}
	// Limits and counters are in the container's cgroup.
	cg := testCgroup(t, uuid)
	if v, err := cg.MemoryLimit(); v != 65536*1024 {
		t.Errorf("memory limit %d, %v; want %d", v, err, 65536*1024)
	}
	info, err := drv.DomainInfo(context.Background(), uuid)
	if err != nil || info.MemoryKiB == 0 || info.CPUTime <= 0 {
		t.Errorf("DomainInfo = %+v, %v; want memory and CPU time from the cgroup", info, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMemoryLimit(t *testing.T) {
	rootfs := testRootFS(t)
	drv, _ := newTestDriver(t)
	out := outDir(t)
	// dd's 200 MiB buffer is really allocated and touched (it reads
	// /dev/zero into it): far past the 32 MiB limit.
	uuid, _ := startXML(t, drv, domainXML(rootfs, "ct-mem", domOpts{
		memKiB:  32768,
		init:    shInit("dd if=/dev/zero of=/dev/null bs=200M count=1 2>/dev/null; echo $? > /out/dd"),
		devices: bindXML(out, "/out", false),
	}))
	if got := waitFile(t, filepath.Join(out, "dd"), 20*time.Second); got != "137" {
		t.Fatalf("dd allocating 200 MiB under a 32 MiB limit exited with %s, want 137 (killed)", got)
	}
	cg := testCgroup(t, uuid)
	if n, err := cg.OOMKills(); n == 0 {
		t.Errorf("the cgroup counts no OOM kill (%d, %v)", n, err)
	}
	// The host and the container's init are unharmed: init, the shell
	// that wrote dd's status, outlived the kill.
	if st, _, _ := drv.DomainState(context.Background(), uuid); st != virt.StateRunning {
		t.Errorf("after the OOM kill the container is %s, want running", st)
	}
	if err := syscall.Kill(initPID(t, drv, uuid), 0); err != nil {
		t.Errorf("the container's init died with the allocating process: %v", err)
	}
}

func TestPidsLimit(t *testing.T) {
	rootfs := testRootFS(t)
	drv, _ := newTestDriver(t)
	out := outDir(t)
	const limit = 20
	// A bounded fork bomb: every process forks two more, up to 256.
	bomb := `(bomb() { [ $1 -ge 8 ] && { sleep 60; return; }; bomb $(($1+1)) & bomb $(($1+1)) & wait; }; bomb 0) 2>/dev/null &
sleep 1; echo done > /out/bomb`
	uuid, _ := startXML(t, drv, domainXML(rootfs, "ct-pids", domOpts{
		init:    shInit(bomb),
		devices: bindXML(out, "/out", false),
		top: fmt.Sprintf(`
  <metadata><lxc:lxc xmlns:lxc='%s'><lxc:pids max='%d'/></lxc:lxc></metadata>`, MetadataNS, limit),
	}))
	waitFile(t, filepath.Join(out, "bomb"), 20*time.Second)
	cg := testCgroup(t, uuid)
	pids, err := cg.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) > limit {
		t.Errorf("%d processes in the container, want at most the limit %d", len(pids), limit)
	}
	if ev, _ := cg.Stat("pids", "pids.events"); ev == "max 0" || ev == "" {
		t.Errorf("pids.events = %q: the limit was never hit", ev)
	}
	// The host can still fork.
	runCmd(t, "true")
}

// TestSuspendFreezes: a suspended container's busy loop gets no CPU time
// while a twin's, never suspended, gets 50ms; resumed, it runs again.
func TestSuspendFreezes(t *testing.T) {
	rootfs := testRootFS(t)
	drv, _ := newTestDriver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	busy := domOpts{init: shInit("while :; do :; done &")}
	uuid, _ := startXML(t, drv, domainXML(rootfs, "ct-freeze", busy))
	twin, _ := startXML(t, drv, domainXML(rootfs, "ct-busy", busy))
	cpu := func(uuid string) time.Duration {
		t.Helper()
		info, err := drv.DomainInfo(ctx, uuid)
		if err != nil {
			t.Fatal(err)
		}
		return info.CPUTime
	}
	// waitCPU waits until uuid's CPU time reaches atLeast.
	waitCPU := func(uuid string, atLeast time.Duration, what string) {
		t.Helper()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			c := cpu(uuid)
			if c >= atLeast {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: CPU time %v, want %v", what, c, atLeast)
			case <-tick.C:
			}
		}
	}
	waitCPU(uuid, 20*time.Millisecond, "the busy loop before the suspend")
	if err := drv.SuspendDomain(ctx, uuid); err != nil {
		t.Fatal(err)
	}
	a := cpu(uuid)
	waitCPU(twin, cpu(twin)+50*time.Millisecond, "the twin's busy loop while the other is suspended")
	if b := cpu(uuid); b != a {
		t.Errorf("CPU time grew from %v to %v while suspended", a, b)
	}
	if err := drv.ResumeDomain(ctx, uuid); err != nil {
		t.Fatal(err)
	}
	waitCPU(uuid, cpu(uuid)+50*time.Millisecond, "the busy loop after the resume")
}

func TestReadonlyBindMount(t *testing.T) {
	rootfs := testRootFS(t)
	drv, _ := newTestDriver(t)
	out, ro := outDir(t), outDir(t)
	startXML(t, drv, domainXML(rootfs, "ct-ro", domOpts{
		init: shInit("touch /ro/x 2>/dev/null && echo writable > /out/ro || echo readonly > /out/ro; " +
			"touch /out/x && echo writable > /out/rw"),
		devices: bindXML(out, "/out", false) + bindXML(ro, "/ro", true),
	}))
	if got := waitFile(t, filepath.Join(out, "ro"), 5*time.Second); got != "readonly" {
		t.Errorf("a <readonly/> bind mount is %s inside", got)
	}
	if got := waitFile(t, filepath.Join(out, "rw"), 5*time.Second); got != "writable" {
		t.Errorf("a read-write bind mount is %s inside", got)
	}
	if _, err := os.Stat(filepath.Join(ro, "x")); err == nil {
		t.Error("the container wrote through a read-only bind mount")
	}
}

func TestIDMap(t *testing.T) {
	rootfs := testRootFS(t)
	drv, _ := newTestDriver(t)
	out := outDir(t)
	uuid, _ := startXML(t, drv, domainXML(rootfs, "ct-userns", domOpts{
		init:    shInit("touch /out/file; id -u > /out/uid"),
		devices: bindXML(out, "/out", false),
		top: `
  <idmap><uid start='0' target='200000' count='65536'/><gid start='0' target='200000' count='65536'/></idmap>`,
	}))
	if got := waitFile(t, filepath.Join(out, "uid"), 5*time.Second); got != "0" {
		t.Errorf("uid inside = %s, want 0", got)
	}
	m := strings.Fields(string(mustRead(t, fmt.Sprintf("/proc/%d/uid_map", initPID(t, drv, uuid)))))
	if strings.Join(m, " ") != "0 200000 65536" {
		t.Errorf("uid_map of init = %v, want 0 200000 65536", m)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(out, "file"), &st); err != nil || st.Uid != 200000 {
		t.Errorf("a file the container's root made is owned by host uid %d (%v), want 200000", st.Uid, err)
	}
}

func TestConsoleAndReboot(t *testing.T) {
	rootfs := testRootFS(t)
	drv, _ := newTestDriver(t)
	ctx := context.Background()
	d0, err := drv.DefineDomain(ctx, domainXML(rootfs, "ct-console", domOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	uuid := d0.UUID
	// The console is attached as soon as the container starts.
	dom, err := drv.StartDomain(ctx, uuid)
	if err != nil {
		t.Fatal(err)
	}
	before := initPID(t, drv, uuid)
	con, err := drv.OpenConsole(ctx, uuid, "")
	if err != nil {
		t.Fatalf("OpenConsole: %v", err)
	}
	defer con.Close()
	if _, err := drv.OpenConsole(ctx, uuid, ""); err == nil {
		t.Error("a second console client was accepted")
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(con)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
		close(lines)
	}()
	expect := func(want ...string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for len(want) > 0 {
			select {
			case l := <-lines:
				if l == want[0] {
					want = want[1:]
				}
			case <-timeout:
				t.Fatalf("console: still waiting for %q", want)
			}
		}
	}
	// The init prints its banner on the console once it runs (and has
	// its signal handlers in place); then a reboot starts it again.
	expect("init: ct-console up")
	if err := drv.RebootDomain(ctx, uuid); err != nil {
		t.Fatal(err)
	}
	expect("init: reboot", "init: ct-console up")
	// The new init may print its banner before the controller records
	// its pid.
	after := initPID(t, drv, uuid)
	for deadline := time.Now().Add(10 * time.Second); after == before && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		after = initPID(t, drv, uuid)
	}
	d, _ := drv.LookupDomain(ctx, virt.ByUUID(uuid))
	if after == before || d.ID != dom.ID || d.State != virt.StateRunning {
		t.Errorf("after reboot: init pid %d (was %d), domain %+v; want a new init, the same ID %d, running", after, before, d, dom.ID)
	}
}

func TestDestroyLeavesNothing(t *testing.T) {
	rootfs := testRootFS(t)
	drv, td := newTestDriver(t)
	ctx := context.Background()
	out := outDir(t)
	d, err := drv.DefineDomain(ctx, domainXML(rootfs, "ct-destroy", domOpts{
		init:    shInit("sleep 1000 & sleep 1000 &"),
		devices: bindXML(out, "/out", true) + "\n    <interface type='ethernet'/>",
	}))
	if err != nil {
		t.Fatal(err)
	}
	uuid := d.UUID
	// The host end of the veth is made in a namespace of the test's, where
	// the controller runs, not among the host's interfaces.
	ns := netdevtest.NewNS(t)
	nh := netdevtest.Handle(t, ns)
	var dom *virt.Domain
	netdevtest.Do(t, ns, func() { dom, err = drv.StartDomain(ctx, uuid) })
	if err != nil {
		t.Fatalf("StartDomain: %v", err)
	}
	pid := initPID(t, drv, uuid)
	cg := testCgroup(t, uuid)
	var procs []int
	for i := 0; i < 100 && len(procs) < 3; i++ {
		time.Sleep(20 * time.Millisecond)
		procs, _ = cg.Pids()
	}
	if len(procs) < 3 {
		t.Fatalf("want init and two sleeps in the cgroup, got %v", procs)
	}
	x, _ := drv.DomainXML(ctx, uuid, false)
	veth := "vx" + strings.ReplaceAll(uuid, "-", "")[:8] + "0"
	if !strings.Contains(x, veth) {
		t.Fatalf("live XML does not name the host veth %s:\n%s", veth, x)
	}
	if _, err := nh.LinkByName(veth); err != nil {
		t.Fatalf("host veth %s: %v", veth, err)
	}
	if err := drv.DestroyDomain(ctx, uuid); err != nil {
		t.Fatal(err)
	}
	st, reason, _ := drv.DomainState(ctx, uuid)
	if st != virt.StateShutoff || reason != virt.ShutoffDestroyed {
		t.Errorf("after destroy: %s (%s)", st, virt.ReasonString(st, reason))
	}
	for _, p := range append(procs, pid, int(dom.ID)) {
		if alive(p) {
			t.Errorf("process %d survived the destroy", p)
		}
	}
	if cg.Exists() {
		t.Errorf("cgroup %v survived the destroy", cg.Dirs())
	}
	if _, err := nh.LinkByName(veth); err == nil {
		t.Errorf("veth %s survived the destroy", veth)
	}
	if m := string(mustRead(t, "/proc/self/mountinfo")); strings.Contains(m, rootfs) || strings.Contains(m, out) {
		t.Errorf("container mounts are visible on the host:\n%s", m)
	}
	if left, _ := filepath.Glob(filepath.Join(td.root, "run", uuid+"*")); len(left) > 0 {
		t.Errorf("run files left behind: %v", left)
	}
}

// alive reports whether pid is a live process (not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func TestRecovery(t *testing.T) {
	rootfs := testRootFS(t)
	drv1, td := newTestDriver(t)
	ctx := context.Background()
	ids := map[string]int32{}
	inits := map[string]int{}
	for _, n := range []string{"ct-rec-a", "ct-rec-b"} {
		uuid, dom := startXML(t, drv1, domainXML(rootfs, n, domOpts{}))
		ids[uuid], inits[uuid] = dom.ID, initPID(t, drv1, uuid)
	}
	// One is undefined (transient) and one paused before the driver goes.
	var transient, paused string
	for u := range ids {
		if transient == "" {
			transient = u
		} else {
			paused = u
		}
	}
	if err := drv1.UndefineDomain(ctx, transient); err != nil {
		t.Fatal(err)
	}
	if err := drv1.SuspendDomain(ctx, paused); err != nil {
		t.Fatal(err)
	}
	drv1.Close() // as if the driver died: the controllers go on

	drv2 := openTestDriver(t, td)
	events, _ := drv2.WatchEvents(ctx)
	running, _ := drv2.ListDomains(ctx, virt.ListActive)
	if len(running) != 2 {
		t.Fatalf("the new driver lists %d running containers, want 2: %+v", len(running), running)
	}
	for _, d := range running {
		if d.ID != ids[d.UUID] || initPID(t, drv2, d.UUID) != inits[d.UUID] {
			t.Errorf("%s: ID %d init %d, want the original %d and %d", d.Name, d.ID, initPID(t, drv2, d.UUID), ids[d.UUID], inits[d.UUID])
		}
		wantState, wantPersistent := virt.StateRunning, d.UUID != transient
		if d.UUID == paused {
			wantState = virt.StatePaused
		}
		if d.State != wantState || d.Persistent != wantPersistent {
			t.Errorf("%s: %+v, want %s, persistent %v", d.Name, d, wantState, wantPersistent)
		}
	}
	if n, _ := drv2.RunningGuests(ctx); n != 2 {
		t.Errorf("RunningGuests = %d, want 2", n)
	}
	if err := drv2.ResumeDomain(ctx, paused); err != nil {
		t.Fatal(err)
	}
	for u := range ids {
		if err := drv2.ShutdownDomain(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	stopped := 0
	timeout := time.After(15 * time.Second)
	for stopped < 2 {
		select {
		case ev := <-events:
			if ev.Type == virt.EventStopped {
				if ev.Detail != virt.StoppedShutdown {
					t.Errorf("%s stopped with %s", ev.Domain.Name, virt.EventDetailString(ev.Type, ev.Detail))
				}
				stopped++
			}
		case <-timeout:
			t.Fatalf("%d of 2 containers reported stopped after shutdown", stopped)
		}
	}
	if _, err := drv2.LookupDomain(ctx, virt.ByUUID(transient)); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("the transient container is still known after its shutdown: %v", err)
	}
	st, reason, _ := drv2.DomainState(ctx, paused)
	if st != virt.StateShutoff || reason != virt.ShutoffShutdown {
		t.Errorf("after shutdown: %s (%s)", st, virt.ReasonString(st, reason))
	}
	// And a third driver sees nothing running.
	drv2.Close()
	drv3 := openTestDriver(t, td)
	if n, _ := drv3.RunningGuests(ctx); n != 0 {
		t.Errorf("RunningGuests after all stopped = %d", n)
	}
}

// TestRecoveryOfCreated: a container created from XML (transient) is
// found again by a new driver, still transient and holding its name, and
// vanishes when it stops, with a Stopped event and no Undefined one.
func TestRecoveryOfCreated(t *testing.T) {
	rootfs := testRootFS(t)
	drv1, td := newTestDriver(t)
	ctx := context.Background()
	doc := domainXML(rootfs, "ct-created", domOpts{})
	d, err := drv1.CreateDomain(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	if d.Persistent || d.State != virt.StateRunning {
		t.Fatalf("CreateDomain = %+v, want running and transient", d)
	}
	init := initPID(t, drv1, d.UUID)
	drv1.Close() // as if the driver died: the controller goes on

	drv2 := openTestDriver(t, td)
	got, err := drv2.LookupDomain(ctx, virt.ByUUID(d.UUID))
	if err != nil || got.Persistent || got.State != virt.StateRunning || got.ID != d.ID || initPID(t, drv2, d.UUID) != init {
		t.Fatalf("after the restart: %+v, %v; want running, transient, ID %d", got, err, d.ID)
	}
	if _, err := drv2.CreateDomain(ctx, doc); !errors.Is(err, virt.ErrAlreadyExists) {
		t.Errorf("create with the name of the container found again: %v, want already exists", err)
	}
	events, _ := drv2.WatchEvents(ctx)
	if err := drv2.DestroyDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := drv2.LookupDomain(ctx, virt.ByUUID(d.UUID)); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("after destroy: %v, want not found", err)
	}
	fence, err := drv2.DefineDomain(ctx, domainXML(rootfs, "ct-fence", domOpts{}))
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	timeout := time.After(15 * time.Second)
	for done := false; !done; {
		select {
		case ev := <-events:
			if ev.Domain.UUID == fence.UUID {
				done = true
			} else {
				seen = append(seen, ev.Type.String()+"/"+virt.EventDetailString(ev.Type, ev.Detail))
			}
		case <-timeout:
			t.Fatalf("no event of the fence domain; events so far: %v", seen)
		}
	}
	if fmt.Sprint(seen) != "[Stopped/Destroyed]" {
		t.Errorf("events of the destroy: %v, want [Stopped/Destroyed]", seen)
	}
	if files, _ := filepath.Glob(filepath.Join(td.root, "run", d.UUID+".*")); len(files) != 0 {
		t.Errorf("run files left: %v", files)
	}
}

// TestHostCgroups logs the hierarchy the driver uses. $VIRTD_TEST_CGROUP
// ("v1" or "v2"), when set, is the one it must be: the cgroup v2 run of
// this package (test/cgroupv2) sets it.
func TestHostCgroups(t *testing.T) {
	h, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cgroups: %s", h)
	want := os.Getenv("VIRTD_TEST_CGROUP")
	if want != "" && (want == "v2") != h.V2 {
		t.Fatalf("the driver uses %s, want cgroup %s", h, want)
	}
}
