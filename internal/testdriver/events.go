package testdriver

import (
	"context"

	"github.com/virtd/virtd/virt"
)

// WatchEvents returns every lifecycle event from now on, in Seq order,
// until ctx ends; then the channel is closed. A subscriber that lets
// subscriberBuffer events pile up is dropped (its channel closed early,
// with a warning in the log): it can subscribe again.
func (drv *Driver) WatchEvents(ctx context.Context) (<-chan virt.Event, error) {
	return drv.events.Watch(ctx)
}

// emitLocked publishes one event about d to every subscriber, without
// blocking. Called under d's lock, so events keep the order of its
// changes.
func (drv *Driver) emitLocked(d *domain, typ virt.EventType, detail int32) {
	drv.events.Emit(d.View(), typ, detail)
}
