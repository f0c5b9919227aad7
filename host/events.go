package host

import (
	"context"
	"fmt"
	"sync"

	"github.com/virtd/virtd/virt"
)

// subscriberBuffer is how many events a subscriber may fall behind before
// it is dropped; dropping keeps the order for everyone else.
const subscriberBuffer = 4096

// Subscription is a stream of one driver's lifecycle events.
type Subscription struct {
	ch   chan virt.Event
	once sync.Once
	err  error
}

// C delivers the events in order; it is closed when the subscription ends.
func (s *Subscription) C() <-chan virt.Event { return s.ch }

// Err says why the subscription ended: nil when its context ended, an
// unavailable error when the driver died or the subscriber fell behind.
// Read it after C is closed.
func (s *Subscription) Err() error { return s.err }

func (s *Subscription) end(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.ch)
	})
}

// pump copies the driver's event stream to the subscribers until ctx ends
// or the stream breaks. It returns once the stream is open, so no event of
// a call made afterwards is missed.
func (p *Proc) pump(in *instance) error {
	ctx := in.pumpCtx
	events, err := in.drv.WatchEvents(ctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	in.pumping = true
	p.mu.Unlock()
	go func() {
		for e := range events {
			p.publish(e)
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

func (p *Proc) publish(e virt.Event) {
	p.subMu.Lock()
	defer p.subMu.Unlock()
	for s := range p.subs {
		select {
		case s.ch <- e:
		default:
			p.log.Warn("event subscriber too slow; dropping it", "buffer", subscriberBuffer)
			delete(p.subs, s)
			s.end(fmt.Errorf("event stream of driver %q dropped: the client fell more than %d events behind: %w",
				p.name, subscriberBuffer, virt.ErrUnavailable))
		}
	}
}

// endSubscriptions ends every subscription with err: the stream they were
// reading is gone with the driver process.
func (p *Proc) endSubscriptions(err error) {
	p.subMu.Lock()
	defer p.subMu.Unlock()
	for s := range p.subs {
		delete(p.subs, s)
		s.end(err)
	}
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
			return nil, fmt.Errorf("driver %q: cannot watch its events: %v: %w", p.name, err, virt.ErrUnavailable)
		}
	}
	s := &Subscription{ch: make(chan virt.Event, subscriberBuffer)}
	p.subMu.Lock()
	p.subs[s] = struct{}{}
	p.subMu.Unlock()
	// The driver may have died in between: then this subscription would
	// quietly go on with the next process's events, hiding the gap.
	p.mu.Lock()
	same := p.cur == in
	p.mu.Unlock()
	if !same {
		p.subMu.Lock()
		delete(p.subs, s)
		p.subMu.Unlock()
		return nil, fmt.Errorf("driver %q restarted while subscribing: %w", p.name, virt.ErrUnavailable)
	}
	go func() {
		<-ctx.Done()
		p.subMu.Lock()
		delete(p.subs, s)
		p.subMu.Unlock()
		s.end(nil)
	}()
	return s, nil
}
