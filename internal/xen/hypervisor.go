package xen

import (
	"github.com/virtd/virtd/internal/xen/domconfig"
	"github.com/virtd/virtd/internal/xen/libxl"
)

// hypervisor is what the driver needs from Xen. libxlHypervisor is the
// real one; the tests use an in-memory one to run the driver's own logic
// (definitions, states, events) where no Xen runs.
type hypervisor interface {
	Version() uint64
	PhysInfo() (*libxl.PhysInfo, error)
	// List returns every domain, domain 0 included.
	List() ([]libxl.DomInfo, error)
	// Create starts a domain and returns its domid.
	Create(c *domconfig.Config) (uint32, error)
	Shutdown(domid uint32) error
	Reboot(domid uint32) error
	Destroy(domid uint32) error
	Pause(domid uint32) error
	Unpause(domid uint32) error
	// Watch asks for the shutdown and death events of domid.
	Watch(domid uint32) error
	// Events delivers domain events; it is called once.
	Events() <-chan libxl.Event
}

// libxlHypervisor is Xen through libxl.
type libxlHypervisor struct {
	ctx *libxl.Ctx
}

func (h *libxlHypervisor) Version() uint64                    { return h.ctx.Version() }
func (h *libxlHypervisor) PhysInfo() (*libxl.PhysInfo, error) { return h.ctx.PhysInfo() }
func (h *libxlHypervisor) List() ([]libxl.DomInfo, error)     { return h.ctx.ListDomains() }
func (h *libxlHypervisor) Shutdown(domid uint32) error        { return h.ctx.Shutdown(domid) }
func (h *libxlHypervisor) Reboot(domid uint32) error          { return h.ctx.Reboot(domid) }
func (h *libxlHypervisor) Destroy(domid uint32) error         { return h.ctx.Destroy(domid) }
func (h *libxlHypervisor) Pause(domid uint32) error           { return h.ctx.Pause(domid) }
func (h *libxlHypervisor) Unpause(domid uint32) error         { return h.ctx.Unpause(domid) }
func (h *libxlHypervisor) Events() <-chan libxl.Event         { return h.ctx.Events() }

func (h *libxlHypervisor) Watch(domid uint32) error {
	// The watch ends by itself with the domain's death event.
	_, err := h.ctx.WatchDomain(domid)
	return err
}

func (h *libxlHypervisor) Create(c *domconfig.Config) (uint32, error) {
	cfg, err := libxl.Build(c)
	if err != nil {
		return 0, err
	}
	defer cfg.Free()
	return h.ctx.Create(cfg)
}
