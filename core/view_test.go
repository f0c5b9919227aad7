package core

import (
	"testing"
	"time"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/virt"
)

func rec(gen uint64, uuid, name string, st virt.State) driver.Record {
	id := int32(-1)
	if st.Active() {
		id = int32(gen)
	}
	return driver.Record{Gen: gen, UUID: uuid, Domain: virt.Domain{Name: name, UUID: uuid, ID: id, State: st, Persistent: true}}
}

func gone(gen uint64, uuid string) driver.Record {
	return driver.Record{Gen: gen, UUID: uuid, Removed: true}
}

const (
	u1 = "11111111-1111-1111-1111-111111111111"
	u2 = "22222222-2222-2222-2222-222222222222"
)

func names(v *view) string {
	s := ""
	for _, d := range v.list(0) {
		s += d.Name + "=" + d.State.String() + " "
	}
	return s
}

// TestViewOrder: of two records of a domain the newer wins, whatever order
// they come in; a removal is not undone by an older record; a record
// older than the snapshot of a domain the snapshot lacks is ignored.
func TestViewOrder(t *testing.T) {
	v := newView()
	v.Reset(1, driver.Snapshot{Gen: 10, Records: []driver.Record{rec(5, u1, "a", virt.StateShutoff)}})
	v.Apply(1, rec(12, u1, "a", virt.StateRunning))
	v.Apply(1, rec(11, u1, "a", virt.StatePaused)) // older, arrives later
	if got := names(v); got != "a=running " {
		t.Errorf("after an older record: %q", got)
	}
	if r := v.lookup(virt.ByID(12)); r == nil || r.Domain.Name != "a" {
		t.Errorf("by id: %+v", r)
	}
	v.Apply(1, gone(13, u1))
	v.Apply(1, rec(12, u1, "a", virt.StateRunning)) // the define's reply, late
	if got := names(v); got != "" {
		t.Errorf("a removed domain came back: %q", got)
	}
	if v.lookup(virt.ByName("a")) != nil || v.lookup(virt.ByID(12)) != nil {
		t.Error("a removed domain is still found")
	}
	v.Apply(1, rec(9, u2, "b", virt.StateShutoff)) // before the snapshot, which lacks it
	if got := names(v); got != "" {
		t.Errorf("a record older than the snapshot: %q", got)
	}
	v.Apply(1, rec(14, u2, "b", virt.StateShutoff))
	v.Apply(2, rec(1, u1, "x", virt.StateShutoff)) // a newer process, before its snapshot
	if got := names(v); got != "b=shut off " {
		t.Errorf("got %q", got)
	}
	// A name moves to another UUID (undefined, then defined anew): the
	// old domain's removal does not take the name from the new one.
	v.Apply(1, rec(15, u1, "b2", virt.StateShutoff))
	v.Apply(1, gone(16, u2))
	v.Apply(1, driver.Record{Gen: 17, UUID: u1, Domain: virt.Domain{Name: "b2", UUID: u1, ID: -1, State: virt.StateShutoff}})
	if r := v.lookup(virt.ByName("b2")); r == nil || r.UUID != u1 {
		t.Errorf("b2: %+v", r)
	}
}

// TestViewPendingBeforeSnapshot: a reply from a new process that comes
// before the process's snapshot is kept and applied over it when newer.
func TestViewPendingBeforeSnapshot(t *testing.T) {
	v := newView()
	v.Reset(1, driver.Snapshot{Gen: 1})
	v.Apply(2, rec(7, u1, "a", virt.StateShutoff)) // defined on process 2
	v.Apply(2, rec(3, u2, "old", virt.StateShutoff))
	if got := names(v); got != "" {
		t.Errorf("process 2's record shown before its snapshot: %q", got)
	}
	v.Reset(2, driver.Snapshot{Gen: 5}) // listed before the define finished
	if got := names(v); got != "a=shut off " {
		t.Errorf("after the snapshot: %q, want a (and not old, older than the snapshot)", got)
	}
	v.Apply(1, rec(100, u2, "stale", virt.StateRunning)) // from the dead process
	if got := names(v); got != "a=shut off " {
		t.Errorf("a record of the old process: %q", got)
	}
}

// TestViewPendingOverflow: a view that had to drop records of a process
// before its snapshot does not answer for that process.
func TestViewPendingOverflow(t *testing.T) {
	v := newView()
	v.Reset(1, driver.Snapshot{Gen: 1})
	for i := range maxPending + 1 {
		v.Apply(2, rec(uint64(10+i), u1, "a", virt.StateShutoff))
	}
	v.Reset(2, driver.Snapshot{Gen: 5})
	if v.usable(2, true) {
		t.Error("usable after dropping records")
	}
}

// TestViewUsable: the view answers for the process it has the snapshot
// of, or while none runs; not for a newer process, nor once degraded.
func TestViewUsable(t *testing.T) {
	v := newView()
	if v.usable(0, false) {
		t.Error("usable with no snapshot")
	}
	v.Reset(1, driver.Snapshot{Gen: 1})
	for _, tt := range []struct {
		id   uint64
		live bool
		want bool
	}{{1, true, true}, {1, false, true}, {2, false, true}, {2, true, false}} {
		if got := v.usable(tt.id, tt.live); got != tt.want {
			t.Errorf("usable(%d, %v) = %v", tt.id, tt.live, got)
		}
	}
	v.Apply(1, driver.Record{Gen: 2, UUID: u1, Unknown: true})
	if v.usable(1, true) {
		t.Error("usable with a record the driver could not make")
	}
	v.Reset(2, driver.Snapshot{Gen: 1})
	if !v.usable(2, true) {
		t.Error("not usable after a new snapshot")
	}
}

// TestViewForgetsOldTombs: removals are remembered for tombTime, then
// forgotten, the floor keeping older records out.
func TestViewForgetsOldTombs(t *testing.T) {
	v := newView()
	now := time.Unix(1000, 0)
	v.now = func() time.Time { return now }
	v.Reset(1, driver.Snapshot{Gen: 1})
	v.Apply(1, rec(2, u1, "a", virt.StateShutoff))
	v.Apply(1, gone(3, u1))
	now = now.Add(tombTime)
	v.Apply(1, rec(4, u2, "b", virt.StateShutoff))
	v.Apply(1, gone(5, u2))
	if _, ok := v.byUUID[u1]; ok || len(v.tombs) != 1 {
		t.Errorf("old tomb kept: %d tombs", len(v.tombs))
	}
	v.Apply(1, rec(2, u1, "a", virt.StateShutoff))
	if v.lookup(virt.ByUUID(u1)) != nil {
		t.Error("a record older than a forgotten removal came back")
	}
}

// TestFactsKept: facts hold for factsTime and while their stamps are
// current, for the process they came from.
func TestFactsKept(t *testing.T) {
	v := newView()
	now := time.Unix(1000, 0)
	v.now = func() time.Time { return now }
	dir := t.TempDir()
	f := &driver.Facts{Hostname: "h", Cacheable: true, Stamps: []driver.Stamp{driver.StampOf(dir)}}
	v.keepFacts(1, now, f)
	if v.cachedFacts(1) != f || v.cachedFacts(2) != nil {
		t.Error("facts of process 1")
	}
	now = now.Add(factsTime)
	if v.cachedFacts(1) != nil {
		t.Error("facts kept past factsTime")
	}
	v.keepFacts(1, now, f)
	f.Stamps[0].Ctime++
	if v.cachedFacts(1) != nil {
		t.Error("facts kept though a stamp changed")
	}
	v.keepFacts(1, now, &driver.Facts{Cacheable: true})
	v.keepFacts(1, now, &driver.Facts{})
	if v.cachedFacts(1) != nil {
		t.Error("facts kept though newer ones are not cacheable")
	}
}
