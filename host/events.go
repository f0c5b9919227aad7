package host

import (
	"context"
	"fmt"
	"sync"

	"github.com/virtd/virtd/virt"
)

// EventLimits bound the events queued for subscribers that have not taken
// them yet: a subscriber that falls behind by more than its share, or has
// the most unread when all of them together hold too much, is dropped
// (its stream ends with a resource-exhausted error); the others keep every
// event, in order.
type EventLimits struct {
	// Backlog and BacklogBytes: how far one subscriber may fall behind.
	Backlog      int
	BacklogBytes int
	// QueueBytes: what every subscriber's backlog may hold together.
	QueueBytes int
}

func (l *EventLimits) setDefaults() {
	if l.Backlog <= 0 {
		l.Backlog = 4096
	}
	if l.BacklogBytes <= 0 {
		l.BacklogBytes = 1 << 20
	}
	if l.QueueBytes <= 0 {
		l.QueueBytes = 32 << 20
	}
}

// eventSize is what an event costs in a queue, about.
func eventSize(e *virt.Event) int { return 96 + len(e.Domain.Name) + len(e.Domain.UUID) }

// Subscription is a stream of one driver's lifecycle events.
type Subscription struct {
	h     *Host
	proc  *Proc
	ready chan struct{} // has a token while the queue is not empty
	done  chan struct{} // closed when the subscription ends

	mu    sync.Mutex
	queue []virt.Event
	head  int // queue[head:] are pending
	bytes int
	ended bool
	err   error
}

// Ready has a value when an event may be waiting: call Next.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Done is closed when the subscription has ended; events queued before
// its end are still returned by Next, but for a subscriber dropped for
// falling behind.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Next returns the oldest event not yet taken, if any.
func (s *Subscription) Next() (virt.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.queue) {
		return virt.Event{}, false
	}
	e := s.queue[s.head]
	s.queue[s.head] = virt.Event{}
	s.head++
	n := eventSize(&e)
	s.bytes -= n
	s.h.queued.Add(int64(-n))
	if s.head == len(s.queue) {
		s.queue, s.head = s.queue[:0], 0
	} else {
		s.signal()
	}
	return e, true
}

// Err says why the subscription ended: nil when its context ended, an
// unavailable error when the driver went away, a resource-exhausted one
// when the subscriber fell too far behind. Read it after Done is closed.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *Subscription) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// push queues e and reports whether the subscriber is still within its
// share. s.mu is not held.
func (s *Subscription) push(e virt.Event, lim *EventLimits) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return true
	}
	n := eventSize(&e)
	s.queue = append(s.queue, e)
	s.bytes += n
	s.h.queued.Add(int64(n))
	s.signal()
	return len(s.queue)-s.head <= lim.Backlog && s.bytes <= lim.BacklogBytes
}

// end ends the subscription with err, if it has not ended yet; drop also
// discards its backlog (also of one that ended before).
func (s *Subscription) end(err error, drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if drop {
		s.h.queued.Add(int64(-s.bytes))
		s.queue, s.head, s.bytes = nil, 0, 0
	}
	if s.ended {
		return
	}
	s.ended, s.err = true, err
	close(s.done)
}

func (s *Subscription) backlog() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// pump copies the driver's event stream to the subscribers until ctx ends
// or the stream breaks. It returns once the stream is open, so no event of
// a call made afterwards is missed.
func (p *Proc) pump(in *instance) error {
	ctx := in.pumpCtx
	next, err := p.watch(in)
	if err != nil {
		return err
	}
	p.mu.Lock()
	in.pumping = true
	p.mu.Unlock()
	go func() {
		for e, ok := next(); ok; e, ok = next() {
			p.h.publish(p, e)
		}
		p.mu.Lock()
		in.pumping = false
		current := p.cur == in
		p.mu.Unlock()
		// Ended while the host still wanted it: the driver died, or
		// dropped this host as too slow. Subscribers must hear of it.
		if current && ctx.Err() == nil {
			p.endSubscriptions(fmt.Errorf("event stream of driver %q ended: %w", p.name, virt.ErrUnavailable))
		}
	}()
	return nil
}

// watch opens in's event stream and returns its reader, which waits for
// the next event and is false once the stream has ended. From a driver
// with records, it is the record stream: the snapshot resets the sink, and
// each event's record reaches the sink before the reader returns the
// event, so whoever got an event reads nothing older from the view. The
// reader runs on the pump's goroutine: an event is not handed from one
// goroutine to another on its way.
func (p *Proc) watch(in *instance) (func() (virt.Event, bool), error) {
	ctx := in.pumpCtx
	if !in.records {
		events, err := in.drv.WatchEvents(ctx)
		if err != nil {
			return nil, err
		}
		return func() (virt.Event, bool) { e, ok := <-events; return e, ok }, nil
	}
	msgs, err := in.drv.WatchRecords(ctx)
	if err != nil {
		return nil, err
	}
	return func() (virt.Event, bool) {
		for m := range msgs {
			if m.Snapshot != nil {
				p.sink.Reset(in.id, *m.Snapshot)
				continue
			}
			p.sink.Apply(in.id, m.Change.Record)
			return m.Change.Event, true
		}
		return virt.Event{}, false
	}, nil
}

// publish queues one of p's events for each of p's subscribers, dropping
// those that fall too far behind.
func (h *Host) publish(p *Proc, e virt.Event) {
	lim := &h.cfg.Events
	h.subMu.Lock()
	defer h.subMu.Unlock()
	for s := range h.subs[p] {
		if !s.push(e, lim) {
			p.log.Warn("event subscriber too slow; dropping it", "backlog", lim.Backlog, "backlog_bytes", lim.BacklogBytes)
			h.dropLocked(s, fmt.Errorf("event stream of driver %q dropped: the client fell more than %d events or %d bytes behind (max_event_backlog, max_event_backlog_bytes): %w",
				p.name, lim.Backlog, lim.BacklogBytes, virt.ErrResourceExhausted))
		}
	}
	// Over the total: the subscribers with the most unread go first.
	for h.queued.Load() > int64(lim.QueueBytes) {
		var worst *Subscription
		most := -1
		for _, set := range h.subs {
			for s := range set {
				if b := s.backlog(); b > most {
					worst, most = s, b
				}
			}
		}
		if worst == nil {
			break
		}
		worst.proc.log.Warn("event queues full; dropping the subscriber with the most unread", "queue_bytes", lim.QueueBytes, "its_bytes", most)
		h.dropLocked(worst, fmt.Errorf("event stream of driver %q dropped: the events queued for all clients passed %d bytes (max_event_queue_bytes) and this client had the most unread (%d bytes): %w",
			worst.proc.name, lim.QueueBytes, most, virt.ErrResourceExhausted))
	}
}

// dropLocked ends s, discarding its backlog. h.subMu is held.
func (h *Host) dropLocked(s *Subscription, err error) {
	delete(h.subs[s.proc], s)
	s.end(err, true)
}

// endSubscriptions ends every subscription to p with err: the stream they
// were reading is gone with the driver process.
func (p *Proc) endSubscriptions(err error) {
	h := p.h
	h.subMu.Lock()
	defer h.subMu.Unlock()
	for s := range h.subs[p] {
		s.end(err, false)
	}
	delete(h.subs, p)
}

// Subscribe returns the driver's lifecycle events from now on, in order,
// until ctx ends or the driver process goes away. The driver is started if
// needed.
func (p *Proc) Subscribe(ctx context.Context) (*Subscription, error) {
	in, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	p.release(in)
	p.mu.Lock()
	pumping := in.pumping
	p.mu.Unlock()
	if !pumping {
		if err := p.pump(in); err != nil {
			return nil, virt.Errorf(virt.ErrUnavailable, "driver %q: cannot watch its events: %w", p.name, err)
		}
	}
	h := p.h
	s := &Subscription{h: h, proc: p, ready: make(chan struct{}, 1), done: make(chan struct{})}
	h.subMu.Lock()
	if h.subs[p] == nil {
		h.subs[p] = map[*Subscription]struct{}{}
	}
	h.subs[p][s] = struct{}{}
	h.subMu.Unlock()
	// The driver may have died in between: then this subscription would
	// quietly go on with the next process's events, hiding the gap.
	p.mu.Lock()
	same := p.cur == in
	p.mu.Unlock()
	if !same {
		h.subMu.Lock()
		delete(h.subs[p], s)
		h.subMu.Unlock()
		return nil, fmt.Errorf("driver %q restarted while subscribing: %w", p.name, virt.ErrUnavailable)
	}
	context.AfterFunc(ctx, func() {
		h.subMu.Lock()
		delete(h.subs[p], s)
		h.subMu.Unlock()
		s.end(nil, true)
	})
	return s, nil
}
