package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/virtd/virtd/client"
	"github.com/virtd/virtd/virt"
)

func domXML(name string) string {
	return fmt.Sprintf(`<domain type='test'>
  <name>%s</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
</domain>`, name)
}

func writeXML(t *testing.T, name string) string {
	path := filepath.Join(t.TempDir(), name+".xml")
	if err := os.WriteFile(path, []byte(domXML(name)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultDomainThroughVirtsh(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	out := d.mustVirtsh("-c", "test:///default", "list", "--all")
	if !regexpMatch(`(?m)^\s*1\s+test\s+running\s*$`, out) {
		t.Fatalf("list --all does not show the running test domain:\n%s", out)
	}
	st := d.driverStatus("test")
	if st.State != "running" || st.PID <= 0 || st.APIVersion != 1 {
		t.Fatalf("the test driver should run as a subprocess speaking API 1: %+v", st)
	}
	if !alive(int(st.PID)) {
		t.Fatalf("driver pid %d is not alive", st.PID)
	}
}

func TestLifecycleThroughVirtsh(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	c := []string{"-c", "test:///default"}
	run := func(args ...string) string { return d.mustVirtsh(append(c, args...)...) }

	if out := run("define", writeXML(t, "web")); !strings.Contains(out, "Domain 'web' defined") {
		t.Fatalf("define: %q", out)
	}
	if out := run("list", "--inactive"); !strings.Contains(out, "web") || strings.Contains(out, " test ") {
		t.Fatalf("list --inactive: %q", out)
	}
	if out := run("domstate", "web", "--reason"); strings.TrimSpace(out) != "shut off (unknown)" {
		t.Fatalf("domstate of a new domain: %q", out)
	}
	run("start", "web")
	if out := run("domstate", "web", "--reason"); strings.TrimSpace(out) != "running (booted)" {
		t.Fatalf("after start: %q", out)
	}
	run("suspend", "web")
	if out := run("domstate", "web", "--reason"); strings.TrimSpace(out) != "paused (user)" {
		t.Fatalf("after suspend: %q", out)
	}
	run("resume", "web")
	if out := run("domstate", "web", "--reason"); strings.TrimSpace(out) != "running (unpaused)" {
		t.Fatalf("after resume: %q", out)
	}
	run("reboot", "web")
	info := run("dominfo", "web")
	for _, want := range []string{"Name:", "web", "State:", "running", "CPU(s):", "Max memory:", "262144 KiB", "Persistent:     yes"} {
		if !strings.Contains(info, want) {
			t.Fatalf("dominfo lacks %q:\n%s", want, info)
		}
	}
	id := strings.TrimSpace(run("domid", "web"))
	if name := strings.TrimSpace(run("domname", id)); name != "web" {
		t.Fatalf("domname %s = %q", id, name)
	}
	uuid := strings.TrimSpace(run("domuuid", "web"))
	if x := run("dumpxml", "web"); !strings.Contains(x, "<uuid>"+uuid+"</uuid>") || !strings.Contains(x, "id=\""+id+"\"") && !strings.Contains(x, "id='"+id+"'") {
		t.Fatalf("dumpxml of a running domain lacks uuid %s or id %s:\n%s", uuid, id, x)
	}
	run("autostart", "web")
	if out := run("list", "--all", "--autostart", "--name"); strings.TrimSpace(out) != "web" {
		t.Fatalf("list --autostart: %q", out)
	}
	run("autostart", "--disable", "web")
	run("shutdown", "web")
	eventually(t, 10*time.Second, "web shut off", func() bool {
		out, _, _ := d.virtsh(append(c, "domstate", "web", "--reason")...)
		return strings.TrimSpace(out) == "shut off (shutdown)"
	})
	run("start", "web")
	run("destroy", "web")
	if out := run("domstate", "web", "--reason"); strings.TrimSpace(out) != "shut off (destroyed)" {
		t.Fatalf("after destroy: %q", out)
	}
	run("undefine", "web")
	_, errs, code := d.virtsh(append(c, "dominfo", "web")...)
	if code == 0 || !strings.HasPrefix(errs, "error: ") || !strings.Contains(errs, "web") {
		t.Fatalf("dominfo of an undefined domain: exit %d, %q", code, errs)
	}
}

func TestEventsArriveInOrder(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	c := d.open("test:///default")
	events, err := c.Events(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	dom, err := c.DefineXML(ctx, domXML("ev"))
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []func() error{
		func() error { return dom.Start(ctx) },
		func() error { return dom.Suspend(ctx) },
		func() error { return dom.Resume(ctx) },
		func() error { return dom.Destroy(ctx) },
		func() error { return dom.Undefine(ctx) },
	} {
		if err := op(); err != nil {
			t.Fatal(err)
		}
	}
	want := []virt.EventType{virt.EventDefined, virt.EventStarted, virt.EventSuspended, virt.EventResumed, virt.EventStopped, virt.EventUndefined}
	var lastSeq uint64
	for i, w := range want {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatalf("event stream closed after %d events", i)
			}
			if e.Type != w || e.Domain.Name != "ev" {
				t.Fatalf("event %d: got %s for %q, want %s for ev", i, e.Type, e.Domain.Name, w)
			}
			if i > 0 && e.Seq != lastSeq+1 {
				t.Fatalf("event %d: seq %d after %d", i, e.Seq, lastSeq)
			}
			lastSeq = e.Seq
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d (%s) did not arrive", i, w)
		}
	}
}

func TestVirtshEventPrintsLifecycle(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	done := make(chan string, 1)
	go func() {
		out, errs, code := d.virtsh("-c", "test:///default", "event", "--event", "lifecycle", "--timeout", "10")
		done <- fmt.Sprintf("exit %d, stdout %q, stderr %q", code, out, errs)
	}()
	// virtsh subscribes asynchronously: keep poking until it has seen one.
	deadline := time.After(10 * time.Second)
	for {
		d.mustVirtsh("-c", "test:///default", "suspend", "test")
		d.mustVirtsh("-c", "test:///default", "resume", "test")
		select {
		case out := <-done:
			if !strings.Contains(out, "event 'lifecycle' for domain 'test': Suspended Paused") &&
				!strings.Contains(out, "event 'lifecycle' for domain 'test': Resumed Unpaused") || !strings.HasPrefix(out, "exit 0,") {
				t.Fatalf("virtsh event printed %q", out)
			}
			return
		case <-deadline:
			t.Fatal("virtsh event saw nothing")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestReadOnlySocketRefusesChanges(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	ro, err := client.OpenReadOnly(ctxT(t), "test:///default", client.WithSocket(d.roSock()))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close(ctxT(t))
	if _, err := ro.ListDomains(ctxT(t), 0); err != nil {
		t.Fatalf("read-only list: %v", err)
	}
	if _, err := ro.DefineXML(ctxT(t), domXML("ro")); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("define on the read-only socket: %v, want permission denied", err)
	}
	dom, err := ro.LookupByName(ctxT(t), "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := dom.Destroy(ctxT(t)); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("destroy on the read-only socket: %v", err)
	}
	// Nothing changed.
	if st, _, _ := dom.State(ctxT(t)); st != virt.StateRunning {
		t.Fatalf("test domain is %s after refused destroy", st)
	}
	if _, err := d.open("test:///default").LookupByName(ctxT(t), "ro"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("refused define left a domain behind: %v", err)
	}
	_, errs, code := d.virtsh("-r", "-c", "test:///default", "define", writeXML(t, "ro2"))
	if code == 0 || !strings.Contains(errs, "read-only") {
		t.Fatalf("virtsh -r define: exit %d, %q", code, errs)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	c := d.open("test:///default")
	ctx := ctxT(t)
	before, err := c.ListDomains(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DefineXML(ctx, "<domain type='test'><name>x</name"); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("malformed XML: %v", err)
	}
	if _, err := c.DefineXML(ctx, domXML("test")); !errors.Is(err, client.ErrAlreadyExists) {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := c.LookupByName(ctx, "nosuch"); !errors.Is(err, client.ErrNotFound) || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("unknown domain: %v", err)
	}
	dom, err := c.LookupByName(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := dom.Start(ctx); !errors.Is(err, client.ErrFailedPrecondition) || !strings.Contains(err.Error(), "running") {
		t.Errorf("start of a running domain: %v", err)
	}
	for _, uri := range []string{"", "::not a uri", "test", "test://%zz/"} {
		if _, err := client.Open(ctx, uri, client.WithSocket(d.sock())); !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("malformed URI %q: %v", uri, err)
		}
	}
	if _, err := client.Open(ctx, "test:///nowhere", client.WithSocket(d.sock())); err == nil || !strings.Contains(err.Error(), "test:///nowhere") {
		t.Errorf("unserved path: %v", err)
	}
	after, err := c.ListDomains(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("bad input changed the domain list: %d domains before, %d after", len(before), len(after))
	}
	_, errs, code := d.virtsh("-c", "test:///default", "define", "/nonexistent.xml")
	if code == 0 || !strings.HasPrefix(errs, "error: ") {
		t.Errorf("virtsh define of a missing file: exit %d, %q", code, errs)
	}
}

func TestMissingDriverNamesSchemeAndDirectories(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	_, err := client.Open(ctxT(t), "xen:///system", client.WithSocket(d.sock()))
	if !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("open xen:///system: %v, want not found", err)
	}
	for _, want := range []string{`no driver installed for URI scheme "xen"`, d.driverDir} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	_, errs, code := d.virtsh("-c", "xen:///system", "list")
	if code == 0 || !strings.Contains(errs, `no driver installed for URI scheme "xen"`) {
		t.Fatalf("virtsh: exit %d, %q", code, errs)
	}
}

func TestConcurrentClients(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	const clients, calls = 100, 100
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx := ctxT(t)
			c, err := client.Open(ctx, "test:///default", client.WithSocket(d.sock()))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close(ctx)
			dom, err := c.LookupByName(ctx, "test")
			if err != nil {
				errs <- err
				return
			}
			for j := 0; j < calls-2; j++ {
				var err error
				switch j % 3 {
				case 0:
					_, err = dom.Info(ctx)
				case 1:
					_, _, err = dom.State(ctx)
				default:
					_, err = c.ListDomains(ctx, virt.ListActive)
				}
				if err != nil {
					errs <- fmt.Errorf("client %d call %d: %w", i, j, err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestOptionalCallsRefusedCleanly(t *testing.T) {
	d := newDaemon(t, []string{"test"})
	_, errs, code := d.virtsh("-c", "test:///default", "domxml-to-native", "qemu-argv", writeXML(t, "n"))
	if code == 0 || !strings.Contains(errs, "does not support domxml-to-native") {
		t.Fatalf("domxml-to-native on the test driver: exit %d, %q", code, errs)
	}
	dom, err := d.open("test:///default").LookupByName(ctxT(t), "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dom.OpenConsole(ctxT(t), ""); !errors.Is(err, client.ErrNotSupported) {
		t.Fatalf("console on the test driver: %v", err)
	}
}

// TestDaemonAppliesTheNameRule: virtd checks a definition's name before
// any driver sees it, so that even a driver that checks nothing (lax) gets
// no name that would break a file name or a row of virtsh list. Each
// refusal states the rule.
func TestDaemonAppliesTheNameRule(t *testing.T) {
	d := newDaemon(t, []string{"lax"})
	c := d.open("lax:///default")
	ctx := ctxT(t)
	for name, rule := range map[string]string{
		"":                         "must not be empty",
		".":                        `must not be "." or ".."`,
		"..":                       `must not be "." or ".."`,
		"a/b":                      "must not contain '/'",
		"two\nrows":                "must not contain control characters",
		"tab\there":                "must not contain control characters",
		strings.Repeat("x", 256):   "at most 255 bytes",
		strings.Repeat("x", 1<<20): "at most 255 bytes",
		"bad\xffutf8":              "not valid UTF-8",
	} {
		doc := "<domain type='test'><name>" + name + "</name><memory>1024</memory><os><type>hvm</type></os></domain>"
		_, err := c.DefineXML(ctx, doc)
		if !errors.Is(err, client.ErrInvalidArgument) || !strings.Contains(err.Error(), rule) {
			t.Errorf("defining %.20q: %v, want invalid argument saying %q", name, err, rule)
		}
		if name != "" && utf8.ValidString(name) {
			if _, err := c.LookupByName(ctx, name); !errors.Is(err, client.ErrInvalidArgument) || !strings.Contains(err.Error(), rule) {
				t.Errorf("looking up %.20q: %v, want invalid argument saying %q", name, err, rule)
			}
		}
	}
	doms, err := c.ListDomains(ctx, 0)
	if err != nil || len(doms) != 0 {
		t.Fatalf("the driver got %d definitions (%v), want none", len(doms), err)
	}
	if _, err := c.DefineXML(ctx, domXML("vm ü 1")); err != nil {
		t.Fatalf("a good name: %v", err)
	}
}
