package testdriver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/virt"
)

func newTest(t testing.TB) *Driver {
	t.Helper()
	return New(driver.Env{}).(*Driver)
}

func domXML(name, extra string) string {
	return fmt.Sprintf("<domain type='test'><name>%s</name>%s<memory unit='MiB'>64</memory></domain>", name, extra)
}

func mustDefine(t testing.TB, drv *Driver, doc string) *virt.Domain {
	t.Helper()
	d, err := drv.DefineDomain(context.Background(), doc)
	if err != nil {
		t.Fatalf("DefineDomain: %v", err)
	}
	return d
}

func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: error %v, want kind %q", what, err, kind)
	}
}

func TestDefaultDomain(t *testing.T) {
	ctx := t.Context()
	drv := newTest(t)
	d, err := drv.LookupDomain(ctx, virt.ByName("test"))
	if err != nil {
		t.Fatal(err)
	}
	want := virt.Domain{Name: "test", UUID: defaultDomainUUID, ID: 1, State: virt.StateRunning,
		Reason: virt.RunningBooted, Persistent: true}
	if *d != want {
		t.Errorf("default domain = %+v, want %+v", *d, want)
	}
	if byID, err := drv.LookupDomain(ctx, virt.ByID(1)); err != nil || byID.UUID != defaultDomainUUID {
		t.Errorf("lookup by ID 1 = %+v, %v", byID, err)
	}
	info, err := drv.DomainInfo(ctx, defaultDomainUUID)
	if err != nil {
		t.Fatal(err)
	}
	if info.MaxMemoryKiB != 8388608 || info.MemoryKiB != 2097152 || info.VCPUs != 2 || info.State != virt.StateRunning {
		t.Errorf("DomainInfo = %+v", info)
	}
	doc, err := drv.DomainXML(ctx, defaultDomainUUID, false)
	if err != nil {
		t.Fatal(err)
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	if x.Type != "test" || x.ID == nil || *x.ID != 1 || x.OS.Type.Type != "hvm" || x.Name != "test" {
		t.Errorf("live XML:\n%s", doc)
	}
	doc, _ = drv.DomainXML(ctx, defaultDomainUUID, true)
	if strings.Contains(doc, "id=") {
		t.Errorf("inactive XML carries an id:\n%s", doc)
	}
	if n, _ := drv.RunningGuests(ctx); n != 1 {
		t.Errorf("RunningGuests = %d, want 1", n)
	}
}

func TestHost(t *testing.T) {
	ctx := t.Context()
	drv := newTest(t)
	info, err := drv.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "test" || len(info.Schemes) != 1 || info.Schemes[0] != "test" ||
		info.Health != driver.HealthAvailable || info.HypervisorType != "Test" ||
		info.HypervisorVersion != 2000000 || info.Version != Version {
		t.Errorf("Info = %+v", info)
	}
	ni, _ := drv.NodeInfo(ctx)
	want := virt.NodeInfo{Model: "i686", MemoryKiB: 3145728, CPUs: 16, MHz: 1400, Nodes: 2, Sockets: 2, Cores: 2, Threads: 2}
	if *ni != want {
		t.Errorf("NodeInfo = %+v, want %+v", *ni, want)
	}
	host, _ := os.Hostname()
	if h, _ := drv.Hostname(ctx); h != host {
		t.Errorf("Hostname = %q, want %q", h, host)
	}
	doc, err := drv.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(doc); err != nil {
		t.Fatalf("capabilities: %v\n%s", err, doc)
	}
	if caps.Host.UUID == "" || caps.Host.CPU == nil || caps.Host.CPU.Arch != "i686" || len(caps.Guests) != 2 {
		t.Fatalf("capabilities:\n%s", doc)
	}
	for i, arch := range []string{"i686", "x86_64"} {
		g := caps.Guests[i]
		if g.OSType != "hvm" || g.Arch.Name != arch || len(g.Arch.Domains) != 1 || g.Arch.Domains[0].Type != "test" {
			t.Errorf("guest %d = %+v", i, g)
		}
	}
}

func TestCheckURI(t *testing.T) {
	drv := newTest(t)
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"test:///default", true},
		{"test+unix:///default", true},
		{"test:///default?socket=/run/x", true},
		{"test:///", false},
		{"test:///nowhere", false},
		{"test:///default/more", false},
		{"test://example.com/default", false},
		{"qemu:///system", false},
		{"test:default", false},
		{"::", false},
	} {
		err := drv.CheckURI(t.Context(), tc.uri)
		if tc.ok != (err == nil) {
			t.Errorf("CheckURI(%q) = %v, want ok %v", tc.uri, err, tc.ok)
		}
		if err != nil {
			wantKind(t, tc.uri, err, virt.ErrInvalidArgument)
			if !strings.Contains(err.Error(), "test:///default") {
				t.Errorf("CheckURI(%q) = %q, want it to name test:///default", tc.uri, err)
			}
		}
	}
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		errHas    string // empty: must parse
	}{
		{"minimal", domXML("a", ""), ""},
		{"malformed", "<domain type='test'><name>a</domain>", "malformed domain XML"},
		{"wrong type", "<domain type='kvm'><name>a</name><memory>1024</memory></domain>", `domain type "kvm"`},
		{"no type", "<domain><name>a</name><memory>1024</memory></domain>", `domain type ""`},
		{"no name", "<domain type='test'><memory>1024</memory></domain>", "no <name>"},
		{"slash", domXML("a/b", ""), "must not contain '/'"},
		{"bad uuid", domXML("a", "<uuid>nope</uuid>"), `invalid UUID "nope"`},
		{"short uuid", domXML("a", "<uuid>6695eb01</uuid>"), "invalid UUID"},
		{"no memory", "<domain type='test'><name>a</name></domain>", "<memory>"},
		{"zero memory", "<domain type='test'><name>a</name><memory>0</memory></domain>", "greater than zero"},
		{"bad unit", "<domain type='test'><name>a</name><memory unit='parsec'>1</memory></domain>", `unknown unit "parsec"`},
		{"zero vcpu", domXML("a", "<vcpu>0</vcpu>"), "at least 1"},
		{"vcpu current", domXML("a", "<vcpu current='3'>2</vcpu>"), "exceeds"},
		{"os type", domXML("a", "<os><type>exe</type></os>"), `os type "exe"`},
		{"arch", domXML("a", "<os><type arch='s390x'>hvm</type></os>"), `architecture "s390x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.doc)
			if tc.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantKind(t, tc.name, err, virt.ErrInvalidArgument)
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q does not contain %q", err, tc.errHas)
			}
		})
	}

	c, err := parseConfig(`<domain type='test' id='7'><name> a </name><uuid>6695EB01F6A4830479AA97F2502E193F</uuid>
		<memory unit='GiB'>1</memory><currentMemory unit='GiB'>2</currentMemory><vcpu current='2'>4</vcpu></domain>`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "a" || c.UUID() != defaultDomainUUID {
		t.Errorf("name %q uuid %q", c.Name(), c.UUID())
	}
	if c.maxMemKiB != 1048576 || c.memKiB != 1048576 || c.vcpus != 2 {
		t.Errorf("config = %+v, want current memory clamped to 1 GiB, 2 vCPUs", c)
	}
	doc, _ := c.marshal(0)
	for _, s := range []string{"<memory unit=\"KiB\">1048576</memory>", "<currentMemory unit=\"KiB\">1048576</currentMemory>",
		`<type arch="i686">hvm</type>`} {
		if !strings.Contains(doc, s) {
			t.Errorf("XML lacks %s:\n%s", s, doc)
		}
	}
	if strings.Contains(doc, "id=") {
		t.Errorf("an id in the input survives:\n%s", doc)
	}
	c, _ = parseConfig(domXML("b", ""))
	if _, err := domutil.ParseUUID(c.UUID()); err != nil || c.UUID()[14] != '4' {
		t.Errorf("generated UUID %q is not a v4 UUID", c.UUID())
	}
}

func TestDefine(t *testing.T) {
	ctx := t.Context()
	drv := newTest(t)
	const uuid = "11111111-2222-4333-8444-555555555555"
	d := mustDefine(t, drv, domXML("a", "<uuid>"+uuid+"</uuid>"))
	if d.UUID != uuid || d.ID != -1 || d.State != virt.StateShutoff || !d.Persistent {
		t.Errorf("DefineDomain = %+v", d)
	}
	// Same name, same UUID: an update.
	mustDefine(t, drv, domXML("a", "<uuid>"+uuid+"</uuid>"))
	// Same name, another UUID.
	_, err := drv.DefineDomain(ctx, domXML("a", ""))
	wantKind(t, "duplicate name", err, virt.ErrAlreadyExists)
	if !strings.Contains(err.Error(), "domain 'a' already exists with uuid "+uuid) {
		t.Errorf("duplicate name: %q", err)
	}
	// Same UUID, another name.
	_, err = drv.DefineDomain(ctx, domXML("b", "<uuid>"+uuid+"</uuid>"))
	wantKind(t, "duplicate UUID", err, virt.ErrAlreadyExists)
	// The default domain's name with a fresh UUID.
	_, err = drv.DefineDomain(ctx, domXML("test", ""))
	wantKind(t, "define 'test'", err, virt.ErrAlreadyExists)

	// Lookups accept any spelling of the UUID.
	if got, err := drv.LookupDomain(ctx, virt.ByUUID(strings.ToUpper(strings.ReplaceAll(uuid, "-", "")))); err != nil || got.Name != "a" {
		t.Errorf("lookup by undashed upper-case UUID = %+v, %v", got, err)
	}
	_, err = drv.LookupDomain(ctx, virt.ByUUID("xyz"))
	wantKind(t, "lookup a malformed UUID", err, virt.ErrInvalidArgument)
	_, err = drv.LookupDomain(ctx, virt.ByName("nope"))
	wantKind(t, "lookup unknown", err, virt.ErrNotFound)
	if !strings.Contains(err.Error(), "no domain with matching name 'nope'") {
		t.Errorf("lookup unknown: %q", err)
	}
	_, err = drv.LookupDomain(ctx, virt.ByID(7))
	if !strings.Contains(err.Error(), "no domain with matching id 7") {
		t.Errorf("lookup unknown ID: %q", err)
	}
}

func TestLifecycle(t *testing.T) {
	ctx := t.Context()
	drv := newTest(t)
	d := mustDefine(t, drv, domXML("a", ""))
	state := func(st virt.State, reason int32) {
		t.Helper()
		s, r, err := drv.DomainState(ctx, d.UUID)
		if err != nil || s != st || r != reason {
			t.Fatalf("state = %s (%s), %v; want %s (%s)", s, virt.ReasonString(s, r), err, st, virt.ReasonString(st, reason))
		}
	}
	state(virt.StateShutoff, virt.ShutoffUnknown)
	for _, op := range []func(context.Context, string) error{
		drv.ShutdownDomain, drv.RebootDomain, drv.DestroyDomain, drv.SuspendDomain, drv.ResumeDomain,
	} {
		wantKind(t, "op on an inactive domain", op(ctx, d.UUID), virt.ErrFailedPrecondition)
	}

	s, err := drv.StartDomain(ctx, d.UUID)
	if err != nil || s.ID != 2 {
		t.Fatalf("StartDomain = %+v, %v; want ID 2 (the default domain has 1)", s, err)
	}
	state(virt.StateRunning, virt.RunningBooted)
	_, err = drv.StartDomain(ctx, d.UUID)
	wantKind(t, "start twice", err, virt.ErrFailedPrecondition)
	if !strings.Contains(err.Error(), "domain is already running") {
		t.Errorf("start twice: %q", err)
	}

	if err := drv.SuspendDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	state(virt.StatePaused, virt.PausedUser)
	wantKind(t, "suspend twice", drv.SuspendDomain(ctx, d.UUID), virt.ErrFailedPrecondition)
	if err := drv.ResumeDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	state(virt.StateRunning, virt.RunningUnpaused)
	if err := drv.RebootDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	state(virt.StateRunning, virt.RunningBooted)
	if err := drv.ShutdownDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	state(virt.StateShutoff, virt.ShutoffShutdown)

	s, _ = drv.StartDomain(ctx, d.UUID)
	if s.ID != 3 {
		t.Errorf("second start: ID %d, want 3", s.ID)
	}
	if err := drv.DestroyDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	state(virt.StateShutoff, virt.ShutoffDestroyed)
	_, err = drv.LookupDomain(ctx, virt.ByID(3))
	wantKind(t, "lookup a stopped ID", err, virt.ErrNotFound)

	// on_reboot destroy: a reboot powers off.
	o := mustDefine(t, drv, domXML("o", "<on_reboot>destroy</on_reboot>"))
	_, _ = drv.StartDomain(ctx, o.UUID)
	if err := drv.RebootDomain(ctx, o.UUID); err != nil {
		t.Fatal(err)
	}
	if st, r, _ := drv.DomainState(ctx, o.UUID); st != virt.StateShutoff || r != virt.ShutoffShutdown {
		t.Errorf("reboot with on_reboot=destroy: %s (%s)", st, virt.ReasonString(st, r))
	}
}

// TestCPUTime: the test driver counts a running domain's CPU time as the
// time it has run, frozen while it is paused. The test waits for the
// counts it needs instead of sleeping: the default domain, which runs
// throughout, shows the clock moving on while "a" is paused.
func TestCPUTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	drv := newTest(t)
	d := mustDefine(t, drv, domXML("a", ""))
	if _, err := drv.StartDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	cpu := func(uuid string) time.Duration {
		t.Helper()
		info, err := drv.DomainInfo(ctx, uuid)
		if err != nil {
			t.Fatal(err)
		}
		return info.CPUTime
	}
	// waitPast polls uuid's CPU time until it exceeds after.
	waitPast := func(uuid string, after time.Duration, what string) time.Duration {
		t.Helper()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if c := cpu(uuid); c > after {
				return c
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: CPU time of %s stays at %v or below", what, uuid, after)
			case <-tick.C:
			}
		}
	}
	ran := waitPast(d.UUID, 0, "running")
	if err := drv.SuspendDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	i1 := cpu(d.UUID)
	if i1 < ran {
		t.Errorf("CPU time %v once paused, less than the %v it had run", i1, ran)
	}
	waitPast(defaultDomainUUID, cpu(defaultDomainUUID), "the default domain, while a is paused")
	if i2 := cpu(d.UUID); i2 != i1 {
		t.Errorf("CPU time %v then %v while paused; want it frozen", i1, i2)
	}
	// Once resumed it counts again, only the time since the resume: no
	// more than the default domain counts around it.
	ref0 := cpu(defaultDomainUUID)
	if err := drv.ResumeDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	i3 := waitPast(d.UUID, i1, "after resume")
	if ref := cpu(defaultDomainUUID) - ref0; i3-i1 > ref {
		t.Errorf("CPU time grew by %v after resume, more than the %v that passed: the pause counted", i3-i1, ref)
	}
	if err := drv.DestroyDomain(ctx, d.UUID); err != nil {
		t.Fatal(err)
	}
	if i4, _ := drv.DomainInfo(ctx, d.UUID); i4.CPUTime != 0 || i4.MaxMemoryKiB != 65536 {
		t.Errorf("DomainInfo after destroy = %+v", i4)
	}
}

func TestRedefineRunning(t *testing.T) {
	ctx := t.Context()
	drv := newTest(t)
	d := mustDefine(t, drv, domXML("a", ""))
	_, _ = drv.StartDomain(ctx, d.UUID)
	redef := fmt.Sprintf("<domain type='test'><name>a</name><uuid>%s</uuid><memory unit='MiB'>128</memory></domain>", d.UUID)
	mustDefine(t, drv, redef)
	info, _ := drv.DomainInfo(ctx, d.UUID)
	if info.MaxMemoryKiB != 65536 {
		t.Errorf("running domain memory %d after redefine, want the old 65536", info.MaxMemoryKiB)
	}
	doc, _ := drv.DomainXML(ctx, d.UUID, true)
	if !strings.Contains(doc, ">131072<") {
		t.Errorf("inactive XML does not show the new definition:\n%s", doc)
	}
	_ = drv.DestroyDomain(ctx, d.UUID)
	if info, _ = drv.DomainInfo(ctx, d.UUID); info.MaxMemoryKiB != 131072 {
		t.Errorf("after stop, memory %d, want the new 131072", info.MaxMemoryKiB)
	}
}

func TestUndefine(t *testing.T) {
	ctx := t.Context()
	drv := newTest(t)
	// Running: becomes transient, vanishes on shutdown.
	if err := drv.SetDomainAutostart(ctx, defaultDomainUUID, true); err != nil {
		t.Fatal(err)
	}
	if err := drv.UndefineDomain(ctx, defaultDomainUUID); err != nil {
		t.Fatal(err)
	}
	d, err := drv.LookupDomain(ctx, virt.ByName("test"))
	if err != nil || d.Persistent || d.Autostart || d.State != virt.StateRunning {
		t.Fatalf("after undefine: %+v, %v; want transient running", d, err)
	}
	wantKind(t, "autostart on transient", drv.SetDomainAutostart(ctx, defaultDomainUUID, true), virt.ErrFailedPrecondition)
	wantKind(t, "undefine transient", drv.UndefineDomain(ctx, defaultDomainUUID), virt.ErrFailedPrecondition)
	doc, err := drv.DomainXML(ctx, defaultDomainUUID, true)
	if err != nil || !strings.Contains(doc, "<name>test</name>") || strings.Contains(doc, "id=") {
		t.Errorf("inactive XML of a transient domain: %v\n%s", err, doc)
	}
	if err := drv.ShutdownDomain(ctx, defaultDomainUUID); err != nil {
		t.Fatal(err)
	}
	_, err = drv.LookupDomain(ctx, virt.ByUUID(defaultDomainUUID))
	wantKind(t, "lookup after transient shutdown", err, virt.ErrNotFound)
	if n, _ := drv.RunningGuests(ctx); n != 0 {
		t.Errorf("RunningGuests = %d", n)
	}
	// The name is free again.
	mustDefine(t, drv, domXML("test", ""))
}

func TestList(t *testing.T) {
	ctx := t.Context()
	drv := newTest(t)
	for _, n := range []string{"c", "a", "b", "d"} {
		mustDefine(t, drv, domXML(n, ""))
	}
	for _, n := range []string{"d", "b"} {
		d, _ := drv.LookupDomain(ctx, virt.ByName(n))
		_, _ = drv.StartDomain(ctx, d.UUID)
	}
	b, _ := drv.LookupDomain(ctx, virt.ByName("b"))
	_ = drv.SuspendDomain(ctx, b.UUID)
	_ = drv.SetDomainAutostart(ctx, b.UUID, true)
	names := func(flags virt.ListFlags) string {
		ds, err := drv.ListDomains(ctx, flags)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, d := range ds {
			s = append(s, d.Name)
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		flags virt.ListFlags
		want  string
	}{
		{0, "test,d,b,a,c"}, // active by ID, then inactive by name
		{virt.ListActive, "test,d,b"},
		{virt.ListInactive, "a,c"},
		{virt.ListPaused, "b"},
		{virt.ListRunning | virt.ListShutoff, "test,d,a,c"},
		{virt.ListAutostart, "b"},
		{virt.ListTransient, ""},
		{virt.ListActive | virt.ListNoAutostart, "test,d"},
	} {
		if got := names(tc.flags); got != tc.want {
			t.Errorf("ListDomains(%#x) = %s, want %s", uint32(tc.flags), got, tc.want)
		}
	}
}

func TestEvents(t *testing.T) {
	ctx := t.Context()
	drv := newTest(t)
	wctx, cancel := context.WithCancel(ctx)
	ch1, _ := drv.WatchEvents(wctx)
	ch2, _ := drv.WatchEvents(ctx)

	d := mustDefine(t, drv, domXML("a", ""))
	mustDefine(t, drv, fmt.Sprintf("<domain type='test'><name>a</name><uuid>%s</uuid><memory>1024</memory></domain>", d.UUID))
	_, _ = drv.StartDomain(ctx, d.UUID)
	_ = drv.SuspendDomain(ctx, d.UUID)
	_ = drv.ResumeDomain(ctx, d.UUID)
	_ = drv.RebootDomain(ctx, d.UUID) // no lifecycle event: libvirt's reboot event
	_ = drv.ShutdownDomain(ctx, d.UUID)
	_, _ = drv.StartDomain(ctx, d.UUID)
	_ = drv.UndefineDomain(ctx, d.UUID)
	_ = drv.DestroyDomain(ctx, d.UUID)

	want := []string{
		"Defined/Added", "Defined/Updated", "Started/Booted", "Suspended/Paused", "Resumed/Unpaused", "Reboot/",
		"Shutdown/Finished", "Stopped/Shutdown", "Started/Booted", "Undefined/Removed", "Stopped/Destroyed",
	}
	for i, ch := range []<-chan virt.Event{ch1, ch2} {
		var seq uint64
		for j, w := range want {
			ev := <-ch
			got := ev.Type.String() + "/" + virt.EventDetailString(ev.Type, ev.Detail)
			if got != w || ev.Domain.UUID != d.UUID || ev.Time.IsZero() {
				t.Errorf("subscriber %d event %d = %s %+v, want %s", i, j, got, ev.Domain, w)
			}
			if j > 0 && ev.Seq != seq+1 {
				t.Errorf("subscriber %d event %d: Seq %d after %d", i, j, ev.Seq, seq)
			}
			seq = ev.Seq
		}
	}
	select {
	case ev := <-ch1:
		t.Errorf("extra event %+v", ev)
	default:
	}
	cancel()
	if _, ok := <-ch1; ok {
		t.Error("channel open after its context ended")
	}
	select {
	case ev, ok := <-ch2:
		t.Errorf("second subscriber got %+v, %v after the first one left", ev, ok)
	default:
	}
	// The last Stopped event describes the (transient, now gone) domain.
}

func TestSlowSubscriberDropped(t *testing.T) {
	ctx := t.Context()
	drv := newTest(t)
	slow, _ := drv.WatchEvents(ctx)
	fast, _ := drv.WatchEvents(ctx)
	done := make(chan int)
	go func() {
		n := 0
		for range fast {
			n++
			if n == subscriberBuffer+10 {
				break
			}
		}
		done <- n
	}()
	d := mustDefine(t, drv, domXML("a", ""))
	for range subscriberBuffer/2 + 5 {
		// The fast subscriber keeps up, even when the machine is busy
		// and its goroutine waits for a CPU: the events wait for it.
		for deadline := time.Now().Add(10 * time.Second); len(fast) > subscriberBuffer/2 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		_, _ = drv.StartDomain(ctx, d.UUID)
		_ = drv.DestroyDomain(ctx, d.UUID)
	}
	if n := <-done; n != subscriberBuffer+10 {
		t.Errorf("fast subscriber got %d events", n)
	}
	n := 0
	for range slow {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("slow subscriber got %d events before its channel closed, want %d", n, subscriberBuffer)
	}
}

func TestCancelledContext(t *testing.T) {
	drv := newTest(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := drv.DefineDomain(ctx, domXML("a", "")); !errors.Is(err, context.Canceled) {
		t.Errorf("DefineDomain: %v", err)
	}
	if _, err := drv.ListDomains(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("ListDomains: %v", err)
	}
	if _, err := drv.WatchEvents(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("WatchEvents: %v", err)
	}
}

func TestManyDomains(t *testing.T) {
	drv := newTest(t)
	defineMany(t, drv, 10000)
	ds, err := drv.ListDomains(t.Context(), virt.ListInactive)
	if err != nil || len(ds) != 10000 {
		t.Fatalf("ListDomains = %d domains, %v", len(ds), err)
	}
	for i := 1; i < len(ds); i++ {
		if ds[i-1].Name >= ds[i].Name {
			t.Fatalf("not sorted by name at %d: %s, %s", i, ds[i-1].Name, ds[i].Name)
		}
	}
}

func defineMany(t testing.TB, drv *Driver, n int) {
	for i := range n {
		mustDefine(t, drv, domXML(fmt.Sprintf("dom-%05d", i), ""))
	}
}

// BenchmarkListDomains10k lists 10,000 defined domains (plus "test").
func BenchmarkListDomains10k(b *testing.B) {
	drv := newTest(b)
	defineMany(b, drv, 10000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := drv.ListDomains(ctx, 0); err != nil {
			b.Fatal(err)
		}
	}
}
