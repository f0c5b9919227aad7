package client

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/virtd/virtd/internal/rpcerr"
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
	"github.com/virtd/virtd/virt"
)

// EventStream is a stream of lifecycle events from WatchEvents.
type EventStream struct {
	ch     chan virt.Event
	cancel context.CancelFunc

	mu  sync.Mutex
	err error
}

// Events returns the channel the events arrive on, in the order the driver
// sent them. It is closed when the stream ends.
func (s *EventStream) Events() <-chan virt.Event { return s.ch }

// Err says why the stream ended, once the channel is closed: nil when the
// caller's context ended or Close was called, otherwise an error with a
// kind (ErrUnavailable when the daemon went away or closed the stream).
func (s *EventStream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close stops the stream; the channel is closed soon after.
func (s *EventStream) Close() { s.cancel() }

// WatchEvents starts a stream of the lifecycle events of the connection's
// driver: every domain's, starting from when the daemon registers the
// watch. The stream ends when ctx ends, on Close, or when the daemon ends
// it.
func (c *Conn) WatchEvents(ctx context.Context) (*EventStream, error) {
	sctx, cancel := context.WithCancel(ctx)
	stream, err := c.api.WatchEvents(sctx)
	if err == nil {
		err = stream.Send(&apiv1.WatchEventsRequest{Connection: c.id, Credit: eventCredit})
	}
	if err != nil {
		cancel()
		return nil, rpcerr.FromStatus(err)
	}
	// The daemon sends the header once it has registered the watch: from
	// here on no event is missed.
	if err := rpcerr.Subscribed(stream); err != nil {
		cancel()
		return nil, err
	}
	s := &EventStream{ch: make(chan virt.Event, 16), cancel: cancel}
	go func() {
		defer close(s.ch)
		defer cancel()
		taken := 0
		for {
			r, err := stream.Recv()
			if err != nil {
				s.finish(sctx, err)
				return
			}
			select {
			case s.ch <- fromProtoEvent(r.GetEvent()):
			case <-sctx.Done():
				return
			}
			// Delivered: the daemon may send as many more.
			if taken++; taken == eventCredit/2 {
				// A failure here means the stream ended: the next Recv
				// says why.
				_ = stream.Send(&apiv1.WatchEventsRequest{Credit: uint32(taken)})
				taken = 0
			}
		}
	}()
	return s, nil
}

// eventCredit is how many events the daemon may send ahead of what the
// caller has taken from the channel (the daemon's own bound): a caller that
// stops reading leaves the rest waiting in the daemon, which ends the
// stream if it falls too far behind.
const eventCredit = 32

func (s *EventStream) finish(ctx context.Context, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case ctx.Err() != nil, deadlineNear(ctx):
		// The caller ended it. (The daemon sees the caller's deadline
		// too, and may end the stream a moment before it passes here.)
	case errors.Is(err, io.EOF):
		s.err = virt.Errorf(virt.ErrUnavailable, "event stream closed by virtd")
	default:
		s.err = rpcerr.FromStatus(err)
	}
}

// Events is WatchEvents for callers that only want the channel: it is
// closed when ctx ends or the stream ends.
func (c *Conn) Events(ctx context.Context) (<-chan virt.Event, error) {
	s, err := c.WatchEvents(ctx)
	if err != nil {
		return nil, err
	}
	return s.Events(), nil
}

func fromProtoEvent(e *apiv1.Event) virt.Event {
	ev := virt.Event{
		Domain: fromProtoDomain(e.GetDomain()),
		// The proto's enum is libvirt's shifted by one, keeping zero for
		// "unspecified".
		Type:   virt.EventType(e.GetType()) - 1,
		Detail: e.GetDetail(),
		Seq:    e.GetSeq(),
	}
	if ns := e.GetTimeUnixNano(); ns != 0 {
		ev.Time = time.Unix(0, ns)
	}
	return ev
}

func deadlineNear(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && time.Until(d) < 250*time.Millisecond
}
