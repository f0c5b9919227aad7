package qemu

import (
	"context"

	"github.com/virtd/virtd/virt"
)

// WatchEvents returns lifecycle events, in order, until ctx ends.
func (drv *Driver) WatchEvents(ctx context.Context) (<-chan virt.Event, error) {
	return drv.events.Watch(ctx)
}

// emitLocked publishes an event about d, as it is now; called under
// drv.mu, so events keep the order of the changes. Sends never block: a
// subscriber that fell too far behind is dropped.
func (drv *Driver) emitLocked(d *domain, t virt.EventType, detail int32) {
	drv.log.Debug("event", "domain", d.View().Name, "type", t.String(), "detail", virt.EventDetailString(t, detail))
	drv.events.Emit(d.View(), t, detail)
}
