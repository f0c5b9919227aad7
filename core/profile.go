package core

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/internal/profiling"
	"github.com/virtd/virtd/virt"
)

// Profile writes a profile, in pprof's format, of virtd's own process
// (driverName "") or of the named driver's process to w: kind "cpu"
// samples for d (1s to 5 minutes), "heap", "allocs" and "goroutine" are
// snapshots (d is zero). w gets nothing unless the profile is taken. A
// driver that is not running is started, and kept from being stopped as
// idle while it is profiled. Each process takes one CPU profile at a time:
// another is refused with virt.ErrFailedPrecondition.
func (c *Core) Profile(ctx context.Context, driverName, kind string, d time.Duration, w io.Writer) error {
	if err := profiling.Check(kind, d); err != nil {
		return err
	}
	if driverName == "" {
		return profileError(profiling.Write(ctx, kind, d, w), "profiling virtd")
	}
	b, err := c.driverNamed(driverName)
	if err != nil {
		return err
	}
	// A connection of sorts: the driver is not stopped as idle under a
	// profile of minutes.
	if err := b.Open(ctx); err != nil {
		return err
	}
	defer b.Release()
	err = b.Do(ctx, false, func(drv driver.Driver) error {
		p, ok := drv.(driver.Profiler)
		if !ok {
			return fmt.Errorf("this driver is not a process of its own that can profile itself: %w", virt.ErrNotSupported)
		}
		return p.Profile(ctx, kind, d, w)
	})
	return profileError(err, fmt.Sprintf("profiling driver %q", driverName))
}

// profileError says which process a profile failed in, keeping the
// error's kind (or its context error).
func profileError(err error, what string) error {
	if err == nil {
		return nil
	}
	if k := virt.KindOf(err); k != nil {
		return virt.Errorf(k, "%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// driverNamed returns the driver of that name (not of that URI scheme).
func (c *Core) driverNamed(name string) (Backend, error) {
	if b, err := c.drivers.Lookup(name); err == nil && b.Name() == name {
		return b, nil
	}
	var names []string
	for _, s := range c.drivers.Status() {
		names = append(names, s.Name)
	}
	known := "none is installed"
	if len(names) > 0 {
		known = "installed: " + strings.Join(names, ", ")
	}
	return nil, fmt.Errorf("no driver named %q (%s): %w", name, known, virt.ErrNotFound)
}
