package lxc

import (
	"encoding/xml"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/driver/domxml"
	"github.com/virtd/virtd/driver/hostinfo"
	"github.com/virtd/virtd/internal/lxc/controller"
	"github.com/virtd/virtd/virt"
)

// MetadataNS is the XML namespace of the driver's own settings inside a
// domain's <metadata>, for what libvirt's domain XML has no element for:
//
//	<metadata>
//	  <lxc:lxc xmlns:lxc="https://github.com/virtd/virtd/xmlns/lxc/1">
//	    <lxc:pids max="256"/>
//	  </lxc:lxc>
//	</metadata>
const MetadataNS = "https://github.com/virtd/virtd/xmlns/lxc/1"

// config is one parsed, checked domain definition; never changed once
// built.
type config struct {
	xml       *libvirtxml.Domain
	maxMemKiB uint64
	vcpus     uint32
	pidsMax   int64
}

// Name and UUID of the definition (domlist.Def).
func (c *config) Name() string { return c.xml.Name }
func (c *config) UUID() string { return c.xml.UUID }

func invalidf(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, virt.ErrInvalidArgument)...)
}

// honoured is what the driver honours of libvirt's domain XML, as
// libvirtxml field paths (see domxml.Fields): anything else that is set is
// refused at define, by name. Values are checked in parseConfig.
var honoured = domxml.NewFields("lxc", `
Type ID Name UUID Title Description
Memory.Value Memory.Unit CurrentMemory.Value CurrentMemory.Unit
VCPU.Placement VCPU.Value
CPUTune.Shares.Value CPUTune.Period.Value CPUTune.Quota.Value
OS.Type.Type OS.Type.Arch OS.Init OS.InitArgs OS.InitEnv.Name OS.InitEnv.Value OS.InitDir
IDMap.UIDs.Start IDMap.UIDs.Target IDMap.UIDs.Count
IDMap.GIDs.Start IDMap.GIDs.Target IDMap.GIDs.Count
OnPoweroff OnReboot OnCrash
Devices.Emulator
Devices.Filesystems.AccessMode Devices.Filesystems.Driver.Type
Devices.Filesystems.Source.Mount.Dir Devices.Filesystems.Source.RAM.Usage Devices.Filesystems.Source.RAM.Units
Devices.Filesystems.Target.Dir Devices.Filesystems.ReadOnly
Devices.Interfaces.MAC.Address Devices.Interfaces.Source.Bridge.Bridge Devices.Interfaces.Source.Ethernet
Devices.Interfaces.IP.Address Devices.Interfaces.IP.Family Devices.Interfaces.IP.Prefix
Devices.Interfaces.Route.Family Devices.Interfaces.Route.Address Devices.Interfaces.Route.Prefix Devices.Interfaces.Route.Gateway
Devices.Interfaces.Target.Dev Devices.Interfaces.Guest.Dev Devices.Interfaces.Link.State
Devices.Consoles.TTY Devices.Consoles.Source.Pty.Path Devices.Consoles.Target.Type Devices.Consoles.Target.Port
`)

// parseConfig parses and checks libvirt domain XML of type 'lxc'. Every
// element the driver cannot honour is refused by name. The returned XML is
// normalised (memory in KiB, uuid, MACs and defaults filled in, no id).
func parseConfig(doc string) (*config, error) {
	px, err := domxml.Parse(doc)
	if err != nil {
		return nil, err
	}
	x := *px
	if x.Type != "lxc" {
		return nil, invalidf("domain type %q is not served by the lxc driver (only type='lxc')", x.Type)
	}
	if err := honoured.Check(&x); err != nil {
		return nil, err
	}
	name := x.Name
	where := fmt.Sprintf("domain '%s'", name)
	if strings.TrimSpace(x.UUID) == "" {
		x.UUID = domutil.NewUUID()
	} else {
		u, err := domutil.ParseUUID(x.UUID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		x.UUID = u
	}
	x.ID = nil
	c := &config{xml: &x}

	if x.Memory == nil {
		return nil, invalidf("%s: memory size must be given with <memory>", where)
	}
	maxKiB, err := domutil.ScaleToKiB(uint64(x.Memory.Value), x.Memory.Unit)
	if err != nil {
		return nil, fmt.Errorf("%s: <memory>: %w", where, err)
	}
	if maxKiB < 4096 {
		return nil, invalidf("%s: <memory> must be at least 4 MiB", where)
	}
	c.maxMemKiB = maxKiB
	x.Memory = &libvirtxml.DomainMemory{Value: uint(maxKiB), Unit: "KiB"}
	if x.CurrentMemory != nil {
		cur, err := domutil.ScaleToKiB(uint64(x.CurrentMemory.Value), x.CurrentMemory.Unit)
		if err != nil {
			return nil, fmt.Errorf("%s: <currentMemory>: %w", where, err)
		}
		if cur == 0 || cur > maxKiB {
			cur = maxKiB
		}
		x.CurrentMemory = &libvirtxml.DomainCurrentMemory{Value: uint(cur), Unit: "KiB"}
	}

	c.vcpus = 1
	if x.VCPU != nil {
		if x.VCPU.Value == 0 {
			return nil, invalidf("%s: <vcpu> must be a count of at least 1", where)
		}
		c.vcpus = uint32(x.VCPU.Value)
	} else {
		x.VCPU = &libvirtxml.DomainVCPU{Placement: "static", Value: 1}
	}
	if x.CPUTune != nil {
		if p := x.CPUTune.Period; p != nil && (p.Value < 1000 || p.Value > 1000000) {
			return nil, invalidf("%s: <cputune><period> must be 1000..1000000 µs", where)
		}
	}

	if err := checkOS(&x, where); err != nil {
		return nil, err
	}
	if err := checkIDMap(x.IDMap, where); err != nil {
		return nil, err
	}
	for _, a := range []struct {
		what string
		v    *string
		def  string
	}{{"on_poweroff", &x.OnPoweroff, "destroy"}, {"on_reboot", &x.OnReboot, "restart"}, {"on_crash", &x.OnCrash, "destroy"}} {
		if *a.v == "" {
			*a.v = a.def
		}
		if *a.v != "destroy" && *a.v != "restart" {
			return nil, fmt.Errorf("%s: <%s>%s</%s> is not supported by the lxc driver (destroy or restart): %w",
				where, a.what, *a.v, a.what, virt.ErrNotSupported)
		}
	}
	if err := checkDevices(&x, where); err != nil {
		return nil, err
	}
	if c.pidsMax, err = pidsFromMetadata(x.Metadata); err != nil {
		return nil, fmt.Errorf("%s: <metadata>: %w", where, err)
	}
	return c, nil
}

func checkOS(x *libvirtxml.Domain, where string) error {
	if x.OS == nil {
		x.OS = &libvirtxml.DomainOS{}
	}
	if x.OS.Type == nil {
		x.OS.Type = &libvirtxml.DomainOSType{}
	}
	if x.OS.Type.Type == "" {
		x.OS.Type.Type = "exe"
	}
	if x.OS.Type.Type != "exe" {
		return invalidf("%s: os type %q is not supported by the lxc driver (only exe)", where, x.OS.Type.Type)
	}
	if a := x.OS.Type.Arch; a != "" && a != hostinfo.Arch() {
		return invalidf("%s: architecture %q is not the host's (%s)", where, a, hostinfo.Arch())
	}
	x.OS.Type.Arch = hostinfo.Arch()
	if x.OS.Init == "" {
		x.OS.Init = "/sbin/init"
	}
	if !filepath.IsAbs(x.OS.Init) {
		return invalidf("%s: <init> %q must be an absolute path", where, x.OS.Init)
	}
	for _, e := range x.OS.InitEnv {
		if e.Name == "" || strings.ContainsAny(e.Name, "= ") {
			return invalidf("%s: <initenv name='%s'> is not a valid variable name", where, e.Name)
		}
	}
	if d := x.OS.InitDir; d != "" && !filepath.IsAbs(d) {
		return invalidf("%s: <initdir> %q must be an absolute path", where, d)
	}
	return nil
}

// checkIDMap checks that an idmap fits: uid and gid maps both, each
// mapping container id 0, counts above zero, no overlap inside or outside.
func checkIDMap(m *libvirtxml.DomainIDMap, where string) error {
	if m == nil {
		return nil
	}
	for what, rs := range map[string][]libvirtxml.DomainIDMapRange{"uid": m.UIDs, "gid": m.GIDs} {
		if len(rs) == 0 {
			return invalidf("%s: <idmap> has no <%s> map (both uid and gid maps are needed)", where, what)
		}
		if len(rs) > 340 {
			return invalidf("%s: <idmap> has more than 340 <%s> ranges", where, what)
		}
		zero := false
		for i, r := range rs {
			if r.Count == 0 {
				return invalidf("%s: <idmap><%s start='%d'> has count 0", where, what, r.Start)
			}
			if uint64(r.Start)+uint64(r.Count) > 1<<32-1 || uint64(r.Target)+uint64(r.Count) > 1<<32-1 {
				return invalidf("%s: <idmap><%s start='%d' target='%d' count='%d'> goes beyond the 32-bit id range", where, what, r.Start, r.Target, r.Count)
			}
			zero = zero || r.Start == 0
			for _, o := range rs[:i] {
				if overlap(r.Start, r.Count, o.Start, o.Count) || overlap(r.Target, r.Count, o.Target, o.Count) {
					return invalidf("%s: <idmap> <%s> ranges starting at %d and %d overlap", where, what, o.Start, r.Start)
				}
			}
		}
		if !zero {
			return invalidf("%s: <idmap> does not map %s 0 (the container's root)", where, what)
		}
	}
	return nil
}

func overlap(a, n, b, m uint) bool { return a < b+m && b < a+n }

func checkDevices(x *libvirtxml.Domain, where string) error {
	if x.Devices == nil {
		x.Devices = &libvirtxml.DomainDeviceList{}
	}
	dv := x.Devices
	root := false
	for i := range dv.Filesystems {
		fs := &dv.Filesystems[i]
		if fs.AccessMode != "" && fs.AccessMode != "passthrough" {
			return fmt.Errorf("%s: <filesystem accessmode='%s'> is not supported by the lxc driver (only passthrough): %w", where, fs.AccessMode, virt.ErrNotSupported)
		}
		if fs.Driver != nil && (fs.Driver.Type != "" && fs.Driver.Type != "path") {
			return fmt.Errorf("%s: <filesystem><driver type='%s'> is not supported by the lxc driver (only path): %w", where, fs.Driver.Type, virt.ErrNotSupported)
		}
		if fs.Target == nil || !filepath.IsAbs(fs.Target.Dir) {
			return invalidf("%s: <filesystem> needs an absolute <target dir>", where)
		}
		for _, e := range strings.Split(fs.Target.Dir, "/") {
			if e == ".." {
				return invalidf("%s: <filesystem> target %q leaves the root filesystem", where, fs.Target.Dir)
			}
		}
		switch {
		case fs.Source != nil && fs.Source.Mount != nil:
			if !filepath.IsAbs(fs.Source.Mount.Dir) {
				return invalidf("%s: <filesystem type='mount'> needs an absolute <source dir>", where)
			}
		case fs.Source != nil && fs.Source.RAM != nil:
			if filepath.Clean(fs.Target.Dir) == "/" {
				return invalidf("%s: the root filesystem must be of type 'mount'", where)
			}
		default:
			return invalidf("%s: <filesystem> target %q: only type 'mount' (with <source dir>) and 'ram' are supported", where, fs.Target.Dir)
		}
		if filepath.Clean(fs.Target.Dir) == "/" {
			if root {
				return invalidf("%s: two <filesystem> elements have target dir '/'", where)
			}
			root = true
		}
	}
	if !root {
		return invalidf("%s: a <filesystem type='mount'> with <target dir='/'/> (the root filesystem) is required", where)
	}
	for i := range dv.Interfaces {
		ifc := &dv.Interfaces[i]
		w := fmt.Sprintf("%s <interface> %d", where, i)
		at := fmt.Sprintf("%s: domain/devices/interface[%d]", where, i+1)
		switch {
		case ifc.Source != nil && ifc.Source.Bridge != nil:
			if ifc.Source.Bridge.Bridge == "" {
				return invalidf("%s: type 'bridge' needs <source bridge='...'/>", w)
			}
			if err := domutil.CheckInterfaceName(ifc.Source.Bridge.Bridge); err != nil {
				return fmt.Errorf("%s/source/@bridge: %w", at, err)
			}
		case ifc.Source != nil && ifc.Source.Ethernet != nil:
		default:
			return fmt.Errorf("%s: only interface types 'bridge' and 'ethernet' are supported by the lxc driver: %w", w, virt.ErrNotSupported)
		}
		if ifc.Link != nil && ifc.Link.State != "" && ifc.Link.State != "up" {
			return fmt.Errorf("%s: <link state='%s'> is not supported (interfaces are always up): %w", w, ifc.Link.State, virt.ErrNotSupported)
		}
		if ifc.MAC == nil || ifc.MAC.Address == "" {
			ifc.MAC = &libvirtxml.DomainInterfaceMAC{Address: domutil.NewMAC()}
		} else if _, err := net.ParseMAC(ifc.MAC.Address); err != nil {
			return invalidf("%s: <mac address='%s'> is not a MAC address", w, ifc.MAC.Address)
		}
		// The host and guest names go to the kernel as they are.
		if ifc.Target != nil && ifc.Target.Dev != "" {
			if err := domutil.CheckInterfaceName(ifc.Target.Dev); err != nil {
				return fmt.Errorf("%s/target/@dev: %w", at, err)
			}
		}
		if ifc.Guest != nil {
			if err := domutil.CheckInterfaceName(ifc.Guest.Dev); err != nil {
				return fmt.Errorf("%s/guest/@dev: %w", at, err)
			}
		}
		for _, ip := range ifc.IP {
			if net.ParseIP(ip.Address) == nil {
				return invalidf("%s: <ip address='%s'> is not an IP address", w, ip.Address)
			}
		}
		for _, r := range ifc.Route {
			if net.ParseIP(r.Gateway) == nil || (r.Address != "" && net.ParseIP(r.Address) == nil) {
				return invalidf("%s: <route> needs a gateway and an address with a prefix", w)
			}
		}
	}
	if len(dv.Consoles) > 1 {
		return fmt.Errorf("%s: only one <console> is supported by the lxc driver: %w", where, virt.ErrNotSupported)
	}
	for i := range dv.Consoles {
		con := &dv.Consoles[i]
		if con.Target != nil && con.Target.Type != "" && con.Target.Type != "lxc" && con.Target.Type != "serial" {
			return fmt.Errorf("%s: <console><target type='%s'> is not supported (lxc): %w", where, con.Target.Type, virt.ErrNotSupported)
		}
		// The pty path is runtime state: it shows in the live XML only.
		con.Source, con.TTY = nil, ""
		if con.Target == nil {
			port := uint(0)
			con.Target = &libvirtxml.DomainConsoleTarget{Type: "lxc", Port: &port}
		}
	}
	return nil
}

// pidsFromMetadata reads <lxc:pids max='N'/> from the driver's metadata.
func pidsFromMetadata(m *libvirtxml.DomainMetadata) (int64, error) {
	if m == nil || !strings.Contains(m.XML, MetadataNS) {
		return 0, nil
	}
	var doc struct {
		Items []struct {
			XMLName xml.Name
			Pids    *struct {
				Max int64 `xml:"max,attr"`
			} `xml:"https://github.com/virtd/virtd/xmlns/lxc/1 pids"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal([]byte("<metadata>"+m.XML+"</metadata>"), &doc); err != nil {
		return 0, invalidf("%v", err)
	}
	for _, it := range doc.Items {
		if it.XMLName.Space == MetadataNS && it.Pids != nil {
			if it.Pids.Max < 1 {
				return 0, invalidf("<pids max='%d'> must be at least 1", it.Pids.Max)
			}
			return it.Pids.Max, nil
		}
	}
	return 0, nil
}

// spec builds what the controller needs from a checked config.
func (c *config) spec(cgroupParent string) *controller.Spec {
	x := c.xml
	s := &controller.Spec{
		Name: x.Name, UUID: x.UUID, Hostname: x.Name,
		Init:         append([]string{x.OS.Init}, x.OS.InitArgs...),
		WorkDir:      x.OS.InitDir,
		MemoryBytes:  c.maxMemKiB * 1024,
		PidsMax:      c.pidsMax,
		CgroupParent: cgroupParent,
		OnPoweroff:   x.OnPoweroff, OnReboot: x.OnReboot, OnCrash: x.OnCrash,
	}
	if len(s.Hostname) > 63 {
		s.Hostname = s.Hostname[:63]
	}
	for _, e := range x.OS.InitEnv {
		s.Env = append(s.Env, e.Name+"="+e.Value)
	}
	if t := x.CPUTune; t != nil {
		if t.Shares != nil {
			s.CPUShares = uint64(t.Shares.Value)
		}
		if t.Period != nil {
			s.CPUPeriod = uint64(t.Period.Value)
		}
		if t.Quota != nil {
			s.CPUQuota = t.Quota.Value
		}
	}
	if m := x.IDMap; m != nil {
		for _, r := range m.UIDs {
			s.UIDMap = append(s.UIDMap, controller.IDMap{Container: uint32(r.Start), Host: uint32(r.Target), Count: uint32(r.Count)})
		}
		for _, r := range m.GIDs {
			s.GIDMap = append(s.GIDMap, controller.IDMap{Container: uint32(r.Start), Host: uint32(r.Target), Count: uint32(r.Count)})
		}
	}
	for _, fs := range x.Devices.Filesystems {
		ro := fs.ReadOnly != nil
		if filepath.Clean(fs.Target.Dir) == "/" {
			s.RootFS = fs.Source.Mount.Dir
			continue
		}
		m := controller.Mount{Target: fs.Target.Dir, ReadOnly: ro}
		if fs.Source.RAM != nil {
			kib, _ := domutil.ScaleToKiB(uint64(fs.Source.RAM.Usage), fs.Source.RAM.Units)
			m.Tmpfs, m.SizeBytes = true, kib*1024
		} else {
			m.Source = fs.Source.Mount.Dir
		}
		s.Mounts = append(s.Mounts, m)
	}
	for i, ifc := range x.Devices.Interfaces {
		n := controller.Interface{
			HostName:  fmt.Sprintf("vx%s%d", strings.ReplaceAll(x.UUID, "-", "")[:8], i),
			GuestName: fmt.Sprintf("eth%d", i),
			MAC:       ifc.MAC.Address,
		}
		if ifc.Target != nil && ifc.Target.Dev != "" {
			n.HostName = ifc.Target.Dev
		}
		if ifc.Guest != nil {
			n.GuestName = ifc.Guest.Dev
		}
		if ifc.Source.Bridge != nil {
			n.Bridge = ifc.Source.Bridge.Bridge
		}
		for _, ip := range ifc.IP {
			p := ip.Prefix
			if p == 0 {
				p = 24
				if strings.Contains(ip.Address, ":") {
					p = 64
				}
			}
			n.Addrs = append(n.Addrs, fmt.Sprintf("%s/%d", ip.Address, p))
		}
		for _, r := range ifc.Route {
			dest := "default"
			if r.Address != "" {
				dest = fmt.Sprintf("%s/%d", r.Address, r.Prefix)
			}
			n.Routes = append(n.Routes, controller.Route{Dest: dest, Gateway: r.Gateway})
		}
		s.Interfaces = append(s.Interfaces, n)
	}
	return s
}

// marshal writes the definition, with id='N' when id > 0 (live XML) and
// the runtime details of st (console pty, host interface names).
func (c *config) marshal(id int32, st *controller.Status) (string, error) {
	x := *c.xml
	if id > 0 {
		n := int(id)
		x.ID = &n
		if st != nil {
			dv := *x.Devices
			dv.Consoles = append([]libvirtxml.DomainConsole(nil), dv.Consoles...)
			for i := range dv.Consoles {
				dv.Consoles[i].TTY = st.ConsolePTY
				dv.Consoles[i].Source = &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{Path: st.ConsolePTY}}
			}
			dv.Interfaces = append([]libvirtxml.DomainInterface(nil), dv.Interfaces...)
			for i := range dv.Interfaces {
				if i < len(st.HostIfaces) {
					dv.Interfaces[i].Target = &libvirtxml.DomainInterfaceTarget{Dev: st.HostIfaces[i]}
				}
			}
			x.Devices = &dv
		}
	}
	s, err := x.Marshal()
	if err != nil {
		return "", virt.Errorf(virt.ErrInternal, "domain '%s': writing XML: %w", c.Name(), err)
	}
	return s, nil
}
