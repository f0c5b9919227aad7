package libxl

/*
#include <stdlib.h>
#include <libxl.h>
#include <libxl_utils.h>

static libxl_dominfo *xv_dominfo_at(libxl_dominfo *l, int i) { return &l[i]; }

static uint32_t xv_event_domid(libxl_event *e) { return e->domid; }
static int xv_event_type(libxl_event *e) { return e->type; }
static int xv_event_shutdown_reason(libxl_event *e) { return e->u.domain_shutdown.shutdown_reason; }
*/
import "C"

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"
)

// DomInfo is libxl_dominfo: one domain as Xen sees it.
type DomInfo struct {
	DomID uint32
	UUID  string
	Name  string
	// Flags from Xen.
	Running, Blocked, Paused, Shutdown, Dying bool
	// ShutdownReason is meaningful when Shutdown is set.
	ShutdownReason ShutdownReason
	CurrentMemKiB  uint64
	MaxMemKiB      uint64
	CPUTime        time.Duration
	VCPUsOnline    uint32
}

// ShutdownReason is libxl_shutdown_reason.
type ShutdownReason int

// Shutdown reasons, libxl's numbers.
const (
	ShutdownUnknown  ShutdownReason = -1
	ShutdownPoweroff ShutdownReason = 0
	ShutdownReboot   ShutdownReason = 1
	ShutdownSuspend  ShutdownReason = 2
	ShutdownCrash    ShutdownReason = 3
	ShutdownWatchdog ShutdownReason = 4
	ShutdownSoftRest ShutdownReason = 5
)

// ListDomains returns every domain Xen runs, domain 0 included.
func (c *Ctx) ListDomains() ([]DomInfo, error) {
	var n C.int
	list := C.libxl_list_domain(c.ctx, &n)
	if list == nil {
		return nil, &Error{Op: "list_domain", Code: -3}
	}
	defer C.libxl_dominfo_list_free(list, n)
	out := make([]DomInfo, 0, int(n))
	for i := range int(n) {
		d := C.xv_dominfo_at(list, C.int(i))
		info := DomInfo{
			DomID:          uint32(d.domid),
			Running:        bool(d.running),
			Blocked:        bool(d.blocked),
			Paused:         bool(d.paused),
			Shutdown:       bool(d.shutdown),
			Dying:          bool(d.dying),
			ShutdownReason: ShutdownReason(d.shutdown_reason),
			CurrentMemKiB:  uint64(d.current_memkb),
			MaxMemKiB:      uint64(d.max_memkb),
			CPUTime:        time.Duration(d.cpu_time),
			VCPUsOnline:    uint32(d.vcpu_online),
		}
		b := C.GoBytes(unsafe.Pointer(C.libxl_uuid_bytearray(&d.uuid)), 16)
		info.UUID = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
		if name := C.libxl_domid_to_name(c.ctx, d.domid); name != nil {
			info.Name = C.GoString(name)
			C.free(unsafe.Pointer(name))
		}
		out = append(out, info)
	}
	return out, nil
}

// Create creates and unpauses a domain from cfg, returning its domid.
func (c *Ctx) Create(cfg *DomainConfig) (uint32, error) {
	var domid C.uint32_t
	if err := check("domain_create_new", C.libxl_domain_create_new(c.ctx, cfg.c, &domid, nil, nil)); err != nil {
		return 0, err
	}
	if err := check("domain_unpause", C.libxl_domain_unpause(c.ctx, domid, nil)); err != nil {
		_ = c.Destroy(uint32(domid))
		return 0, err
	}
	return uint32(domid), nil
}

// Shutdown asks the guest to power off (PV protocol or ACPI).
func (c *Ctx) Shutdown(domid uint32) error {
	return check("domain_shutdown", C.libxl_domain_shutdown(c.ctx, C.uint32_t(domid), nil))
}

// Reboot asks the guest to reboot.
func (c *Ctx) Reboot(domid uint32) error {
	return check("domain_reboot", C.libxl_domain_reboot(c.ctx, C.uint32_t(domid), nil))
}

// Destroy ends the domain at once.
func (c *Ctx) Destroy(domid uint32) error {
	return check("domain_destroy", C.libxl_domain_destroy(c.ctx, C.uint32_t(domid), nil))
}

// Pause stops the domain's vCPUs.
func (c *Ctx) Pause(domid uint32) error {
	return check("domain_pause", C.libxl_domain_pause(c.ctx, C.uint32_t(domid), nil))
}

// Unpause lets the domain's vCPUs run again.
func (c *Ctx) Unpause(domid uint32) error {
	return check("domain_unpause", C.libxl_domain_unpause(c.ctx, C.uint32_t(domid), nil))
}

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	// EventShutdown: the guest shut itself down (powered off, rebooted,
	// crashed); the domain still exists until destroyed.
	EventShutdown EventKind = iota
	// EventDeath: the domain is gone.
	EventDeath
)

// Event is a domain event from libxl's event loop.
type Event struct {
	Kind   EventKind
	DomID  uint32
	Reason ShutdownReason
}

// WatchDomain asks libxl to report the shutdown and death of domid through
// Events.
func (c *Ctx) WatchDomain(domid uint32) (stop func(), err error) {
	var gen *C.libxl_evgen_domain_death
	if err := check("evenable_domain_death", C.libxl_evenable_domain_death(c.ctx, C.uint32_t(domid), 0, &gen)); err != nil {
		return nil, err
	}
	return func() { C.libxl_evdisable_domain_death(c.ctx, gen) }, nil
}

// Events runs libxl's event loop on a thread of its own and delivers
// domain events until Close. Call it once.
func (c *Ctx) Events() <-chan Event {
	ch := make(chan Event, 64)
	go func() {
		runtime.LockOSThread()
		defer close(ch)
		for {
			var ev *C.libxl_event
			rc := C.libxl_event_wait(c.ctx, &ev, C.LIBXL_EVENTMASK_ALL, nil, nil)
			select {
			case <-c.stop:
				if ev != nil {
					C.libxl_event_free(c.ctx, ev)
				}
				return
			default:
			}
			if rc != 0 || ev == nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			out := Event{DomID: uint32(C.xv_event_domid(ev)), Reason: ShutdownUnknown}
			switch C.xv_event_type(ev) {
			case C.LIBXL_EVENT_TYPE_DOMAIN_SHUTDOWN:
				out.Kind, out.Reason = EventShutdown, ShutdownReason(C.xv_event_shutdown_reason(ev))
			case C.LIBXL_EVENT_TYPE_DOMAIN_DEATH:
				out.Kind = EventDeath
			default:
				C.libxl_event_free(c.ctx, ev)
				continue
			}
			C.libxl_event_free(c.ctx, ev)
			select {
			case ch <- out:
			case <-c.stop:
				return
			}
		}
	}()
	return ch
}
