// Package xlconfig converts between libvirt domain XML and xl.cfg, the
// configuration format of Xen's xl tool (`virsh domxml-to-native xen-xl`
// and `domxml-from-native xen-xl`). It reads and writes xl.cfg syntax
// itself and goes through the Xen driver's model of a domain (package
// domconfig), so a conversion accepts and refuses exactly what defining
// the domain would. It has no cgo and needs no hypervisor.
package xlconfig

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/virtd/virtd/internal/xen/domconfig"
	"github.com/virtd/virtd/virt"
)

// Format is the native format name libvirt uses for xl.cfg.
const Format = "xen-xl"

// ToNative converts libvirt domain XML to xl.cfg text.
func ToNative(xml string) (string, error) {
	c, _, err := domconfig.Parse(xml)
	if err != nil {
		return "", err
	}
	return FromConfig(c).String(), nil
}

// FromNative converts xl.cfg text to libvirt domain XML.
func FromNative(cfg string) (string, error) {
	f, err := Parse(cfg)
	if err != nil {
		return "", err
	}
	c, err := ToConfig(f)
	if err != nil {
		return "", err
	}
	out, err := domconfig.ToXML(c).Marshal()
	if err != nil {
		return "", virt.Errorf(virt.ErrInternal, "writing domain XML: %w", err)
	}
	return out + "\n", nil
}

// FromConfig writes c as xl.cfg settings, in the order xl's documentation
// presents them.
func FromConfig(c *domconfig.Config) *File {
	f := &File{}
	f.SetString("name", c.Name)
	if c.UUID != "" {
		f.SetString("uuid", c.UUID)
	}
	f.SetString("type", string(c.Type))
	f.SetNumber("maxmem", int64(c.MaxMemKiB/1024))
	f.SetNumber("memory", int64(c.MemKiB/1024))
	f.SetNumber("vcpus", int64(c.VCPUs))
	if c.MaxVCPUs > c.VCPUs {
		f.SetNumber("maxvcpus", int64(c.MaxVCPUs))
	}
	if c.CPUs != "" {
		f.SetString("cpus", c.CPUs)
	}
	if c.MaxEventChannels != 0 {
		f.SetNumber("max_event_channels", int64(c.MaxEventChannels))
	}
	if c.MaxGrantFrames != 0 {
		f.SetNumber("max_grant_frames", int64(c.MaxGrantFrames))
	}
	setIf(f, "kernel", c.Kernel)
	setIf(f, "ramdisk", c.Ramdisk)
	setIf(f, "cmdline", c.Cmdline)
	if c.Bootloader != "" {
		f.SetString("bootloader", c.Bootloader)
		if len(c.BootloaderArgs) > 0 {
			f.SetList("bootloader_args", c.BootloaderArgs)
		}
	}
	if h := c.HVM; h != nil {
		hvmToNative(f, h)
	}
	f.SetNumber("localtime", b2i(c.Localtime))
	if c.RTCTimeOffset != 0 {
		f.SetNumber("rtc_timeoffset", c.RTCTimeOffset)
	}
	if c.TSCMode != "" && c.TSCMode != "default" {
		f.SetString("tsc_mode", c.TSCMode)
	}
	f.SetString("on_poweroff", string(c.OnPoweroff))
	f.SetString("on_reboot", string(c.OnReboot))
	f.SetString("on_crash", string(c.OnCrash))
	if v := c.VNC; v != nil {
		vncToNative(f, c.Type, v)
	}
	if len(c.Disks) > 0 {
		l := make([]string, len(c.Disks))
		for i, d := range c.Disks {
			l[i] = diskSpec(d)
		}
		f.SetList("disk", l)
	}
	if len(c.NICs) > 0 {
		l := make([]string, len(c.NICs))
		for i, n := range c.NICs {
			l[i] = vifSpec(n)
		}
		f.SetList("vif", l)
	}
	if len(c.USBCtrls) > 0 {
		l := make([]string, len(c.USBCtrls))
		for i, u := range c.USBCtrls {
			l[i] = join(kv("type", u.Type), kvInt("version", u.Version), kvInt("ports", u.Ports))
		}
		f.SetList("usbctrl", l)
	}
	if len(c.USBDevs) > 0 {
		l := make([]string, len(c.USBDevs))
		for i, u := range c.USBDevs {
			l[i] = fmt.Sprintf("hostbus=%d,hostaddr=%d", u.HostBus, u.HostAddr)
		}
		f.SetList("usbdev", l)
	}
	return f
}

func hvmToNative(f *File, h *domconfig.HVMOptions) {
	setIf(f, "bios", h.BIOS)
	setIf(f, "bios_path_override", h.FirmwarePath)
	setIf(f, "firmware_override", h.Loader)
	for _, s := range []struct {
		key string
		b   *bool
	}{
		{"pae", h.PAE}, {"acpi", h.ACPI}, {"apic", h.APIC}, {"hap", h.HAP},
		{"viridian", h.Viridian}, {"nestedhvm", h.NestedHVM}, {"hpet", h.HPET},
	} {
		if s.b != nil {
			f.SetNumber(s.key, b2i(*s.b))
		}
	}
	setIf(f, "boot", h.Boot)
	setIf(f, "device_model_override", h.DeviceModel)
	setIf(f, "vga", h.VGA)
	setIf(f, "serial", h.Serial)
	if len(h.USBDevices) > 0 {
		f.SetNumber("usb", 1)
		f.SetList("usbdevice", h.USBDevices)
	}
}

func vncToNative(f *File, t domconfig.Type, v *domconfig.VNC) {
	parts := []string{"vnc=1", kv("vnclisten", v.Listen)}
	if v.Display >= 0 {
		parts = append(parts, "vncdisplay="+strconv.Itoa(v.Display))
	} else {
		parts = append(parts, "vncunused=1")
	}
	parts = append(parts, kv("vncpasswd", v.Passwd), kv("keymap", v.Keymap))
	if t != domconfig.HVM {
		f.SetList("vfb", []string{join(parts...)})
		return
	}
	// An HVM guest's VNC settings are top-level keys.
	for _, p := range parts {
		if p == "" {
			continue
		}
		k, val, _ := strings.Cut(p, "=")
		if n, err := strconv.ParseInt(val, 10, 64); err == nil && k != "vncpasswd" {
			f.SetNumber(k, n)
		} else {
			f.SetString(k, val)
		}
	}
}

func diskSpec(d domconfig.Disk) string {
	format := d.Format
	if format == "" {
		format = "raw"
	}
	access := "rw"
	if d.ReadOnly {
		access = "ro"
	}
	devtype := ""
	if d.CDROM {
		devtype = "cdrom"
	}
	// target last: it may contain commas.
	return join(kv("format", format), kv("vdev", d.Vdev), kv("access", access),
		kv("backendtype", d.Backend), kv("devtype", devtype), "target="+d.Target)
}

func vifSpec(n domconfig.NIC) string {
	rate := ""
	if n.RateBytesPerSec > 0 {
		rate = formatRate(n.RateBytesPerSec, n.RateIntervalUsecs)
	}
	return join(kv("mac", n.MAC), kv("bridge", n.Bridge), kv("script", n.Script),
		kv("model", n.Model), kv("type", n.Type), kv("vifname", n.IfName), kv("ip", n.IP), kv("rate", rate))
}

// formatRate writes a rate the way xl reads it: the largest exact unit of
// bytes per second, and the interval when it is not the default.
func formatRate(bps uint64, intervalUsecs uint32) string {
	unit := "B"
	for _, u := range []struct {
		name string
		n    uint64
	}{{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}} {
		if bps%u.n == 0 {
			bps, unit = bps/u.n, u.name
			break
		}
	}
	s := fmt.Sprintf("%d%s/s", bps, unit)
	if intervalUsecs != 0 && intervalUsecs != defaultRateIntervalUsecs {
		if intervalUsecs%1000 == 0 {
			s += fmt.Sprintf("@%dms", intervalUsecs/1000)
		} else {
			s += fmt.Sprintf("@%dus", intervalUsecs)
		}
	}
	return s
}

// defaultRateIntervalUsecs is libxl's default credit interval, 50 ms.
const defaultRateIntervalUsecs = 50000

func setIf(f *File, key, val string) {
	if val != "" {
		f.SetString(key, val)
	}
}

func kv(k, v string) string {
	if v == "" {
		return ""
	}
	return k + "=" + v
}

func kvInt(k string, v int) string {
	if v == 0 {
		return ""
	}
	return k + "=" + strconv.Itoa(v)
}

// join joins the non-empty parts with commas.
func join(parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, ",")
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
