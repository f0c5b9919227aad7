package qemu

import (
	"context"
	"time"

	"github.com/virtd/virtd/virt"
)

// subscriberBuffer is how many events a WatchEvents subscriber may fall
// behind before it is dropped (its channel closed).
const subscriberBuffer = 4096

type subscriber struct {
	ch     chan virt.Event
	closed bool
}

// WatchEvents returns lifecycle events, in order, until ctx ends.
func (drv *Driver) WatchEvents(ctx context.Context) (<-chan virt.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &subscriber{ch: make(chan virt.Event, subscriberBuffer)}
	drv.mu.Lock()
	if drv.closed {
		close(s.ch)
		drv.mu.Unlock()
		return s.ch, nil
	}
	drv.subs[s] = struct{}{}
	drv.mu.Unlock()
	context.AfterFunc(ctx, func() {
		drv.mu.Lock()
		defer drv.mu.Unlock()
		drv.dropLocked(s)
	})
	return s.ch, nil
}

func (drv *Driver) dropLocked(s *subscriber) {
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
	delete(drv.subs, s)
}

// emitLocked publishes an event about d, as it is now. Sends never
// block: a subscriber that fell too far behind is dropped.
func (drv *Driver) emitLocked(d *domain, t virt.EventType, detail int32) {
	drv.seq++
	ev := virt.Event{Domain: d.view(), Type: t, Detail: detail, Seq: drv.seq, Time: time.Now()}
	drv.log.Debug("event", "domain", ev.Domain.Name, "type", t.String(), "detail", virt.EventDetailString(t, detail))
	for s := range drv.subs {
		select {
		case s.ch <- ev:
		default:
			drv.log.Warn("dropping an event subscriber that fell behind")
			drv.dropLocked(s)
		}
	}
}
