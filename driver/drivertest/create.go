package drivertest

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/virtd/virtd/virt"
)

// The cases of CreateDomain: transient domains, as libvirt's
// virDomainCreateXML makes them.

// create creates a domain from doc, checks the reply names a running
// domain, and arranges for it to be destroyed (and undefined, should it
// have become persistent) when the case ends.
func (h *harness) create(doc string) *virt.Domain {
	h.t.Helper()
	d, err := h.drv.CreateDomain(h.ctx, doc)
	if err != nil {
		h.t.Fatalf("CreateDomain: %v", err)
	}
	if d == nil || d.UUID == "" || d.Name == "" {
		h.t.Fatalf("CreateDomain returned %+v, want a name and a UUID", d)
	}
	uuid := d.UUID
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		_ = h.drv.DestroyDomain(ctx, uuid)
		_ = h.drv.UndefineDomain(ctx, uuid)
	})
	if !d.State.Active() || d.ID <= 0 {
		h.t.Fatalf("CreateDomain returned %+v, want an active domain with an ID > 0", d)
	}
	return d
}

// watch subscribes to the driver's events, or returns nil for a driver
// that declares it has none. The subscription ends with the case.
func (h *harness) watch() <-chan virt.Event {
	h.t.Helper()
	if !h.cfg.supports(OpEvents) {
		return nil
	}
	ctx, cancel := context.WithCancel(h.ctx)
	h.t.Cleanup(cancel)
	events, err := h.drv.WatchEvents(ctx)
	if err != nil {
		h.t.Fatalf("WatchEvents: %v", err)
	}
	return events
}

// eventsOf returns the events of the domain uuid sent so far, in order:
// it defines a fence domain and reads events until the fence's Defined
// event, which the driver sends after every event it sent before.
func (h *harness) eventsOf(events <-chan virt.Event, uuid string) []virt.Event {
	h.t.Helper()
	fence := h.define("fence")
	var got []virt.Event
	timeout := time.After(h.cfg.settle())
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				h.t.Fatalf("event channel closed; events of %s so far: %s", uuid, eventList(got))
			}
			if ev.Domain.UUID == fence.UUID && ev.Type == virt.EventDefined {
				return got
			}
			if ev.Domain.UUID == uuid {
				got = append(got, ev)
			}
		case <-timeout:
			h.t.Fatalf("no Defined event of the fence domain within %v; events of %s so far: %s", h.cfg.settle(), uuid, eventList(got))
		}
	}
}

// wantEvents checks that events holds want, in this order (a driver may
// send others in between), and none of the types in never.
func (h *harness) wantEvents(events []virt.Event, want [][2]int32, never ...virt.EventType) {
	h.t.Helper()
	i := 0
	for _, ev := range events {
		for _, n := range never {
			if ev.Type == n {
				h.t.Errorf("event %s/%s sent (events: %s)", ev.Type, virt.EventDetailString(ev.Type, ev.Detail), eventList(events))
			}
		}
		if i < len(want) && int32(ev.Type) == want[i][0] && ev.Detail == want[i][1] {
			i++
		}
	}
	if i < len(want) {
		typ := virt.EventType(want[i][0])
		h.t.Errorf("no event %s/%s in its place (events: %s)", typ, virt.EventDetailString(typ, want[i][1]), eventList(events))
	}
}

func eventList(events []virt.Event) string {
	s := make([]string, len(events))
	for i, ev := range events {
		s[i] = fmt.Sprintf("%s/%s", ev.Type, virt.EventDetailString(ev.Type, ev.Detail))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// wantGone checks the domain is found by no key and listed nowhere.
func (h *harness) wantGone(d *virt.Domain, when string) {
	h.t.Helper()
	for _, key := range []virt.Lookup{virt.ByName(d.Name), virt.ByUUID(d.UUID), virt.ByID(d.ID)} {
		_, err := h.drv.LookupDomain(h.ctx, key)
		h.wantKind(fmt.Sprintf("%s: LookupDomain(%+v)", when, key), err, virt.ErrNotFound)
	}
	_, _, err := h.drv.DomainState(h.ctx, d.UUID)
	h.wantKind(when+": DomainState", err, virt.ErrNotFound)
	if _, ok := h.list(0)[d.UUID]; ok {
		h.t.Errorf("%s: the domain is still listed", when)
	}
}

// waitGone waits, for cfg.SettleTimeout, until the domain uuid is gone.
func (h *harness) waitGone(uuid string) {
	h.t.Helper()
	deadline := time.Now().Add(h.cfg.settle())
	for {
		d, err := h.drv.LookupDomain(h.ctx, virt.ByUUID(uuid))
		if err != nil {
			h.wantKind("LookupDomain of a transient domain that stops", err, virt.ErrNotFound)
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("transient domain %s still there after %v: %+v", uuid, h.cfg.settle(), d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testCreate(t *testing.T, h *harness) {
	events := h.watch()
	name, uuid := h.name(""), randomUUID()
	d := h.create(h.xml(name, uuid))
	if d.Name != name || d.UUID != uuid || d.Persistent || d.State != virt.StateRunning {
		t.Fatalf("CreateDomain: %+v, want %s (%s) running and transient", d, name, uuid)
	}
	h.wantState(d.UUID, virt.StateRunning, virt.RunningBooted)
	for _, key := range []virt.Lookup{virt.ByName(name), virt.ByUUID(uuid), virt.ByID(d.ID)} {
		got := h.lookup(key)
		if got.UUID != uuid || got.ID != d.ID || got.Persistent || got.Autostart {
			t.Errorf("LookupDomain(%+v) = %+v, want %s with ID %d, transient", key, got, uuid, d.ID)
		}
	}
	for _, tc := range []struct {
		flags virt.ListFlags
		want  bool
	}{
		{0, true},
		{virt.ListActive, true},
		{virt.ListInactive, false},
		{virt.ListTransient, true},
		{virt.ListPersistent, false},
		{virt.ListRunning, true},
		{virt.ListShutoff, false},
	} {
		if _, ok := h.list(tc.flags)[uuid]; ok != tc.want {
			t.Errorf("ListDomains(%#x) lists the created domain: %v, want %v", uint32(tc.flags), ok, tc.want)
		}
	}
	doc, err := h.drv.DomainXML(h.ctx, uuid, false)
	if err != nil {
		t.Fatalf("DomainXML: %v", err)
	}
	x := h.parseXML("live DomainXML of a created domain", doc)
	if x.Name != name || x.UUID != uuid || x.ID == nil || *x.ID != int(d.ID) {
		t.Errorf("live DomainXML: name %q uuid %q id %v, want %q %q %d", x.Name, x.UUID, x.ID, name, uuid, d.ID)
	}
	if events != nil {
		h.wantEvents(h.eventsOf(events, uuid), [][2]int32{{int32(virt.EventStarted), virt.StartedBooted}},
			virt.EventDefined, virt.EventUndefined)
	}
}

// testCreateDestroy: a transient domain vanishes when destroyed, with a
// Stopped event and no Undefined one, as libvirt's (qemuProcessStop, then
// qemuDomainRemoveInactive, which sends no event); its name is free again.
func testCreateDestroy(t *testing.T, h *harness) {
	events := h.watch()
	name := h.name("")
	d := h.create(h.xml(name, ""))
	if h.cfg.supports(OpUndefine) {
		err := h.drv.UndefineDomain(h.ctx, d.UUID)
		h.wantKind("undefine a transient domain", err, virt.ErrFailedPrecondition)
	}
	if err := h.drv.DestroyDomain(h.ctx, d.UUID); err != nil {
		t.Fatalf("DestroyDomain: %v", err)
	}
	h.wantGone(d, "after destroy")
	err := h.drv.DestroyDomain(h.ctx, d.UUID)
	h.wantKind("destroy a transient domain twice", err, virt.ErrNotFound)
	if events != nil {
		h.wantEvents(h.eventsOf(events, d.UUID), [][2]int32{
			{int32(virt.EventStarted), virt.StartedBooted},
			{int32(virt.EventStopped), virt.StoppedDestroyed},
		}, virt.EventUndefined)
	}
	again := h.create(h.xml(name, ""))
	if again.UUID == d.UUID {
		t.Errorf("a domain created again from XML without a UUID has the old UUID %s", d.UUID)
	}
}

// testCreateShutdown: a transient domain whose guest powers off vanishes
// too.
func testCreateShutdown(t *testing.T, h *harness) {
	events := h.watch()
	d := h.create(h.xml(h.name(""), ""))
	h.waitRunning(d.UUID)
	if err := h.drv.ShutdownDomain(h.ctx, d.UUID); err != nil {
		t.Fatalf("ShutdownDomain: %v", err)
	}
	h.waitGone(d.UUID)
	h.wantGone(d, "after the guest powered off")
	if events != nil {
		h.wantEvents(h.eventsOf(events, d.UUID), [][2]int32{
			{int32(virt.EventStarted), virt.StartedBooted},
			{int32(virt.EventStopped), virt.StoppedShutdown},
		}, virt.EventUndefined)
	}
}

// testDefineCreated: defining the XML of a running transient domain makes
// it persistent; it runs on, and stays when it stops.
func testDefineCreated(t *testing.T, h *harness) {
	events := h.watch()
	doc := h.xml(h.name(""), randomUUID())
	d := h.create(doc)
	p, err := h.drv.DefineDomain(h.ctx, doc)
	if err != nil {
		t.Fatalf("DefineDomain of a running transient domain: %v", err)
	}
	if p.UUID != d.UUID || !p.Persistent || !p.State.Active() || p.ID != d.ID {
		t.Errorf("DefineDomain of a running transient domain: %+v, want %s persistent, active with ID %d", p, d.UUID, d.ID)
	}
	if got := h.lookup(virt.ByUUID(d.UUID)); !got.Persistent || got.ID != d.ID {
		t.Errorf("after define: %+v, want persistent with ID %d", got, d.ID)
	}
	if _, ok := h.list(virt.ListPersistent)[d.UUID]; !ok {
		t.Error("a defined created domain is not listed with ListPersistent")
	}
	if events != nil {
		h.wantEvents(h.eventsOf(events, d.UUID), [][2]int32{
			{int32(virt.EventStarted), virt.StartedBooted},
			{int32(virt.EventDefined), virt.DefinedAdded},
		})
	}
	if !h.cfg.supports(OpDestroy) {
		return
	}
	if err := h.drv.DestroyDomain(h.ctx, d.UUID); err != nil {
		t.Fatalf("DestroyDomain: %v", err)
	}
	h.wantState(d.UUID, virt.StateShutoff, virt.ShutoffDestroyed)
	if got := h.lookup(virt.ByUUID(d.UUID)); !got.Persistent || got.ID != -1 {
		t.Errorf("after destroy: %+v, want persistent, ID -1", got)
	}
}

// testCreateDefined: the name and UUID of an inactive persistent domain
// start that domain, with the XML as its live definition; the persistent
// definition stays.
func testCreateDefined(t *testing.T, h *harness) {
	d := h.define("")
	const marker = `<virtd:created xmlns:virtd="urn:virtd-drivertest">yes</virtd:created>`
	doc := h.xml(d.Name, d.UUID)
	if strings.Contains(doc, "<metadata>") {
		doc = strings.Replace(doc, "<metadata>", "<metadata>"+marker, 1)
	} else {
		doc = strings.Replace(doc, "</domain>", "<metadata>"+marker+"</metadata></domain>", 1)
	}
	c := h.create(doc)
	if c.UUID != d.UUID || c.Name != d.Name || !c.Persistent {
		t.Fatalf("CreateDomain with the name and UUID of an inactive persistent domain: %+v, want %s (%s), persistent", c, d.Name, d.UUID)
	}
	h.wantState(d.UUID, virt.StateRunning, virt.RunningBooted)
	n := 0
	for _, x := range h.list(0) {
		if x.Name == d.Name {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d domains are named %q, want 1", n, d.Name)
	}
	created := xml.Name{Space: "urn:virtd-drivertest", Local: "created"}
	hasMarker := func(inactive bool) bool {
		t.Helper()
		doc, err := h.drv.DomainXML(h.ctx, d.UUID, inactive)
		if err != nil {
			t.Fatalf("DomainXML(inactive=%v): %v", inactive, err)
		}
		x := h.parseXML(fmt.Sprintf("DomainXML(inactive=%v)", inactive), doc)
		return x.Metadata != nil && hasElement(x.Metadata.XML, created, "yes")
	}
	if !hasMarker(false) {
		t.Error("the live XML is not the XML the domain was created from")
	}
	if hasMarker(true) {
		t.Error("the persistent definition took the XML the domain was created from")
	}
	if !h.cfg.supports(OpDestroy) {
		return
	}
	if err := h.drv.DestroyDomain(h.ctx, d.UUID); err != nil {
		t.Fatalf("DestroyDomain: %v", err)
	}
	if got := h.lookup(virt.ByUUID(d.UUID)); !got.Persistent || got.State != virt.StateShutoff {
		t.Errorf("after destroy: %+v, want persistent and shut off", got)
	}
	if hasMarker(false) {
		t.Error("after destroy, the XML is still the one the domain was created from")
	}
}

// testCreateInUse: names and UUIDs in use are refused, with libvirt's
// kinds, and leave the domains that hold them as they were.
func testCreateInUse(t *testing.T, h *harness) {
	a := h.define("a")
	sa := h.start(a.UUID)
	b := h.create(h.xml(h.name("b"), ""))
	before := h.list(0)
	for _, tc := range []struct {
		what string
		doc  string
		kind error
	}{
		{"the name of a running persistent domain", h.xml(a.Name, randomUUID()), virt.ErrAlreadyExists},
		{"the name and UUID of a running persistent domain", h.xml(a.Name, a.UUID), virt.ErrFailedPrecondition},
		{"the UUID of a running persistent domain under another name", h.xml(h.name("c"), a.UUID), virt.ErrAlreadyExists},
		{"the name of a running transient domain", h.xml(b.Name, ""), virt.ErrAlreadyExists},
		{"the name and UUID of a running transient domain", h.xml(b.Name, b.UUID), virt.ErrFailedPrecondition},
	} {
		_, err := h.drv.CreateDomain(h.ctx, tc.doc)
		h.wantKind("CreateDomain with "+tc.what, err, tc.kind)
	}
	after := h.list(0)
	if len(after) != len(before) {
		t.Errorf("%d domains after the refused creates, want %d", len(after), len(before))
	}
	for _, want := range []*virt.Domain{sa, b} {
		got, ok := after[want.UUID]
		if !ok || got.ID != want.ID || got.State != virt.StateRunning || got.Persistent != want.Persistent {
			t.Errorf("after the refused creates: %+v, want %+v", got, *want)
		}
	}
}

func testCreateMalformedXML(t *testing.T, h *harness) {
	before := h.list(0)
	for _, doc := range []string{
		"<domain type='",
		"this is not XML",
		"<domain><name>unclosed</domain>",
		h.xml("a/b", ""),
	} {
		_, err := h.drv.CreateDomain(h.ctx, doc)
		h.wantKind(fmt.Sprintf("CreateDomain(%.60q)", doc), err, virt.ErrInvalidArgument)
	}
	h.wantNothingDefined(before, "after bad XML")
}

// testCreateAutostart: a transient domain cannot autostart; libvirt says
// "cannot set autostart for transient domain" (VIR_ERR_OPERATION_INVALID).
func testCreateAutostart(t *testing.T, h *harness) {
	d := h.create(h.xml(h.name(""), ""))
	err := h.drv.SetDomainAutostart(h.ctx, d.UUID, true)
	h.wantKind("SetDomainAutostart(true) of a transient domain", err, virt.ErrFailedPrecondition)
	if a, err := h.drv.DomainAutostart(h.ctx, d.UUID); err != nil || a {
		t.Errorf("DomainAutostart of a transient domain = %v, %v; want false", a, err)
	}
	if got := h.lookup(virt.ByUUID(d.UUID)); got.Autostart || got.Persistent {
		t.Errorf("after a refused autostart: %+v", got)
	}
}
