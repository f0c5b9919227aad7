package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/testenv"
	"github.com/virtd/virtd/virt"
)

var (
	buildOnce sync.Once
	builtExe  string
	buildErr  error
)

// testDriverExe builds virtd-driver-test once per test run.
func testDriverExe(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "virtd-host-test")
		if err != nil {
			buildErr = err
			return
		}
		builtExe = filepath.Join(dir, "virtd-driver-test")
		out, err := exec.Command("go", "build", "-o", builtExe, "github.com/virtd/virtd/cmd/driver-test").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building virtd-driver-test: %v", buildErr)
	}
	return builtExe
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtExe != "" {
		os.RemoveAll(filepath.Dir(builtExe))
	}
	os.Exit(code)
}

// installTestDriver makes a host root with the test driver installed.
func installTestDriver(t *testing.T) (root, exe string) {
	t.Helper()
	root = t.TempDir()
	drivers := mkdir(t, filepath.Join(root, "drivers"), 0o755)
	exe = filepath.Join(drivers, "virtd-driver-test")
	b, err := os.ReadFile(testDriverExe(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return root, exe
}

func newTestHost(t *testing.T, root string, opts ...func(*Config)) *Host {
	t.Helper()
	cfg := Config{
		Dirs: []string{filepath.Join(root, "drivers")}, RunDir: filepath.Join(root, "run"),
		ConfigDir: filepath.Join(root, "etc"), StateDir: filepath.Join(root, "lib"), LogDir: filepath.Join(root, "log"),
		UID: os.Getuid(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// No restart after a crash may start a driver once the test's
		// directories go.
		h.quiesce()
		for _, st := range h.Status() {
			if p, err := h.Lookup(st.Name); err == nil {
				p.stop("the test ended")
			}
		}
		h.Close()
	})
	return h
}

// testDriverProc is a host, configured by opts, with the test driver
// installed, and that driver's Proc.
func testDriverProc(t *testing.T, opts ...func(*Config)) (*Host, *Proc) {
	t.Helper()
	root, _ := installTestDriver(t)
	h := newTestHost(t, root, opts...)
	p, err := h.Lookup("test")
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// TestLaunchRunsTheCheckedFile: a file swapped in between the check and the
// start is not what runs; the next launch checks the new file and refuses
// it, saying why.
func TestLaunchRunsTheCheckedFile(t *testing.T) {
	testenv.Need(t, os.Getuid() == 0, "needs root to make a file owned by another user")
	root, exe := installTestDriver(t)
	marker := filepath.Join(root, "swapped-in-file-ran")
	evil := filepath.Join(root, "drivers", ".evil")
	if err := os.WriteFile(evil, []byte("#!/bin/sh\necho ran > "+marker+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	chown(t, evil, nobody)
	testHookChecked = func(path string) {
		if err := os.Rename(evil, path); err != nil {
			t.Errorf("swapping the file: %v", err)
		}
	}
	t.Cleanup(func() { testHookChecked = nil })

	h := newTestHost(t, root)
	p, err := h.Lookup("test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := p.Client(ctx)
	if err != nil {
		t.Fatalf("the checked driver did not start: %v", err)
	}
	id, err := d.Identify(ctx)
	if err != nil || id.Name != "test" {
		t.Fatalf("the process that runs is %+v, %v; want the test driver", id, err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the file swapped in after the check ran")
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(id.PID) + "/comm"); err != nil || strings.TrimSpace(string(b)) != "virtd-driver-te" {
		t.Errorf("the driver process is named %q (%v), want its executable's name", b, err)
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(id.PID) + "/cmdline"); err != nil || !strings.HasPrefix(string(b), exe+"\x00") {
		t.Errorf("the driver's argv[0] is %q, want %s", b, exe)
	}

	// The file at the path is now another user's: the next start refuses it.
	testHookChecked = nil
	p.stop("the test restarts it")
	_, err = p.Client(ctx)
	if err == nil || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("starting the swapped file: %v, want a refusal naming its owner", err)
	}
	if st := p.Status(); st.State != StateBroken || !strings.Contains(st.LastError, "owned by uid 65534") {
		t.Fatalf("status after the refusal: %+v", st)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the swapped file ran")
	}
}

// TestLaunchChecksThePin: a pinned driver whose file changed after the scan
// is refused at launch, naming both sums.
func TestLaunchChecksThePin(t *testing.T) {
	root, exe := installTestDriver(t)
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHost(t, root)
	h.trust.SHA256 = map[string]string{"test": sha256Hex(b)}
	h.Rescan()
	p, err := h.Lookup("test")
	if err != nil {
		t.Fatal(err)
	}
	// Same owner and mode, other content: only the pin tells.
	if err := os.WriteFile(exe+".new", append(b, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(exe+".new", exe); err != nil {
		t.Fatal(err)
	}
	_, err = p.Client(context.Background())
	if err == nil || !strings.Contains(err.Error(), "as pinned by driver_sha256") {
		t.Fatalf("launching a changed pinned driver: %v", err)
	}
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestDoExplainsADeathAndRetriesReads: a call whose process dies under it
// fails as unavailable, naming the driver, its pid and how it died, and
// saying that it may or may not have taken effect; a read is made again on
// the next process, which the call waited for.
func TestDoExplainsADeathAndRetriesReads(t *testing.T) {
	_, p := testDriverProc(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Open(ctx); err != nil { // a connection: restart at once
		t.Fatal(err)
	}
	defer p.Release()
	killFirst := func(d *driver.Client) {
		id, err := d.Identify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		killAndWait(t, id.PID)
	}
	first := p.Status().PID
	calls := 0
	err := p.Do(ctx, false, func(d *driver.Client) error {
		calls++
		killFirst(d)
		return d.SuspendDomain(ctx, "6695eb01-f6a4-8304-79aa-97f2502e193f")
	})
	want := fmt.Sprintf(`driver "test" (pid %d) exited during the call (signal: killed); the call may or may not have taken effect`, first)
	if !errors.Is(err, virt.ErrUnavailable) || !strings.Contains(err.Error(), want) || calls != 1 {
		t.Fatalf("an action on a driver killed under it: %v after %d calls; want unavailable saying %q", err, calls, want)
	}

	second := 0
	calls = 0
	err = p.Do(ctx, true, func(d *driver.Client) error {
		calls++
		if calls == 1 {
			killFirst(d)
		}
		doms, err := d.ListDomains(ctx, 0)
		if err == nil && len(doms) > 0 {
			second = p.Status().PID
		}
		return err
	})
	if err != nil || calls != 2 || second == 0 {
		t.Fatalf("a read on a driver killed under it: %v after %d calls (pid %d); want it answered by the next process", err, calls, second)
	}
}

// subscribeAndSuspend starts the test driver with a subscription and
// returns a function that makes n events (suspend, resume, ...).
func eventMaker(t *testing.T, p *Proc) func(n int) {
	t.Helper()
	ctx := context.Background()
	var uuid string
	if err := p.Do(ctx, true, func(d *driver.Client) error {
		doms, err := d.ListDomains(ctx, 0)
		if err == nil && len(doms) > 0 {
			uuid = doms[0].UUID
		}
		return err
	}); err != nil || uuid == "" {
		t.Fatalf("finding the test domain: %v", err)
	}
	suspended := false
	return func(n int) {
		for range n {
			err := p.Do(ctx, false, func(d *driver.Client) error {
				if suspended {
					return d.ResumeDomain(ctx, uuid)
				}
				return d.SuspendDomain(ctx, uuid)
			})
			if err != nil {
				t.Fatal(err)
			}
			suspended = !suspended
		}
	}
}

// TestSlowSubscribersDropped: a subscriber that falls more than its
// backlog behind is dropped with a resource-exhausted error naming the
// limit, as is, when every backlog together passes the total, the one with
// the most unread; a subscriber that keeps up gets every event in order.
func TestSlowSubscribersDropped(t *testing.T) {
	ctx := t.Context()
	subscribe := func(p *Proc) *Subscription {
		s, err := p.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("backlog", func(t *testing.T) {
		_, p := testDriverProc(t, func(c *Config) { c.Events = EventLimits{Backlog: 10} })
		events := eventMaker(t, p)
		slow := subscribe(p)
		events(11)
		<-slow.Done()
		if err := slow.Err(); !errors.Is(err, virt.ErrResourceExhausted) || !strings.Contains(err.Error(), "more than 10 events") {
			t.Fatalf("a subscriber 11 events behind: %v", err)
		}
		if _, ok := slow.Next(); ok {
			t.Error("a dropped subscriber still has events")
		}
	})
	t.Run("total", func(t *testing.T) {
		h, p := testDriverProc(t, func(c *Config) { c.Events = EventLimits{QueueBytes: 3000} })
		events := eventMaker(t, p)
		behind := subscribe(p)
		keeping := subscribe(p)
		var got []uint64
		for i := 0; i < 44; i++ {
			events(1)
			select {
			case <-keeping.Ready():
			case <-time.After(10 * time.Second):
				t.Fatalf("event %d did not reach the subscriber that keeps up", i)
			}
			e, ok := keeping.Next()
			if !ok {
				t.Fatalf("event %d: ready, but no event", i)
			}
			got = append(got, e.Seq)
		}
		select {
		case <-behind.Done():
		default:
			t.Fatal("the subscriber with the most unread was not dropped")
		}
		if err := behind.Err(); !errors.Is(err, virt.ErrResourceExhausted) || !strings.Contains(err.Error(), "max_event_queue_bytes") {
			t.Fatalf("the dropped subscriber: %v", err)
		}
		for i := 1; i < len(got); i++ {
			if got[i] != got[i-1]+1 {
				t.Fatalf("events out of order or missing: %v", got)
			}
		}
		if q := h.queued.Load(); q != 0 {
			t.Errorf("%d bytes still queued with every event taken or dropped", q)
		}
	})
}
