package xlconfig

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/internal/xen/domconfig"
	"github.com/virtd/virtd/virt"
)

// reader reads typed settings from a File and remembers which keys it
// used, so that ToConfig can refuse the ones it did not.
type reader struct {
	f    *File
	used map[string]bool
	err  error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("xl.cfg: "+format+": %w", append(args, virt.ErrInvalidArgument)...)
	}
}

func (r *reader) get(key string) (Value, bool) {
	r.used[key] = true
	return r.f.Get(key)
}

func (r *reader) str(key string) string {
	v, ok := r.get(key)
	if !ok {
		return ""
	}
	if v.Kind == List {
		r.fail("%s must be a string, not a list", key)
	}
	return v.Str
}

// num reads a number (also written as a quoted string).
func (r *reader) num(key string) (int64, bool) {
	v, ok := r.get(key)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v.Str), 0, 64)
	if v.Kind == List || err != nil {
		r.fail("%s must be a number", key)
	}
	return n, true
}

func (r *reader) boolean(key string) *bool {
	n, ok := r.num(key)
	if !ok {
		return nil
	}
	return domconfig.Bool(n != 0)
}

func (r *reader) list(key string) []string {
	v, ok := r.get(key)
	if !ok {
		return nil
	}
	if v.Kind != List {
		return []string{v.Str}
	}
	return v.List
}

// ToConfig reads xl.cfg settings into a Config. A setting it does not know
// is refused by name (kind virt.ErrNotSupported) rather than dropped.
func ToConfig(f *File) (*domconfig.Config, error) {
	r := &reader{f: f, used: map[string]bool{}}
	c := &domconfig.Config{Name: r.str("name")}
	if c.Name == "" {
		return nil, fmt.Errorf("xl.cfg has no name: %w", virt.ErrInvalidArgument)
	}
	if u := r.str("uuid"); u != "" {
		var err error
		if c.UUID, err = domutil.ParseUUID(u); err != nil {
			return nil, fmt.Errorf("xl.cfg uuid: %w", err)
		}
	}
	switch t, b := r.str("type"), r.str("builder"); {
	case t == "pv" || t == "" && (b == "" || b == "generic"):
		c.Type = domconfig.PV
	case t == "hvm" || t == "" && b == "hvm":
		c.Type = domconfig.HVM
	case t == "pvh":
		c.Type = domconfig.PVH
	default:
		return nil, fmt.Errorf("xl.cfg: unknown guest type %q (builder %q): %w", t, b, virt.ErrInvalidArgument)
	}
	mem, ok := r.num("memory")
	if !ok {
		mem = 128 // xl's default
	}
	maxmem, ok := r.num("maxmem")
	if !ok || maxmem < mem {
		maxmem = mem
	}
	c.MemKiB, c.MaxMemKiB = uint64(mem)*1024, uint64(maxmem)*1024
	vcpus, ok := r.num("vcpus")
	if !ok {
		vcpus = 1
	}
	maxv, ok := r.num("maxvcpus")
	if !ok || maxv < vcpus {
		maxv = vcpus
	}
	c.VCPUs, c.MaxVCPUs = int(vcpus), int(maxv)
	c.CPUs = r.str("cpus")
	if n, ok := r.num("max_event_channels"); ok {
		c.MaxEventChannels = uint32(n)
	}
	if n, ok := r.num("max_grant_frames"); ok {
		c.MaxGrantFrames = uint32(n)
	}
	c.Kernel, c.Ramdisk = r.str("kernel"), r.str("ramdisk")
	c.Cmdline = r.str("cmdline")
	if c.Cmdline == "" {
		// The old split form.
		var parts []string
		if root := r.str("root"); root != "" {
			parts = append(parts, "root="+root)
		}
		if extra := r.str("extra"); extra != "" {
			parts = append(parts, extra)
		}
		c.Cmdline = strings.Join(parts, " ")
	}
	c.Bootloader = r.str("bootloader")
	c.BootloaderArgs = r.list("bootloader_args")
	if lt := r.boolean("localtime"); lt != nil {
		c.Localtime = *lt
	}
	c.RTCTimeOffset, _ = r.num("rtc_timeoffset")
	c.TSCMode = r.str("tsc_mode")
	switch c.TSCMode {
	case "", "default", "always_emulate", "native", "native_paravirt":
	default:
		r.fail("unknown tsc_mode %q", c.TSCMode)
	}
	for _, a := range []struct {
		key string
		def domconfig.Action
		dst *domconfig.Action
	}{
		{"on_poweroff", domconfig.ActionDestroy, &c.OnPoweroff},
		{"on_reboot", domconfig.ActionRestart, &c.OnReboot},
		{"on_crash", domconfig.ActionDestroy, &c.OnCrash},
	} {
		*a.dst = domconfig.Action(r.str(a.key))
		if *a.dst == "" {
			*a.dst = a.def
		} else if !a.dst.Valid() {
			r.fail("%s = %q is not an action xl knows", a.key, *a.dst)
		}
	}
	if c.Type == domconfig.HVM {
		c.HVM = hvmFromNative(r)
	}
	readVNC(r, c)
	readDevices(r, c)
	if r.err != nil {
		return nil, r.err
	}
	for _, e := range f.Entries {
		if !r.used[e.Key] {
			return nil, fmt.Errorf("xl.cfg setting %q is not supported by the Xen driver: %w", e.Key, virt.ErrNotSupported)
		}
	}
	return c, nil
}

func hvmFromNative(r *reader) *domconfig.HVMOptions {
	h := &domconfig.HVMOptions{
		BIOS:         r.str("bios"),
		FirmwarePath: r.str("bios_path_override"),
		Loader:       r.str("firmware_override"),
		Boot:         r.str("boot"),
		PAE:          r.boolean("pae"),
		ACPI:         r.boolean("acpi"),
		APIC:         r.boolean("apic"),
		HAP:          r.boolean("hap"),
		Viridian:     r.boolean("viridian"),
		NestedHVM:    r.boolean("nestedhvm"),
		HPET:         r.boolean("hpet"),
		DeviceModel:  r.str("device_model_override"),
		VGA:          r.str("vga"),
	}
	if h.DeviceModel == "" {
		h.DeviceModel = r.str("device_model")
	}
	if std := r.boolean("stdvga"); std != nil && *std && h.VGA == "" {
		h.VGA = "stdvga"
	}
	switch s := r.str("serial"); s {
	case "", "none":
	case "pty":
		h.Serial = s
	default:
		r.fail("serial = %q: only \"pty\" is supported", s)
	}
	if p := r.str("parallel"); p != "" && p != "none" {
		r.fail("parallel = %q: parallel ports are not supported", p)
	}
	r.boolean("usb") // implied by usbdevice; alone it adds nothing
	for _, d := range r.list("usbdevice") {
		if d != "tablet" && d != "mouse" {
			r.fail("usbdevice %q: only tablet and mouse are supported", d)
		}
		h.USBDevices = append(h.USBDevices, d)
	}
	return h
}

// readVNC reads the display: top-level vnc* keys (HVM) or one vfb entry.
func readVNC(r *reader, c *domconfig.Config) {
	if sdl := r.boolean("sdl"); sdl != nil && *sdl {
		r.fail("sdl = 1: SDL displays are not supported")
	}
	kv := map[string]string{}
	if vfb := r.list("vfb"); len(vfb) > 0 {
		if len(vfb) > 1 {
			r.fail("more than one vfb")
		}
		for _, p := range strings.Split(vfb[0], ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			kv[k] = v
		}
	} else {
		for _, k := range []string{"vnc", "vnclisten", "vncdisplay", "vncunused", "vncpasswd", "keymap"} {
			if v, ok := r.get(k); ok {
				kv[k] = v.Str
			}
		}
	}
	if kv["vnc"] != "1" {
		return
	}
	v := &domconfig.VNC{Display: -1, Listen: kv["vnclisten"], Passwd: kv["vncpasswd"], Keymap: kv["keymap"]}
	if d, ok := kv["vncdisplay"]; ok && kv["vncunused"] != "1" {
		n, err := strconv.Atoi(d)
		if err != nil {
			r.fail("vncdisplay %q is not a number", d)
		}
		v.Display = n
	}
	c.VNC = v
}

func readDevices(r *reader, c *domconfig.Config) {
	for _, s := range r.list("disk") {
		d, err := parseDisk(s)
		if err != nil {
			r.fail("disk %q: %v", s, err)
			continue
		}
		c.Disks = append(c.Disks, d)
	}
	for _, s := range r.list("vif") {
		n, err := parseVif(s)
		if err != nil {
			r.fail("vif %q: %v", s, err)
			continue
		}
		c.NICs = append(c.NICs, n)
	}
	for _, s := range r.list("usbctrl") {
		u := domconfig.USBCtrl{}
		for _, p := range strings.Split(s, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			switch k {
			case "type":
				u.Type = v
			case "version":
				u.Version, _ = strconv.Atoi(v)
			case "ports":
				u.Ports, _ = strconv.Atoi(v)
			default:
				r.fail("usbctrl %q: unknown setting %q", s, k)
			}
		}
		c.USBCtrls = append(c.USBCtrls, u)
	}
	for _, s := range r.list("usbdev") {
		var u domconfig.USBDev
		for _, p := range strings.Split(s, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			n, err := strconv.ParseInt(v, 0, 32)
			switch {
			case err != nil:
				r.fail("usbdev %q: %s is not a number", s, k)
			case k == "hostbus":
				u.HostBus = int(n)
			case k == "hostaddr":
				u.HostAddr = int(n)
			case k == "type" && v == "hostdev":
			default:
				r.fail("usbdev %q: unknown setting %q", s, k)
			}
		}
		c.USBDevs = append(c.USBDevs, u)
	}
}

// parseDisk reads one xl disk specification (xl-disk-configuration):
// key=value settings, or the positional form [target,][format,]vdev,access
// with a legacy "phy:", "file:", "tap:aio:" or "qcow2:" prefix on target.
func parseDisk(s string) (domconfig.Disk, error) {
	var d domconfig.Disk
	access := "rw"
	var positional []string
	rest := s
	for rest != "" {
		var p string
		if strings.HasPrefix(rest, "target=") {
			// target takes the rest of the string, commas included.
			p, rest = rest, ""
		} else {
			p, rest, _ = strings.Cut(rest, ",")
		}
		p = strings.TrimSpace(p)
		k, v, isKV := strings.Cut(p, "=")
		if !isKV {
			positional = append(positional, p)
			continue
		}
		switch k {
		case "target":
			d.Target = v
		case "format":
			d.Format = v
		case "vdev":
			d.Vdev = v
		case "access":
			access = v
		case "backendtype":
			d.Backend = v
		case "devtype":
			if v != "cdrom" {
				return d, fmt.Errorf("devtype %q", v)
			}
			d.CDROM = true
		default:
			return d, fmt.Errorf("unsupported setting %q", k)
		}
	}
	switch len(positional) {
	case 0:
	case 2: // vdev,access
		d.Vdev, access = positional[0], positional[1]
	case 3: // target,vdev,access
		d.Target, d.Vdev, access = positional[0], positional[1], positional[2]
	case 4: // target,format,vdev,access
		d.Target, d.Format, d.Vdev, access = positional[0], positional[1], positional[2], positional[3]
	default:
		return d, fmt.Errorf("%d positional parameters", len(positional))
	}
	d.Target = legacyPrefix(&d, d.Target)
	if v, ok := strings.CutSuffix(d.Vdev, ":cdrom"); ok {
		d.Vdev, d.CDROM = v, true
	}
	switch access {
	case "r", "ro":
		d.ReadOnly = true
	case "w", "rw", "":
	default:
		return d, fmt.Errorf("access %q", access)
	}
	if d.Format == "raw" {
		d.Format = ""
	}
	switch d.Format {
	case "", "qcow", "qcow2", "vhd", "qed":
	default:
		return d, fmt.Errorf("format %q", d.Format)
	}
	switch d.Backend {
	case "", "phy", "qdisk", "tap":
	default:
		return d, fmt.Errorf("backendtype %q", d.Backend)
	}
	if d.Vdev == "" {
		return d, fmt.Errorf("no vdev")
	}
	return d, nil
}

// legacyPrefix strips the old "backend:format:" prefix of a disk target,
// setting what it says.
func legacyPrefix(d *domconfig.Disk, target string) string {
	for {
		prefix, rest, ok := strings.Cut(target, ":")
		if !ok || strings.Contains(prefix, "/") {
			return target
		}
		switch prefix {
		case "phy":
			d.Backend = "phy"
		case "file", "aio":
		case "tap", "tap2":
			d.Backend = "tap"
		case "raw", "qcow", "qcow2", "vhd", "qed":
			d.Format = prefix
		default:
			return target
		}
		target = rest
	}
}

// parseVif reads one xl vif specification (xl-network-configuration).
func parseVif(s string) (domconfig.NIC, error) {
	var n domconfig.NIC
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "mac":
			n.MAC = strings.ToLower(v)
		case "bridge":
			n.Bridge = v
		case "script":
			n.Script = v
		case "model":
			n.Model = v
		case "type":
			if v != "vif" && v != "ioemu" {
				return n, fmt.Errorf("type %q", v)
			}
			n.Type = v
		case "vifname":
			n.IfName = v
		case "ip":
			n.IP = v
		case "rate":
			var err error
			if n.RateBytesPerSec, n.RateIntervalUsecs, err = parseRate(v); err != nil {
				return n, err
			}
		default:
			return n, fmt.Errorf("unsupported setting %q", k)
		}
	}
	if n.Type == "ioemu" && n.Model == "" {
		n.Type = ""
	}
	return n, nil
}

var rateRE = regexp.MustCompile(`^([0-9]+)([GMK]?)([Bb])/s(?:@([0-9]+)(us|ms|s)?)?$`)

// parseRate reads xl's vif rate, "10MB/s" or "1Gb/s@20ms": decimal units,
// B bytes, b bits.
func parseRate(s string) (bps uint64, intervalUsecs uint32, err error) {
	m := rateRE.FindStringSubmatch(s)
	if m == nil {
		return 0, 0, fmt.Errorf("rate %q is not N[GMK](B|b)/s[@N(us|ms|s)]", s)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	n *= map[string]uint64{"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[m[2]]
	if m[3] == "b" {
		n /= 8
	}
	if m[4] != "" {
		iv, _ := strconv.ParseUint(m[4], 10, 32)
		iv *= map[string]uint64{"": 1, "us": 1, "ms": 1e3, "s": 1e6}[m[5]]
		intervalUsecs = uint32(iv)
	}
	return n, intervalUsecs, nil
}
