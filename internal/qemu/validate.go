package qemu

import "github.com/virtd/virtd/driver/domxml"

// honoured is every part of libvirt's domain XML the driver honours, as
// paths of libvirtxml.Domain's Go fields (see domxml.Fields). A set field
// whose path is not listed is refused at define, naming the XML element or
// attribute, so that nothing is dropped silently. Values are checked
// further in parseConfig.
var honoured = domxml.NewFields("qemu", `
Type Name UUID Title Description
Memory Memory.Value Memory.Unit
CurrentMemory CurrentMemory.Value CurrentMemory.Unit
VCPU VCPU.Value VCPU.Placement VCPU.Current
OS OS.Type OS.Type.Type OS.Type.Arch OS.Type.Machine
OS.Kernel OS.Initrd OS.Cmdline OS.BootDevices OS.BootDevices.Dev
Features Features.ACPI Features.APIC
Clock Clock.Offset
OnPoweroff OnReboot OnCrash
Devices Devices.Emulator
Devices.Disks Devices.Disks.Device
Devices.Disks.Driver Devices.Disks.Driver.Name Devices.Disks.Driver.Type
Devices.Disks.Source Devices.Disks.Source.File Devices.Disks.Source.File.File
Devices.Disks.Source.Block Devices.Disks.Source.Block.Dev
Devices.Disks.Target Devices.Disks.Target.Dev Devices.Disks.Target.Bus
Devices.Disks.ReadOnly Devices.Disks.Boot Devices.Disks.Boot.Order
Devices.Interfaces Devices.Interfaces.MAC Devices.Interfaces.MAC.Address
Devices.Interfaces.Source Devices.Interfaces.Source.User
Devices.Interfaces.Source.Bridge Devices.Interfaces.Source.Bridge.Bridge
Devices.Interfaces.Target Devices.Interfaces.Target.Dev
Devices.Interfaces.Model Devices.Interfaces.Model.Type
Devices.Interfaces.Boot Devices.Interfaces.Boot.Order
Devices.Serials Devices.Serials.Source
Devices.Serials.Source.Pty Devices.Serials.Source.Pty.Path
Devices.Serials.Source.File Devices.Serials.Source.File.Path Devices.Serials.Source.File.Append
Devices.Serials.Target Devices.Serials.Target.Port Devices.Serials.Target.Type
Devices.Serials.Target.Model Devices.Serials.Target.Model.Name
Devices.Consoles Devices.Consoles.TTY Devices.Consoles.Source
Devices.Consoles.Source.Pty Devices.Consoles.Source.Pty.Path
Devices.Consoles.Source.File Devices.Consoles.Source.File.Path Devices.Consoles.Source.File.Append
Devices.Consoles.Target Devices.Consoles.Target.Type Devices.Consoles.Target.Port
Devices.Graphics Devices.Graphics.VNC Devices.Graphics.VNC.Port Devices.Graphics.VNC.AutoPort
Devices.Graphics.VNC.Listen Devices.Graphics.VNC.Listeners
Devices.Graphics.VNC.Listeners.Address Devices.Graphics.VNC.Listeners.Address.Address
Devices.MemBalloon Devices.MemBalloon.Model
Devices.Controllers Devices.Controllers.Type Devices.Controllers.Index Devices.Controllers.Model
Devices.Controllers.USB Devices.Controllers.PCI
Devices.Inputs Devices.Inputs.Type Devices.Inputs.Bus
`, honouredExtras)
