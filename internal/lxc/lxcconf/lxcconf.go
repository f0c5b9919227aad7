// Package lxcconf imports LXC tools configuration files (the lxc.* keys
// of lxc-create's containers, both the names before LXC 3.0 and the 3.x
// ones) into libvirt domain XML of type 'lxc', as libvirt's
// `virsh domxml-from-native lxc-tools` does. Keys with no domain XML
// counterpart the LXC driver could honour are ignored, as libvirt ignores
// them; what cannot be imported faithfully (a network type other than
// veth or empty, a root filesystem that is not a directory) is an error.
//
// A conversion reads only the text it is given. The LXC driver converts
// for any local user on virtd's read-only socket while running as root,
// so it must never open, stat or list a path that a configuration names:
// paths (the root filesystem, bind mount sources, hooks) are copied into
// the XML as text and nothing more. The keys whose meaning is the content
// of another file, lxc.include and lxc.mount.fstab (lxc.mount), are
// refused as invalid arguments; virtsh puts those files' content in the
// configuration, read with its user's rights, before sending it.
package lxcconf

import (
	"bufio"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

// MetadataNS is the LXC driver's metadata namespace (for the pids limit).
const MetadataNS = "https://github.com/virtd/virtd/xmlns/lxc/1"

// entry is one key = value line.
type entry struct {
	line       int
	key, value string
}

// net is one network's keys, by their 3.x name (type, link, ...).
type net struct {
	index int
	keys  map[string]string
}

// ToDomainXML converts the configuration text to domain XML.
func ToDomainXML(config string) (string, error) {
	d, err := Parse(config)
	if err != nil {
		return "", err
	}
	return d.Marshal()
}

// oldNames maps pre-3.0 keys to their 3.x names.
var oldNames = map[string]string{
	"lxc.utsname":     "lxc.uts.name",
	"lxc.rootfs":      "lxc.rootfs.path",
	"lxc.init_cmd":    "lxc.init.cmd",
	"lxc.id_map":      "lxc.idmap",
	"lxc.console":     "lxc.console.path",
	"lxc.mount":       "lxc.mount.fstab",
	"lxc.network":     "lxc.net",
	"lxc.init_cwd":    "lxc.init.cwd",
	"lxc.environment": "lxc.environment",
}

// Parse converts the configuration text to a domain.
func Parse(config string) (*libvirtxml.Domain, error) {
	entries, err := parseLines(config)
	if err != nil {
		return nil, err
	}
	d := &libvirtxml.Domain{
		Type:       "lxc",
		Memory:     &libvirtxml.DomainMemory{Value: 65536, Unit: "KiB"},
		VCPU:       &libvirtxml.DomainVCPU{Placement: "static", Value: 1},
		OS:         &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Type: "exe"}, Init: "/sbin/init"},
		OnPoweroff: "destroy", OnReboot: "restart", OnCrash: "destroy",
		Devices: &libvirtxml.DomainDeviceList{},
	}
	var (
		rootfs  string
		mounts  []libvirtxml.DomainFilesystem
		nets    []*net
		oldNet  *net
		console = true
		pids    int64
	)
	newNets := map[int]*net{}
	for _, e := range entries {
		key, v := e.key, e.value
		// Old-style network keys: lxc.network.type starts a new network.
		if k, ok := strings.CutPrefix(key, "lxc.network."); ok {
			if k == "type" {
				oldNet = &net{index: len(nets), keys: map[string]string{}}
				nets = append(nets, oldNet)
			} else if oldNet == nil {
				return nil, fmt.Errorf("line %d: %s before lxc.network.type", e.line, key)
			}
			oldNet.keys[k] = v
			continue
		}
		if k, ok := strings.CutPrefix(key, "lxc.net."); ok {
			idx, rest, ok := strings.Cut(k, ".")
			n, err := strconv.Atoi(idx)
			if !ok || err != nil || n < 0 {
				return nil, fmt.Errorf("line %d: malformed network key %s", e.line, key)
			}
			if newNets[n] == nil {
				newNets[n] = &net{index: 1000 + n, keys: map[string]string{}}
				nets = append(nets, newNets[n])
			}
			newNets[n].keys[rest] = v
			continue
		}
		if nk, ok := oldNames[key]; ok {
			key = nk
		}
		if err := namesFile(e, key); err != nil {
			return nil, err
		}
		switch key {
		case "lxc.uts.name":
			d.Name = v
		case "lxc.rootfs.path":
			rootfs = v
		case "lxc.arch":
			a, err := arch(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", e.line, err)
			}
			d.OS.Type.Arch = a
		case "lxc.init.cmd":
			f := strings.Fields(v)
			if len(f) > 0 {
				d.OS.Init, d.OS.InitArgs = f[0], f[1:]
			}
		case "lxc.init.cwd":
			d.OS.InitDir = v
		case "lxc.environment":
			name, val, _ := strings.Cut(v, "=")
			d.OS.InitEnv = append(d.OS.InitEnv, libvirtxml.DomainOSInitEnv{Name: strings.TrimSpace(name), Value: strings.TrimSpace(val)})
		case "lxc.cgroup.memory.limit_in_bytes", "lxc.cgroup2.memory.max":
			kib, ok, err := sizeKiB(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %w", e.line, key, err)
			}
			if ok {
				d.Memory.Value = uint(kib)
			}
		case "lxc.cgroup.cpu.shares":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %q is not a number", e.line, key, v)
			}
			cputune(d).Shares = &libvirtxml.DomainCPUTuneShares{Value: uint(n)}
		case "lxc.cgroup.cpu.cfs_quota_us":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %q is not a number", e.line, key, v)
			}
			if n > 0 {
				cputune(d).Quota = &libvirtxml.DomainCPUTuneQuota{Value: n}
			}
		case "lxc.cgroup.cpu.cfs_period_us":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: %s: %q is not a number", e.line, key, v)
			}
			cputune(d).Period = &libvirtxml.DomainCPUTunePeriod{Value: n}
		case "lxc.cgroup2.cpu.max":
			f := strings.Fields(v)
			if len(f) >= 1 && f[0] != "max" {
				n, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("line %d: %s: %q is not a quota", e.line, key, v)
				}
				cputune(d).Quota = &libvirtxml.DomainCPUTuneQuota{Value: n}
			}
			if len(f) == 2 {
				n, err := strconv.ParseUint(f[1], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("line %d: %s: %q is not a period", e.line, key, v)
				}
				cputune(d).Period = &libvirtxml.DomainCPUTunePeriod{Value: n}
			}
		case "lxc.cgroup.pids.max", "lxc.cgroup2.pids.max":
			if v != "max" {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 1 {
					return nil, fmt.Errorf("line %d: %s: %q is not a process count", e.line, key, v)
				}
				pids = n
			}
		case "lxc.idmap":
			if err := idmap(d, v); err != nil {
				return nil, fmt.Errorf("line %d: %w", e.line, err)
			}
		case "lxc.console.path":
			console = v != "none"
		case "lxc.mount.entry":
			fs, err := mountEntry(v, rootfs)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", e.line, err)
			}
			if fs != nil {
				mounts = append(mounts, *fs)
			}
		}
	}
	if d.Name == "" {
		return nil, fmt.Errorf("lxc.uts.name (lxc.utsname) is missing: a domain needs a name")
	}
	if rootfs == "" {
		return nil, fmt.Errorf("lxc.rootfs.path (lxc.rootfs) is missing")
	}
	dir, err := rootfsDir(rootfs)
	if err != nil {
		return nil, err
	}
	d.Devices.Filesystems = append([]libvirtxml.DomainFilesystem{{
		AccessMode: "passthrough",
		Source:     &libvirtxml.DomainFilesystemSource{Mount: &libvirtxml.DomainFilesystemSourceMount{Dir: dir}},
		Target:     &libvirtxml.DomainFilesystemTarget{Dir: "/"},
	}}, mounts...)
	sort.SliceStable(nets, func(i, j int) bool { return nets[i].index < nets[j].index })
	for i, n := range nets {
		ifc, err := network(n, i)
		if err != nil {
			return nil, err
		}
		if ifc != nil {
			d.Devices.Interfaces = append(d.Devices.Interfaces, *ifc)
		}
	}
	if console {
		port := uint(0)
		d.Devices.Consoles = []libvirtxml.DomainConsole{{
			Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
			Target: &libvirtxml.DomainConsoleTarget{Type: "lxc", Port: &port},
		}}
	}
	if pids > 0 {
		d.Metadata = &libvirtxml.DomainMetadata{XML: fmt.Sprintf(
			"<lxc:lxc xmlns:lxc=%q><lxc:pids max=\"%d\"/></lxc:lxc>", MetadataNS, pids)}
	}
	return d, nil
}

func parseLines(config string) ([]entry, error) {
	var out []entry
	sc := bufio.NewScanner(strings.NewReader(config))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("line %d: %q is not a key = value line", n, line)
		}
		if !strings.HasPrefix(k, "lxc.") {
			return nil, fmt.Errorf("line %d: %q is not an lxc.* key", n, k)
		}
		out = append(out, entry{line: n, key: k, value: unquote(strings.TrimSpace(v))})
	}
	return out, sc.Err()
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

func cputune(d *libvirtxml.Domain) *libvirtxml.DomainCPUTune {
	if d.CPUTune == nil {
		d.CPUTune = &libvirtxml.DomainCPUTune{}
	}
	return d.CPUTune
}

func arch(v string) (string, error) {
	switch v {
	case "x86_64", "amd64":
		return "x86_64", nil
	case "i686", "x86", "i386":
		return "i686", nil
	case "arm64", "aarch64":
		return "aarch64", nil
	}
	return "", fmt.Errorf("unknown lxc.arch %q", v)
}

// sizeKiB reads a size in bytes with an optional K, M or G suffix; -1 and
// max mean no limit (ok false).
func sizeKiB(v string) (kib uint64, ok bool, err error) {
	if v == "-1" || v == "max" {
		return 0, false, nil
	}
	mult := uint64(1)
	switch strings.ToUpper(v[len(v)-1:]) {
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	}
	if mult != 1 {
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%q is not a size", v)
	}
	return (n*mult + 1023) / 1024, true, nil
}

func idmap(d *libvirtxml.Domain, v string) error {
	f := strings.Fields(v)
	if len(f) != 4 || (f[0] != "u" && f[0] != "g") {
		return fmt.Errorf("lxc.idmap %q: want 'u|g container-id host-id count'", v)
	}
	var n [3]uint
	for i, s := range f[1:] {
		x, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return fmt.Errorf("lxc.idmap %q: %q is not an id", v, s)
		}
		n[i] = uint(x)
	}
	if d.IDMap == nil {
		d.IDMap = &libvirtxml.DomainIDMap{}
	}
	r := libvirtxml.DomainIDMapRange{Start: n[0], Target: n[1], Count: n[2]}
	if f[0] == "u" {
		d.IDMap.UIDs = append(d.IDMap.UIDs, r)
	} else {
		d.IDMap.GIDs = append(d.IDMap.GIDs, r)
	}
	return nil
}

func rootfsDir(v string) (string, error) {
	if t, rest, ok := strings.Cut(v, ":"); ok && !strings.HasPrefix(v, "/") {
		if t != "dir" {
			return "", fmt.Errorf("lxc.rootfs.path %q: root filesystems of type %q are not supported (only directories)", v, t)
		}
		v = rest
	}
	if !strings.HasPrefix(v, "/") {
		return "", fmt.Errorf("lxc.rootfs.path %q is not an absolute directory", v)
	}
	if strings.HasPrefix(v, "/dev/") {
		return "", fmt.Errorf("lxc.rootfs.path %q: block device root filesystems are not supported", v)
	}
	return v, nil
}

// mountEntry converts one fstab-style line. Entries for what every
// container gets anyway (proc, sysfs, devpts, cgroups) are skipped.
func mountEntry(v, rootfs string) (*libvirtxml.DomainFilesystem, error) {
	f := strings.Fields(v)
	if len(f) < 4 {
		return nil, fmt.Errorf("mount entry %q: want 'source target type options'", v)
	}
	src, dst, typ, opts := f[0], f[1], f[2], strings.Split(f[3], ",")
	switch typ {
	case "proc", "sysfs", "devpts", "cgroup", "cgroup2", "mqueue":
		return nil, nil
	}
	if root, err := rootfsDir(rootfs); err == nil && strings.HasPrefix(dst, root+"/") {
		dst = strings.TrimPrefix(dst, root)
	}
	if !strings.HasPrefix(dst, "/") {
		dst = "/" + dst
	}
	fs := &libvirtxml.DomainFilesystem{Target: &libvirtxml.DomainFilesystemTarget{Dir: dst}}
	has := func(o string) bool {
		for _, x := range opts {
			if x == o {
				return true
			}
		}
		return false
	}
	if has("ro") {
		fs.ReadOnly = &libvirtxml.DomainFilesystemReadOnly{}
	}
	switch {
	case typ == "tmpfs":
		var kib uint64
		for _, o := range opts {
			if s, ok := strings.CutPrefix(o, "size="); ok {
				n, ok, err := sizeKiB(s)
				if err != nil {
					return nil, fmt.Errorf("mount entry %q: %w", v, err)
				}
				if ok {
					kib = n
				}
			}
		}
		fs.Source = &libvirtxml.DomainFilesystemSource{RAM: &libvirtxml.DomainFilesystemSourceRAM{Usage: uint(kib), Units: "KiB"}}
	case has("bind") || has("rbind"):
		fs.AccessMode = "passthrough"
		fs.Source = &libvirtxml.DomainFilesystemSource{Mount: &libvirtxml.DomainFilesystemSourceMount{Dir: src}}
	default:
		return nil, fmt.Errorf("mount entry %q: filesystems of type %q are not supported (bind mounts and tmpfs are)", v, typ)
	}
	return fs, nil
}

// namesFile refuses the keys whose value names a file (or directory)
// whose content is part of the configuration: the conversion reads no
// file, so it cannot honour them, and it must not drop them silently. The
// error names the key as written and what to send instead; it does not
// repeat the path, so that it is the same whether the path exists or not.
func namesFile(e entry, key string) error {
	var instead string
	switch key {
	case "lxc.mount.fstab":
		instead = "give its entries as lxc.mount.entry lines"
	case "lxc.include":
		instead = "put the included settings in the configuration itself"
	default:
		return nil
	}
	written := e.key
	if written != key {
		written += " (" + key + ")"
	}
	return fmt.Errorf("line %d: %s names a file, and a conversion reads no file: %s "+
		"(virtsh domxml-from-native does this, reading the file with your rights): %w",
		e.line, written, instead, virt.ErrInvalidArgument)
}

// network converts one network; an "empty" network (a private network
// namespace with only loopback, which every container gets) adds nothing.
func network(n *net, i int) (*libvirtxml.DomainInterface, error) {
	k := n.keys
	// Old-style key names (lxc.network.veth.pair, ipv4 ...) are the same
	// as the 3.x ones after the prefix, but for ipv4/ipv6.
	typ := k["type"]
	switch typ {
	case "empty":
		return nil, nil
	case "veth":
	case "":
		return nil, fmt.Errorf("network %d has no type", i)
	case "none":
		return nil, fmt.Errorf("network %d: type 'none' (sharing the host's network) is not supported: containers always get their own network namespace", i)
	default:
		return nil, fmt.Errorf("network %d: type %q is not supported (veth and empty are)", i, typ)
	}
	ifc := &libvirtxml.DomainInterface{Source: &libvirtxml.DomainInterfaceSource{}}
	if br := k["link"]; br != "" {
		ifc.Source.Bridge = &libvirtxml.DomainInterfaceSourceBridge{Bridge: br}
	} else {
		ifc.Source.Ethernet = &libvirtxml.DomainInterfaceSourceEthernet{}
	}
	if mac := k["hwaddr"]; mac != "" {
		ifc.MAC = &libvirtxml.DomainInterfaceMAC{Address: mac}
	}
	if p := k["veth.pair"]; p != "" {
		ifc.Target = &libvirtxml.DomainInterfaceTarget{Dev: p}
	}
	if name := k["name"]; name != "" {
		ifc.Guest = &libvirtxml.DomainInterfaceGuest{Dev: name}
	}
	for _, fam := range []string{"ipv4", "ipv6"} {
		addr := firstOf(k, fam+".address", fam)
		if addr != "" {
			a, prefix, _ := strings.Cut(strings.Fields(addr)[0], "/")
			ip := libvirtxml.DomainInterfaceIP{Address: a, Family: fam}
			if prefix != "" {
				p, err := strconv.ParseUint(prefix, 10, 8)
				if err != nil {
					return nil, fmt.Errorf("network %d: address %q has a bad prefix", i, addr)
				}
				ip.Prefix = uint(p)
			}
			ifc.IP = append(ifc.IP, ip)
		}
		if gw := k[fam+".gateway"]; gw != "" && gw != "auto" {
			ifc.Route = append(ifc.Route, libvirtxml.DomainInterfaceRoute{Family: fam, Gateway: gw})
		}
	}
	if k["flags"] == "up" {
		ifc.Link = &libvirtxml.DomainInterfaceLink{State: "up"}
	}
	return ifc, nil
}

func firstOf(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := m[k]; v != "" {
			return v
		}
	}
	return ""
}
