package driver

import (
	"time"

	driverv1 "github.com/virtd/virtd/proto/virtd/driver/v1"
	"github.com/virtd/virtd/virt"
)

// Conversions between package virt's types and the driver API's proto
// types. They live here so that proto types never leak out of the shims.

func domainToProto(d *virt.Domain) *driverv1.Domain {
	if d == nil {
		return nil
	}
	return &driverv1.Domain{
		Name: d.Name, Uuid: d.UUID, Id: d.ID,
		State: driverv1.DomainState(d.State), Reason: d.Reason,
		Persistent: d.Persistent, Autostart: d.Autostart,
	}
}

func domainFromProto(p *driverv1.Domain) *virt.Domain {
	if p == nil {
		return nil
	}
	return &virt.Domain{
		Name: p.GetName(), UUID: p.GetUuid(), ID: p.GetId(),
		State: virt.State(p.GetState()), Reason: p.GetReason(),
		Persistent: p.GetPersistent(), Autostart: p.GetAutostart(),
	}
}

func eventToProto(e *virt.Event) *driverv1.Event {
	return &driverv1.Event{
		Domain: domainToProto(&e.Domain),
		// EventType is shifted by one in the proto so that zero is unspecified.
		Type:         driverv1.EventType(e.Type + 1),
		Detail:       e.Detail,
		Seq:          e.Seq,
		TimeUnixNano: e.Time.UnixNano(),
	}
}

func eventFromProto(p *driverv1.Event) virt.Event {
	var d virt.Domain
	if p.GetDomain() != nil {
		d = *domainFromProto(p.GetDomain())
	}
	return virt.Event{
		Domain: d,
		Type:   virt.EventType(p.GetType() - 1),
		Detail: p.GetDetail(),
		Seq:    p.GetSeq(),
		Time:   time.Unix(0, p.GetTimeUnixNano()),
	}
}

func nodeInfoToProto(n *virt.NodeInfo) *driverv1.NodeInfo {
	return &driverv1.NodeInfo{
		Model: n.Model, MemoryKib: n.MemoryKiB, Cpus: n.CPUs, Mhz: n.MHz,
		Nodes: n.Nodes, Sockets: n.Sockets, Cores: n.Cores, Threads: n.Threads,
	}
}

func nodeInfoFromProto(p *driverv1.NodeInfo) *virt.NodeInfo {
	return &virt.NodeInfo{
		Model: p.GetModel(), MemoryKiB: p.GetMemoryKib(), CPUs: p.GetCpus(), MHz: p.GetMhz(),
		Nodes: p.GetNodes(), Sockets: p.GetSockets(), Cores: p.GetCores(), Threads: p.GetThreads(),
	}
}

func domainInfoToProto(i *virt.DomainInfo) *driverv1.DomainInfo {
	return &driverv1.DomainInfo{
		State:        driverv1.DomainState(i.State),
		MaxMemoryKib: i.MaxMemoryKiB,
		MemoryKib:    i.MemoryKiB,
		Vcpus:        i.VCPUs,
		CpuTimeNs:    uint64(i.CPUTime),
	}
}

func domainInfoFromProto(p *driverv1.DomainInfo) *virt.DomainInfo {
	return &virt.DomainInfo{
		State:        virt.State(p.GetState()),
		MaxMemoryKiB: p.GetMaxMemoryKib(),
		MemoryKiB:    p.GetMemoryKib(),
		VCPUs:        p.GetVcpus(),
		CPUTime:      time.Duration(p.GetCpuTimeNs()),
	}
}

func lookupToProto(k virt.Lookup) *driverv1.LookupDomainRequest {
	switch {
	case k.Name != "":
		return &driverv1.LookupDomainRequest{Key: &driverv1.LookupDomainRequest_Name{Name: k.Name}}
	case k.UUID != "":
		return &driverv1.LookupDomainRequest{Key: &driverv1.LookupDomainRequest_Uuid{Uuid: k.UUID}}
	}
	return &driverv1.LookupDomainRequest{Key: &driverv1.LookupDomainRequest_Id{Id: k.ID}}
}

func lookupFromProto(r *driverv1.LookupDomainRequest) virt.Lookup {
	switch k := r.GetKey().(type) {
	case *driverv1.LookupDomainRequest_Name:
		return virt.Lookup{Name: k.Name}
	case *driverv1.LookupDomainRequest_Uuid:
		return virt.Lookup{UUID: k.Uuid}
	case *driverv1.LookupDomainRequest_Id:
		return virt.Lookup{ID: k.Id}
	}
	return virt.Lookup{ID: -1}
}

func infoToProto(i *Info) *driverv1.DriverInfo {
	return &driverv1.DriverInfo{
		Name: i.Name, Version: i.Version, Schemes: i.Schemes,
		ApiVersions:       []int32{APIVersion},
		Health:            driverv1.Health(i.Health),
		HealthReason:      i.HealthReason,
		Features:          i.Features,
		HypervisorType:    i.HypervisorType,
		HypervisorVersion: i.HypervisorVersion,
	}
}

func infoFromProto(p *driverv1.DriverInfo) *Info {
	return &Info{
		Name: p.GetName(), Version: p.GetVersion(), Schemes: p.GetSchemes(),
		Health: Health(p.GetHealth()), HealthReason: p.GetHealthReason(),
		Features:          p.GetFeatures(),
		HypervisorType:    p.GetHypervisorType(),
		HypervisorVersion: p.GetHypervisorVersion(),
	}
}

func recordToProto(r *Record) *driverv1.Record {
	p := &driverv1.Record{Gen: r.Gen, Uuid: r.UUID, Removed: r.Removed, Unknown: r.Unknown, Xml: r.XML, InactiveXml: r.InactiveXML}
	if !r.Removed && !r.Unknown {
		p.Domain = domainToProto(&r.Domain)
	}
	if r.Info != nil {
		p.Info = domainInfoToProto(r.Info)
	}
	return p
}

func recordFromProto(p *driverv1.Record) Record {
	r := Record{Gen: p.GetGen(), UUID: p.GetUuid(), Removed: p.GetRemoved(), Unknown: p.GetUnknown(), XML: p.GetXml(), InactiveXML: p.GetInactiveXml()}
	if d := domainFromProto(p.GetDomain()); d != nil {
		r.Domain = *d
	}
	if p.GetInfo() != nil {
		r.Info = domainInfoFromProto(p.GetInfo())
	}
	return r
}

func stampsToProto(ss []Stamp) []*driverv1.Stamp {
	out := make([]*driverv1.Stamp, len(ss))
	for i, s := range ss {
		out[i] = &driverv1.Stamp{Path: s.Path, Exists: s.Exists, Dev: s.Dev, Ino: s.Ino, CtimeNs: s.Ctime}
	}
	return out
}

func stampsFromProto(ps []*driverv1.Stamp) []Stamp {
	out := make([]Stamp, len(ps))
	for i, p := range ps {
		out[i] = Stamp{Path: p.GetPath(), Exists: p.GetExists(), Dev: p.GetDev(), Ino: p.GetIno(), Ctime: p.GetCtimeNs()}
	}
	return out
}
