package drivertest

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domxml"
	"github.com/virtd/virtd/virt"
)

// suiteCase is one behaviour; it is skipped when the driver declares one of
// needs unsupported.
type suiteCase struct {
	name  string
	needs []Op
	run   func(t *testing.T, h *harness)
}

var cases = []suiteCase{
	{name: "Info", run: testInfo},
	{name: "CheckURI", run: testCheckURI},
	{name: "Host", run: testHost},
	{name: "DefineLookup", run: testDefineLookup},
	{name: "List", run: testList},
	{name: "Redefine", run: testRedefine},
	{name: "DuplicateName", run: testDuplicateName},
	{name: "MalformedXML", run: testMalformedXML},
	{name: "NameRules", run: testNameRules},
	{name: "UnknownXML", run: testUnknownXML},
	{name: "Metadata", run: testMetadata},
	{name: "NotFound", run: testNotFound},
	{name: "Start", needs: []Op{OpStart}, run: testStart},
	{name: "StartTwice", needs: []Op{OpStart}, run: testStartTwice},
	{name: "RunningGuests", needs: []Op{OpStart, OpDestroy}, run: testRunningGuests},
	{name: "SuspendResume", needs: []Op{OpStart, OpSuspend, OpResume}, run: testSuspendResume},
	{name: "Destroy", needs: []Op{OpStart, OpDestroy}, run: testDestroy},
	{name: "Shutdown", needs: []Op{OpStart, OpShutdown}, run: testShutdown},
	{name: "Reboot", needs: []Op{OpStart, OpReboot}, run: testReboot},
	{name: "DomainInfo", needs: []Op{OpStart}, run: testDomainInfo},
	{name: "Autostart", needs: []Op{OpAutostart}, run: testAutostart},
	{name: "XML", run: testXML},
	{name: "LiveXML", needs: []Op{OpStart}, run: testLiveXML},
	{name: "Undefine", needs: []Op{OpUndefine}, run: testUndefine},
	{name: "UndefineRunning", needs: []Op{OpStart, OpUndefine, OpDestroy}, run: testUndefineRunning},
	{name: "Events", needs: []Op{OpEvents, OpStart, OpSuspend, OpResume, OpDestroy, OpUndefine}, run: testEvents},
	{name: "Create", needs: []Op{OpCreate}, run: testCreate},
	{name: "CreateDestroy", needs: []Op{OpCreate, OpDestroy}, run: testCreateDestroy},
	{name: "CreateShutdown", needs: []Op{OpCreate, OpShutdown}, run: testCreateShutdown},
	{name: "DefineCreated", needs: []Op{OpCreate}, run: testDefineCreated},
	{name: "CreateDefined", needs: []Op{OpCreate}, run: testCreateDefined},
	{name: "CreateInUse", needs: []Op{OpCreate, OpStart}, run: testCreateInUse},
	{name: "CreateMalformedXML", needs: []Op{OpCreate}, run: testCreateMalformedXML},
	{name: "CreateAutostart", needs: []Op{OpCreate, OpAutostart}, run: testCreateAutostart},
	{name: "CancelledContext", run: testCancelledContext},
	{name: "Concurrent", run: testConcurrent},
	{name: "DomainStats", needs: []Op{OpDomainStats, OpStart}, run: testDomainStats},
	{name: "DomainStatsFilter", needs: []Op{OpDomainStats, OpStart}, run: testDomainStatsFilter},
	{name: "DeviceStats", needs: []Op{OpBlockStats, OpInterfaceStats, OpStart}, run: testDeviceStats},
	{name: "MemoryStats", needs: []Op{OpMemoryStats, OpStart}, run: testMemoryStats},
	{name: "NodeStats", needs: []Op{OpNodeStats}, run: testNodeStats},
	{name: "DomainCapabilities", needs: []Op{OpDomainCapabilities}, run: testDomainCapabilities},
}

func testInfo(t *testing.T, h *harness) {
	info, err := h.drv.Info(h.ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Name == "" {
		t.Error("Info: empty Name")
	}
	if len(info.Schemes) == 0 {
		t.Error("Info: no Schemes")
	}
	switch info.Health {
	case driver.HealthAvailable:
	case driver.HealthUnavailable:
		if info.HealthReason == "" {
			t.Error("Info: Health unavailable without a HealthReason")
		}
	default:
		t.Errorf("Info: Health %s, want available or unavailable", info.Health)
	}
	u, err := url.Parse(h.cfg.URI)
	if err != nil {
		t.Fatalf("Config.URI %q: %v", h.cfg.URI, err)
	}
	found := false
	for _, s := range info.Schemes {
		found = found || s == u.Scheme
	}
	if !found {
		t.Errorf("Info: Schemes %q do not include %q, the scheme of Config.URI", info.Schemes, u.Scheme)
	}
}

func testCheckURI(t *testing.T, h *harness) {
	if err := h.drv.CheckURI(h.ctx, h.cfg.URI); err != nil {
		t.Fatalf("CheckURI(%q): %v", h.cfg.URI, err)
	}
	u, err := url.Parse(h.cfg.URI)
	if err != nil {
		t.Fatalf("Config.URI %q: %v", h.cfg.URI, err)
	}
	bad := u.Scheme + ":///virtd-drivertest/no/such/path"
	err = h.drv.CheckURI(h.ctx, bad)
	if err == nil {
		t.Fatalf("CheckURI(%q) succeeded, want a refusal", bad)
	}
	if virt.KindOf(err) == nil {
		t.Errorf("CheckURI(%q): error %q carries no virt kind", bad, err)
	}
}

func testHost(t *testing.T, h *harness) {
	if name, err := h.drv.Hostname(h.ctx); err != nil || name == "" {
		t.Errorf("Hostname = %q, %v; want a name", name, err)
	}
	if h.cfg.supports(OpNodeInfo) {
		ni, err := h.drv.NodeInfo(h.ctx)
		if err != nil {
			t.Errorf("NodeInfo: %v", err)
		} else if ni.CPUs == 0 || ni.MemoryKiB == 0 || ni.Model == "" {
			t.Errorf("NodeInfo = %+v, want a model, CPUs and memory", ni)
		}
	}
	if h.cfg.supports(OpCapabilities) {
		doc, err := h.drv.Capabilities(h.ctx)
		if err != nil {
			t.Fatalf("Capabilities: %v", err)
		}
		var caps libvirtxml.Caps
		if err := caps.Unmarshal(doc); err != nil {
			t.Fatalf("Capabilities is not capabilities XML: %v\n%s", err, doc)
		}
		if len(caps.Guests) == 0 {
			t.Errorf("Capabilities lists no guest:\n%s", doc)
		}
	}
}

func testDefineLookup(t *testing.T, h *harness) {
	name := h.name("")
	d := h.define("")
	if d.Name != name {
		t.Errorf("DefineDomain: name %q, want %q", d.Name, name)
	}
	if !d.Persistent || d.State.Active() || d.ID != -1 {
		t.Errorf("DefineDomain: %+v, want persistent, inactive, ID -1", d)
	}
	byName := h.lookup(virt.ByName(name))
	byUUID := h.lookup(virt.ByUUID(d.UUID))
	for what, got := range map[string]*virt.Domain{"by name": byName, "by UUID": byUUID} {
		if got.Name != name || got.UUID != d.UUID {
			t.Errorf("lookup %s: %s (%s), want %s (%s)", what, got.Name, got.UUID, name, d.UUID)
		}
		if got.State != virt.StateShutoff || got.ID != -1 || !got.Persistent {
			t.Errorf("lookup %s: %+v, want shut off, ID -1, persistent", what, got)
		}
	}
}

func testList(t *testing.T, h *harness) {
	d := h.define("")
	for _, tc := range []struct {
		flags virt.ListFlags
		want  bool
	}{
		{0, true},
		{virt.ListInactive, true},
		{virt.ListActive, false},
		{virt.ListActive | virt.ListInactive, true},
		{virt.ListPersistent, true},
		{virt.ListTransient, false},
		{virt.ListShutoff, true},
		{virt.ListRunning | virt.ListPaused, false},
		{virt.ListInactive | virt.ListNoAutostart, true},
		{virt.ListInactive | virt.ListAutostart, false},
	} {
		got, ok := h.list(tc.flags)[d.UUID]
		if ok != tc.want {
			t.Errorf("ListDomains(%#x) lists the domain: %v, want %v", uint32(tc.flags), ok, tc.want)
		}
		if ok && (got.Name != d.Name || got.State != virt.StateShutoff || got.ID != -1) {
			t.Errorf("ListDomains(%#x): %+v, want %s shut off with ID -1", uint32(tc.flags), got, d.Name)
		}
	}
}

func testRedefine(t *testing.T, h *harness) {
	name := h.name("")
	uuid := randomUUID()
	d := h.defineXML(h.xml(name, uuid))
	if d.UUID != uuid {
		t.Fatalf("DefineDomain with uuid %s: got %s", uuid, d.UUID)
	}
	again, err := h.drv.DefineDomain(h.ctx, h.xml(name, uuid))
	if err != nil {
		t.Fatalf("redefine with the same name and UUID: %v", err)
	}
	if again.UUID != uuid || again.Name != name {
		t.Errorf("redefine: %+v, want %s (%s)", again, name, uuid)
	}
	n := 0
	for _, x := range h.list(0) {
		if x.Name == name {
			n++
		}
	}
	if n != 1 {
		t.Errorf("after redefine, %d domains are named %q, want 1", n, name)
	}
}

func testDuplicateName(t *testing.T, h *harness) {
	name := h.name("")
	h.defineXML(h.xml(name, randomUUID()))
	_, err := h.drv.DefineDomain(h.ctx, h.xml(name, randomUUID()))
	h.wantKind("define an existing name with another UUID", err, virt.ErrAlreadyExists)
}

func testMalformedXML(t *testing.T, h *harness) {
	for _, doc := range []string{
		"<domain type='",
		"this is not XML",
		"<domain><name>unclosed</domain>",
	} {
		_, err := h.drv.DefineDomain(h.ctx, doc)
		h.wantKind(fmt.Sprintf("DefineDomain(%q)", doc), err, virt.ErrInvalidArgument)
	}
}

// testNameRules holds the driver to domxml.CheckName: a bad name is
// refused as an invalid argument and leaves nothing defined; long and
// non-ASCII names within the rule are accepted as they are.
func testNameRules(t *testing.T, h *harness) {
	before := h.list(0)
	for _, tc := range []struct{ what, name string }{
		{"empty", ""},
		{"256 bytes", strings.Repeat("n", domxml.MaxNameLen+1)},
		{"1 MB", strings.Repeat("m", 1<<20)},
		{"a slash", "a/b"},
		{"a newline", "a\nb"},
		{"a tab", "a\tb"},
		{"a DEL", "a\x7fb"},
		{"a C1 control", "a\u0085b"},
		{"dot", "."},
		{"dot dot", ".."},
	} {
		_, err := h.drv.DefineDomain(h.ctx, h.xml(tc.name, ""))
		h.wantKind(fmt.Sprintf("DefineDomain with a name that is %s", tc.what), err, virt.ErrInvalidArgument)
	}
	// A string that is not UTF-8 cannot cross the gRPC shims (protobuf
	// strings are UTF-8), so the driver itself is asked: the daemon checks
	// the name before it forwards a definition, and the driver again.
	_, err := h.impl.DefineDomain(h.ctx, h.xml("a\xffb", ""))
	h.wantKind("DefineDomain (the driver itself) with a name that is not UTF-8", err, virt.ErrInvalidArgument)
	if _, err := h.drv.DefineDomain(h.ctx, h.xml("a\xffb", "")); err == nil {
		t.Error("DefineDomain with a name that is not UTF-8 succeeded")
	}
	h.wantNothingDefined(before, "after bad names")

	for _, name := range []string{
		h.name("") + strings.Repeat("x", domxml.MaxNameLen-len(h.name(""))),
		h.name("") + " vm ü 1",
	} {
		d := h.defineXML(h.xml(name, ""))
		if d.Name != name {
			t.Errorf("DefineDomain(%q): name %q", name, d.Name)
		}
		if got := h.lookup(virt.ByName(name)); got.UUID != d.UUID {
			t.Errorf("lookup %q: %+v, want %s", name, got, d.UUID)
		}
	}
}

// wantNothingDefined checks that the domains are those of before.
func (h *harness) wantNothingDefined(before map[string]virt.Domain, when string) {
	h.t.Helper()
	after := h.list(0)
	for uuid, d := range after {
		if _, ok := before[uuid]; !ok {
			h.t.Errorf("%s: domain %.40q (%s) is defined", when, d.Name, uuid)
		}
	}
	if len(after) != len(before) {
		h.t.Errorf("%s: %d domains, want %d", when, len(after), len(before))
	}
}

// withDevice returns doc with dev added inside <devices>.
func withDevice(doc, dev string) string {
	switch {
	case strings.Contains(doc, "</devices>"):
		return strings.Replace(doc, "</devices>", dev+"</devices>", 1)
	case strings.Contains(doc, "<devices/>"):
		return strings.Replace(doc, "<devices/>", "<devices>"+dev+"</devices>", 1)
	}
	return strings.Replace(doc, "</domain>", "<devices>"+dev+"</devices></domain>", 1)
}

// testUnknownXML: what libvirtxml does not know is refused by its path,
// not dropped.
func testUnknownXML(t *testing.T, h *harness) {
	before := h.list(0)
	doc := h.xml(h.name(""), "")
	for _, tc := range []struct{ what, doc, path string }{
		{"an unknown element", withDevice(doc, "<disc/>"), "domain/devices/disc"},
		{"an unknown attribute", strings.Replace(doc, "<domain", "<domain virtd-bogus='1'", 1), "domain/@virtd-bogus"},
		{"an unknown attribute of a known element", strings.Replace(doc, "<name>", "<name virtd-bogus='1'>", 1), "domain/name/@virtd-bogus"},
	} {
		_, err := h.drv.DefineDomain(h.ctx, tc.doc)
		h.wantKind("DefineDomain with "+tc.what, err, virt.ErrInvalidArgument)
		if !strings.Contains(err.Error(), tc.path) {
			t.Errorf("DefineDomain with %s: error %q does not name %s", tc.what, err, tc.path)
		}
	}
	h.wantNothingDefined(before, "after unknown XML")
}

// testMetadata: the content of <metadata> is opaque, accepted whatever it
// is and given back.
func testMetadata(t *testing.T, h *harness) {
	const app = `<app:x xmlns:app="urn:x">v</app:x>`
	doc := h.xml(h.name(""), "")
	if strings.Contains(doc, "<metadata>") {
		doc = strings.Replace(doc, "<metadata>", "<metadata>"+app, 1)
	} else {
		doc = strings.Replace(doc, "</domain>", "<metadata>"+app+"</metadata></domain>", 1)
	}
	d := h.defineXML(doc)
	out, err := h.drv.DomainXML(h.ctx, d.UUID, true)
	if err != nil {
		t.Fatalf("DomainXML: %v", err)
	}
	x := h.parseXML("DomainXML(inactive)", out)
	if x.Metadata == nil || !hasElement(x.Metadata.XML, xml.Name{Space: "urn:x", Local: "x"}, "v") {
		t.Errorf("DomainXML(inactive) lost the metadata %s:\n%s", app, out)
	}
}

// hasElement reports whether the XML fragment frag has an element named n
// with text text.
func hasElement(frag string, n xml.Name, text string) bool {
	dec := xml.NewDecoder(strings.NewReader("<m>" + frag + "</m>"))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name == n {
			var s string
			return dec.DecodeElement(&s, &se) == nil && s == text
		}
	}
}

func testNotFound(t *testing.T, h *harness) {
	_, err := h.drv.LookupDomain(h.ctx, virt.ByName("drivertest-no-such-domain"))
	h.wantKind("lookup an unknown name", err, virt.ErrNotFound)
	uuid := randomUUID()
	_, err = h.drv.LookupDomain(h.ctx, virt.ByUUID(uuid))
	h.wantKind("lookup an unknown UUID", err, virt.ErrNotFound)
	_, err = h.drv.LookupDomain(h.ctx, virt.ByID(1<<30))
	h.wantKind("lookup an unknown ID", err, virt.ErrNotFound)
	_, err = h.drv.DomainInfo(h.ctx, uuid)
	h.wantKind("DomainInfo of an unknown UUID", err, virt.ErrNotFound)
	_, err = h.drv.DomainXML(h.ctx, uuid, false)
	h.wantKind("DomainXML of an unknown UUID", err, virt.ErrNotFound)
	if h.cfg.supports(OpStart) {
		_, err = h.drv.StartDomain(h.ctx, uuid)
		h.wantKind("StartDomain of an unknown UUID", err, virt.ErrNotFound)
	}
	if h.cfg.supports(OpUndefine) {
		err = h.drv.UndefineDomain(h.ctx, uuid)
		h.wantKind("UndefineDomain of an unknown UUID", err, virt.ErrNotFound)
	}
}

func testStart(t *testing.T, h *harness) {
	d := h.define("")
	_, err := h.drv.LookupDomain(h.ctx, virt.ByID(d.ID))
	h.wantKind(fmt.Sprintf("lookup an inactive domain by ID %d", d.ID), err, virt.ErrNotFound)

	s := h.start(d.UUID)
	if s.ID <= 0 || s.State != virt.StateRunning {
		t.Fatalf("StartDomain: %+v, want running with an ID > 0", s)
	}
	h.wantState(d.UUID, virt.StateRunning, virt.RunningBooted)
	byID := h.lookup(virt.ByID(s.ID))
	if byID.UUID != d.UUID || byID.Name != d.Name || byID.ID != s.ID {
		t.Errorf("lookup by ID %d: %+v, want %s (%s)", s.ID, byID, d.Name, d.UUID)
	}
	if _, ok := h.list(virt.ListActive)[d.UUID]; !ok {
		t.Error("a running domain is not listed with ListActive")
	}
	if _, ok := h.list(virt.ListInactive)[d.UUID]; ok {
		t.Error("a running domain is listed with ListInactive")
	}
	if got := h.list(virt.ListRunning)[d.UUID]; got.ID != s.ID {
		t.Errorf("ListDomains(ListRunning): %+v, want ID %d", got, s.ID)
	}
}

func testStartTwice(t *testing.T, h *harness) {
	d := h.define("")
	h.start(d.UUID)
	_, err := h.drv.StartDomain(h.ctx, d.UUID)
	h.wantKind("start a running domain", err, virt.ErrFailedPrecondition)
	h.wantState(d.UUID, virt.StateRunning, virt.RunningBooted)
}

func testRunningGuests(t *testing.T, h *harness) {
	before, err := h.drv.RunningGuests(h.ctx)
	if err != nil {
		t.Fatalf("RunningGuests: %v", err)
	}
	d := h.define("")
	h.start(d.UUID)
	if n, err := h.drv.RunningGuests(h.ctx); err != nil || n != before+1 {
		t.Errorf("RunningGuests after a start = %d, %v; want %d", n, err, before+1)
	}
	if err := h.drv.DestroyDomain(h.ctx, d.UUID); err != nil {
		t.Fatalf("DestroyDomain: %v", err)
	}
	if n, err := h.drv.RunningGuests(h.ctx); err != nil || n != before {
		t.Errorf("RunningGuests after a destroy = %d, %v; want %d", n, err, before)
	}
}

func testSuspendResume(t *testing.T, h *harness) {
	d := h.define("")
	s := h.start(d.UUID)
	err := h.drv.ResumeDomain(h.ctx, d.UUID)
	h.wantKind("resume a running domain", err, virt.ErrFailedPrecondition)
	if err := h.drv.SuspendDomain(h.ctx, d.UUID); err != nil {
		t.Fatalf("SuspendDomain: %v", err)
	}
	h.wantState(d.UUID, virt.StatePaused, virt.PausedUser)
	if got := h.lookup(virt.ByUUID(d.UUID)); got.ID != s.ID {
		t.Errorf("a paused domain has ID %d, want %d", got.ID, s.ID)
	}
	if _, ok := h.list(virt.ListPaused)[d.UUID]; !ok {
		t.Error("a paused domain is not listed with ListPaused")
	}
	if _, ok := h.list(virt.ListActive)[d.UUID]; !ok {
		t.Error("a paused domain is not listed with ListActive")
	}
	if err := h.drv.ResumeDomain(h.ctx, d.UUID); err != nil {
		t.Fatalf("ResumeDomain: %v", err)
	}
	h.wantState(d.UUID, virt.StateRunning, virt.RunningUnpaused)
}

func testDestroy(t *testing.T, h *harness) {
	d := h.define("")
	err := h.drv.DestroyDomain(h.ctx, d.UUID)
	h.wantKind("destroy an inactive domain", err, virt.ErrFailedPrecondition)
	s := h.start(d.UUID)
	if err := h.drv.DestroyDomain(h.ctx, d.UUID); err != nil {
		t.Fatalf("DestroyDomain: %v", err)
	}
	h.wantState(d.UUID, virt.StateShutoff, virt.ShutoffDestroyed)
	if got := h.lookup(virt.ByUUID(d.UUID)); got.ID != -1 || !got.Persistent {
		t.Errorf("after destroy: %+v, want ID -1 and still persistent", got)
	}
	_, err = h.drv.LookupDomain(h.ctx, virt.ByID(s.ID))
	h.wantKind(fmt.Sprintf("lookup by ID %d after destroy", s.ID), err, virt.ErrNotFound)
	// It starts again.
	h.start(d.UUID)
}

func testShutdown(t *testing.T, h *harness) {
	d := h.define("")
	err := h.drv.ShutdownDomain(h.ctx, d.UUID)
	h.wantKind("shut down an inactive domain", err, virt.ErrFailedPrecondition)
	h.start(d.UUID)
	h.waitRunning(d.UUID)
	if err := h.drv.ShutdownDomain(h.ctx, d.UUID); err != nil {
		t.Fatalf("ShutdownDomain: %v", err)
	}
	if reason := h.waitState(d.UUID, virt.StateShutoff); reason != virt.ShutoffShutdown {
		t.Errorf("after shutdown: shut off (%s), want (%s)",
			virt.ReasonString(virt.StateShutoff, reason), virt.ReasonString(virt.StateShutoff, virt.ShutoffShutdown))
	}
	if got := h.lookup(virt.ByUUID(d.UUID)); got.ID != -1 {
		t.Errorf("after shutdown: ID %d, want -1", got.ID)
	}
}

func testReboot(t *testing.T, h *harness) {
	d := h.define("")
	err := h.drv.RebootDomain(h.ctx, d.UUID)
	h.wantKind("reboot an inactive domain", err, virt.ErrFailedPrecondition)
	s := h.start(d.UUID)
	h.waitRunning(d.UUID)
	if err := h.drv.RebootDomain(h.ctx, d.UUID); err != nil {
		t.Fatalf("RebootDomain: %v", err)
	}
	if h.cfg.RebootNewID {
		for deadline := time.Now().Add(h.cfg.settle()); ; time.Sleep(50 * time.Millisecond) {
			got := h.lookup(virt.ByUUID(d.UUID))
			if st, _, _ := h.drv.DomainState(h.ctx, d.UUID); st == virt.StateRunning && got.ID > 0 && got.ID != s.ID {
				return
			} else if time.Now().After(deadline) {
				t.Fatalf("after reboot: %s with ID %d after %v, want running with a new ID (was %d)", st, got.ID, h.cfg.settle(), s.ID)
			}
		}
	}
	h.waitRunning(d.UUID)
	if got := h.lookup(virt.ByUUID(d.UUID)); got.ID != s.ID {
		t.Errorf("after reboot: ID %d, want %d (a reboot keeps the ID)", got.ID, s.ID)
	}
}

// waitRunning waits until a started domain is running (a driver may pass
// through other states while it boots).
func (h *harness) waitRunning(uuid string) {
	h.t.Helper()
	h.waitState(uuid, virt.StateRunning)
}

func testDomainInfo(t *testing.T, h *harness) {
	d := h.define("")
	info, err := h.drv.DomainInfo(h.ctx, d.UUID)
	if err != nil {
		t.Fatalf("DomainInfo (inactive): %v", err)
	}
	if info.State != virt.StateShutoff || info.MaxMemoryKiB == 0 {
		t.Errorf("DomainInfo (inactive) = %+v, want shut off with a max memory", info)
	}
	h.start(d.UUID)
	info, err = h.drv.DomainInfo(h.ctx, d.UUID)
	if err != nil {
		t.Fatalf("DomainInfo: %v", err)
	}
	if !info.State.Active() {
		t.Errorf("DomainInfo: state %s, want an active state", info.State)
	}
	if info.VCPUs == 0 || info.MemoryKiB == 0 || info.MaxMemoryKiB < info.MemoryKiB {
		t.Errorf("DomainInfo = %+v, want vCPUs > 0 and 0 < memory <= max memory", info)
	}
	if info.CPUTime < 0 {
		t.Errorf("DomainInfo: negative CPU time %v", info.CPUTime)
	}
}

func testAutostart(t *testing.T, h *harness) {
	d := h.define("")
	if d.Autostart {
		t.Error("a new domain is marked autostart")
	}
	check := func(want bool) {
		t.Helper()
		got, err := h.drv.DomainAutostart(h.ctx, d.UUID)
		if err != nil || got != want {
			t.Fatalf("DomainAutostart = %v, %v; want %v", got, err, want)
		}
		if l := h.lookup(virt.ByUUID(d.UUID)); l.Autostart != want {
			t.Errorf("LookupDomain: Autostart %v, want %v", l.Autostart, want)
		}
		flag := virt.ListNoAutostart
		if want {
			flag = virt.ListAutostart
		}
		if _, ok := h.list(flag)[d.UUID]; !ok {
			t.Errorf("ListDomains(%#x) does not list the domain", uint32(flag))
		}
	}
	check(false)
	if err := h.drv.SetDomainAutostart(h.ctx, d.UUID, true); err != nil {
		t.Fatalf("SetDomainAutostart(true): %v", err)
	}
	check(true)
	if err := h.drv.SetDomainAutostart(h.ctx, d.UUID, false); err != nil {
		t.Fatalf("SetDomainAutostart(false): %v", err)
	}
	check(false)
}

func testXML(t *testing.T, h *harness) {
	d := h.define("")
	for _, inactive := range []bool{false, true} {
		doc, err := h.drv.DomainXML(h.ctx, d.UUID, inactive)
		if err != nil {
			t.Fatalf("DomainXML(inactive=%v): %v", inactive, err)
		}
		x := h.parseXML(fmt.Sprintf("DomainXML(inactive=%v)", inactive), doc)
		if x.Name != d.Name || x.UUID != d.UUID {
			t.Errorf("DomainXML(inactive=%v): name %q uuid %q, want %q %q", inactive, x.Name, x.UUID, d.Name, d.UUID)
		}
		if x.ID != nil && *x.ID != -1 {
			t.Errorf("DomainXML(inactive=%v) of an inactive domain has id='%d'", inactive, *x.ID)
		}
		// What the driver writes, it reads back as the same domain.
		again, err := h.drv.DefineDomain(h.ctx, doc)
		if err != nil {
			t.Fatalf("redefine from DomainXML(inactive=%v): %v\n%s", inactive, err, doc)
		}
		if again.UUID != d.UUID || again.Name != d.Name {
			t.Errorf("redefine from DomainXML: %+v, want %s (%s)", again, d.Name, d.UUID)
		}
	}
}

func testLiveXML(t *testing.T, h *harness) {
	d := h.define("")
	s := h.start(d.UUID)
	doc, err := h.drv.DomainXML(h.ctx, d.UUID, false)
	if err != nil {
		t.Fatalf("DomainXML (live): %v", err)
	}
	x := h.parseXML("live DomainXML", doc)
	if x.Name != d.Name || x.UUID != d.UUID {
		t.Errorf("live DomainXML: name %q uuid %q, want %q %q", x.Name, x.UUID, d.Name, d.UUID)
	}
	if x.ID == nil || *x.ID != int(s.ID) {
		t.Errorf("live DomainXML: id %v, want id='%d'\n%s", x.ID, s.ID, doc)
	}
	doc, err = h.drv.DomainXML(h.ctx, d.UUID, true)
	if err != nil {
		t.Fatalf("DomainXML (inactive, running domain): %v", err)
	}
	x = h.parseXML("inactive DomainXML", doc)
	if x.Name != d.Name || x.UUID != d.UUID {
		t.Errorf("inactive DomainXML: name %q uuid %q, want %q %q", x.Name, x.UUID, d.Name, d.UUID)
	}
}

func testUndefine(t *testing.T, h *harness) {
	d := h.define("")
	if err := h.drv.UndefineDomain(h.ctx, d.UUID); err != nil {
		t.Fatalf("UndefineDomain: %v", err)
	}
	_, err := h.drv.LookupDomain(h.ctx, virt.ByName(d.Name))
	h.wantKind("lookup by name after undefine", err, virt.ErrNotFound)
	_, err = h.drv.LookupDomain(h.ctx, virt.ByUUID(d.UUID))
	h.wantKind("lookup by UUID after undefine", err, virt.ErrNotFound)
	if _, ok := h.list(0)[d.UUID]; ok {
		t.Error("an undefined domain is still listed")
	}
	err = h.drv.UndefineDomain(h.ctx, d.UUID)
	h.wantKind("undefine twice", err, virt.ErrNotFound)
}

func testUndefineRunning(t *testing.T, h *harness) {
	d := h.define("")
	s := h.start(d.UUID)
	if err := h.drv.UndefineDomain(h.ctx, d.UUID); err != nil {
		t.Fatalf("UndefineDomain (running): %v", err)
	}
	got := h.lookup(virt.ByUUID(d.UUID))
	if got.Persistent || !got.State.Active() || got.ID != s.ID {
		t.Errorf("after undefining a running domain: %+v, want transient, active, ID %d", got, s.ID)
	}
	if _, ok := h.list(virt.ListTransient)[d.UUID]; !ok {
		t.Error("an undefined running domain is not listed with ListTransient")
	}
	if err := h.drv.DestroyDomain(h.ctx, d.UUID); err != nil {
		t.Fatalf("DestroyDomain (transient): %v", err)
	}
	_, err := h.drv.LookupDomain(h.ctx, virt.ByUUID(d.UUID))
	h.wantKind("lookup a transient domain after destroy", err, virt.ErrNotFound)
}

func testEvents(t *testing.T, h *harness) {
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	events, err := h.drv.WatchEvents(ctx)
	if err != nil {
		t.Fatalf("WatchEvents: %v", err)
	}
	d := h.define("")
	h.start(d.UUID)
	h.waitRunning(d.UUID)
	for _, step := range []struct {
		what string
		do   func(context.Context, string) error
	}{
		{"SuspendDomain", h.drv.SuspendDomain},
		{"ResumeDomain", h.drv.ResumeDomain},
		{"DestroyDomain", h.drv.DestroyDomain},
		{"UndefineDomain", h.drv.UndefineDomain},
	} {
		if err := step.do(h.ctx, d.UUID); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
	}
	want := []struct {
		typ    virt.EventType
		detail int32
	}{
		{virt.EventDefined, virt.DefinedAdded},
		{virt.EventStarted, virt.StartedBooted},
		{virt.EventSuspended, virt.SuspendedPaused},
		{virt.EventResumed, virt.ResumedUnpaused},
		{virt.EventStopped, virt.StoppedDestroyed},
		{virt.EventUndefined, virt.UndefinedRemoved},
	}
	// The expected events must come in this order; a driver may send
	// others in between (of other domains, or extra ones of its own).
	var lastSeq uint64
	var seen []string
	timeout := time.After(h.cfg.settle())
	for i := 0; i < len(want); {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("event channel closed after %v; still waiting for %s/%s",
					seen, want[i].typ, virt.EventDetailString(want[i].typ, want[i].detail))
			}
			if ev.Seq <= lastSeq {
				t.Fatalf("event Seq %d after %d: Seq must increase", ev.Seq, lastSeq)
			}
			lastSeq = ev.Seq
			if ev.Domain.UUID != d.UUID {
				continue
			}
			if ev.Domain.Name != d.Name {
				t.Errorf("event %s for %s carries name %q, want %q", ev.Type, d.UUID, ev.Domain.Name, d.Name)
			}
			seen = append(seen, fmt.Sprintf("%s/%s(seq %d)", ev.Type, virt.EventDetailString(ev.Type, ev.Detail), ev.Seq))
			if ev.Type == want[i].typ && ev.Detail == want[i].detail {
				i++
			}
		case <-timeout:
			t.Fatalf("after %v got events %v; still waiting for %s/%s", h.cfg.settle(), seen,
				want[i].typ, virt.EventDetailString(want[i].typ, want[i].detail))
		}
	}
	// Ending the context ends the stream.
	cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("event channel still open 10s after its context ended")
		}
	}
}

func testCancelledContext(t *testing.T, h *harness) {
	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	calls := map[string]func() error{
		"Info": func() error { _, err := h.drv.Info(ctx); return err },
		"ListDomains": func() error {
			_, err := h.drv.ListDomains(ctx, 0)
			return err
		},
		"LookupDomain": func() error {
			_, err := h.drv.LookupDomain(ctx, virt.ByName("drivertest-cancelled"))
			return err
		},
		"DefineDomain": func() error {
			_, err := h.drv.DefineDomain(ctx, h.xml(h.name(""), ""))
			return err
		},
	}
	for name, call := range calls {
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%s with a cancelled context succeeded, want an error", name)
			} else if !errors.Is(err, context.Canceled) {
				t.Logf("%s with a cancelled context: %v (not context.Canceled)", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s with a cancelled context did not return within 10s", name)
		}
	}
	// Nothing was defined behind the caller's back.
	if _, err := h.drv.LookupDomain(h.ctx, virt.ByName(h.name(""))); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("DefineDomain with a cancelled context: lookup afterwards gives %v, want not found", err)
	}
}

func testConcurrent(t *testing.T, h *harness) {
	const workers = 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- h.concurrentWorker(i)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	all := h.list(0)
	for i := range workers {
		name := h.name(fmt.Sprint(i))
		found := false
		for _, d := range all {
			found = found || d.Name == name
		}
		if !found {
			t.Errorf("domain %s defined concurrently is not listed", name)
		}
	}
}

// concurrentWorker defines one domain and reads it back; it must not call
// t.Fatal (it runs in its own goroutine).
func (h *harness) concurrentWorker(i int) error {
	name := h.name(fmt.Sprint(i))
	d, err := h.drv.DefineDomain(h.ctx, h.xml(name, ""))
	if err != nil {
		return fmt.Errorf("worker %d: DefineDomain: %w", i, err)
	}
	uuid := d.UUID
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		_ = h.drv.UndefineDomain(ctx, uuid)
	})
	for range 5 {
		byName, err := h.drv.LookupDomain(h.ctx, virt.ByName(name))
		if err != nil {
			return fmt.Errorf("worker %d: LookupDomain by name: %w", i, err)
		}
		byUUID, err := h.drv.LookupDomain(h.ctx, virt.ByUUID(uuid))
		if err != nil {
			return fmt.Errorf("worker %d: LookupDomain by UUID: %w", i, err)
		}
		if byName.UUID != uuid || byUUID.Name != name {
			return fmt.Errorf("worker %d: lookups disagree: %+v / %+v", i, byName, byUUID)
		}
		if _, err := h.drv.ListDomains(h.ctx, virt.ListInactive); err != nil {
			return fmt.Errorf("worker %d: ListDomains: %w", i, err)
		}
		if _, err := h.drv.DomainXML(h.ctx, uuid, true); err != nil {
			return fmt.Errorf("worker %d: DomainXML: %w", i, err)
		}
	}
	return nil
}

// checkUnsupported checks that an operation the driver declares unsupported
// is refused with virt.ErrNotSupported.
func checkUnsupported(t *testing.T, h *harness, op Op) {
	d := h.define("")
	var err error
	switch op {
	case OpStart:
		_, err = h.drv.StartDomain(h.ctx, d.UUID)
	case OpCreate:
		_, err = h.drv.CreateDomain(h.ctx, h.xml(h.name("created"), ""))
	case OpShutdown, OpReboot, OpDestroy, OpSuspend, OpResume:
		if h.cfg.supports(OpStart) {
			h.start(d.UUID)
		}
		call := map[Op]func(context.Context, string) error{
			OpShutdown: h.drv.ShutdownDomain,
			OpReboot:   h.drv.RebootDomain,
			OpDestroy:  h.drv.DestroyDomain,
			OpSuspend:  h.drv.SuspendDomain,
			OpResume:   h.drv.ResumeDomain,
		}[op]
		if op == OpResume && h.cfg.supports(OpStart) && h.cfg.supports(OpSuspend) {
			if err := h.drv.SuspendDomain(h.ctx, d.UUID); err != nil {
				t.Fatalf("SuspendDomain: %v", err)
			}
		}
		err = call(h.ctx, d.UUID)
	case OpUndefine:
		err = h.drv.UndefineDomain(h.ctx, d.UUID)
	case OpAutostart:
		err = h.drv.SetDomainAutostart(h.ctx, d.UUID, true)
		h.wantKind("SetDomainAutostart", err, virt.ErrNotSupported)
		_, err = h.drv.DomainAutostart(h.ctx, d.UUID)
	case OpNodeInfo:
		_, err = h.drv.NodeInfo(h.ctx)
	case OpCapabilities:
		_, err = h.drv.Capabilities(h.ctx)
	case OpEvents:
		checkEventsUnsupported(t, h)
		return
	case OpDomainStats, OpBlockStats, OpInterfaceStats, OpMemoryStats, OpNodeStats, OpDomainCapabilities:
		checkStatsUnsupported(t, h, d.UUID, op)
		return
	default:
		t.Fatalf("unknown Op %q", op)
	}
	h.wantKind(string(op), err, virt.ErrNotSupported)
}

// checkEventsUnsupported accepts either a WatchEvents error of kind
// ErrNotSupported or, since a stream's refusal may only show once it is
// read, a channel that closes without an event.
func checkEventsUnsupported(t *testing.T, h *harness) {
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	events, err := h.drv.WatchEvents(ctx)
	if err != nil {
		h.wantKind("WatchEvents", err, virt.ErrNotSupported)
		return
	}
	select {
	case ev, ok := <-events:
		if ok {
			t.Fatalf("WatchEvents is declared unsupported but sent %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchEvents is declared unsupported but its channel stayed open without error")
	}
}
