package libvirtrpc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/virtd/virtd/daemon/daemontest"
)

// dial connects go-libvirt to socket and opens uri, closed when t ends.
func dial(t testing.TB, socket, uri string) *libvirt.Libvirt {
	t.Helper()
	l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(socket), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(libvirt.ConnectURI(uri)); err != nil {
		t.Fatalf("connect %s: %v", uri, err)
	}
	t.Cleanup(func() { _ = l.Disconnect() })
	return l
}

// wantCode checks that err is a libvirt error with code.
func wantCode(t *testing.T, what string, err error, code libvirt.ErrorNumber, msg string) {
	t.Helper()
	var le libvirt.Error
	if !errors.As(err, &le) || le.Code != uint32(code) || !strings.Contains(le.Message, msg) {
		t.Errorf("%s: %v (%#v), want code %d naming %q", what, err, err, code, msg)
	}
}

// cString reads libvirt's `char x<N>` up to its NUL.
func cString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

func domXML(name string) string {
	return fmt.Sprintf(`<domain type='test'><name>%s</name><memory unit='KiB'>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`, name)
}

func TestGoLibvirtLifecycle(t *testing.T) {
	d := daemontest.Start(t)
	l := dial(t, d.LibvirtSocket, "test:///default")

	if v, err := l.ConnectGetLibVersion(); err != nil || v != 9000000 {
		t.Errorf("lib version %d, %v; want 9000000", v, err)
	}
	if typ, err := l.ConnectGetType(); err != nil || typ != "Test" {
		t.Errorf("type %q, %v", typ, err)
	}
	if uri, err := l.ConnectGetUri(); err != nil || uri != "test:///default" {
		t.Errorf("uri %q, %v", uri, err)
	}
	if h, err := l.ConnectGetHostname(); err != nil || h == "" {
		t.Errorf("hostname %q, %v", h, err)
	}
	if caps, err := l.ConnectGetCapabilities(); err != nil || !strings.Contains(caps, "<capabilities>") {
		t.Errorf("capabilities: %v", err)
	}
	model, mem, cpus, _, _, _, _, _, err := l.NodeGetInfo()
	if err != nil || cpus <= 0 || mem == 0 || model[0] == 0 {
		t.Errorf("node info: %v %d %d %v", model, mem, cpus, err)
	}

	events, err := l.LifecycleEvents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dom, err := l.DomainDefineXMLFlags(domXML("golv"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if dom.Name != "golv" || dom.ID != -1 {
		t.Errorf("defined %+v", dom)
	}
	byName, err := l.DomainLookupByName("golv")
	if err != nil || byName.UUID != dom.UUID {
		t.Fatalf("lookup by name: %+v, %v", byName, err)
	}
	if _, err := l.DomainLookupByUUID(dom.UUID); err != nil {
		t.Errorf("lookup by uuid: %v", err)
	}
	if err := l.DomainCreate(dom); err != nil {
		t.Fatal(err)
	}
	running, err := l.DomainLookupByName("golv")
	if err != nil || running.ID <= 0 {
		t.Fatalf("after start: %+v, %v", running, err)
	}
	if byID, err := l.DomainLookupByID(running.ID); err != nil || byID.Name != "golv" {
		t.Errorf("lookup by id: %+v, %v", byID, err)
	}
	st, maxMem, _, vcpus, _, err := l.DomainGetInfo(running)
	if err != nil || st != uint8(libvirt.DomainRunning) || maxMem != 65536 || vcpus != 1 {
		t.Errorf("info: state %d max %d vcpus %d, %v", st, maxMem, vcpus, err)
	}
	state, reason, err := l.DomainGetState(running, 0)
	if err != nil || state != int32(libvirt.DomainRunning) || reason != int32(libvirt.DomainRunningBooted) {
		t.Errorf("state %d reason %d, %v", state, reason, err)
	}
	if x, err := l.DomainGetXMLDesc(running, 0); err != nil || !strings.Contains(x, "<name>golv</name>") {
		t.Errorf("xml: %v", err)
	}
	if x, err := l.DomainGetXMLDesc(running, libvirt.DomainXMLInactive); err != nil || !strings.Contains(x, "<name>golv</name>") {
		t.Errorf("inactive xml: %v", err)
	}
	recs, err := l.ConnectGetAllDomainStats([]libvirt.Domain{running}, uint32(libvirt.DomainStatsState|libvirt.DomainStatsCPUTotal), 0)
	if err != nil || len(recs) != 1 || recs[0].Dom.Name != "golv" {
		t.Fatalf("domain stats: %+v, %v", recs, err)
	}
	params := map[string]any{}
	for _, p := range recs[0].Params {
		params[p.Field] = p.Value.I
	}
	if params["state.state"] != int32(libvirt.DomainRunning) || params["cpu.time"] == nil {
		t.Errorf("domain stats of a running domain: %v", params)
	}
	nodeMem, _, err := l.NodeGetMemoryStats(4, -1, 0)
	if err != nil || len(nodeMem) != 4 || nodeMem[0].Field != "total" || nodeMem[0].Value == 0 {
		t.Errorf("node memory stats: %+v, %v", nodeMem, err)
	}
	if _, n, err := l.NodeGetCPUStats(-1, 0, 0); err != nil || n != 4 {
		t.Errorf("node cpu stats count: %d, %v", n, err)
	}
	if caps, err := l.ConnectGetDomainCapabilities(nil, nil, nil, nil, 0); err != nil || !strings.Contains(caps, "<domainCapabilities>") {
		t.Errorf("domain capabilities: %v", err)
	}
	if err := l.DomainSuspend(running); err != nil {
		t.Fatal(err)
	}
	if err := l.DomainResume(running); err != nil {
		t.Fatal(err)
	}
	// A reboot is libvirt's reboot event, to its own callbacks only.
	reboots, err := l.SubscribeEvents(context.Background(), libvirt.DomainEventIDReboot, libvirt.OptDomain{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.DomainReboot(running, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-reboots:
		if m, ok := e.(*libvirt.DomainEventCallbackRebootMsg); !ok || m.Msg.Dom.Name != "golv" {
			t.Errorf("reboot event: %#v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reboot event")
	}
	if a, err := l.DomainIsActive(running); err != nil || a != 1 {
		t.Errorf("is active %d, %v", a, err)
	}
	if p, err := l.DomainIsPersistent(running); err != nil || p != 1 {
		t.Errorf("is persistent %d, %v", p, err)
	}
	// char arrays: what virsh dominfo reads last.
	if model, doi, err := l.NodeGetSecurityModel(); err != nil || cString(model) != "none" || cString(doi) != "0" {
		t.Errorf("security model %q doi %q, %v", cString(model), cString(doi), err)
	}
	if label, enforcing, err := l.DomainGetSecurityLabel(running); err != nil || cString(label) != "" || enforcing != 0 {
		t.Errorf("security label %q enforcing %d, %v", cString(label), enforcing, err)
	}
	if os, err := l.DomainGetOsType(running); err != nil || os != "hvm" {
		t.Errorf("os type %q, %v", os, err)
	}
	if err := l.DomainSetAutostart(running, 1); err != nil {
		t.Fatal(err)
	}
	if a, err := l.DomainGetAutostart(running); err != nil || a != 1 {
		t.Errorf("autostart %d, %v", a, err)
	}
	// The test driver's own domain "test" runs too, as in libvirt's.
	all, n, err := l.ConnectListAllDomains(1, libvirt.ConnectListDomainsActive)
	if err != nil || len(all) != 2 || n != 2 || all[0].Name != "test" || all[1].Name != "golv" {
		t.Errorf("list active: %+v, %d, %v", all, n, err)
	}
	if n, err := l.ConnectNumOfDomains(); err != nil || n != 2 {
		t.Errorf("num of domains %d, %v", n, err)
	}
	if ids, err := l.ConnectListDomains(10); err != nil || len(ids) != 2 || ids[1] != running.ID {
		t.Errorf("list ids %v, %v", ids, err)
	}
	if err := l.DomainDestroy(running); err != nil {
		t.Fatal(err)
	}
	if names, err := l.ConnectListDefinedDomains(10); err != nil || len(names) != 1 || names[0] != "golv" {
		t.Errorf("list defined %v, %v", names, err)
	}
	if err := l.DomainSetAutostart(running, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.DomainUndefineFlags(running, 0); err != nil {
		t.Fatal(err)
	}
	_, err = l.DomainLookupByName("golv")
	if !libvirt.IsNotFound(err) {
		t.Errorf("lookup after undefine: %v, want not found", err)
	}

	// A transient domain runs until it stops, then is gone.
	tr, err := l.DomainCreateXML(domXML("golv-t"), 0)
	if err != nil || tr.ID <= 0 {
		t.Fatalf("create transient: %+v, %v", tr, err)
	}
	if p, err := l.DomainIsPersistent(tr); err != nil || p != 0 {
		t.Errorf("transient is persistent %d, %v", p, err)
	}
	if err := l.DomainDestroy(tr); err != nil {
		t.Fatal(err)
	}
	if _, err := l.DomainLookupByName("golv-t"); !libvirt.IsNotFound(err) {
		t.Errorf("transient after destroy: %v, want not found", err)
	}

	// The events of all of it, in order, with libvirt's numbers.
	want := []struct {
		event  libvirt.DomainEventType
		detail int32
	}{
		{libvirt.DomainEventDefined, int32(libvirt.DomainEventDefinedAdded)},
		{libvirt.DomainEventStarted, int32(libvirt.DomainEventStartedBooted)},
		{libvirt.DomainEventSuspended, int32(libvirt.DomainEventSuspendedPaused)},
		{libvirt.DomainEventResumed, int32(libvirt.DomainEventResumedUnpaused)},
		{libvirt.DomainEventStopped, int32(libvirt.DomainEventStoppedDestroyed)},
		{libvirt.DomainEventUndefined, int32(libvirt.DomainEventUndefinedRemoved)},
	}
	for i, w := range want {
		select {
		case e := <-events:
			if e.Dom.Name != "golv" || e.Event != int32(w.event) || e.Detail != w.detail {
				t.Errorf("event %d: %s %d/%d, want %d/%d", i, e.Dom.Name, e.Event, e.Detail, w.event, w.detail)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d (%d/%d) did not come", i, w.event, w.detail)
		}
	}
}

func TestGoLibvirtErrors(t *testing.T) {
	d := daemontest.Start(t)
	l := dial(t, d.LibvirtSocket, "test:///default")

	_, err := l.DomainLookupByName("nosuch")
	wantCode(t, "unknown name", err, libvirt.ErrNoDomain, "nosuch")
	_, err = l.DomainDefineXML("<domain><name>broken")
	wantCode(t, "malformed XML", err, libvirt.ErrXMLError, "")
	dom, err := l.DomainDefineXML(domXML("twice"))
	if err != nil {
		t.Fatal(err)
	}
	err = l.DomainResume(dom)
	wantCode(t, "resume of a stopped domain", err, libvirt.ErrOperationInvalid, "")
	_, err = l.DomainGetXMLDesc(dom, libvirt.DomainXMLMigratable)
	wantCode(t, "an unknown flag", err, libvirt.ErrInvalidArg, "unsupported flags (0x8)")
	err = l.DomainInjectNmi(dom, 0)
	wantCode(t, "a procedure virtd lacks", err, libvirt.ErrNoSupport, "procedure 210")
	_, _, err = l.ConnectListAllNetworks(1, 0)
	if err != nil {
		t.Errorf("list networks: %v", err)
	}
	_, err = l.NetworkLookupByName("default")
	wantCode(t, "network lookup", err, libvirt.ErrNoNetwork, "network 'default'")
	_, err = l.NetworkCreateXML("<network/>")
	wantCode(t, "network create", err, libvirt.ErrNoSupport, "network driver")
	_, err = l.ConnectDomainEventCallbackRegisterAny(27, nil)
	wantCode(t, "event ID out of range", err, libvirt.ErrInvalidArg, "event ID 27")
	for id := int32(0); id < 27; id++ {
		cb, err := l.ConnectDomainEventCallbackRegisterAny(id, nil)
		if err != nil {
			t.Errorf("register event %d: %v", id, err)
			continue
		}
		if err := l.ConnectDomainEventCallbackDeregisterAny(cb); err != nil {
			t.Errorf("deregister event %d: %v", id, err)
		}
	}
	// The connection still serves after every error.
	if _, err := l.ConnectGetHostname(); err != nil {
		t.Errorf("after the errors: %v", err)
	}

	// The read-only socket refuses changes.
	ro := dial(t, d.LibvirtROSocket, "test:///default")
	err = ro.DomainCreate(dom)
	wantCode(t, "start on the read-only socket", err, libvirt.ErrOperationDenied, "read-only")
	if _, err := ro.DomainLookupByName("twice"); err != nil {
		t.Errorf("read on the read-only socket: %v", err)
	}

	// An unknown URI: no connection.
	l2 := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(d.LibvirtSocket)))
	err = l2.ConnectToURI("nosuch:///system")
	wantCode(t, "unknown scheme", err, libvirt.ErrNoConnect, "nosuch")
}

// TestGoLibvirtPipelined: many clients, each with many calls in flight on
// one connection, all answered, each with its own answer.
func TestGoLibvirtPipelined(t *testing.T) {
	d := daemontest.Start(t)
	setup := dial(t, d.LibvirtSocket, "test:///default")
	const doms = 10
	for i := 0; i < doms; i++ {
		if _, err := setup.DomainDefineXML(domXML(fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	clients, calls := 100, 100
	if testing.Short() {
		clients = 20
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients*calls)
	for c := 0; c < clients; c++ {
		l := dial(t, d.LibvirtSocket, "test:///default")
		for k := 0; k < calls; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("p%d", (c+k)%doms)
				dom, err := l.DomainLookupByName(name)
				if err == nil && dom.Name != name {
					err = fmt.Errorf("asked for %s, got %s", name, dom.Name)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 5 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d calls failed", n, clients*calls)
	}
}
