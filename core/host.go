package core

import (
	"context"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/host"
)

// FromHost returns the drivers of h, the driver processes it supervises,
// as the core's Drivers. For the core to keep views of them, h must have
// been made with host.Config.Sinks set to the Views' Sink.
func FromHost(h *host.Host) Drivers { return hostDrivers{h} }

type hostDrivers struct{ *host.Host }

func (h hostDrivers) Lookup(scheme string) (Backend, error) {
	p, err := h.Host.Lookup(scheme)
	if err != nil {
		return nil, err
	}
	return proc{p}, nil
}

// proc is a driver process as a Backend.
type proc struct{ *host.Proc }

func (p proc) Do(ctx context.Context, read bool, fn func(driver.Driver) error) error {
	return p.Proc.Do(ctx, read, func(c *driver.Client) error { return fn(c) })
}

func (p proc) Subscribe(ctx context.Context) (Events, error) {
	s, err := p.Proc.Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	return s, nil
}
