package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary is also the processes the tests put in cgroups:
// $VIRTD_CGROUP_TEST_CHILD is "parent" or "leaf".
func TestMain(m *testing.M) {
	switch os.Getenv("VIRTD_CGROUP_TEST_CHILD") {
	case "parent":
		runParent()
	case "leaf":
		runLeaf()
	}
	os.Exit(m.Run())
}

// runParent waits for a line on stdin, then starts a leaf (which shares
// its stdin and stdout) and echoes each further line to stdout.
func runParent() {
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		os.Exit(1)
	}
	leaf := exec.Command(os.Args[0])
	leaf.Env = append(os.Environ(), "VIRTD_CGROUP_TEST_CHILD=leaf")
	leaf.Stdout, leaf.Stderr = os.Stdout, os.Stderr
	if err := leaf.Start(); err != nil {
		os.Exit(1)
	}
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			os.Exit(0)
		}
		fmt.Print(line)
	}
}

// runLeaf says it is ready and blocks until it is killed, reading a pipe
// whose write end it holds itself.
func runLeaf() {
	r, w, err := os.Pipe()
	if err != nil {
		os.Exit(1)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, r)
	w.Close()
	os.Exit(1)
}

// procs are two processes in a cgroup: a parent and its child, forked
// after the parent was moved in.
type procs struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// startProcs puts a parent and its child in c.
func startProcs(t *testing.T, c *Cgroup) *procs {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "VIRTD_CGROUP_TEST_CHILD=parent")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		// Thawed, or a v1 freezer would keep it from dying.
		_ = c.Thaw()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	p := &procs{cmd: cmd, in: in, out: bufio.NewReader(out)}
	if err := c.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	p.say(t, "fork")
	if got := p.line(t); got != "ready" {
		t.Fatalf("the child said %q, want ready", got)
	}
	if pids, err := c.Pids(); err != nil || len(pids) != 2 {
		t.Fatalf("processes in the cgroup: %v, %v; want the parent and its child", pids, err)
	}
	return p
}

func (p *procs) say(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(p.in, s+"\n"); err != nil {
		t.Fatal(err)
	}
}

func (p *procs) line(t *testing.T) string {
	t.Helper()
	s, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the parent's output: %v", err)
	}
	return strings.TrimSpace(s)
}

// echoes checks the parent runs: it echoes a line back.
func (p *procs) echoes(t *testing.T) {
	t.Helper()
	p.say(t, "ping")
	if got := p.line(t); got != "ping" {
		t.Fatalf("the parent echoed %q, want ping", got)
	}
}

// killed checks the parent died of SIGKILL.
func (p *procs) killed(t *testing.T) {
	t.Helper()
	err := p.cmd.Wait()
	ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the parent ended with %v, want killed by SIGKILL", err)
	}
}

// need skips a test this machine cannot run, and fails it in CI, whose
// machines have what it needs.
func need(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

const testParent = "virtd-cgroup-test"

// testName is a cgroup name for t, unique among concurrent test runs.
func testName(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), os.Getpid())
}

// v1Cgroup creates a cgroup in the host's cgroup v1 hierarchies. The
// cgroup v2 guest of test/cgroupv2 has none and says so with
// VIRTD_TEST_CGROUP=v2.
func v1Cgroup(t *testing.T) *Cgroup {
	t.Helper()
	if os.Getenv("VIRTD_TEST_CGROUP") == "v2" {
		t.Skip("this machine mounts only cgroup v2 ($VIRTD_TEST_CGROUP=v2)")
	}
	if os.Geteuid() != 0 {
		need(t, "cgroup tests need root")
	}
	h, err := Detect()
	if err != nil {
		need(t, err.Error())
	}
	if h.V2 {
		need(t, "this machine uses "+h.String()+", not cgroup v1")
	}
	c := h.Open(testParent, testName(t))
	if err := c.Create(Limits{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeTestCgroup(c) })
	return c
}

// v2Cgroup creates a cgroup in a cgroup v2 hierarchy: /sys/fs/cgroup in
// the guest of test/cgroupv2, /sys/fs/cgroup/unified (with no
// controllers, but cgroup.freeze and cgroup.kill) on our machines. It
// does not enable controllers, which the freezer and cgroup.kill need not.
func v2Cgroup(t *testing.T) *Cgroup {
	t.Helper()
	if os.Geteuid() != 0 {
		need(t, "cgroup tests need root")
	}
	root := v2Root(t)
	h := &Hierarchy{V2: true, Root: root}
	c := h.Open(testParent, testName(t))
	dir := c.Dirs()[0]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeTestCgroup(c) })
	if _, err := os.Stat(filepath.Join(dir, "cgroup.freeze")); err != nil {
		need(t, "the kernel's cgroup v2 has no freezer (Linux 5.2): "+err.Error())
	}
	return c
}

// v2Root is where cgroup v2 is mounted.
func v2Root(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if ok && len(pf) >= 5 && len(qf) >= 1 && qf[0] == "cgroup2" && pf[3] == "/" {
			return pf[4]
		}
	}
	need(t, "cgroup v2 is not mounted")
	return ""
}

func removeTestCgroup(c *Cgroup) {
	_ = c.Kill(10 * time.Second)
	_ = c.Remove()
	// Another run's cgroups may keep the parent.
	_ = c.h.Open(testParent, "").Remove()
}

// recorder passes reads and writes to the kernel's files and records
// the writes ("file=value"); a write to a file named in missing fails
// as if the file did not exist.
type recorder struct {
	kernelFiles
	mu      sync.Mutex
	writes  []string
	missing string
}

func (r *recorder) write(path, value string) error {
	r.mu.Lock()
	r.writes = append(r.writes, filepath.Base(path)+"="+value)
	r.mu.Unlock()
	if filepath.Base(path) == r.missing {
		return fmt.Errorf("cgroup: %w", &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT})
	}
	return r.kernelFiles.write(path, value)
}

func (r *recorder) written() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.writes)
}

// fakeKernel is a cgroup's files in memory: onWrite plays the kernel's
// part. Nothing changes but by a write, so its watchers never wake.
type fakeKernel struct {
	files   map[string]string
	writes  []string
	onWrite func(k *fakeKernel, name, value string)
}

func (k *fakeKernel) read(path string) (string, error) {
	s, ok := k.files[filepath.Base(path)]
	if !ok {
		return "", &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
	}
	return s, nil
}

func (k *fakeKernel) write(path, value string) error {
	name := filepath.Base(path)
	k.writes = append(k.writes, name+"="+value)
	k.onWrite(k, name, value)
	return nil
}

func (k *fakeKernel) watch(string) (watcher, error) { return stillWatcher{}, nil }

type stillWatcher struct{}

func (stillWatcher) wait(time.Duration) (bool, error) { return false, nil }
func (stillWatcher) close()                           {}

func TestFreezeV1(t *testing.T) {
	c := v1Cgroup(t)
	p := startProcs(t, c)
	if err := c.Freeze(); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Stat("freezer", "freezer.state"); err != nil || s != "FROZEN" {
		t.Fatalf("freezer.state = %q, %v after Freeze; want FROZEN", s, err)
	}
	if f, err := c.Frozen(); err != nil || !f {
		t.Fatalf("Frozen() = %v, %v after Freeze", f, err)
	}
	if err := c.Thaw(); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Stat("freezer", "freezer.state"); err != nil || s != "THAWED" {
		t.Fatalf("freezer.state = %q, %v after Thaw; want THAWED", s, err)
	}
	if f, err := c.Frozen(); err != nil || f {
		t.Fatalf("Frozen() = %v, %v after Thaw", f, err)
	}
	p.echoes(t)
}

// fakeV1 is a v1 cgroup whose freezer.state shows what frozen(n) says
// after the nth write of FROZEN; THAWED thaws it.
func fakeV1(frozen func(n int) string) (*Cgroup, *fakeKernel, *[]int) {
	n := 0
	k := &fakeKernel{
		files: map[string]string{"freezer.state": "THAWED"},
		onWrite: func(k *fakeKernel, name, value string) {
			if name != "freezer.state" {
				return
			}
			if value == "FROZEN" {
				n++
				k.files[name] = frozen(n)
			} else {
				k.files[name] = value
			}
		},
	}
	h := &Hierarchy{Mounts: map[string]string{"freezer": "/fake/freezer"}}
	c := h.Open(testParent, "fake")
	c.fs = k
	var pauses []int
	c.retry = retry{freezeAttempts: 4, pause: func(i int) { pauses = append(pauses, i) }}
	return c, k, &pauses
}

func TestFreezeV1RewritesFrozenWhileFreezing(t *testing.T) {
	c, k, pauses := fakeV1(func(n int) string {
		if n < 3 {
			return "FREEZING"
		}
		return "FROZEN"
	})
	if err := c.Freeze(); err != nil {
		t.Fatal(err)
	}
	want := []string{"freezer.state=FROZEN", "freezer.state=FROZEN", "freezer.state=FROZEN"}
	if !slices.Equal(k.writes, want) {
		t.Errorf("writes = %q, want %q", k.writes, want)
	}
	if !slices.Equal(*pauses, []int{1, 2}) {
		t.Errorf("pauses before attempts %v, want [1 2]", *pauses)
	}
}

func TestFreezeV1StuckInFreezingThaws(t *testing.T) {
	c, k, pauses := fakeV1(func(int) string { return "FREEZING" })
	err := c.Freeze()
	var fe *FreezeError
	if !errors.As(err, &fe) {
		t.Fatalf("Freeze = %v, want a *FreezeError", err)
	}
	if fe.Stuck != "FREEZING" || fe.Now != "THAWED" || fe.File != "freezer.state" {
		t.Errorf("FreezeError says %s was %q and is now %q, want freezer.state FREEZING then THAWED", fe.File, fe.Stuck, fe.Now)
	}
	for _, s := range []string{"freezer.state FREEZING", "is THAWED", "4 times"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	want := []string{"freezer.state=FROZEN", "freezer.state=FROZEN", "freezer.state=FROZEN", "freezer.state=FROZEN", "freezer.state=THAWED"}
	if !slices.Equal(k.writes, want) {
		t.Errorf("writes = %q, want %q", k.writes, want)
	}
	if !slices.Equal(*pauses, []int{1, 2, 3}) {
		t.Errorf("pauses before attempts %v, want [1 2 3]", *pauses)
	}
	if f, err := c.Frozen(); err != nil || f {
		t.Errorf("Frozen() = %v, %v after a failed freeze", f, err)
	}
}

func TestFreezeV1UnexpectedStateThaws(t *testing.T) {
	// Someone thawed it between our write and read.
	c, k, _ := fakeV1(func(int) string { return "THAWED" })
	err := c.Freeze()
	var fe *FreezeError
	if !errors.As(err, &fe) || fe.Stuck != "THAWED" || !strings.Contains(err.Error(), "unexpected") {
		t.Fatalf("Freeze = %v, want a *FreezeError for the unexpected THAWED", err)
	}
	if want := []string{"freezer.state=FROZEN", "freezer.state=THAWED"}; !slices.Equal(k.writes, want) {
		t.Errorf("writes = %q, want %q", k.writes, want)
	}
}

func TestFreezeV2(t *testing.T) {
	c := v2Cgroup(t)
	p := startProcs(t, c)
	if err := c.Freeze(); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Stat("", "cgroup.events"); err != nil || eventValue(s, "frozen") != "1" {
		t.Fatalf("cgroup.events = %q, %v after Freeze; want frozen 1", s, err)
	}
	if f, err := c.Frozen(); err != nil || !f {
		t.Fatalf("Frozen() = %v, %v after Freeze", f, err)
	}
	if err := c.Thaw(); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Stat("", "cgroup.events"); err != nil || eventValue(s, "frozen") != "0" {
		t.Fatalf("cgroup.events = %q, %v after Thaw; want frozen 0", s, err)
	}
	p.echoes(t)
}

func TestFreezeV2NeverFrozenThaws(t *testing.T) {
	k := &fakeKernel{
		files: map[string]string{"cgroup.freeze": "0", "cgroup.events": "populated 1\nfrozen 0"},
		// The kernel takes the request but never gets there.
		onWrite: func(k *fakeKernel, name, value string) { k.files[name] = value },
	}
	h := &Hierarchy{V2: true, Root: "/fake"}
	c := h.Open(testParent, "fake")
	c.fs = k
	c.retry = retry{timeout: time.Hour}
	err := c.Freeze()
	var fe *FreezeError
	if !errors.As(err, &fe) {
		t.Fatalf("Freeze = %v, want a *FreezeError", err)
	}
	if fe.File != "cgroup.events" || fe.Stuck != "frozen 0" || fe.Now != "frozen 0" {
		t.Errorf("FreezeError says %s was %q and is now %q, want cgroup.events frozen 0 both", fe.File, fe.Stuck, fe.Now)
	}
	if want := []string{"cgroup.freeze=1", "cgroup.freeze=0"}; !slices.Equal(k.writes, want) {
		t.Errorf("writes = %q, want %q", k.writes, want)
	}
}

// gone checks that every directory of c is gone.
func gone(t *testing.T, c *Cgroup) {
	t.Helper()
	for _, d := range c.Dirs() {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (%v)", d, err)
		}
	}
}

// testKill kills c's processes (frozen first if freeze) and removes c,
// with r recording the writes.
func testKill(t *testing.T, c *Cgroup, r *recorder, freeze bool) {
	t.Helper()
	p := startProcs(t, c)
	if freeze {
		if err := c.Freeze(); err != nil {
			t.Fatal(err)
		}
	}
	c.fs = r
	if err := c.Kill(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if pids, err := c.Pids(); err != nil || len(pids) > 0 {
		t.Fatalf("processes in the cgroup after Kill: %v, %v", pids, err)
	}
	p.killed(t)
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	gone(t, c)
}

func TestKillV2UsesCgroupKill(t *testing.T) {
	for _, frozen := range []bool{false, true} {
		t.Run(fmt.Sprintf("frozen=%v", frozen), func(t *testing.T) {
			c := v2Cgroup(t)
			if _, err := os.Stat(filepath.Join(c.Dirs()[0], "cgroup.kill")); err != nil {
				need(t, "the kernel's cgroup v2 has no cgroup.kill (Linux 5.14): "+err.Error())
			}
			r := &recorder{}
			testKill(t, c, r, frozen)
			// The kernel killed them all: no freeze, no thaw.
			if w := r.written(); !slices.Equal(w, []string{"cgroup.kill=1"}) {
				t.Errorf("Kill wrote %q, want only cgroup.kill=1", w)
			}
		})
	}
}

func TestKillV2WithoutCgroupKill(t *testing.T) {
	for _, frozen := range []bool{false, true} {
		t.Run(fmt.Sprintf("frozen=%v", frozen), func(t *testing.T) {
			c := v2Cgroup(t)
			r := &recorder{missing: "cgroup.kill"}
			testKill(t, c, r, frozen)
			// Frozen, signalled, thawed.
			w := r.written()
			if len(w) < 3 || !slices.Equal(w[:3], []string{"cgroup.kill=1", "cgroup.freeze=1", "cgroup.freeze=0"}) {
				t.Errorf("Kill wrote %q, want cgroup.kill=1 (absent), then a freeze and a thaw", w)
			}
		})
	}
}

func TestKillV1(t *testing.T) {
	for _, frozen := range []bool{false, true} {
		t.Run(fmt.Sprintf("frozen=%v", frozen), func(t *testing.T) {
			c := v1Cgroup(t)
			r := &recorder{}
			testKill(t, c, r, frozen)
			// FROZEN is written again while the freezer says
			// FREEZING, which happens here.
			w := slices.Compact(r.written())
			if len(w) < 2 || !slices.Equal(w[:2], []string{"freezer.state=FROZEN", "freezer.state=THAWED"}) {
				t.Errorf("Kill wrote %q, want a freeze and a thaw", r.written())
			}
		})
	}
}

func TestEventValue(t *testing.T) {
	for _, tc := range []struct{ events, key, want string }{
		{"populated 1\nfrozen 0", "frozen", "0"},
		{"populated 1\nfrozen 0", "populated", "1"},
		{"populated 0", "frozen", ""},
	} {
		if got := eventValue(tc.events, tc.key); got != tc.want {
			t.Errorf("eventValue(%q, %q) = %q, want %q", tc.events, tc.key, got, tc.want)
		}
	}
}

func TestCPUSplit(t *testing.T) {
	v1 := &Hierarchy{Mounts: map[string]string{"cpuacct": "/fake/cpuacct"}}
	v2 := &Hierarchy{V2: true, Root: "/fake"}
	for _, tc := range []struct {
		h            *Hierarchy
		files        map[string]string
		user, system time.Duration
		ok           bool
	}{
		{v1, map[string]string{"cpuacct.stat": "user 150\nsystem 25"}, 1500 * time.Millisecond, 250 * time.Millisecond, true},
		{v2, map[string]string{"cpu.stat": "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 0"}, 1500 * time.Microsecond, 500 * time.Microsecond, true},
		{v1, map[string]string{"cpuacct.stat": "user 150"}, 0, 0, false},
		{v2, map[string]string{}, 0, 0, false},
	} {
		c := tc.h.Open(testParent, "fake")
		c.fs = &fakeKernel{files: tc.files}
		user, system, err := c.CPUSplit()
		if user != tc.user || system != tc.system || (err == nil) != tc.ok {
			t.Errorf("%v: CPUSplit = %v, %v, %v; want %v, %v, ok %v", tc.files, user, system, err, tc.user, tc.system, tc.ok)
		}
	}
}
