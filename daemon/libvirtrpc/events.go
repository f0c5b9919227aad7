package libvirtrpc

import (
	"context"
	"fmt"
	"sync"

	"github.com/virtd/virtd/core"
	"github.com/virtd/virtd/internal/xdr"
	"github.com/virtd/virtd/virt"
)

// Domain event IDs (virDomainEventID): libvirt 9.0 defines 0..26.
const (
	eventIDLifecycle = 0
	eventIDReboot    = 1
	eventIDLast      = 27
)

// Event messages: the callback form and the older one, by event ID.
const (
	procDomainEventReboot         = 169
	procDomainEventCallbackReboot = 319
)

func serveEvents() {
	serve(procConnectDomainEventCallbackRegAny, "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY", proc{needConn: true, fn: callbackRegister})
	serve(procConnectDomainEventCallbackDeregAn, "CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY", proc{needConn: true, fn: callbackDeregister})
	serve(procConnectDomainEventRegisterAny, "CONNECT_DOMAIN_EVENT_REGISTER_ANY", proc{needConn: true, fn: legacyRegisterAny})
	serve(procConnectDomainEventDeregisterAny, "CONNECT_DOMAIN_EVENT_DEREGISTER_ANY", proc{needConn: true, fn: legacyDeregisterAny})
	serve(procConnectDomainEventRegister, "CONNECT_DOMAIN_EVENT_REGISTER", proc{needConn: true, fn: legacyRegister(true)})
	serve(procConnectDomainEventDeregister, "CONNECT_DOMAIN_EVENT_DEREGISTER", proc{needConn: true, fn: legacyRegister(false)})
}

// callback is one registration of the callback form: an event ID and,
// when uuid is set, one domain.
type callback struct {
	eventID int32
	uuid    string
}

// events are a connection's event registrations, and the subscription to
// the core that feeds them while there is one.
type events struct {
	c      *client
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	nextID int32
	cbs    map[int32]callback
	// legacy are the event IDs registered in the older form (no
	// callback ID); lifecycle is also registered by EVENT_REGISTER.
	legacy map[int32]bool
}

// eventsFor returns the connection's registrations, subscribing to the
// core's events on first use.
func (c *call) eventsFor() (*events, error) {
	cl := c.c
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.events != nil {
		return cl.events, nil
	}
	ctx, cancel := context.WithCancel(cl.ctx)
	sub, err := c.conn.Events(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	ev := &events{c: cl, cancel: cancel, done: make(chan struct{}), nextID: 1, cbs: map[int32]callback{}, legacy: map[int32]bool{}}
	cl.events = ev
	go ev.pump(sub)
	return ev, nil
}

func (ev *events) stop() {
	ev.cancel()
	<-ev.done
}

// pump sends the subscription's events as MESSAGE packets. A connection
// whose events end with an error (the daemon shuts down, or the client
// fell too far behind) is closed: a libvirt client sees its connection
// end and may connect again.
func (ev *events) pump(sub core.Events) {
	defer close(ev.done)
	for {
		for {
			e, ok := sub.Next()
			if !ok {
				break
			}
			ev.send(&e)
		}
		select {
		case <-sub.Ready():
		case <-sub.Done():
			for e, ok := sub.Next(); ok; e, ok = sub.Next() {
				ev.send(&e)
			}
			if err := sub.Err(); err != nil {
				ev.c.s.log.Debug("events of a libvirt client end; closing it", "error", err)
				ev.c.close()
			}
			return
		}
	}
}

func (ev *events) send(e *virt.Event) {
	id, cbProc, legacyProc := int32(eventIDLifecycle), int32(procDomainEventCallbackLifecycle), int32(procDomainEventLifecycle)
	if e.Type == virt.EventReboot {
		id, cbProc, legacyProc = eventIDReboot, procDomainEventCallbackReboot, procDomainEventReboot
	}
	ev.mu.Lock()
	var ids []int32
	for cbID, cb := range ev.cbs {
		if cb.eventID == id && (cb.uuid == "" || cb.uuid == e.Domain.UUID) {
			ids = append(ids, cbID)
		}
	}
	legacy := ev.legacy[id]
	ev.mu.Unlock()
	// The message: the domain, and a lifecycle event's type and detail
	// (a reboot has none).
	body := func(p *xdr.Encoder) {
		putDomain(p, &e.Domain)
		if id == eventIDLifecycle {
			p.Int32(int32(e.Type))
			p.Int32(e.Detail)
		}
	}
	for _, cbID := range ids {
		p := newPacket(header{prog: programRemote, vers: remoteVersion, proc: cbProc, typ: typeMessage}, nil)
		p.Int32(cbID)
		body(p)
		ev.c.write(p)
	}
	if legacy {
		p := newPacket(header{prog: programRemote, vers: remoteVersion, proc: legacyProc, typ: typeMessage}, nil)
		body(p)
		ev.c.write(p)
	}
}

func checkEventID(id int32) error {
	if id < 0 || id >= eventIDLast {
		return &remoteError{code: errInvalidArg, domain: fromRemote, msg: fmt.Sprintf("unsupported event ID %d", id)}
	}
	return nil
}

func callbackRegister(ctx context.Context, c *call) error {
	id := c.d.Int32()
	var uuid string
	if c.d.Bool() {
		uuid = c.domain()
	}
	if err := c.args(); err != nil {
		return err
	}
	if err := checkEventID(id); err != nil {
		return err
	}
	if uuid != "" {
		if _, err := c.byUUID(ctx, uuid); err != nil {
			return err
		}
	}
	ev, err := c.eventsFor()
	if err != nil {
		return err
	}
	ev.mu.Lock()
	cb := ev.nextID
	ev.nextID++
	ev.cbs[cb] = callback{eventID: id, uuid: uuid}
	ev.mu.Unlock()
	c.e.Int32(cb)
	return nil
}

func (c *call) registered() *events {
	c.c.mu.Lock()
	defer c.c.mu.Unlock()
	return c.c.events
}

func callbackDeregister(_ context.Context, c *call) error {
	id := c.d.Int32()
	if err := c.args(); err != nil {
		return err
	}
	ev := c.registered()
	if ev != nil {
		ev.mu.Lock()
		_, ok := ev.cbs[id]
		delete(ev.cbs, id)
		ev.mu.Unlock()
		if ok {
			return nil
		}
	}
	return &remoteError{code: errInvalidArg, domain: fromRemote, msg: fmt.Sprintf("no domain event callback %d is registered on this connection", id)}
}

func legacyRegisterAny(_ context.Context, c *call) error {
	id := c.d.Int32()
	if err := c.args(); err != nil {
		return err
	}
	if err := checkEventID(id); err != nil {
		return err
	}
	ev, err := c.eventsFor()
	if err != nil {
		return err
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.legacy[id] {
		return &remoteError{code: errInternal, domain: fromRemote, msg: fmt.Sprintf("domain event %d is already registered on this connection", id)}
	}
	ev.legacy[id] = true
	return nil
}

func legacyDeregisterAny(_ context.Context, c *call) error {
	id := c.d.Int32()
	if err := c.args(); err != nil {
		return err
	}
	if ev := c.registered(); ev != nil {
		ev.mu.Lock()
		ok := ev.legacy[id]
		delete(ev.legacy, id)
		ev.mu.Unlock()
		if ok {
			return nil
		}
	}
	return &remoteError{code: errInternal, domain: fromRemote, msg: fmt.Sprintf("domain event %d is not registered on this connection", id)}
}

// legacyRegister serves DOMAIN_EVENT_REGISTER and _DEREGISTER, the
// oldest form: lifecycle events only.
func legacyRegister(on bool) func(context.Context, *call) error {
	return func(_ context.Context, c *call) error {
		if err := c.args(); err != nil {
			return err
		}
		if on {
			ev, err := c.eventsFor()
			if err != nil {
				return err
			}
			ev.mu.Lock()
			ev.legacy[eventIDLifecycle] = true
			ev.mu.Unlock()
		} else if ev := c.registered(); ev != nil {
			ev.mu.Lock()
			delete(ev.legacy, eventIDLifecycle)
			ev.mu.Unlock()
		}
		c.e.Bool(true) // cb_registered
		return nil
	}
}
