// Package controller is the per-container controller of the LXC driver, in
// the spirit of libvirt_lxc: the driver executable re-run in controller
// mode, detached in its own session, which creates the container (its
// namespaces, root filesystem, console pty, cgroup and veth interfaces),
// waits on its init, and answers the driver over a unix socket in the run
// directory. It outlives the driver: a restarted driver finds it again
// through that socket. The same executable, run once more inside the new
// namespaces, sets the container up and execs its init: that part is C
// (nsinit.c), which runs before the Go runtime starts, carrying out a
// program the controller compiled (program.go).
//
// The package also holds the small line protocol between driver and
// controller (Request, Response, Event) and its client (Dial).
package controller

import (
	"encoding/json"
	"fmt"
	"os"
)

// ControllerArg, as the first argument of the driver executable, selects
// the controller mode.
const ControllerArg = "__virtd-lxc-controller"

// Spec is everything the controller needs to run one container. The driver
// builds it from the domain XML and writes it to the run directory.
type Spec struct {
	Name     string `json:"name"`
	UUID     string `json:"uuid"`
	Hostname string `json:"hostname"`
	RootFS   string `json:"rootfs"`
	Mounts   []Mount
	// Init is the init's argv; Init[0] is a path inside the container.
	Init    []string `json:"init"`
	Env     []string `json:"env"`
	WorkDir string   `json:"workdir,omitempty"`
	// UIDMap and GIDMap, when set, put the container in a user namespace.
	UIDMap []IDMap `json:"uidmap,omitempty"`
	GIDMap []IDMap `json:"gidmap,omitempty"`

	MemoryBytes uint64 `json:"memory_bytes"`
	PidsMax     int64  `json:"pids_max,omitempty"`
	CPUShares   uint64 `json:"cpu_shares,omitempty"`
	CPUQuota    int64  `json:"cpu_quota,omitempty"`
	CPUPeriod   uint64 `json:"cpu_period,omitempty"`
	// CgroupParent is the cgroup under which the container's own is made.
	CgroupParent string `json:"cgroup_parent"`

	Interfaces []Interface `json:"interfaces,omitempty"`

	// OnPoweroff, OnReboot and OnCrash are libvirt's actions: "destroy"
	// or "restart" (others are refused at define).
	OnPoweroff string `json:"on_poweroff"`
	OnReboot   string `json:"on_reboot"`
	OnCrash    string `json:"on_crash"`
}

// Mount is one extra filesystem: a bind mount of Source, or a tmpfs of
// SizeBytes when Source is empty and Tmpfs is set.
type Mount struct {
	Source    string `json:"source,omitempty"`
	Target    string `json:"target"`
	ReadOnly  bool   `json:"readonly,omitempty"`
	Tmpfs     bool   `json:"tmpfs,omitempty"`
	SizeBytes uint64 `json:"size_bytes,omitempty"`
}

// IDMap maps Count ids from Container (inside) to Host.
type IDMap struct {
	Container uint32 `json:"container"`
	Host      uint32 `json:"host"`
	Count     uint32 `json:"count"`
}

// Interface is one veth pair: HostName stays on the host (attached to
// Bridge when set), the peer becomes GuestName inside.
type Interface struct {
	HostName  string   `json:"host_name"`
	GuestName string   `json:"guest_name"`
	MAC       string   `json:"mac,omitempty"`
	Bridge    string   `json:"bridge,omitempty"`
	Addrs     []string `json:"addrs,omitempty"` // CIDR
	Routes    []Route  `json:"routes,omitempty"`
}

// Route is one route inside the container.
type Route struct {
	Dest    string `json:"dest"` // CIDR
	Gateway string `json:"gateway"`
}

// WriteSpec writes s to path (the driver does this, atomically, before it
// starts the controller).
func (s *Spec) Marshal() ([]byte, error) { return json.MarshalIndent(s, "", "  ") }

// ReadSpec reads a spec written by the driver.
func ReadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("spec %s: %w", path, err)
	}
	return &s, nil
}
