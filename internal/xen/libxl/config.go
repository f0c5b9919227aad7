package libxl

/*
#include <stdlib.h>
#include <string.h>
#include <libxl.h>
// yajl 2 is what Debian ships; libxl_json.h reads its version from here.
#define HAVE_YAJL_YAJL_VERSION_H 1
#include <libxl_json.h>

// Unions and bitmaps are out of cgo's reach; these helpers set them.

static void xv_bitmap(libxl_bitmap *b, int nbits, const int *bits, int n) {
	b->size = (nbits + 7) / 8;
	b->map = calloc(b->size ? b->size : 1, 1);
	for (int i = 0; i < n; i++)
		if (bits[i] >= 0 && bits[i] < nbits)
			b->map[bits[i] / 8] |= 1 << (bits[i] % 8);
}

static void xv_hvm(libxl_domain_build_info *b, libxl_bios_type bios, char *system_firmware,
		char *firmware, char *boot, int pae, int viridian, int hpet,
		int vga_set, libxl_vga_interface_type vga, char *serial, char **usbdevices,
		char *device_model) {
	if (bios >= 0)
		b->u.hvm.bios = bios;
	b->u.hvm.system_firmware = system_firmware;
	b->u.hvm.firmware = firmware;
	b->u.hvm.boot = boot;
	if (pae >= 0)
		libxl_defbool_set(&b->u.hvm.pae, pae);
	if (viridian >= 0)
		libxl_defbool_set(&b->u.hvm.viridian, viridian);
	if (hpet >= 0)
		libxl_defbool_set(&b->u.hvm.hpet, hpet);
	if (vga_set)
		b->u.hvm.vga.kind = vga;
	b->u.hvm.serial = serial;
	if (usbdevices) {
		libxl_defbool_set(&b->u.hvm.usb, 1);
		b->u.hvm.usbdevice_list = usbdevices;
	}
	b->device_model = device_model;
}

static void xv_hvm_vnc(libxl_domain_build_info *b, char *listen, char *passwd, int display, char *keymap) {
	libxl_defbool_set(&b->u.hvm.vnc.enable, 1);
	b->u.hvm.vnc.listen = listen;
	b->u.hvm.vnc.passwd = passwd;
	if (display >= 0)
		b->u.hvm.vnc.display = display;
	libxl_defbool_set(&b->u.hvm.vnc.findunused, display < 0);
	b->u.hvm.keymap = keymap;
	libxl_defbool_set(&b->u.hvm.nographic, 0);
}

static void xv_usbdev(libxl_device_usbdev *d, int bus, int addr) {
	libxl_device_usbdev_init_type(d, LIBXL_USBDEV_TYPE_HOSTDEV);
	d->u.hostdev.hostbus = bus;
	d->u.hostdev.hostaddr = addr;
}

// xv_json is libxl_domain_config_to_json without a context: libxl's
// generator, through libxl's own yajl set-up.
static char *xv_json(libxl_domain_config *dc) {
	yajl_gen g = libxl_yajl_gen_alloc(NULL);
	if (!g)
		return NULL;
	char *out = NULL;
	const unsigned char *buf;
	size_t len;
	if (libxl_domain_config_gen_json(g, dc) == yajl_gen_status_ok &&
	    yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
		out = strndup((const char *)buf, len);
	yajl_gen_free(g);
	return out;
}
*/
import "C"

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"unsafe"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/internal/xen/domconfig"
	"github.com/virtd/virtd/virt"
)

// DomainConfig is a libxl_domain_config built from the driver's model. It
// lives in C memory: Free it.
type DomainConfig struct {
	c *C.libxl_domain_config
}

// Free disposes of the configuration.
func (d *DomainConfig) Free() {
	if d.c != nil {
		C.libxl_domain_config_dispose(d.c)
		C.free(unsafe.Pointer(d.c))
		d.c = nil
	}
}

// JSON serialises the configuration with libxl's JSON generator (what
// `xl create -n` and libxl_domain_config_to_json print).
func (d *DomainConfig) JSON() (string, error) {
	s := C.xv_json(d.c)
	if s == nil {
		return "", fmt.Errorf("libxl could not serialise the domain configuration: %w", virt.ErrInternal)
	}
	defer C.free(unsafe.Pointer(s))
	return C.GoString(s), nil
}

// cstr returns a malloc'd copy of s, or NULL for "": libxl frees it on
// dispose.
func cstr(s string) *C.char {
	if s == "" {
		return nil
	}
	return C.CString(s)
}

// cstrList returns a NULL-terminated malloc'd list (libxl_string_list), or
// NULL when l is empty.
func cstrList(l []string) **C.char {
	if len(l) == 0 {
		return nil
	}
	p := (**C.char)(C.calloc(C.size_t(len(l)+1), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	s := unsafe.Slice(p, len(l)+1)
	for i, v := range l {
		s[i] = C.CString(v)
	}
	return p
}

// enum converts a name with one of libxl's *_from_string functions.
func enum(what, name string, from func(*C.char) (C.int, int)) (int, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	rc, v := from(cs)
	if rc != 0 {
		return 0, fmt.Errorf("libxl knows no %s %q: %w", what, name, virt.ErrNotSupported)
	}
	return v, nil
}

func defbool(b *C.libxl_defbool, v *bool) {
	if v != nil {
		C.libxl_defbool_set(b, C.bool(*v))
	}
}

// Build converts the driver's model to libxl's domain configuration. It
// needs no hypervisor and no context.
func Build(m *domconfig.Config) (cfg *DomainConfig, err error) {
	dc := (*C.libxl_domain_config)(C.calloc(1, C.size_t(unsafe.Sizeof(C.libxl_domain_config{}))))
	C.libxl_domain_config_init(dc)
	built := &DomainConfig{c: dc}
	defer func() {
		if err != nil {
			built.Free()
		}
	}()
	var typ C.libxl_domain_type
	switch m.Type {
	case domconfig.PV:
		typ = C.LIBXL_DOMAIN_TYPE_PV
	case domconfig.HVM:
		typ = C.LIBXL_DOMAIN_TYPE_HVM
	case domconfig.PVH:
		typ = C.LIBXL_DOMAIN_TYPE_PVH
	default:
		return nil, fmt.Errorf("domain '%s': unknown guest type %q: %w", m.Name, m.Type, virt.ErrInvalidArgument)
	}
	ci := &dc.c_info
	ci._type = typ
	ci.name = cstr(m.Name)
	if m.UUID != "" {
		u := C.CString(m.UUID)
		rc := C.libxl_uuid_from_string(&ci.uuid, u)
		C.free(unsafe.Pointer(u))
		if rc != 0 {
			return nil, fmt.Errorf("domain '%s': invalid UUID %q: %w", m.Name, m.UUID, virt.ErrInvalidArgument)
		}
	}
	if m.HVM != nil {
		defbool(&ci.hap, m.HVM.HAP)
	}

	bi := &dc.b_info
	C.libxl_domain_build_info_init_type(bi, typ)
	if err := buildInfo(bi, m); err != nil {
		return nil, err
	}
	for _, a := range []struct {
		dst *C.libxl_action_on_shutdown
		val domconfig.Action
	}{{&dc.on_poweroff, m.OnPoweroff}, {&dc.on_reboot, m.OnReboot}, {&dc.on_crash, m.OnCrash}} {
		if a.val == "" {
			continue
		}
		// libxl's names: restart_rename, coredump_destroy, ...
		name := strings.ReplaceAll(string(a.val), "-", "_")
		if a.val == domconfig.ActionRenameRestart {
			name = "restart_rename"
		}
		v, err := enum("shutdown action", name, func(s *C.char) (C.int, int) {
			var e C.libxl_action_on_shutdown
			rc := C.libxl_action_on_shutdown_from_string(s, &e)
			return rc, int(e)
		})
		if err != nil {
			return nil, err
		}
		*a.dst = C.libxl_action_on_shutdown(v)
	}
	if err := devices(dc, m); err != nil {
		return nil, err
	}
	return built, nil
}

func buildInfo(bi *C.libxl_domain_build_info, m *domconfig.Config) error {
	bi.max_vcpus = C.int(m.MaxVCPUs)
	online := make([]C.int, m.VCPUs)
	for i := range online {
		online[i] = C.int(i)
	}
	C.xv_bitmap(&bi.avail_vcpus, C.int(m.MaxVCPUs), ptr(online), C.int(len(online)))
	if m.CPUs != "" {
		cpus, err := parseCPUSet(m.CPUs)
		if err != nil {
			return virt.Errorf(virt.ErrInvalidArgument, "domain '%s': cpuset %q: %w", m.Name, m.CPUs, err)
		}
		n := 0
		for _, c := range cpus {
			n = max(n, int(c)+1)
		}
		C.xv_bitmap(&bi.cpumap, C.int(n), ptr(cpus), C.int(len(cpus)))
	}
	bi.max_memkb = C.uint64_t(m.MaxMemKiB)
	bi.target_memkb = C.uint64_t(m.MemKiB)
	bi.kernel, bi.ramdisk, bi.cmdline = cstr(m.Kernel), cstr(m.Ramdisk), cstr(m.Cmdline)
	bi.event_channels = C.uint32_t(m.MaxEventChannels)
	if m.MaxGrantFrames != 0 {
		bi.max_grant_frames = C.uint32_t(m.MaxGrantFrames)
	}
	if m.TSCMode != "" {
		v, err := enum("TSC mode", m.TSCMode, func(s *C.char) (C.int, int) {
			var e C.libxl_tsc_mode
			rc := C.libxl_tsc_mode_from_string(s, &e)
			return rc, int(e)
		})
		if err != nil {
			return err
		}
		bi.tsc_mode = C.libxl_tsc_mode(v)
	}
	C.libxl_defbool_set(&bi.localtime, C.bool(m.Localtime))
	bi.rtc_timeoffset = C.uint32_t(uint32(int32(m.RTCTimeOffset)))
	if m.Bootloader != "" {
		bi.bootloader = cstr(m.Bootloader)
		bi.bootloader_args = cstrList(m.BootloaderArgs)
	}
	h := m.HVM
	if h == nil {
		return nil
	}
	defbool(&bi.acpi, h.ACPI)
	defbool(&bi.apic, h.APIC)
	defbool(&bi.nested_hvm, h.NestedHVM)
	bios := -1
	if h.BIOS != "" {
		v, err := enum("BIOS", h.BIOS, func(s *C.char) (C.int, int) {
			var e C.libxl_bios_type
			rc := C.libxl_bios_type_from_string(s, &e)
			return rc, int(e)
		})
		if err != nil {
			return err
		}
		bios = v
	}
	vgaSet, vga := 0, 0
	if h.VGA != "" {
		name := h.VGA
		if name == "stdvga" {
			name = "std"
		}
		v, err := enum("VGA", name, func(s *C.char) (C.int, int) {
			var e C.libxl_vga_interface_type
			rc := C.libxl_vga_interface_type_from_string(s, &e)
			return rc, int(e)
		})
		if err != nil {
			return err
		}
		vgaSet, vga = 1, v
	}
	C.xv_hvm(bi, C.libxl_bios_type(bios), cstr(h.FirmwarePath), cstr(h.Loader), cstr(h.Boot),
		tri(h.PAE), tri(h.Viridian), tri(h.HPET), C.int(vgaSet), C.libxl_vga_interface_type(vga),
		cstr(h.Serial), cstrList(h.USBDevices), cstr(h.DeviceModel))
	if v := m.VNC; v != nil {
		C.xv_hvm_vnc(bi, cstr(v.Listen), cstr(v.Passwd), C.int(v.Display), cstr(v.Keymap))
	}
	return nil
}

// tri is -1 for unset, else 0 or 1.
func tri(b *bool) C.int {
	switch {
	case b == nil:
		return -1
	case *b:
		return 1
	}
	return 0
}

func ptr(s []C.int) *C.int {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// parseCPUSet reads libvirt's cpuset syntax: "0-3,^2,8".
func parseCPUSet(s string) ([]C.int, error) {
	set := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		neg := strings.HasPrefix(part, "^")
		part = strings.TrimPrefix(part, "^")
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CPU number", lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad range %q", part)
			}
		}
		for i := a; i <= b; i++ {
			set[i] = !neg
		}
	}
	var out []C.int
	for i := 0; i < 4096; i++ {
		if set[i] {
			out = append(out, C.int(i))
		}
	}
	return out, nil
}

func devices(dc *C.libxl_domain_config, m *domconfig.Config) error {
	if n := len(m.Disks); n > 0 {
		dc.disks = (*C.libxl_device_disk)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.libxl_device_disk{}))))
		dc.num_disks = C.int(n)
		for i := range n {
			p := &unsafe.Slice(dc.disks, n)[i]
			C.libxl_device_disk_init(p)
			if err := disk(p, m.Disks[i]); err != nil {
				return fmt.Errorf("domain '%s': disk %s: %w", m.Name, m.Disks[i].Vdev, err)
			}
		}
	}
	if n := len(m.NICs); n > 0 {
		dc.nics = (*C.libxl_device_nic)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.libxl_device_nic{}))))
		dc.num_nics = C.int(n)
		for i := range n {
			p := &unsafe.Slice(dc.nics, n)[i]
			C.libxl_device_nic_init(p)
			p.devid = C.libxl_devid(i)
			if err := nic(p, m.NICs[i]); err != nil {
				return fmt.Errorf("domain '%s': interface %d: %w", m.Name, i, err)
			}
		}
	}
	if v := m.VNC; v != nil && m.Type != domconfig.HVM {
		dc.vfbs = (*C.libxl_device_vfb)(C.calloc(1, C.size_t(unsafe.Sizeof(C.libxl_device_vfb{}))))
		dc.num_vfbs = 1
		C.libxl_device_vfb_init(dc.vfbs)
		C.libxl_defbool_set(&dc.vfbs.vnc.enable, true)
		dc.vfbs.vnc.listen, dc.vfbs.vnc.passwd, dc.vfbs.keymap = cstr(v.Listen), cstr(v.Passwd), cstr(v.Keymap)
		if v.Display >= 0 {
			dc.vfbs.vnc.display = C.int(v.Display)
		}
		C.libxl_defbool_set(&dc.vfbs.vnc.findunused, C.bool(v.Display < 0))
		// A framebuffer comes with its keyboard and mouse.
		dc.vkbs = (*C.libxl_device_vkb)(C.calloc(1, C.size_t(unsafe.Sizeof(C.libxl_device_vkb{}))))
		dc.num_vkbs = 1
		C.libxl_device_vkb_init(dc.vkbs)
	}
	if n := len(m.USBCtrls); n > 0 {
		dc.usbctrls = (*C.libxl_device_usbctrl)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.libxl_device_usbctrl{}))))
		dc.num_usbctrls = C.int(n)
		for i, u := range m.USBCtrls {
			p := &unsafe.Slice(dc.usbctrls, n)[i]
			C.libxl_device_usbctrl_init(p)
			p.devid = C.libxl_devid(i)
			if u.Type != "" {
				v, err := enum("USB controller type", u.Type, func(s *C.char) (C.int, int) {
					var e C.libxl_usbctrl_type
					rc := C.libxl_usbctrl_type_from_string(s, &e)
					return rc, int(e)
				})
				if err != nil {
					return err
				}
				p._type = C.libxl_usbctrl_type(v)
			}
			p.version, p.ports = C.int(u.Version), C.int(u.Ports)
		}
	}
	if n := len(m.USBDevs); n > 0 {
		dc.usbdevs = (*C.libxl_device_usbdev)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.libxl_device_usbdev{}))))
		dc.num_usbdevs = C.int(n)
		for i, u := range m.USBDevs {
			C.xv_usbdev(&unsafe.Slice(dc.usbdevs, n)[i], C.int(u.HostBus), C.int(u.HostAddr))
		}
	}
	return nil
}

func disk(p *C.libxl_device_disk, d domconfig.Disk) error {
	p.pdev_path, p.vdev = cstr(d.Target), cstr(d.Vdev)
	format := d.Format
	if format == "" {
		format = "raw"
	}
	if d.CDROM && d.Target == "" {
		format = "empty"
	}
	v, err := enum("disk format", format, func(s *C.char) (C.int, int) {
		var e C.libxl_disk_format
		rc := C.libxl_disk_format_from_string(s, &e)
		return rc, int(e)
	})
	if err != nil {
		return err
	}
	p.format = C.libxl_disk_format(v)
	if d.Backend != "" {
		v, err := enum("disk backend", d.Backend, func(s *C.char) (C.int, int) {
			var e C.libxl_disk_backend
			rc := C.libxl_disk_backend_from_string(s, &e)
			return rc, int(e)
		})
		if err != nil {
			return err
		}
		p.backend = C.libxl_disk_backend(v)
	}
	p.readwrite = 1
	if d.ReadOnly {
		p.readwrite = 0
	}
	if d.CDROM {
		p.is_cdrom, p.removable = 1, 1
	}
	return nil
}

func nic(p *C.libxl_device_nic, n domconfig.NIC) error {
	if n.MAC != "" {
		hw, err := net.ParseMAC(n.MAC)
		if err != nil || len(hw) != 6 {
			return fmt.Errorf("MAC address %q: %w", n.MAC, virt.ErrInvalidArgument)
		}
		for i := range 6 {
			p.mac[i] = C.uint8_t(hw[i])
		}
	}
	// Checked at define too: Xen's vif hotplug scripts use them as root.
	for _, f := range []struct{ what, name string }{{"bridge", n.Bridge}, {"vif name", n.IfName}} {
		if f.name != "" {
			if err := domutil.CheckInterfaceName(f.name); err != nil {
				return fmt.Errorf("%s: %w", f.what, err)
			}
		}
	}
	p.bridge, p.script, p.model = cstr(n.Bridge), cstr(n.Script), cstr(n.Model)
	p.ifname, p.ip = cstr(n.IfName), cstr(n.IP)
	if n.Type != "" {
		v, err := enum("NIC type", map[string]string{"vif": "vif", "ioemu": "vif_ioemu"}[n.Type], func(s *C.char) (C.int, int) {
			var e C.libxl_nic_type
			rc := C.libxl_nic_type_from_string(s, &e)
			return rc, int(e)
		})
		if err != nil {
			return err
		}
		p.nictype = C.libxl_nic_type(v)
	}
	if n.RateBytesPerSec > 0 {
		interval := uint64(n.RateIntervalUsecs)
		if interval == 0 {
			interval = 50000 // xl's default credit interval
		}
		p.rate_interval_usecs = C.uint32_t(interval)
		p.rate_bytes_per_interval = C.uint64_t(n.RateBytesPerSec * interval / 1000000)
	}
	return nil
}
