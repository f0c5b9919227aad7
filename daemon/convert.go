package daemon

import (
	apiv1 "github.com/virtd/virtd/proto/virtd/api/v1"
	"github.com/virtd/virtd/virt"
)

// Conversions from package virt's types to the public API's proto types.

func domainToAPI(d *virt.Domain) *apiv1.Domain {
	return &apiv1.Domain{
		Name: d.Name, Uuid: d.UUID, Id: d.ID,
		State: apiv1.DomainState(d.State), Reason: d.Reason,
		Persistent: d.Persistent, Autostart: d.Autostart,
	}
}

func eventToAPI(e *virt.Event) *apiv1.Event {
	return &apiv1.Event{
		Domain: domainToAPI(&e.Domain),
		// shifted by one so that zero is unspecified
		Type:         apiv1.EventType(e.Type + 1),
		Detail:       e.Detail,
		Seq:          e.Seq,
		TimeUnixNano: e.Time.UnixNano(),
	}
}

func nodeInfoToAPI(n *virt.NodeInfo) *apiv1.NodeInfo {
	return &apiv1.NodeInfo{
		Model: n.Model, MemoryKib: n.MemoryKiB, Cpus: n.CPUs, Mhz: n.MHz,
		Nodes: n.Nodes, Sockets: n.Sockets, Cores: n.Cores, Threads: n.Threads,
	}
}

func domainInfoToAPI(i *virt.DomainInfo) *apiv1.DomainInfo {
	return &apiv1.DomainInfo{
		State: apiv1.DomainState(i.State), MaxMemoryKib: i.MaxMemoryKiB, MemoryKib: i.MemoryKiB,
		Vcpus: i.VCPUs, CpuTimeNs: uint64(i.CPUTime),
	}
}

func lookupFromAPI(r *apiv1.LookupDomainRequest) virt.Lookup {
	switch k := r.GetKey().(type) {
	case *apiv1.LookupDomainRequest_Name:
		return virt.ByName(k.Name)
	case *apiv1.LookupDomainRequest_Uuid:
		return virt.ByUUID(k.Uuid)
	case *apiv1.LookupDomainRequest_Id:
		return virt.ByID(k.Id)
	}
	return virt.ByID(-1)
}
