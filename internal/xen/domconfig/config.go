// Package domconfig is the Xen driver's model of one domain: the part of
// libxl's libxl_domain_config that virtd fills in, as plain Go values. Domain
// XML is read into it and written from it here (FromXML, ToXML); package
// xlconfig converts it to and from xl.cfg, and package libxl turns it into
// libxl's C structure. Keeping one model means that a definition, a
// domxml-to-native conversion and a domain start all accept and refuse the
// same things.
//
// It has no cgo and needs no hypervisor.
package domconfig

// Type is the guest type, libxl's libxl_domain_type in xl.cfg's spelling.
type Type string

// Guest types.
const (
	PV  Type = "pv"
	HVM Type = "hvm"
	PVH Type = "pvh"
)

// Action is what Xen does when a guest powers off, reboots or crashes, in
// the spelling shared by libvirt's <on_*> elements and xl.cfg.
type Action string

// Actions (libxl_action_on_shutdown).
const (
	ActionDestroy         Action = "destroy"
	ActionRestart         Action = "restart"
	ActionRenameRestart   Action = "rename-restart"
	ActionPreserve        Action = "preserve"
	ActionCoredumpDestroy Action = "coredump-destroy"
	ActionCoredumpRestart Action = "coredump-restart"
)

// Valid reports whether a is one of libxl's actions.
func (a Action) Valid() bool {
	switch a {
	case ActionDestroy, ActionRestart, ActionRenameRestart, ActionPreserve,
		ActionCoredumpDestroy, ActionCoredumpRestart:
		return true
	}
	return false
}

// Config is one domain's configuration.
type Config struct {
	Type Type
	Name string
	// UUID is libvirt's canonical form, or empty when the source had none.
	UUID string

	// MaxMemKiB is the memory ceiling (xl "maxmem"), MemKiB what the guest
	// starts with (xl "memory").
	MaxMemKiB, MemKiB uint64
	// MaxVCPUs is the number of vCPUs the guest may have, VCPUs how many
	// are online at start (VCPUs <= MaxVCPUs).
	MaxVCPUs, VCPUs int
	// CPUs is the physical CPU set the vCPUs may run on ("0-3,^2"), empty
	// for any.
	CPUs string

	// Direct kernel boot (PV, PVH; HVM as well through the device model).
	Kernel, Ramdisk, Cmdline string
	// Bootloader (PV only), e.g. pygrub, and its arguments.
	Bootloader     string
	BootloaderArgs []string

	OnPoweroff, OnReboot, OnCrash Action

	// Limits Xen puts on the guest; zero means Xen's default.
	MaxEventChannels uint32
	MaxGrantFrames   uint32

	// Clock: Localtime starts the RTC in the host's local time;
	// RTCTimeOffset (seconds) is added to it.
	Localtime     bool
	RTCTimeOffset int64
	// TSCMode is libxl_tsc_mode: "default", "always_emulate", "native",
	// "native_paravirt"; empty for the default.
	TSCMode string

	HVM *HVMOptions

	Disks []Disk
	NICs  []NIC
	// VNC is the guest's framebuffer served over VNC (HVM: the emulated
	// VGA; PV and PVH: a vfb device); nil for none.
	VNC *VNC
	// USBCtrls and USBDevs are xl's usbctrl and usbdev: USB controllers and
	// host USB devices passed through to the guest.
	USBCtrls []USBCtrl
	USBDevs  []USBDev
}

// HVMOptions are the settings of a fully virtualised guest.
type HVMOptions struct {
	// BIOS is libxl_bios_type ("seabios", "ovmf", "rombios"), empty for
	// libxl's default; FirmwarePath overrides the firmware file.
	BIOS         string
	FirmwarePath string
	// Boot is the boot order in xl's letters: c (disk), d (CD-ROM), n
	// (network), a (floppy).
	Boot string
	// Feature switches; nil leaves libxl's default.
	ACPI, APIC, PAE, HAP, Viridian, HPET, NestedHVM *bool
	// Loader overrides hvmloader, the firmware loader (xl
	// "firmware_override").
	Loader string
	// DeviceModel overrides the QEMU binary.
	DeviceModel string
	// VGA is libxl_vga_interface_type: "cirrus", "stdvga", "none"; empty
	// for libxl's default.
	VGA string
	// Serial is the emulated serial port ("pty"), empty for none.
	Serial string
	// USBDevices are emulated USB devices ("tablet", "mouse"); they need
	// USB enabled, which is implied.
	USBDevices []string
}

// Disk is one virtual block device.
type Disk struct {
	// Target is the backing file or device.
	Target string
	// Format is libxl_disk_format ("raw", "qcow", "qcow2", "vhd", "qed"),
	// empty for raw.
	Format string
	// Vdev is the guest's name for the disk ("xvda", "hda").
	Vdev string
	// Backend is libxl_disk_backend ("phy", "qdisk", "tap"), empty to let
	// libxl choose.
	Backend  string
	ReadOnly bool
	CDROM    bool
}

// NIC is one virtual network interface.
type NIC struct {
	MAC    string
	Bridge string
	Script string
	// Model is the emulated card of an HVM guest ("e1000").
	Model string
	// Type is libxl_nic_type: "vif" (PV only) or "ioemu" (emulated and
	// PV); empty for libxl's default.
	Type   string
	IfName string
	IP     string
	// RateBytesPerSec limits outgoing traffic; zero for no limit. It is
	// libvirt's <bandwidth><outbound average> in kB/s (1000 bytes), the
	// unit xl's "rate=NKB/s" uses.
	// RateIntervalUsecs is the replenishment interval (zero: libxl's
	// default of 50 ms).
	RateBytesPerSec   uint64
	RateIntervalUsecs uint32
}

// VNC is a VNC server for the guest's display.
type VNC struct {
	Listen string
	// Display is the VNC display (port 5900+Display); -1 picks a free one.
	Display int
	Passwd  string
	Keymap  string
}

// USBCtrl is one USB controller.
type USBCtrl struct {
	// Type is libxl_usbctrl_type: "pv", "devicemodel", "qusb"; empty for
	// libxl's choice.
	Type    string
	Version int
	Ports   int
}

// USBDev is one host USB device, by bus and address.
type USBDev struct {
	HostBus, HostAddr int
}

// Bool returns a pointer to b, for the optional switches.
func Bool(b bool) *bool { return &b }
