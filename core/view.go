package core

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/virt"
)

// Views are the core's views of its drivers, one per driver name: what
// the core keeps of each driver's domains and host facts so that plain
// reads (list, lookup, state, XML, the facts) are answered without a call
// to the driver. The driver stays the authority; a view is a copy with a
// contract:
//
//   - It is filled from the driver process when the process starts or is
//     adopted (the snapshot that opens its record stream), and kept
//     current by what the driver tells: every reply to a call that changed
//     a domain carries the domain's record, and every change the driver
//     makes on its own arrives as an event with the record after it, in
//     order. Records carry a generation: an older record never replaces a
//     newer one, whatever order they arrive in.
//   - Read your own writes: a reply's record is applied before the call
//     returns, so every later read, by any client, sees the change.
//   - An event is published after its record is applied: whoever got the
//     event reads nothing older.
//   - While the driver process is gone (crashed, killed as hung, being
//     replaced) the view answers with its last known state; guests run
//     on without their driver. Once a new process runs, reads go to the
//     driver until the view has that process's snapshot.
//   - What moves by itself (a running domain's CPU time and memory) is
//     not kept: DomainInfo of a running domain asks the driver, which
//     holds the process (see driver.Record).
type Views struct {
	mu sync.Mutex
	m  map[string]*view
}

// NewViews returns an empty set of views.
func NewViews() *Views { return &Views{m: map[string]*view{}} }

// Sink returns the sink of the named driver's view, making it if needed:
// what its processes tell goes there (host.Config.Sinks).
func (vs *Views) Sink(name string) driver.RecordSink { return vs.get(name) }

func (vs *Views) get(name string) *view {
	vs.mu.Lock()
	defer vs.mu.Unlock()
	v, ok := vs.m[name]
	if !ok {
		v = newView()
		vs.m[name] = v
	}
	return v
}

// tombTime is how long the view remembers a removed domain's generation,
// so that an older record of it, still on its way, does not bring it back.
// A record is older than its call's reply, which is applied before the
// call returns; 30 s is far beyond any such delay.
const tombTime = 30 * time.Second

// factsTime bounds how long host facts are kept: the hostname, and
// whatever a driver's stamps do not cover, show within it.
const factsTime = time.Second

// view is one driver's view. Its zero instance (0) means "no snapshot
// yet".
type view struct {
	mu sync.RWMutex
	// inst is the driver process the records are of.
	inst uint64
	// degraded: a record the driver could not make; reads go to the
	// driver until the next snapshot.
	degraded bool
	// floor: a record of a domain the view does not know, at or below
	// it, is older than what the view holds (the snapshot, or a pruned
	// tombstone).
	floor  uint64
	byUUID map[string]*driver.Record // tombstones (Removed) included
	byName map[string]*driver.Record
	byID   map[int32]*driver.Record
	tombs  []tomb
	// pending holds records of a newer process that came before its
	// snapshot (a reply to a call made meanwhile).
	pendingInst uint64
	pending     []driver.Record
	pendingLost bool // more than maxPending came: some were dropped

	facts atomic.Pointer[factsEntry]
	now   func() time.Time
}

type tomb struct {
	uuid string
	gen  uint64
	at   time.Time
}

type factsEntry struct {
	inst uint64
	at   time.Time
	f    *driver.Facts
}

func newView() *view {
	return &view{
		byUUID: map[string]*driver.Record{}, byName: map[string]*driver.Record{}, byID: map[int32]*driver.Record{},
		now: time.Now,
	}
}

// Reset replaces the view with the snapshot of process inst.
func (v *view) Reset(inst uint64, s driver.Snapshot) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if inst < v.inst {
		return
	}
	v.inst, v.degraded, v.floor, v.tombs = inst, false, s.Gen, nil
	clear(v.byUUID)
	clear(v.byName)
	clear(v.byID)
	for i := range s.Records {
		v.applyLocked(s.Records[i])
	}
	if v.pendingInst == inst {
		for _, r := range v.pending {
			v.applyLocked(r)
		}
		v.degraded = v.degraded || v.pendingLost
	}
	v.pending, v.pendingInst, v.pendingLost = nil, 0, false
}

// maxPending bounds the records kept for a process whose snapshot has not
// come: past it, the view gives up on that process (reads go to the
// driver) until the snapshot of a later one.
const maxPending = 4096

// Apply takes one record of process inst.
func (v *view) Apply(inst uint64, r driver.Record) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case inst == v.inst:
		v.applyLocked(r)
	case inst > v.inst:
		if v.pendingInst != inst {
			v.pending, v.pendingInst, v.pendingLost = v.pending[:0], inst, false
		}
		if len(v.pending) < maxPending {
			v.pending = append(v.pending, r)
		} else {
			v.pendingLost = true
		}
	}
}

func (v *view) applyLocked(r driver.Record) {
	if r.Unknown {
		v.degraded = true
		return
	}
	old := v.byUUID[r.UUID]
	base := v.floor
	if old != nil {
		base = old.Gen
	}
	if r.Gen <= base {
		return
	}
	if old != nil && !old.Removed {
		if v.byName[old.Domain.Name] == old {
			delete(v.byName, old.Domain.Name)
		}
		if v.byID[old.Domain.ID] == old {
			delete(v.byID, old.Domain.ID)
		}
	}
	rec := &r
	v.byUUID[r.UUID] = rec
	if r.Removed {
		v.bury(r.UUID, r.Gen)
		return
	}
	v.byName[r.Domain.Name] = rec
	if r.Domain.ID >= 0 {
		v.byID[r.Domain.ID] = rec
	}
}

// bury remembers a removal for tombTime, and forgets those older.
func (v *view) bury(uuid string, gen uint64) {
	now := v.now()
	n := 0
	for _, t := range v.tombs {
		if now.Sub(t.at) < tombTime {
			break
		}
		if r := v.byUUID[t.uuid]; r != nil && r.Removed && r.Gen == t.gen {
			delete(v.byUUID, t.uuid)
		}
		v.floor = max(v.floor, t.gen)
		n++
	}
	v.tombs = append(v.tombs[n:], tomb{uuid: uuid, gen: gen, at: now})
}

// usable reports whether the view may answer for the driver process
// (id, live) of Backend.Instance: it holds that process's snapshot, or no
// process runs and it holds the last one's.
func (v *view) usable(id uint64, live bool) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.inst != 0 && !v.degraded && (v.inst == id || !live)
}

// list returns the domains that match flags, sorted as drivers sort them.
func (v *view) list(flags virt.ListFlags) []virt.Domain {
	v.mu.RLock()
	out := make([]virt.Domain, 0, len(v.byName))
	for _, r := range v.byName {
		if flags.Match(&r.Domain) {
			out = append(out, r.Domain)
		}
	}
	v.mu.RUnlock()
	domutil.SortDomains(out)
	return out
}

// lookup finds a domain by key; nil if the view has none.
func (v *view) lookup(key virt.Lookup) *driver.Record {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var r *driver.Record
	switch {
	case key.Name != "":
		r = v.byName[key.Name]
	case key.UUID != "":
		if uuid, err := domutil.ParseUUID(key.UUID); err == nil {
			r = v.byUUID[uuid]
		}
	default:
		r = v.byID[key.ID]
	}
	if r == nil || r.Removed {
		return nil
	}
	return r
}

// cachedFacts returns the facts kept of process id, if they still hold.
func (v *view) cachedFacts(id uint64) *driver.Facts {
	e := v.facts.Load()
	if e == nil || e.inst != id || v.now().Sub(e.at) >= factsTime {
		return nil
	}
	for _, s := range e.f.Stamps {
		if !s.Current() {
			return nil
		}
	}
	return e.f
}

// keepFacts keeps f, read from process id at time at; facts that are not
// cacheable drop those kept.
func (v *view) keepFacts(id uint64, at time.Time, f *driver.Facts) {
	if !f.Cacheable {
		v.facts.Store(nil)
		return
	}
	v.facts.Store(&factsEntry{inst: id, at: at, f: f})
}
