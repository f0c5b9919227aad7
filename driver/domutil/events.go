package domutil

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtd/virtd/virt"
)

// DefaultEventBuffer is how many events a subscriber may fall behind
// before it is dropped.
const DefaultEventBuffer = 4096

// Events fans a driver's lifecycle events out to its WatchEvents callers
// and numbers them. Emit under the lock that orders the driver's state
// changes, and the events come out in that order. The zero value is ready.
type Events struct {
	// Buffer is how many events a subscriber may fall behind before it is
	// dropped (its channel closed, so it can subscribe again): a slow
	// subscriber never holds the driver up. Zero means DefaultEventBuffer.
	Buffer int
	// Log, if set, is told when a subscriber is dropped.
	Log hclog.Logger

	mu     sync.Mutex
	seq    uint64
	subs   map[chan virt.Event]struct{}
	closed bool
}

// Watch returns every event emitted from now on, in order, until ctx ends
// or Close; then the channel is closed. It is Driver.WatchEvents.
func (e *Events) Watch(ctx context.Context) (<-chan virt.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := e.Buffer
	if n <= 0 {
		n = DefaultEventBuffer
	}
	ch := make(chan virt.Event, n)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		close(ch)
		return ch, nil
	}
	if e.subs == nil {
		e.subs = map[chan virt.Event]struct{}{}
	}
	e.subs[ch] = struct{}{}
	context.AfterFunc(ctx, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.dropLocked(ch)
	})
	return ch, nil
}

// Emit numbers an event about d and sends it to every subscriber without
// blocking.
func (e *Events) Emit(d virt.Domain, t virt.EventType, detail int32) virt.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	ev := virt.Event{Domain: d, Type: t, Detail: detail, Seq: e.seq, Time: time.Now()}
	for ch := range e.subs {
		select {
		case ch <- ev:
		default:
			if e.Log != nil {
				e.Log.Warn("event subscriber fell behind; dropping it", "seq", ev.Seq, "buffered", len(ch))
			}
			e.dropLocked(ch)
		}
	}
	return ev
}

// Close ends every subscription; later Watch calls get a closed channel.
func (e *Events) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for ch := range e.subs {
		e.dropLocked(ch)
	}
}

func (e *Events) dropLocked(ch chan virt.Event) {
	if _, ok := e.subs[ch]; ok {
		delete(e.subs, ch)
		close(ch)
	}
}
