package virtsh

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virtd/virtd/client"
	"github.com/virtd/virtd/daemon"
	"github.com/virtd/virtd/daemon/daemontest"
	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/testdriver"
	"github.com/virtd/virtd/virt"
)

// testUUID is the UUID of the test driver's default domain, libvirt's.
const testUUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"

type harness struct {
	t   *testing.T
	s   *daemontest.Daemon
	uri string
}

// newHarness serves virtd's core and gRPC front end with drivers in this
// process (a fresh test driver when none is given).
func newHarness(t *testing.T, drivers ...driver.Driver) *harness {
	t.Helper()
	s := daemontest.Start(t, drivers...)
	return &harness{t: t, s: s, uri: "test+unix:///default?socket=" + s.Socket}
}

// run runs virtsh with args after "-c URI".
func (h *harness) run(args ...string) (stdout, stderr string, code int) {
	return h.runCtx(context.Background(), append([]string{"-c", h.uri}, args...)...)
}

func (h *harness) runCtx(ctx context.Context, args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := Run(ctx, args, &out, &errb)
	return out.String(), errb.String(), code
}

// ok runs a command that must succeed and returns its stdout.
func (h *harness) ok(args ...string) string {
	h.t.Helper()
	out, errs, code := h.run(args...)
	if code != 0 || errs != "" {
		h.t.Fatalf("virtsh %s: exit %d, stderr %q", strings.Join(args, " "), code, errs)
	}
	return out
}

func (h *harness) fails(args ...string) string {
	h.t.Helper()
	out, errs, code := h.run(args...)
	if code != 1 || out != "" {
		h.t.Fatalf("virtsh %s: exit %d, stdout %q; want exit 1 and no output", strings.Join(args, " "), code, out)
	}
	return errs
}

func TestOutputs(t *testing.T) {
	drv := testdriver.New(driver.Env{})
	h := newHarness(t, drv)
	ctx := context.Background()
	hostname, _ := drv.Hostname(ctx)
	caps, _ := drv.Capabilities(ctx)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"list"}, " Id   Name   State\n----------------------\n 1    test   running\n\n"},
		{[]string{"list", "--inactive"}, " Id   Name   State\n--------------------\n\n"},
		{[]string{"list", "--name"}, "test\n\n"},
		{[]string{"list", "--uuid"}, testUUID + "\n\n"},
		{[]string{"domid", "test"}, "1\n\n"},
		{[]string{"domname", "1"}, "test\n\n"},
		{[]string{"domname", testUUID}, "test\n\n"},
		{[]string{"domuuid", "test"}, testUUID + "\n\n"},
		{[]string{"domstate", "test"}, "running\n\n"},
		{[]string{"domstate", "--domain", "test", "--reason"}, "running (booted)\n\n"},
		{[]string{"hostname"}, hostname + "\n\n"},
		{[]string{"uri"}, "test:///default\n\n"},
		{[]string{"capabilities"}, caps + "\n\n"},
		{[]string{"version", "--daemon"}, "Compiled against library: virtd " + client.LibraryVersion + "\nUsing library: virtd " + client.LibraryVersion + "\nUsing API: Test " + testdriver.Version + "\nRunning hypervisor: Test 2.0.0\nRunning against daemon: " + daemon.Version + "\n\n"},
		{[]string{"nodeinfo"}, `CPU model:           i686
CPU(s):              16
CPU frequency:       1400 MHz
CPU socket(s):       2
Core(s) per socket:  2
Thread(s) per core:  2
NUMA cell(s):        2
Memory size:         3145728 KiB

`},
		{[]string{"-q", "domid", "test"}, "1\n"},
		{[]string{"event", "--list"}, "lifecycle\nreboot\n\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if got := h.ok(tt.args...); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
	// The CPU time of a running domain grows.
	dominfo := regexp.MustCompile(`^Id:             1
Name:           test
UUID:           ` + testUUID + `
OS Type:        hvm
State:          running
CPU\(s\):         2
CPU time:       [0-9.]+s
Max memory:     8388608 KiB
Used memory:    2097152 KiB
Persistent:     yes
Autostart:      disable
Managed save:   no

$`)
	if got := h.ok("dominfo", "test"); !dominfo.MatchString(got) {
		t.Errorf("dominfo:\n%s\nwant:\n%s", got, dominfo)
	}
}

func TestDomainLifecycle(t *testing.T) {
	h := newHarness(t)
	file := filepath.Join(t.TempDir(), "web.xml")
	xml := "<domain type='test'><name>web</name><uuid>aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee</uuid><memory>1024</memory><vcpu>1</vcpu></domain>"
	if err := os.WriteFile(file, []byte(xml), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"define", file}, "Domain 'web' defined from " + file + "\n\n"},
		{[]string{"list", "--all"}, " Id   Name   State\n-----------------------\n 1    test   running\n -    web    shut off\n\n"},
		{[]string{"dumpxml", "--inactive", "web"}, `<domain type="test">
  <name>web</name>
  <uuid>aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee</uuid>
  <memory unit="KiB">1024</memory>
  <currentMemory unit="KiB">1024</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch="i686">hvm</type>
  </os>
</domain>

`},
		{[]string{"start", "web"}, "Domain 'web' started\n\n"},
		{[]string{"domid", "web"}, "2\n\n"},
		{[]string{"suspend", "2"}, "Domain 'web' suspended\n\n"},
		{[]string{"list", "--state-paused", "--name"}, "web\n\n"},
		{[]string{"resume", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"}, "Domain 'web' resumed\n\n"},
		{[]string{"reboot", "web"}, "Domain 'web' is being rebooted\n\n"},
		{[]string{"shutdown", "web"}, "Domain 'web' is being shutdown\n\n"},
		{[]string{"domstate", "--reason", "web"}, "shut off (shutdown)\n\n"},
		{[]string{"destroy", "test"}, "Domain 'test' destroyed\n\n"},
		{[]string{"domstate", "--reason", "test"}, "shut off (destroyed)\n\n"},
		{[]string{"domid", "test"}, "-\n\n"},
		{[]string{"autostart", "web"}, "Domain 'web' marked as autostarted\n\n"},
		{[]string{"list", "--all", "--autostart", "--name"}, "web\n\n"},
		{[]string{"list", "--all", "--no-autostart", "--name"}, "test\n\n"},
		{[]string{"autostart", "--disable", "web"}, "Domain 'web' unmarked as autostarted\n\n"},
		{[]string{"undefine", "web"}, "Domain 'web' has been undefined\n\n"},
		{[]string{"list", "--all", "--name"}, "test\n\n"},
	}
	for _, s := range steps {
		if got := h.ok(s.args...); got != s.want {
			t.Errorf("virtsh %s:\n%s\nwant:\n%s", strings.Join(s.args, " "), got, s.want)
		}
	}
}

// TestCreate: virsh create's words; the domain runs, is transient, and
// is gone once destroyed.
func TestCreate(t *testing.T) {
	h := newHarness(t)
	file := writeFile(t, "<domain type='test'><name>web</name><uuid>aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee</uuid><memory>1024</memory><vcpu>1</vcpu></domain>")
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"create", file}, "Domain 'web' created from " + file + "\n\n"},
		{[]string{"list"}, " Id   Name   State\n----------------------\n 1    test   running\n 2    web    running\n\n"},
		{[]string{"list", "--all", "--transient", "--name"}, "web\n\n"},
		{[]string{"list", "--all", "--persistent", "--name"}, "test\n\n"},
		{[]string{"domstate", "--reason", "web"}, "running (booted)\n\n"},
		{[]string{"destroy", "web"}, "Domain 'web' destroyed\n\n"},
		{[]string{"list", "--all", "--name"}, "test\n\n"},
		{[]string{"-q", "create", "--file", file}, ""},
	}
	for _, s := range steps {
		if got := h.ok(s.args...); got != s.want {
			t.Errorf("virtsh %s:\n%s\nwant:\n%s", strings.Join(s.args, " "), got, s.want)
		}
	}
	if got := h.ok("dominfo", "web"); !strings.Contains(got, "Persistent:     no\n") {
		t.Errorf("dominfo of a created domain:\n%s", got)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", file}, "error: Failed to create domain from " + file + "\nerror: domain 'web' is already active: operation not valid\n"},
		{[]string{"autostart", "web"}, "error: Failed to mark domain 'web' as autostarted\nerror: domain 'web': cannot set autostart for a transient domain: operation not valid\n"},
		{[]string{"undefine", "web"}, "error: Failed to undefine domain 'web'\nerror: domain 'web': cannot undefine a transient domain: operation not valid\n"},
	} {
		if got := h.fails(tc.args...); got != tc.want {
			t.Errorf("virtsh %s: stderr:\n%s\nwant:\n%s", strings.Join(tc.args, " "), got, tc.want)
		}
	}
}

func TestErrors(t *testing.T) {
	h := newHarness(t)
	missing := filepath.Join(h.s.Dir, "nope")
	roFile := writeFile(t, "<domain type='test'><name>ro</name><memory>1024</memory></domain>")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no such domain", []string{"-c", h.uri, "dominfo", "nosuch"},
			"error: failed to get domain 'nosuch'\nerror: no domain with matching name 'nosuch': not found\n"},
		{"start running domain", []string{"-c", h.uri, "start", "test"},
			"error: Failed to start domain 'test'\nerror: domain 'test': domain is already running: operation not valid\n"},
		{"daemon not running", []string{"-c", "test:///default?socket=" + missing, "list"},
			"error: failed to connect to the hypervisor\nerror: cannot connect to virtd at " + missing + ": no such file (is virtd running?): unavailable\n"},
		{"tls", []string{"-c", "test+tls://host/default", "list"},
			"error: failed to connect to the hypervisor\nerror: cannot open test+tls://host/default: TLS transport not supported yet: not supported\n"},
		{"bad uri", []string{"-c", "qemu://host/system", "list"},
			"error: failed to connect to the hypervisor\nerror: invalid URI \"qemu://host/system\": host \"host\" not allowed with the local unix transport (use qemu+tls://host/system for a remote host): invalid argument\n"},
		{"read-only", []string{"-r", "-c", h.uri, "destroy", "test"},
			"error: Failed to destroy domain 'test'\nerror: destroy refused: the connection is read-only: permission denied\n"},
		{"unknown command", []string{"frobnicate"}, "error: unknown command: 'frobnicate'\n"},
		{"unknown option", []string{"-c", h.uri, "list", "--bogus"}, "error: command 'list' doesn't support option --bogus\n"},
		{"missing domain", []string{"-c", h.uri, "start"}, "error: command 'start' requires <domain> option\n"},
		{"extra argument", []string{"-c", h.uri, "start", "a", "b"}, "error: unexpected data 'b'\n"},
		{"bad timeout", []string{"-c", h.uri, "event", "--all", "--timeout", "x"}, "error: numeric value 'x' for <timeout> option is malformed or out of range\n"},
		{"event needs a type", []string{"-c", h.uri, "event"}, "error: one of --list, --all, or --event <type> is required\n"},
		{"define missing file", []string{"-c", h.uri, "define", missing}, "error: Failed to read file '" + missing + "' to define domain: no such file or directory\n"},
		{"create missing file", []string{"-c", h.uri, "create", missing}, "error: Failed to read file '" + missing + "' to create domain: no such file or directory\n"},
		{"read-only create", []string{"-r", "-c", h.uri, "create", roFile},
			"error: Failed to create domain from " + roFile + "\nerror: create refused: the connection is read-only: permission denied\n"},
		{"no command", []string{"-c", h.uri}, "error: no command given (try 'virtsh help')\n"},
		{"bad global option", []string{"--frob", "list"}, "error: unsupported option '--frob'. See --help.\n"},
		{"help unknown", []string{"help", "frob"}, "error: command 'frob' doesn't exist\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs, code := h.runCtx(context.Background(), tt.args...)
			if code != 1 || out != "" || errs != tt.want {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant:\n%s", code, out, errs, tt.want)
			}
		})
	}
}

func TestDefaultURIAndRunDir(t *testing.T) {
	h := newHarness(t)
	t.Setenv("VIRTD_RUN_DIR", h.s.Dir)
	t.Setenv(URIEnv, "test:///default")
	out, errs, code := h.runCtx(context.Background(), "list", "--name")
	if code != 0 || out != "test\n\n" {
		t.Fatalf("exit %d, out %q, err %q", code, out, errs)
	}
	// Read-only uses the read-only socket, which opens only read-only
	// connections.
	out, errs, code = h.runCtx(context.Background(), "--readonly", "domstate", "test")
	if code != 0 || out != "running\n\n" {
		t.Fatalf("exit %d, out %q, err %q", code, out, errs)
	}
	_, errs, code = h.runCtx(context.Background(), "--readonly", "destroy", "test")
	if code != 1 || !strings.Contains(errs, "the connection is read-only") {
		t.Fatalf("read-only destroy: exit %d, err %q", code, errs)
	}

	t.Setenv(URIEnv, "")
	const noQEMU = `cannot open qemu:///system: no driver in this process serves URI scheme "qemu"`
	_, errs, _ = h.runCtx(context.Background(), "--connect=qemu:///system", "list")
	if !strings.Contains(errs, noQEMU) {
		t.Errorf("default URI: %q", errs)
	}
	_, errs, _ = h.runCtx(context.Background(), "list")
	if !strings.Contains(errs, noQEMU) {
		t.Errorf("default URI not qemu:///system: %q", errs)
	}
}

// watched is a driver that says when someone has subscribed to its
// events: the core's view, as the harness starts, then each client.
type watched struct {
	driver.Driver
	subscribed chan struct{}
}

func (w *watched) WatchEvents(ctx context.Context) (<-chan virt.Event, error) {
	ch, err := w.Driver.WatchEvents(ctx)
	w.subscribed <- struct{}{}
	return ch, err
}

func TestEvent(t *testing.T) {
	w := &watched{Driver: testdriver.New(driver.Env{}), subscribed: make(chan struct{}, 1)}
	h := newHarness(t, w)
	<-w.subscribed // the view's
	type result struct {
		out, errs string
		code      int
	}
	done := make(chan result)
	go func() {
		out, errs, code := h.run("event", "--event", "lifecycle", "--timeout", "15")
		done <- result{out, errs, code}
	}()
	<-w.subscribed
	h.ok("destroy", "test")
	r := <-done
	want := "event 'lifecycle' for domain 'test': Stopped Destroyed\nevents received: 1\n\n"
	if r.code != 0 || r.out != want {
		t.Errorf("event: exit %d, stderr %q, out:\n%s\nwant:\n%s", r.code, r.errs, r.out, want)
	}

	// --loop with a domain filter, ended by the caller (Ctrl-C).
	h.ok("define", writeFile(t, "<domain type='test'><name>other</name><memory>1024</memory></domain>"))
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	go func() {
		var errb bytes.Buffer
		code := Run(ctx, []string{"-c", h.uri, "event", "test", "--all", "--loop"}, &out, &errb)
		done <- result{out.String(), errb.String(), code}
	}()
	<-w.subscribed
	h.ok("start", "other")
	h.ok("start", "test")
	h.ok("suspend", "test")
	h.ok("resume", "test")
	h.ok("reboot", "test")
	out.waitFor(t, "'reboot'")
	cancel()
	r = <-done
	want = "event 'lifecycle' for domain 'test': Started Booted\n" +
		"event 'lifecycle' for domain 'test': Suspended Paused\n" +
		"event 'lifecycle' for domain 'test': Resumed Unpaused\n" +
		"event 'reboot' for domain 'test'\n" +
		"events received: 4\n\n"
	if r.code != 0 || r.out != want {
		t.Errorf("event --loop: exit %d, stderr %q, out:\n%s\nwant:\n%s", r.code, r.errs, r.out, want)
	}
}

func TestEventTimeout(t *testing.T) {
	h := newHarness(t)
	start := time.Now()
	out := h.ok("event", "--all", "--timeout", "1")
	if out != "event loop timed out\nevents received: 0\n\n" {
		t.Errorf("got %q", out)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}

// syncBuffer is a bytes.Buffer safe to read while Run writes to it.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{} // has a token after a write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written == nil {
		s.written = make(chan struct{}, 1)
	}
	select {
	case s.written <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

// waitFor waits until what was written contains want.
func (s *syncBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	s.mu.Lock()
	if s.written == nil {
		s.written = make(chan struct{}, 1)
	}
	written := s.written
	s.mu.Unlock()
	timeout := time.After(20 * time.Second)
	for !strings.Contains(s.String(), want) {
		select {
		case <-written:
		case <-timeout:
			t.Fatalf("no %q in %q", want, s.String())
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "dom.xml")
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestDriversTable prints what the admin API can say of drivers.
func TestDriversTable(t *testing.T) {
	var out bytes.Buffer
	sh := &shell{stdout: &out}
	sh.printDrivers(&client.DriverList{
		Drivers: []client.DriverStatus{
			{Name: "qemu", Path: "/d/virtd-driver-qemu", Version: "1.2.3", APIVersion: 1, State: "running", Health: "available", PID: 99, Restarts: 2},
			{Name: "xen", Path: "/d/virtd-driver-xen", Version: "1.2.3", APIVersion: 1, State: "stopped", Health: "unavailable", HealthReason: "no Xen hypervisor on this host", LastError: "exit status 1"},
		},
		Rejected:    []client.RejectedFile{{Path: "/d/virtd-driver-evil", Reason: "writable by group or others"}},
		Directories: []string{"/d", "/e"},
	})
	want := " Name   State     Health                                         PID   Restarts   API   Version   Path                   Last error\n" +
		strings.Repeat("-", 136) + "\n" +
		" qemu   running   available                                      99    2          1     1.2.3     /d/virtd-driver-qemu   -\n" +
		" xen    stopped   unavailable (no Xen hypervisor on this host)   -     0          1     1.2.3     /d/virtd-driver-xen    exit status 1\n" +
		"\nRejected files:\n  /d/virtd-driver-evil: writable by group or others\n" +
		"\nSearched: /d, /e\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}

	out.Reset()
	sh.printRescan(&client.RescanResult{Added: []string{"lxc"}, Removed: []string{"xen", "test"}})
	if want := "Driver 'lxc' added\nDriver 'xen' removed\nDriver 'test' removed\n\n"; out.String() != want {
		t.Errorf("rescan:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestDrivers asks a daemon's admin socket, next to the socket of the URI
// or the default one.
func TestDrivers(t *testing.T) {
	h := newHarness(t)
	table := fmt.Sprintf(" Name   State     Health      PID%s   Restarts   API   Version%s   Path   Last error\n", strings.Repeat(" ", len(strconv.Itoa(os.Getpid()))-3), strings.Repeat(" ", len(testdriver.Version)-7)) +
		"%s\n" +
		fmt.Sprintf(" test   running   available   %d   0          1     %s   -      -\n\n", os.Getpid(), testdriver.Version)
	table = fmt.Sprintf(table, strings.Repeat("-", len(strings.SplitN(table, "\n", 2)[0])+2))
	if got := h.ok("drivers"); got != table {
		t.Errorf("drivers:\n%s\nwant:\n%s", got, table)
	}
	want := "No driver added or removed\n\n" + table
	if got := h.ok("drivers", "--rescan"); got != want {
		t.Errorf("drivers --rescan:\n%s\nwant:\n%s", got, want)
	}
	// Without ?socket= the default admin socket is used.
	t.Setenv("VIRTD_RUN_DIR", h.s.Dir)
	out, errs, code := h.runCtx(context.Background(), "drivers")
	if code != 0 || out != table {
		t.Errorf("drivers on default socket: exit %d, %q, %q", code, out, errs)
	}
	t.Setenv("VIRTD_RUN_DIR", filepath.Join(h.s.Dir, "none"))
	_, errs, code = h.runCtx(context.Background(), "drivers")
	want = "error: failed to connect to the admin server\nerror: cannot connect to virtd at " + filepath.Join(h.s.Dir, "none", "virtd-admin-sock") + ": no such file (is virtd running?): unavailable\n"
	if code != 1 || errs != want {
		t.Errorf("drivers without daemon: exit %d, %q", code, errs)
	}
}

func TestHelp(t *testing.T) {
	h := newHarness(t)
	out := h.ok("help")
	for _, c := range commands {
		if !strings.Contains(out, "    "+c.name+" ") {
			t.Errorf("help does not list %s", c.name)
		}
	}
	out = h.ok("help", "start")
	for _, want := range []string{"start - start a (previously defined) inactive domain", "start [--domain] <domain>", "domain name, id or uuid"} {
		if !strings.Contains(out, want) {
			t.Errorf("help start lacks %q:\n%s", want, out)
		}
	}
	var b bytes.Buffer
	if code := Run(context.Background(), []string{"--help"}, &b, &b); code != 0 || !strings.Contains(b.String(), "--connect=URI") {
		t.Errorf("--help: %d %s", code, b.String())
	}
}
