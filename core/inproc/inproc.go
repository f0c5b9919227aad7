// Package inproc serves drivers inside the calling process, as the core's
// Drivers: the core's and its front ends' tests use it with the real test
// driver, and a program may embed virtd's core this way. There is no
// process and no supervision: calls go straight to the driver.
package inproc

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/host"
	"github.com/virtd/virtd/virt"
)

// Drivers is a set of in-process drivers.
type Drivers struct {
	byScheme map[string]*backend
	all      []*backend
	stop     context.CancelFunc
}

var _ core.Drivers = (*Drivers)(nil)

// New serves impls, each under the name and URI schemes its Info gives.
// With views set, each driver's records go to its view there, as a
// driver process's do (core.Views), until Close.
func New(ctx context.Context, views *core.Views, impls ...driver.Driver) (*Drivers, error) {
	ds := &Drivers{byScheme: map[string]*backend{}}
	var pumpCtx context.Context
	pumpCtx, ds.stop = context.WithCancel(context.WithoutCancel(ctx))
	for _, impl := range impls {
		info, err := impl.Info(ctx)
		if err != nil {
			ds.Close()
			return nil, err
		}
		b := &backend{info: info, impl: impl, rec: driver.NewRecorder(impl)}
		for _, s := range append([]string{info.Name}, info.Schemes...) {
			if other, ok := ds.byScheme[s]; ok && other != b {
				ds.Close()
				return nil, fmt.Errorf("drivers %q and %q both serve URI scheme %q: %w", other.info.Name, info.Name, s, virt.ErrAlreadyExists)
			}
			ds.byScheme[s] = b
		}
		if views != nil {
			b.sink = views.Sink(info.Name)
		}
		if err := b.watch(pumpCtx); err != nil {
			ds.Close()
			return nil, err
		}
		ds.all = append(ds.all, b)
	}
	return ds, nil
}

// Close stops keeping the views.
func (ds *Drivers) Close() { ds.stop() }

// Lookup returns the driver that serves scheme.
func (ds *Drivers) Lookup(scheme string) (core.Backend, error) {
	b, ok := ds.byScheme[scheme]
	if !ok {
		return nil, fmt.Errorf("no driver in this process serves URI scheme %q: %w", scheme, virt.ErrNotFound)
	}
	return b, nil
}

// Status describes each driver as running in this process.
func (ds *Drivers) Status() []host.Status {
	out := make([]host.Status, 0, len(ds.all))
	for _, b := range ds.all {
		out = append(out, host.Status{
			Name: b.info.Name, Version: b.info.Version, APIVersion: driver.APIVersion,
			Schemes: b.info.Schemes, State: host.StateRunning, Health: b.info.Health.String(),
			HealthReason: b.info.HealthReason, PID: os.Getpid(), Connections: int(b.conns.Load()),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Rejected returns nothing: no file is scanned.
func (ds *Drivers) Rejected() []host.Rejected { return nil }

// Dirs returns nothing: no directory is searched.
func (ds *Drivers) Dirs() []string { return nil }

// Rescan finds nothing new: the set is fixed.
func (ds *Drivers) Rescan() (added, removed []string, rejected []host.Rejected) {
	return nil, nil, nil
}

// Busy reports whether a driver has a connection.
func (ds *Drivers) Busy() bool {
	for _, b := range ds.all {
		if b.conns.Load() > 0 {
			return true
		}
	}
	return false
}

// backend is one in-process driver.
type backend struct {
	info  *driver.Info
	impl  driver.Driver
	rec   *driver.Recorder
	sink  driver.RecordSink // nil: no view
	conns atomic.Int64
}

// inst is the one "process" an in-process driver has.
const inst = 1

func (b *backend) Name() string { return b.info.Name }

func (b *backend) Open(context.Context) error { b.conns.Add(1); return nil }

func (b *backend) Release() { b.conns.Add(-1) }

func (b *backend) Instance() (uint64, bool) { return inst, true }

func (b *backend) Do(_ context.Context, _ bool, fn func(driver.Driver) error) error {
	return fn(b.impl)
}

// watch keeps the view, if any, until ctx ends: the snapshot resets it,
// and the record of each event is applied.
func (b *backend) watch(ctx context.Context) error {
	if b.sink == nil {
		return nil
	}
	msgs, err := b.rec.Watch(ctx)
	if err != nil {
		return err
	}
	// The snapshot before New returns: in one process, the view answers
	// from the first call on.
	first, ok := <-msgs
	if !ok || first.Snapshot == nil {
		return fmt.Errorf("driver %q: no snapshot of its domains: %w", b.info.Name, virt.ErrInternal)
	}
	b.sink.Reset(inst, *first.Snapshot)
	go func() {
		for m := range msgs {
			b.sink.Apply(inst, m.Change.Record)
		}
	}()
	return nil
}

func (b *backend) Subscribe(ctx context.Context) (core.Events, error) {
	ch, err := b.impl.WatchEvents(ctx)
	if err != nil {
		return nil, err
	}
	s := &events{ready: make(chan struct{}, 1), done: make(chan struct{})}
	go s.pump(ctx, b, ch)
	return s, nil
}

// Changed hands the record of a domain a call may have changed to the
// view, before the call returns: what the gRPC shims do with their
// replies across processes (core.Recording).
func (b *backend) Changed(ctx context.Context, uuid string) {
	if b.sink != nil {
		b.sink.Apply(inst, b.rec.Record(ctx, uuid))
	}
}

// events queues the events of one subscription.
type events struct {
	mu    sync.Mutex
	queue []virt.Event
	ready chan struct{}
	done  chan struct{}
}

// pump queues what the driver's channel delivers. Each event's record
// reaches the view first: whoever got the event reads nothing older.
func (s *events) pump(ctx context.Context, b *backend, ch <-chan virt.Event) {
	for e := range ch {
		if b.sink != nil {
			b.sink.Apply(inst, b.rec.Record(ctx, e.Domain.UUID))
		}
		s.mu.Lock()
		s.queue = append(s.queue, e)
		s.mu.Unlock()
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
	close(s.done)
}

func (s *events) Next() (virt.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return virt.Event{}, false
	}
	e := s.queue[0]
	s.queue = s.queue[1:]
	return e, true
}

func (s *events) Ready() <-chan struct{} { return s.ready }
func (s *events) Done() <-chan struct{}  { return s.done }

// Err is nil: the driver's channel ends only with the subscription's
// context.
func (s *events) Err() error { return nil }
