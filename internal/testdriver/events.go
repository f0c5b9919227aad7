package testdriver

import (
	"context"
	"time"

	"github.com/virtd/virtd/virt"
)

// subscriber is one WatchEvents caller. ch is closed (under Driver.mu) when
// the subscriber's context ends or when it falls subscriberBuffer events
// behind.
type subscriber struct {
	ch chan virt.Event
}

// WatchEvents returns every lifecycle event from now on, in Seq order, until
// ctx ends; then the channel is closed. A subscriber that lets
// subscriberBuffer events pile up is dropped (its channel closed early, with
// a warning in the log) rather than holding the driver up or losing events
// silently in the middle of the stream: it can subscribe again.
func (drv *Driver) WatchEvents(ctx context.Context) (<-chan virt.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &subscriber{ch: make(chan virt.Event, subscriberBuffer)}
	drv.mu.Lock()
	drv.subs[s] = struct{}{}
	drv.mu.Unlock()
	go func() {
		<-ctx.Done()
		drv.mu.Lock()
		drv.dropLocked(s)
		drv.mu.Unlock()
	}()
	return s.ch, nil
}

// emitLocked publishes one event about d to every subscriber, without
// blocking.
func (drv *Driver) emitLocked(d *domain, typ virt.EventType, detail int32) {
	drv.seq++
	ev := virt.Event{
		Domain: d.view(),
		Type:   typ,
		Detail: detail,
		Seq:    drv.seq,
		Time:   time.Now(),
	}
	for s := range drv.subs {
		select {
		case s.ch <- ev:
		default:
			drv.log.Warn("event subscriber fell behind, dropping it",
				"buffered", len(s.ch), "seq", ev.Seq)
			drv.dropLocked(s)
		}
	}
}

// dropLocked unsubscribes s and closes its channel, once.
func (drv *Driver) dropLocked(s *subscriber) {
	if _, ok := drv.subs[s]; ok {
		delete(drv.subs, s)
		close(s.ch)
	}
}
