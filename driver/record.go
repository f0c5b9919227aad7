package driver

import (
	"context"
	"errors"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/virtd/virtd/virt"
)

// FeatureRecords names the record stream and the facts call (WatchRecords,
// GetFacts, records in the replies of calls that change a domain). Every
// driver built on Serve has it; the host keeps a view only of drivers that
// say so.
const FeatureRecords = "records"

// Record is one domain as its driver last saw it: what the host keeps to
// answer plain reads without a call to the driver (the host's view). The
// driver stays the authority; a record is a copy.
type Record struct {
	// Gen orders the records of one driver process: of two records of a
	// domain, the one with the higher Gen was read later.
	Gen  uint64
	UUID string
	// Removed: the domain no longer exists.
	Removed bool
	// Unknown: the driver could not read the domain; ask it.
	Unknown bool
	Domain  virt.Domain
	// Info is DomainInfo's answer, for an inactive domain only: a running
	// domain's CPU time and memory move by themselves, and are asked of the
	// driver.
	Info *virt.DomainInfo
	// XML is DomainXML's answer; InactiveXML the persistent definition of
	// an active domain that has one.
	XML, InactiveXML string
}

// Snapshot is every domain of a driver process, as the record stream
// begins with it. Gen was taken before the listing began: a record of a
// domain the snapshot does not hold, with a Gen at or below it, is older
// than the snapshot.
type Snapshot struct {
	Gen     uint64
	Records []Record
}

// Change is one message of the record stream after the snapshot: an event
// and the record of its domain after it.
type Change struct {
	Event  virt.Event
	Record Record
}

// RecordSink takes what a driver process tells of its domains, as the
// host's view does. inst names the driver process: records of an older
// process are stale once a newer one has reset the sink.
type RecordSink interface {
	// Reset replaces everything with a process's snapshot.
	Reset(inst uint64, s Snapshot)
	// Apply takes one record, from a reply or the stream.
	Apply(inst uint64, r Record)
}

// Recorder makes records of a Driver's domains, in the driver's process.
// Records of one domain are made one at a time, each with a Gen taken
// before reading the domain, so a higher Gen is a later reading.
type Recorder struct {
	d     Driver
	gen   atomic.Uint64
	seed  maphash.Seed
	locks [64]sync.Mutex
}

// NewRecorder returns a Recorder of d's domains.
func NewRecorder(d Driver) *Recorder { return &Recorder{d: d, seed: maphash.MakeSeed()} }

// Record reads the domain uuid as it is now. A domain that is gone gives a
// Removed record; one the driver fails to read an Unknown one. The caller's
// cancellation does not cut it short: the call whose reply carries it is
// done.
func (r *Recorder) Record(ctx context.Context, uuid string) Record {
	ctx = context.WithoutCancel(ctx)
	l := &r.locks[maphash.String(r.seed, uuid)%uint64(len(r.locks))]
	l.Lock()
	defer l.Unlock()
	rec := Record{Gen: r.gen.Add(1), UUID: uuid}
	err := r.read(ctx, &rec)
	switch {
	case errors.Is(err, virt.ErrNotFound):
		return Record{Gen: rec.Gen, UUID: uuid, Removed: true}
	case err != nil:
		return Record{Gen: rec.Gen, UUID: uuid, Unknown: true}
	}
	return rec
}

func (r *Recorder) read(ctx context.Context, rec *Record) error {
	d, err := r.d.LookupDomain(ctx, virt.ByUUID(rec.UUID))
	if err != nil {
		return err
	}
	rec.Domain = *d
	if rec.XML, err = r.d.DomainXML(ctx, rec.UUID, false); err != nil {
		return err
	}
	if !d.Active() {
		rec.Info, err = r.d.DomainInfo(ctx, rec.UUID)
		return err
	}
	if d.Persistent {
		rec.InactiveXML, err = r.d.DomainXML(ctx, rec.UUID, true)
	}
	return err
}

// Snapshot reads every domain.
func (r *Recorder) Snapshot(ctx context.Context) (Snapshot, error) {
	s := Snapshot{Gen: r.gen.Add(1)}
	doms, err := r.d.ListDomains(ctx, 0)
	if err != nil {
		return Snapshot{}, err
	}
	s.Records = make([]Record, 0, len(doms))
	for i := range doms {
		if rec := r.Record(ctx, doms[i].UUID); !rec.Removed {
			s.Records = append(s.Records, rec)
		}
	}
	return s, nil
}

// RecordMsg is one message of the record stream: the snapshot first, then
// changes.
type RecordMsg struct {
	Snapshot *Snapshot
	Change   Change
}

// Watch subscribes to the driver's events and returns the record stream:
// the snapshot, taken once the events were subscribed (so no change is
// missed between them), then each event with its domain's record made
// after it. It returns once subscribed; the snapshot is made meanwhile.
// A snapshot that fails ends the stream.
func (r *Recorder) Watch(ctx context.Context) (<-chan RecordMsg, error) {
	events, err := r.d.WatchEvents(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan RecordMsg, 16)
	go func() {
		defer close(out)
		snap, err := r.Snapshot(ctx)
		if err != nil {
			return
		}
		m := RecordMsg{Snapshot: &snap}
		for {
			select {
			case out <- m:
			case <-ctx.Done():
				return
			}
			e, ok := <-events
			if !ok {
				return
			}
			m = RecordMsg{Change: Change{Event: e, Record: r.Record(ctx, e.Domain.UUID)}}
		}
	}()
	return out, nil
}

// Facts are a driver's host facts, in one answer, and what they depend on.
type Facts struct {
	Info         Info
	Hostname     string
	Capabilities string
	NodeInfo     virt.NodeInfo
	// Stamps are the files the facts were read from: they hold while
	// every stamp is current.
	Stamps []Stamp
	// Cacheable is false when the driver cannot tell when its facts
	// change.
	Cacheable bool
	// Missing names the facts the driver failed to read (FactHostname,
	// ...): ask for each with its own call, to get the driver's error.
	Missing []string
}

// FactFiles is a driver whose host facts depend on files (QEMU's on the
// emulators found on the search path). FactStamps returns their stamps,
// taken before the facts are read, and false when a change may go
// unseen (a file changed too recently for its time to tell).
type FactFiles interface {
	FactStamps() (stamps []Stamp, cacheable bool)
}

// The facts a driver may fail to read, as Facts.Missing names them.
const (
	FactHostname     = "hostname"
	FactCapabilities = "capabilities"
	FactNodeInfo     = "node_info"
)

// ReadFacts reads d's host facts. Only a failure of Info fails it; the
// other facts that fail are named in Missing (a Xen driver on a host
// without Xen has no node info, but has a version).
func ReadFacts(ctx context.Context, d Driver) (*Facts, error) {
	f := &Facts{Cacheable: true}
	if ff, ok := d.(FactFiles); ok {
		f.Stamps, f.Cacheable = ff.FactStamps()
	}
	info, err := d.Info(ctx)
	if err != nil {
		return nil, err
	}
	f.Info = *info
	if h, err := d.Hostname(ctx); err == nil {
		f.Hostname = h
	} else {
		f.Missing = append(f.Missing, FactHostname)
	}
	if c, err := d.Capabilities(ctx); err == nil {
		f.Capabilities = c
	} else {
		f.Missing = append(f.Missing, FactCapabilities)
	}
	if n, err := d.NodeInfo(ctx); err == nil {
		f.NodeInfo = *n
	} else {
		f.Missing = append(f.Missing, FactNodeInfo)
	}
	return f, nil
}

// Has reports whether the fact name was read.
func (f *Facts) Has(name string) bool { return !slices.Contains(f.Missing, name) }

// Stamp is what stat says of a file or directory: whether it is there,
// which file it is and when it last changed (its ctime: a write, a rename
// into place, a chmod, an entry added to or removed from a directory;
// unlike the mtime, no one can set it back).
type Stamp struct {
	Path     string
	Exists   bool
	Dev, Ino uint64
	Ctime    int64 // ns since the epoch
}

// StampOf stamps path now.
func StampOf(path string) Stamp {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return Stamp{Path: path}
	}
	return Stamp{Path: path, Exists: true, Dev: st.Dev, Ino: st.Ino, Ctime: st.Ctim.Nano()}
}

// Current reports whether the file is still as stamped.
func (s Stamp) Current() bool { return StampOf(s.Path) == s }
