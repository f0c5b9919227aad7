package qemu

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"libvirt.org/go/libvirtxml"
)

// onOff checks a feature's state attribute: "" (on), "on" or "off".
func onOff(elem string, s *libvirtxml.DomainFeatureState, bad badFunc) error {
	if s != nil && s.State != "" && s.State != "on" && s.State != "off" {
		return bad("<%s state='%s'> must be on or off", elem, s.State)
	}
	return nil
}

func stateOn(s *libvirtxml.DomainFeatureState) bool { return s != nil && s.State != "off" }

// hypervFlags lists the Hyper-V enlightenments the driver passes on, by
// their element and QEMU's CPU property.
var hypervFlags = []struct {
	elem, prop string
	get        func(h *libvirtxml.DomainFeatureHyperV) *libvirtxml.DomainFeatureState
}{
	{"relaxed", "hv-relaxed", func(h *libvirtxml.DomainFeatureHyperV) *libvirtxml.DomainFeatureState { return h.Relaxed }},
	{"vapic", "hv-vapic", func(h *libvirtxml.DomainFeatureHyperV) *libvirtxml.DomainFeatureState { return h.VAPIC }},
	{"vpindex", "hv-vpindex", func(h *libvirtxml.DomainFeatureHyperV) *libvirtxml.DomainFeatureState { return h.VPIndex }},
	{"runtime", "hv-runtime", func(h *libvirtxml.DomainFeatureHyperV) *libvirtxml.DomainFeatureState { return h.Runtime }},
	{"synic", "hv-synic", func(h *libvirtxml.DomainFeatureHyperV) *libvirtxml.DomainFeatureState { return h.Synic }},
	{"reset", "hv-reset", func(h *libvirtxml.DomainFeatureHyperV) *libvirtxml.DomainFeatureState { return h.Reset }},
	{"frequencies", "hv-frequencies", func(h *libvirtxml.DomainFeatureHyperV) *libvirtxml.DomainFeatureState { return h.Frequencies }},
	{"reenlightenment", "hv-reenlightenment", func(h *libvirtxml.DomainFeatureHyperV) *libvirtxml.DomainFeatureState { return h.ReEnlightenment }},
	{"ipi", "hv-ipi", func(h *libvirtxml.DomainFeatureHyperV) *libvirtxml.DomainFeatureState { return h.IPI }},
	{"evmcs", "hv-evmcs", func(h *libvirtxml.DomainFeatureHyperV) *libvirtxml.DomainFeatureState { return h.EVMCS }},
}

// normaliseFeatures checks <features>, <clock>, <pm>, the boot menu,
// SMBIOS and the security label.
func normaliseFeatures(x *libvirtxml.Domain, fam string, bad badFunc) error {
	if f := x.Features; f != nil {
		for _, s := range []struct {
			elem string
			st   *libvirtxml.DomainFeatureState
		}{{"vmport", f.VMPort}, {"pmu", f.PMU}, {"vmcoreinfo", f.VMCoreInfo}, {"pvspinlock", f.PVSpinlock}} {
			if err := onOff(s.elem, s.st, bad); err != nil {
				return err
			}
		}
		if f.VMCoreInfo != nil && f.VMCoreInfo.State == "" {
			f.VMCoreInfo.State = "on"
		}
		if f.SMM != nil {
			if err := onOff("smm", &libvirtxml.DomainFeatureState{State: f.SMM.State}, bad); err != nil {
				return err
			}
			if f.SMM.TSeg != nil {
				return bad("<smm><tseg> is not supported")
			}
		}
		if h := f.HyperV; h != nil {
			if h.Mode != "" && h.Mode != "custom" {
				return bad("<hyperv mode='%s'> is not supported (only custom)", h.Mode)
			}
			for _, fl := range hypervFlags {
				if err := onOff("hyperv/"+fl.elem, fl.get(h), bad); err != nil {
					return err
				}
			}
			if s := h.Spinlocks; s != nil {
				if err := onOff("hyperv/spinlocks", &s.DomainFeatureState, bad); err != nil {
					return err
				}
				if s.State != "off" && s.Retries < 4095 {
					return bad("<hyperv><spinlocks retries='%d'> must be at least 4095", s.Retries)
				}
			}
			if s := h.STimer; s != nil {
				if err := onOff("hyperv/stimer", &s.DomainFeatureState, bad); err != nil {
					return err
				}
				if s.Direct != nil {
					return bad("<hyperv><stimer><direct> is not supported")
				}
			}
			if v := h.VendorId; v != nil {
				if err := onOff("hyperv/vendor_id", &v.DomainFeatureState, bad); err != nil {
					return err
				}
				if v.State != "off" && (v.Value == "" || len(v.Value) > 12 || strings.ContainsAny(v.Value, ",=")) {
					return bad("<hyperv><vendor_id value='%s'> must be 1..12 characters, without ',' or '='", v.Value)
				}
			}
			if h.TLBFlush != nil {
				if err := onOff("hyperv/tlbflush", &h.TLBFlush.DomainFeatureState, bad); err != nil {
					return err
				}
			}
		}
		if k := f.KVM; k != nil {
			if err := onOff("kvm/hidden", k.Hidden, bad); err != nil {
				return err
			}
			if k.HintDedicated != nil || k.PollControl != nil || k.PVIPI != nil || k.DirtyRing != nil {
				return bad("<kvm>: only <hidden> is supported")
			}
		}
		if f.IOAPIC != nil && f.IOAPIC.Driver != "" && f.IOAPIC.Driver != "qemu" {
			return bad("<ioapic driver='%s'> is not supported under TCG (only qemu)", f.IOAPIC.Driver)
		}
		if f.HAP != nil {
			if err := onOff("hap", f.HAP, bad); err != nil {
				return err
			}
		}
	}
	if err := normaliseClock(x, bad); err != nil {
		return err
	}
	if pm := x.PM; pm != nil {
		for _, p := range []struct {
			elem string
			pol  *libvirtxml.DomainPMPolicy
		}{{"suspend-to-mem", pm.SuspendToMem}, {"suspend-to-disk", pm.SuspendToDisk}} {
			if p.pol != nil && p.pol.Enabled != "yes" && p.pol.Enabled != "no" {
				return bad("<pm><%s enabled='%s'> must be yes or no", p.elem, p.pol.Enabled)
			}
		}
	}
	if m := x.OS.BootMenu; m != nil {
		if m.Enable != "yes" && m.Enable != "no" {
			return bad("<bootmenu enable='%s'> must be yes or no", m.Enable)
		}
		if m.Timeout != "" {
			n, err := strconv.ParseUint(m.Timeout, 10, 16)
			if err != nil {
				return bad("<bootmenu timeout='%s'> must be 0..65535 milliseconds", m.Timeout)
			}
			_ = n
		}
	}
	if b := x.OS.BIOS; b != nil {
		if b.UseSerial != "" && b.UseSerial != "yes" && b.UseSerial != "no" {
			return bad("<bios useserial='%s'> must be yes or no", b.UseSerial)
		}
		if b.RebootTimeout != nil && (*b.RebootTimeout < -1 || *b.RebootTimeout > 65535) {
			return bad("<bios rebootTimeout='%d'> must be -1..65535", *b.RebootTimeout)
		}
	}
	if s := x.OS.SMBios; s != nil {
		switch s.Mode {
		case "sysinfo":
			if x.SysInfo == nil || x.SysInfo[0].SMBIOS == nil {
				return bad("<smbios mode='sysinfo'> needs a <sysinfo type='smbios'>")
			}
		case "emulate":
		default:
			return bad("<smbios mode='%s'> is not supported (only sysinfo and emulate)", s.Mode)
		}
	}
	for _, si := range x.SysInfo {
		if si.SMBIOS == nil {
			return bad("<sysinfo>: only type='smbios' is supported")
		}
		sm := si.SMBIOS
		if len(sm.BaseBoard) > 0 || sm.Chassis != nil || len(sm.Processor) > 0 || len(sm.Memory) > 0 {
			return bad("<sysinfo type='smbios'>: only <bios>, <system> and <oemStrings> are supported")
		}
		for _, sec := range []struct {
			name    string
			entries []libvirtxml.DomainSysInfoEntry
			ok      []string
		}{
			{"bios", sysinfoEntries(sm.BIOS), []string{"vendor", "version", "date", "release"}},
			{"system", sysinfoSystem(sm.System), []string{"manufacturer", "product", "version", "serial", "uuid", "sku", "family"}},
		} {
			for _, e := range sec.entries {
				if !slices.Contains(sec.ok, e.Name) {
					return bad("<sysinfo><%s><entry name='%s'> is not supported (only %s)", sec.name, e.Name, strings.Join(sec.ok, ", "))
				}
				if e.File != "" {
					return bad("<sysinfo><%s><entry file='...'> is not supported", sec.name)
				}
			}
		}
		if sm.System != nil {
			for _, e := range sm.System.Entry {
				if e.Name == "uuid" && !strings.EqualFold(e.Value, x.UUID) {
					return bad("<sysinfo><system><entry name='uuid'>%s</entry> differs from the domain's uuid %s", e.Value, x.UUID)
				}
			}
		}
	}
	for i := range x.SecLabel {
		l := &x.SecLabel[i]
		if l.Type != "none" || (l.Model != "" && l.Model != "none") {
			return bad("<seclabel type='%s' model='%s'> is not supported (only type='none': the driver has no security driver)", l.Type, l.Model)
		}
		l.Model = "none"
	}
	if r := x.Resource; r != nil {
		if r.Partition != "/machine" || r.FibreChannel != nil {
			return bad("<resource><partition>%s</partition> is not supported (only /machine)", r.Partition)
		}
	}
	return nil
}

func sysinfoEntries(b *libvirtxml.DomainSysInfoBIOS) []libvirtxml.DomainSysInfoEntry {
	if b == nil {
		return nil
	}
	return b.Entry
}

func sysinfoSystem(s *libvirtxml.DomainSysInfoSystem) []libvirtxml.DomainSysInfoEntry {
	if s == nil {
		return nil
	}
	return s.Entry
}

func normaliseClock(x *libvirtxml.Domain, bad badFunc) error {
	c := x.Clock
	switch c.Offset {
	case "":
		c.Offset = "utc"
	case "utc", "localtime":
		if c.Adjustment != "" && c.Adjustment != "reset" {
			return bad("<clock offset='%s' adjustment='%s'>: adjustment needs offset='variable'", c.Offset, c.Adjustment)
		}
	case "variable":
		if c.Basis == "" {
			c.Basis = "utc"
		}
		if c.Basis != "utc" && c.Basis != "localtime" {
			return bad("<clock basis='%s'> must be utc or localtime", c.Basis)
		}
		if c.Adjustment == "" {
			c.Adjustment = "0"
		}
		if _, err := strconv.ParseInt(c.Adjustment, 10, 64); err != nil {
			return bad("<clock adjustment='%s'> must be a number of seconds", c.Adjustment)
		}
	case "timezone":
		if c.TimeZone == "" || strings.ContainsAny(c.TimeZone, ",/.") && !validTimeZone(c.TimeZone) {
			return bad("<clock offset='timezone' timezone='%s'> is not a time zone name", c.TimeZone)
		}
	default:
		return bad("<clock offset='%s'> is not supported (only utc, localtime, variable and timezone)", c.Offset)
	}
	seen := map[string]bool{}
	for _, t := range c.Timer {
		if seen[t.Name] {
			return bad("<timer name='%s'> is given twice", t.Name)
		}
		seen[t.Name] = true
		if t.Present != "" && t.Present != "yes" && t.Present != "no" {
			return bad("<timer name='%s' present='%s'> must be yes or no", t.Name, t.Present)
		}
		switch t.Name {
		case "rtc":
			if t.TickPolicy != "" && t.TickPolicy != "catchup" && t.TickPolicy != "delay" {
				return bad("<timer name='rtc' tickpolicy='%s'> is not supported (only catchup and delay)", t.TickPolicy)
			}
			if t.Track != "" && t.Track != "guest" && t.Track != "wall" {
				return bad("<timer name='rtc' track='%s'> is not supported (only guest and wall)", t.Track)
			}
		case "pit":
			if t.TickPolicy != "" && t.TickPolicy != "delay" && t.TickPolicy != "catchup" && t.TickPolicy != "discard" {
				return bad("<timer name='pit' tickpolicy='%s'> is not supported (only delay, catchup and discard)", t.TickPolicy)
			}
		case "hpet", "kvmclock", "hypervclock", "tsc":
			if t.TickPolicy != "" {
				return bad("<timer name='%s' tickpolicy='%s'>: this timer has no tick policy", t.Name, t.TickPolicy)
			}
		default:
			return bad("<timer name='%s'> is not supported (only rtc, pit, hpet, kvmclock, hypervclock and tsc)", t.Name)
		}
		if t.CatchUp != nil || t.Mode != "" && t.Name != "tsc" {
			return bad("<timer name='%s'>: catchup and mode are not supported", t.Name)
		}
	}
	return nil
}

// validTimeZone accepts names like Europe/Paris: letters, digits, '_',
// '-', '+' and single '/' between parts.
func validTimeZone(tz string) bool {
	for _, part := range strings.Split(tz, "/") {
		if part == "" || part == "." || part == ".." {
			return false
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '+') {
				return false
			}
		}
	}
	return true
}

// timer is the clock's timer with that name, or nil.
func timer(x *libvirtxml.Domain, name string) *libvirtxml.DomainTimer {
	for i := range x.Clock.Timer {
		if x.Clock.Timer[i].Name == name {
			return &x.Clock.Timer[i]
		}
	}
	return nil
}

// clockNow is the time a guest's variable clock is moved from; tests fix
// it.
var clockNow = time.Now

// rtcOption is QEMU's -rtc for the clock.
func rtcOption(x *libvirtxml.Domain) string {
	c := x.Clock
	var base string
	switch c.Offset {
	case "utc", "localtime":
		base = c.Offset
	case "timezone":
		base = "localtime"
	case "variable":
		// QEMU takes the guest's start time: now, moved by the adjustment.
		base = c.Basis
		if adj, _ := strconv.ParseInt(c.Adjustment, 10, 64); adj != 0 {
			now := clockNow().UTC()
			if c.Basis == "localtime" {
				now = clockNow()
			}
			base = now.Add(time.Duration(adj) * time.Second).Format("2006-01-02T15:04:05")
		}
	}
	opt := "base=" + base
	if t := timer(x, "rtc"); t != nil {
		if t.Track == "guest" {
			opt += ",clock=vm"
		}
		if t.TickPolicy == "catchup" {
			opt += ",driftfix=slew"
		}
	}
	return opt
}
