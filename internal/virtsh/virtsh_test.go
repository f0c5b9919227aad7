package virtsh

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/virtd/virtd/client"
	"github.com/virtd/virtd/internal/fakevirtd"
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
)

const testUUID = "11111111-2222-3333-4444-555555555555"

type harness struct {
	t   *testing.T
	s   *fakevirtd.Server
	uri string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir, err := os.MkdirTemp("", "vsh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := fakevirtd.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
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
	h := newHarness(t)
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
		{[]string{"hostname"}, "fakehost\n\n"},
		{[]string{"uri"}, "test:///default\n\n"},
		{[]string{"capabilities"}, fakevirtd.Capabilities + "\n"},
		{[]string{"version", "--daemon"}, "Compiled against library: virtd " + client.LibraryVersion + "\nUsing library: virtd " + client.LibraryVersion + "\nUsing API: Test 0.1.0\nRunning hypervisor: Test 2.0.3\nRunning against daemon: 0.1.0\n\n"},
		{[]string{"nodeinfo"}, `CPU model:           i686
CPU(s):              16
CPU frequency:       1400 MHz
CPU socket(s):       2
Core(s) per socket:  2
Thread(s) per core:  2
NUMA cell(s):        2
Memory size:         3145728 KiB

`},
		{[]string{"dominfo", "test"}, `Id:             1
Name:           test
UUID:           11111111-2222-3333-4444-555555555555
OS Type:        hvm
State:          running
CPU(s):         2
CPU time:       1.5s
Max memory:     8388608 KiB
Used memory:    8388608 KiB
Persistent:     yes
Autostart:      disable
Managed save:   no

`},
		{[]string{"-q", "domid", "test"}, "1\n"},
		{[]string{"event", "--list"}, "lifecycle\n\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if got := h.ok(tt.args...); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
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
		{[]string{"dumpxml", "--inactive", "web"}, xml + "\n\n"},
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

func TestErrors(t *testing.T) {
	h := newHarness(t)
	missing := filepath.Join(h.s.Dir, "nope")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no such domain", []string{"-c", h.uri, "dominfo", "nosuch"},
			"error: failed to get domain 'nosuch'\nerror: domain not found: no domain with matching name 'nosuch'\n"},
		{"start running domain", []string{"-c", h.uri, "start", "test"},
			"error: Failed to start domain 'test'\nerror: domain 'test' is already active\n"},
		{"daemon not running", []string{"-c", "test:///default?socket=" + missing, "list"},
			"error: failed to connect to the hypervisor\nerror: cannot connect to virtd at " + missing + ": no such file (is virtd running?)\n"},
		{"tls", []string{"-c", "test+tls://host/default", "list"},
			"error: failed to connect to the hypervisor\nerror: cannot open test+tls://host/default: TLS transport not supported yet\n"},
		{"bad uri", []string{"-c", "qemu://host/system", "list"},
			"error: failed to connect to the hypervisor\nerror: invalid URI \"qemu://host/system\": host \"host\" not allowed with the local unix transport (use qemu+tls://host/system for a remote host)\n"},
		{"read-only", []string{"-r", "-c", h.uri, "destroy", "test"},
			"error: Failed to destroy domain 'test'\nerror: operation forbidden: read only access prevents this\n"},
		{"unknown command", []string{"frobnicate"}, "error: unknown command: 'frobnicate'\n"},
		{"unknown option", []string{"-c", h.uri, "list", "--bogus"}, "error: command 'list' doesn't support option --bogus\n"},
		{"missing domain", []string{"-c", h.uri, "start"}, "error: command 'start' requires <domain> option\n"},
		{"extra argument", []string{"-c", h.uri, "start", "a", "b"}, "error: unexpected data 'b'\n"},
		{"bad timeout", []string{"-c", h.uri, "event", "--all", "--timeout", "x"}, "error: numeric value 'x' for <timeout> option is malformed or out of range\n"},
		{"event needs a type", []string{"-c", h.uri, "event"}, "error: one of --list, --all, or --event <type> is required\n"},
		{"define missing file", []string{"-c", h.uri, "define", missing}, "error: Failed to read file '" + missing + "' to define domain: no such file or directory\n"},
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
	// Read-only uses the read-only socket.
	out, errs, code = h.runCtx(context.Background(), "--readonly", "domstate", "test")
	if code != 0 || out != "running\n\n" {
		t.Fatalf("exit %d, out %q, err %q", code, out, errs)
	}
	calls := strings.Join(h.s.Calls(), "\n")
	if !strings.Contains(calls, "Open test:///default true") {
		t.Errorf("no read-only open in %s", calls)
	}

	t.Setenv(URIEnv, "")
	_, errs, _ = h.runCtx(context.Background(), "--connect=qemu:///system", "list")
	if !strings.Contains(errs, `no driver installed for URI scheme "qemu" (fake daemon; URI "qemu:///system")`) {
		t.Errorf("default URI: %q", errs)
	}
	_, errs, _ = h.runCtx(context.Background(), "list")
	if !strings.Contains(errs, `no driver installed for URI scheme "qemu" (fake daemon; URI "qemu:///system")`) {
		t.Errorf("default URI not qemu:///system: %q", errs)
	}
}

func TestEvent(t *testing.T) {
	h := newHarness(t)
	type result struct {
		out, errs string
		code      int
	}
	done := make(chan result)
	go func() {
		out, errs, code := h.run("event", "--event", "lifecycle", "--timeout", "15")
		done <- result{out, errs, code}
	}()
	h.s.WaitWatches(1)
	h.ok("destroy", "test")
	r := <-done
	want := "event 'lifecycle' for domain 'test': Stopped Destroyed\nevents received: 1\n\n"
	if r.code != 0 || r.out != want {
		t.Errorf("event: exit %d, stderr %q, out:\n%s\nwant:\n%s", r.code, r.errs, r.out, want)
	}

	// --loop with a domain filter, ended by the caller (Ctrl-C).
	h.ok("define", writeFile(t, "<domain><name>other</name></domain>"))
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	go func() {
		var errb bytes.Buffer
		code := Run(ctx, []string{"-c", h.uri, "event", "test", "--all", "--loop"}, &out, &errb)
		done <- result{out.String(), errb.String(), code}
	}()
	h.s.WaitWatches(2)
	h.ok("start", "other")
	h.ok("start", "test")
	h.ok("suspend", "test")
	h.s.Emit("test", apiv1.EventType_EVENT_TYPE_RESUMED, 0)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Resumed") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	r = <-done
	want = "event 'lifecycle' for domain 'test': Started Booted\n" +
		"event 'lifecycle' for domain 'test': Suspended Paused\n" +
		"event 'lifecycle' for domain 'test': Resumed Unpaused\n" +
		"events received: 3\n\n"
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
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
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

func TestDrivers(t *testing.T) {
	h := newHarness(t)
	h.s.SetDrivers([]*apiv1.DriverStatus{
		{Name: "qemu", Path: "/d/virtd-driver-qemu", Version: "1.2.3", ApiVersion: 1, State: "running", Health: "available", Pid: 99, Restarts: 2},
		{Name: "xen", Path: "/d/virtd-driver-xen", Version: "1.2.3", ApiVersion: 1, State: "stopped", Health: "unavailable", HealthReason: "no Xen hypervisor on this host", LastError: "exit status 1"},
	}, []*apiv1.RejectedFile{{Path: "/d/virtd-driver-evil", Reason: "writable by group or others"}}, []string{"/d"})
	h.s.SetRescan(&apiv1.RescanResponse{Added: []string{"lxc"}, Removed: []string{"test"}})
	table := " Name   State     Health                                         PID   Restarts   API   Version   Path                   Last error\n" +
		strings.Repeat("-", 136) + "\n" +
		" qemu   running   available                                      99    2          1     1.2.3     /d/virtd-driver-qemu   -\n" +
		" xen    stopped   unavailable (no Xen hypervisor on this host)   -     0          1     1.2.3     /d/virtd-driver-xen    exit status 1\n" +
		"\nRejected files:\n  /d/virtd-driver-evil: writable by group or others\n" +
		"\nSearched: /d\n\n"
	if got := h.ok("drivers"); got != table {
		t.Errorf("drivers:\n%s\nwant:\n%s", got, table)
	}
	want := "Driver 'lxc' added\nDriver 'test' removed\n\n" + table
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
	want = "error: failed to connect to the admin server\nerror: cannot connect to virtd at " + filepath.Join(h.s.Dir, "none", "virtd-admin-sock") + ": no such file (is virtd running?)\n"
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
