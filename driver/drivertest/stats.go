package drivertest

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/virt"
)

// The cases of the optional calls of driver.Stats and
// driver.DomainCapabilities.

func (h *harness) stats() driver.Stats {
	h.t.Helper()
	st, ok := h.drv.(driver.Stats)
	if !ok {
		h.t.Fatalf("%T does not implement driver.Stats", h.drv)
	}
	return st
}

// domainStats reads the records of uuids, which must succeed.
func (h *harness) domainStats(uuids []string, groups virt.StatsGroups, flags virt.StatsFlags) []virt.DomainStats {
	h.t.Helper()
	recs, err := h.stats().DomainStats(h.ctx, uuids, groups, flags)
	if err != nil {
		h.t.Fatalf("DomainStats(%v, %#x, %#x): %v", uuids, uint32(groups), uint32(flags), err)
	}
	for _, r := range recs {
		checkParams(h.t, r)
	}
	return recs
}

// paramKinds are the kinds of libvirt's parameters, by name pattern.
var paramKinds = []struct {
	re   *regexp.Regexp
	kind virt.TypedParamType
}{
	{regexp.MustCompile(`^state\.(state|reason)$`), virt.TypedParamInt},
	{regexp.MustCompile(`^cpu\.(time|user|system)$`), virt.TypedParamULLong},
	{regexp.MustCompile(`^balloon\.`), virt.TypedParamULLong},
	{regexp.MustCompile(`^vcpu\.(current|maximum)$`), virt.TypedParamUInt},
	{regexp.MustCompile(`^vcpu\.[0-9]+\.state$`), virt.TypedParamInt},
	{regexp.MustCompile(`^vcpu\.[0-9]+\.(time|wait|delay)$`), virt.TypedParamULLong},
	{regexp.MustCompile(`^(net|block)\.count$`), virt.TypedParamUInt},
	{regexp.MustCompile(`^net\.[0-9]+\.name$`), virt.TypedParamString},
	{regexp.MustCompile(`^net\.[0-9]+\.(rx|tx)\.(bytes|pkts|errs|drop)$`), virt.TypedParamULLong},
	{regexp.MustCompile(`^block\.[0-9]+\.(name|path)$`), virt.TypedParamString},
	{regexp.MustCompile(`^block\.[0-9]+\.((rd|wr)\.(reqs|bytes|times)|fl\.(reqs|times)|allocation|capacity|physical)$`), virt.TypedParamULLong},
}

// checkParams checks that a record's parameters are named once each, with
// a value of a typed parameter kind, libvirt's kind for the names libvirt
// has.
func checkParams(t *testing.T, r virt.DomainStats) {
	t.Helper()
	seen := map[string]bool{}
	for _, p := range r.Params {
		if seen[p.Name] {
			t.Errorf("domain %s: parameter %q appears twice", r.Domain.Name, p.Name)
		}
		seen[p.Name] = true
		if p.Type() == 0 {
			t.Errorf("domain %s: parameter %q has a value of type %T", r.Domain.Name, p.Name, p.Value)
		}
		for _, k := range paramKinds {
			if k.re.MatchString(p.Name) && p.Type() != k.kind {
				t.Errorf("domain %s: parameter %q has kind %d, want libvirt's %d", r.Domain.Name, p.Name, p.Type(), k.kind)
			}
		}
	}
}

func param[T any](t *testing.T, r virt.DomainStats, name string) (T, bool) {
	t.Helper()
	var zero T
	v, ok := r.Params.Get(name)
	if !ok {
		return zero, false
	}
	x, ok := v.(T)
	if !ok {
		t.Fatalf("domain %s: %s is a %T, want a %T", r.Domain.Name, name, v, zero)
	}
	return x, true
}

func testDomainStats(t *testing.T, h *harness) {
	on, off := h.define("on"), h.define("off")
	h.start(on.UUID)
	h.waitRunning(on.UUID)

	// Every driver with DomainStats has the state and CPU groups.
	recs := h.domainStats([]string{on.UUID, off.UUID}, virt.StatsState|virt.StatsCPUTotal, virt.StatsEnforce)
	if len(recs) != 2 || recs[0].Domain.UUID != on.UUID || recs[1].Domain.UUID != off.UUID {
		t.Fatalf("DomainStats of %s and %s returned %d records: %+v", on.Name, off.Name, len(recs), recs)
	}
	if recs[0].Domain.Name != on.Name || !recs[0].Domain.State.Active() || recs[1].Domain.State != virt.StateShutoff {
		t.Errorf("records name %+v and %+v", recs[0].Domain, recs[1].Domain)
	}
	if st, _ := param[int32](t, recs[0], "state.state"); st != int32(virt.StateRunning) {
		t.Errorf("running domain: state.state = %d, want %d", st, virt.StateRunning)
	}
	if _, ok := param[int32](t, recs[0], "state.reason"); !ok {
		t.Error("running domain: no state.reason")
	}
	if st, _ := param[int32](t, recs[1], "state.state"); st != int32(virt.StateShutoff) {
		t.Errorf("stopped domain: state.state = %d, want %d", st, virt.StateShutoff)
	}
	if v, ok := recs[1].Params.Get("cpu.time"); ok {
		t.Errorf("stopped domain: cpu.time = %v, want none", v)
	}
	first, ok := param[uint64](t, recs[0], "cpu.time")
	if !ok {
		t.Fatalf("running domain: no cpu.time in %v", recs[0].Params)
	}

	// A running domain's CPU time moves on, never back.
	deadline := time.Now().Add(h.cfg.settle())
	for last := first; ; {
		time.Sleep(100 * time.Millisecond)
		r := h.domainStats([]string{on.UUID}, virt.StatsCPUTotal, 0)
		if len(r) != 1 {
			t.Fatalf("DomainStats of %s: %d records", on.Name, len(r))
		}
		now, ok := param[uint64](t, r[0], "cpu.time")
		if !ok {
			t.Fatalf("running domain: cpu.time is gone: %v", r[0].Params)
		}
		if now < last {
			t.Fatalf("cpu.time went back from %d to %d", last, now)
		}
		if now > first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cpu.time stayed %d for %v", first, h.cfg.settle())
		}
		last = now
	}

	// Every group the driver has: the figures of a stopped domain that
	// need it running are left out.
	for _, r := range h.domainStats([]string{on.UUID, off.UUID}, 0, 0) {
		if _, ok := r.Params.Get("state.state"); !ok {
			t.Errorf("domain %s: all groups, but no state.state", r.Domain.Name)
		}
		if r.Domain.UUID != off.UUID {
			continue
		}
		for _, p := range r.Params {
			if strings.HasPrefix(p.Name, "cpu.") || strings.HasPrefix(p.Name, "net.") {
				t.Errorf("stopped domain has %s = %v", p.Name, p.Value)
			}
		}
	}
}

func testDomainStatsFilter(t *testing.T, h *harness) {
	on, off := h.define("on"), h.define("off")
	h.start(on.UUID)
	h.waitRunning(on.UUID)
	uuids := func(recs []virt.DomainStats) map[string]bool {
		m := map[string]bool{}
		for _, r := range recs {
			if m[r.Domain.UUID] {
				t.Errorf("domain %s has two records", r.Domain.Name)
			}
			m[r.Domain.UUID] = true
		}
		return m
	}
	for _, tc := range []struct {
		flags   virt.StatsFlags
		on, off bool
	}{
		{0, true, true},
		{virt.StatsActive, true, false},
		{virt.StatsInactive, false, true},
		{virt.StatsRunning, true, false},
		{virt.StatsShutoff, false, true},
		{virt.StatsPersistent, true, true},
		{virt.StatsTransient, false, false},
		{virt.StatsActive | virt.StatsInactive, true, true},
	} {
		got := uuids(h.domainStats(nil, virt.StatsState, tc.flags))
		if got[on.UUID] != tc.on || got[off.UUID] != tc.off {
			t.Errorf("DomainStats of all, flags %#x: running domain listed %v, stopped one %v; want %v, %v",
				uint32(tc.flags), got[on.UUID], got[off.UUID], tc.on, tc.off)
		}
	}
	if recs := h.domainStats([]string{off.UUID}, virt.StatsState, virt.StatsActive); len(recs) != 0 {
		t.Errorf("the stopped domain, with the active filter: %d records, want none", len(recs))
	}
	if recs := h.domainStats([]string{randomUUID(), on.UUID}, virt.StatsState, 0); len(recs) != 1 || recs[0].Domain.UUID != on.UUID {
		t.Errorf("a UUID that names no domain is skipped: got %+v", recs)
	}
	for _, r := range h.domainStats([]string{on.UUID}, virt.StatsState, 0) {
		for _, p := range r.Params {
			if !strings.HasPrefix(p.Name, "state.") {
				t.Errorf("the state group only, but got %s", p.Name)
			}
		}
	}

	st := h.stats()
	_, err := st.DomainStats(h.ctx, []string{"not-a-uuid"}, 0, 0)
	h.wantKind("DomainStats of a malformed UUID", err, virt.ErrInvalidArgument)
	_, err = st.DomainStats(h.ctx, nil, 0, 1<<20)
	h.wantKind("DomainStats with an unknown flag", err, virt.ErrInvalidArgument)
	const noSuchGroup = virt.StatsGroups(1 << 30)
	_, err = st.DomainStats(h.ctx, nil, virt.StatsState|noSuchGroup, virt.StatsEnforce)
	h.wantKind("DomainStats enforcing a group no driver has", err, virt.ErrNotSupported)
	for _, r := range h.domainStats([]string{on.UUID}, virt.StatsState|noSuchGroup, 0) {
		if _, ok := r.Params.Get("state.state"); !ok || len(r.Params) != 2 {
			t.Errorf("a group the driver lacks, not enforced, is left out: got %v", r.Params)
		}
	}
}

func testDeviceStats(t *testing.T, h *harness) {
	st := h.stats()
	on, off := h.define("on"), h.define("off")
	h.start(on.UUID)
	h.waitRunning(on.UUID)
	_, err := st.BlockStats(h.ctx, on.UUID, "virtd-no-such-disk")
	h.wantKind("BlockStats of a disk the domain lacks", err, virt.ErrInvalidArgument)
	_, err = st.InterfaceStats(h.ctx, on.UUID, "virtd-nosuch")
	h.wantKind("InterfaceStats of an interface the domain lacks", err, virt.ErrInvalidArgument)
	_, err = st.InterfaceStats(h.ctx, on.UUID, "52:54:00:fe:fe:fe")
	h.wantKind("InterfaceStats of a MAC address the domain lacks", err, virt.ErrInvalidArgument)
	_, err = st.BlockStats(h.ctx, off.UUID, "vda")
	h.wantKind("BlockStats of a stopped domain", err, virt.ErrFailedPrecondition)
	_, err = st.InterfaceStats(h.ctx, off.UUID, "vnet0")
	h.wantKind("InterfaceStats of a stopped domain", err, virt.ErrFailedPrecondition)
	_, err = st.BlockStats(h.ctx, randomUUID(), "vda")
	h.wantKind("BlockStats of a domain that does not exist", err, virt.ErrNotFound)
}

func testMemoryStats(t *testing.T, h *harness) {
	st := h.stats()
	on, off := h.define("on"), h.define("off")
	_, err := st.MemoryStats(h.ctx, off.UUID)
	h.wantKind("MemoryStats of a stopped domain", err, virt.ErrFailedPrecondition)
	_, err = st.MemoryStats(h.ctx, randomUUID())
	h.wantKind("MemoryStats of a domain that does not exist", err, virt.ErrNotFound)
	h.start(on.UUID)
	h.waitRunning(on.UUID)
	ms, err := st.MemoryStats(h.ctx, on.UUID)
	if err != nil {
		t.Fatalf("MemoryStats: %v", err)
	}
	seen := map[virt.MemoryStatTag]bool{}
	for _, m := range ms {
		if m.Tag < virt.MemorySwapIn || m.Tag > virt.MemoryHugetlbPgfail || seen[m.Tag] {
			t.Errorf("MemoryStats: tag %d is unknown or twice in %v", m.Tag, ms)
		}
		seen[m.Tag] = true
		if m.Tag == virt.MemoryActualBalloon && m.Value == 0 {
			t.Errorf("MemoryStats: the balloon is at 0 KiB in a running domain")
		}
	}
}

func testNodeStats(t *testing.T, h *harness) {
	st := h.stats()
	all, err := st.NodeCPUStats(h.ctx, virt.NodeCPUStatsAll)
	if err != nil {
		t.Fatalf("NodeCPUStats(all): %v", err)
	}
	if all.User < 0 || all.Kernel < 0 || all.Idle < 0 || all.IOWait < 0 || all.User+all.Kernel+all.Idle == 0 {
		t.Errorf("NodeCPUStats(all) = %+v, want times, not all zero", all)
	}
	cpu0, err := st.NodeCPUStats(h.ctx, 0)
	if err != nil {
		t.Fatalf("NodeCPUStats(0): %v", err)
	}
	later, err := st.NodeCPUStats(h.ctx, virt.NodeCPUStatsAll)
	if err != nil {
		t.Fatalf("NodeCPUStats(all): %v", err)
	}
	if cpu0.User > later.User || cpu0.Kernel > later.Kernel || cpu0.Idle > later.Idle || cpu0.IOWait > later.IOWait {
		t.Errorf("CPU 0 has spent more than all CPUs: %+v against %+v", cpu0, later)
	}
	if later.User < all.User || later.Idle < all.Idle {
		t.Errorf("the node's CPU times went back: %+v, then %+v", all, later)
	}
	for _, cpu := range []int{-2, 1 << 20} {
		_, err := st.NodeCPUStats(h.ctx, cpu)
		h.wantKind("NodeCPUStats of a CPU the host lacks", err, virt.ErrInvalidArgument)
	}

	mem, err := st.NodeMemoryStats(h.ctx, virt.NodeMemoryStatsAll)
	if err != nil {
		t.Fatalf("NodeMemoryStats(all): %v", err)
	}
	if mem.TotalKiB == 0 || mem.FreeKiB > mem.TotalKiB || mem.BuffersKiB > mem.TotalKiB || mem.CachedKiB > mem.TotalKiB {
		t.Errorf("NodeMemoryStats(all) = %+v", mem)
	}
	cell0, err := st.NodeMemoryStats(h.ctx, 0)
	if err != nil {
		t.Fatalf("NodeMemoryStats(0): %v", err)
	}
	if cell0.TotalKiB == 0 || cell0.TotalKiB > mem.TotalKiB || cell0.FreeKiB > cell0.TotalKiB {
		t.Errorf("NodeMemoryStats(0) = %+v, with the node's %+v", cell0, mem)
	}
	for _, cell := range []int{-2, 1 << 20} {
		_, err := st.NodeMemoryStats(h.ctx, cell)
		h.wantKind("NodeMemoryStats of a cell the host lacks", err, virt.ErrInvalidArgument)
	}
}

func testDomainCapabilities(t *testing.T, h *harness) {
	dc, ok := h.drv.(driver.DomainCapabilities)
	if !ok {
		t.Fatalf("%T does not implement driver.DomainCapabilities", h.drv)
	}
	typ := h.parseXML("Config.DomainXML", h.cfg.DomainXML(h.name(""))).Type
	doc, err := dc.DomainCapabilities(h.ctx, "", "", "", typ)
	if err != nil {
		t.Fatalf("DomainCapabilities(virtType %q): %v", typ, err)
	}
	var caps libvirtxml.DomainCaps
	if err := caps.Unmarshal(doc); err != nil {
		t.Fatalf("DomainCapabilities is not domainCapabilities XML: %v\n%s", err, doc)
	}
	if caps.Domain != typ || caps.Path == "" || caps.Arch == "" || caps.VCPU == nil || caps.VCPU.Max == 0 || caps.OS == nil {
		t.Errorf("DomainCapabilities: want <domain>%s</domain>, a path, an arch, a vcpu max and os:\n%s", typ, doc)
	}
	if d := caps.Devices; d == nil || d.Disk == nil || d.Graphics == nil || d.Video == nil || d.HostDev == nil {
		t.Errorf("DomainCapabilities: want disk, graphics, video and hostdev under devices:\n%s", doc)
	}
	again, err := dc.DomainCapabilities(h.ctx, caps.Path, caps.Arch, caps.Machine, caps.Domain)
	if err != nil || again != doc {
		t.Errorf("DomainCapabilities of what the default named: %v\n%s\nwant\n%s", err, again, doc)
	}
	_, err = dc.DomainCapabilities(h.ctx, "", "", "", "virtd-no-such-type")
	h.wantKind("DomainCapabilities of an unknown domain type", err, virt.ErrInvalidArgument)
	_, err = dc.DomainCapabilities(h.ctx, "", "virtd_no_such_arch", "", typ)
	h.wantKind("DomainCapabilities of an unknown architecture", err, virt.ErrInvalidArgument)
}

// checkStatsUnsupported checks that an optional call the driver declares
// unsupported is refused with virt.ErrNotSupported.
func checkStatsUnsupported(t *testing.T, h *harness, uuid string, op Op) {
	var err error
	st, _ := h.drv.(driver.Stats)
	switch op {
	case OpDomainStats:
		_, err = st.DomainStats(h.ctx, nil, 0, 0)
	case OpBlockStats:
		_, err = st.BlockStats(h.ctx, uuid, "vda")
	case OpInterfaceStats:
		_, err = st.InterfaceStats(h.ctx, uuid, "vnet0")
	case OpMemoryStats:
		_, err = st.MemoryStats(h.ctx, uuid)
	case OpNodeStats:
		_, err = st.NodeCPUStats(h.ctx, virt.NodeCPUStatsAll)
		h.wantKind("NodeCPUStats", err, virt.ErrNotSupported)
		_, err = st.NodeMemoryStats(h.ctx, virt.NodeMemoryStatsAll)
	case OpDomainCapabilities:
		dc, _ := h.drv.(driver.DomainCapabilities)
		_, err = dc.DomainCapabilities(h.ctx, "", "", "", "")
	}
	h.wantKind(string(op), err, virt.ErrNotSupported)
}
