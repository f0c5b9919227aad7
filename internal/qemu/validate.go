package qemu

import "github.com/virtd/virtd/driver/domxml"

// honoured is every part of libvirt's domain XML the driver honours, as
// paths of libvirtxml.Domain's Go fields (see domxml.Fields). A set field
// whose path is not listed is refused at define, naming the XML element or
// attribute, so that nothing is dropped silently. Values are checked
// further in parseConfig.
var honoured = domxml.NewFields("qemu", `
Type Name UUID Title Description Metadata.*
Memory Memory.Value Memory.Unit
CurrentMemory CurrentMemory.Value CurrentMemory.Unit
VCPU VCPU.Value VCPU.Placement VCPU.Current
OS OS.Type OS.Type.Type OS.Type.Arch OS.Type.Machine
OS.Kernel OS.Initrd OS.Cmdline OS.BootDevices OS.BootDevices.Dev
OS.BootMenu.Enable OS.BootMenu.Timeout OS.BIOS.UseSerial OS.BIOS.RebootTimeout OS.SMBios.Mode
SysInfo.SMBIOS.BIOS.Entry.Name SysInfo.SMBIOS.BIOS.Entry.Value
SysInfo.SMBIOS.System.Entry.Name SysInfo.SMBIOS.System.Entry.Value
SysInfo.SMBIOS.OEMStrings.Entry
Features Features.ACPI Features.APIC Features.APIC.EOI Features.PAE Features.HAP.State
Features.VMPort.State Features.PMU.State Features.VMCoreInfo.State Features.PVSpinlock.State
Features.SMM.State Features.IOAPIC.Driver
Features.HyperV.Mode Features.HyperV.Relaxed.State Features.HyperV.VAPIC.State
Features.HyperV.Spinlocks.DomainFeatureState.State Features.HyperV.Spinlocks.Retries
Features.HyperV.VPIndex.State Features.HyperV.Runtime.State Features.HyperV.Synic.State
Features.HyperV.STimer.DomainFeatureState.State Features.HyperV.Reset.State
Features.HyperV.VendorId.DomainFeatureState.State Features.HyperV.VendorId.Value
Features.HyperV.Frequencies.State Features.HyperV.ReEnlightenment.State
Features.HyperV.TLBFlush.DomainFeatureState.State Features.HyperV.IPI.State Features.HyperV.EVMCS.State
Features.KVM.Hidden.State
Clock Clock.Offset Clock.Basis Clock.Adjustment Clock.TimeZone
Clock.Timer.Name Clock.Timer.TickPolicy Clock.Timer.Present Clock.Timer.Track
PM.SuspendToMem.Enabled PM.SuspendToDisk.Enabled
SecLabel.Type SecLabel.Model Resource.Partition
OnPoweroff OnReboot OnCrash
Devices Devices.Emulator
Devices.Disks Devices.Disks.Device Devices.Disks.Serial Devices.Disks.Address.*
Devices.Disks.Driver Devices.Disks.Driver.Name Devices.Disks.Driver.Type
Devices.Disks.Driver.Cache Devices.Disks.Driver.IO Devices.Disks.Driver.Discard
Devices.Disks.Driver.DetectZeros Devices.Disks.Driver.ErrorPolicy Devices.Disks.Driver.RErrorPolicy
Devices.Disks.Source Devices.Disks.Source.File Devices.Disks.Source.File.File
Devices.Disks.Source.Block Devices.Disks.Source.Block.Dev Devices.Disks.BackingStore
Devices.Disks.Target Devices.Disks.Target.Dev Devices.Disks.Target.Bus
Devices.Disks.ReadOnly Devices.Disks.Boot Devices.Disks.Boot.Order
Devices.Controllers Devices.Controllers.Type Devices.Controllers.Index Devices.Controllers.Model
Devices.Controllers.Address.*
Devices.Controllers.PCI.Model.Name Devices.Controllers.PCI.Target.Chassis
Devices.Controllers.PCI.Target.Port Devices.Controllers.PCI.Target.ChassisNr
Devices.Controllers.USB.Port Devices.Controllers.USB.Master.StartPort
Devices.Controllers.VirtIOSerial.Ports Devices.Controllers.VirtIOSerial.Vectors
Devices.Controllers.Driver.Queues
Devices.Interfaces Devices.Interfaces.MAC Devices.Interfaces.MAC.Address Devices.Interfaces.Address.*
Devices.Interfaces.Source Devices.Interfaces.Source.User Devices.Interfaces.Source.Ethernet
Devices.Interfaces.Source.Bridge Devices.Interfaces.Source.Bridge.Bridge
Devices.Interfaces.Target Devices.Interfaces.Target.Dev Devices.Interfaces.Target.Managed
Devices.Interfaces.Model Devices.Interfaces.Model.Type
Devices.Interfaces.MTU.Size Devices.Interfaces.Link.State
Devices.Interfaces.Driver.Name Devices.Interfaces.Driver.Queues Devices.Interfaces.Driver.RXQueueSize Devices.Interfaces.Driver.TXQueueSize
Devices.Interfaces.Boot Devices.Interfaces.Boot.Order
Devices.Serials Devices.Serials.Source.* Devices.Serials.Protocol.Type Devices.Serials.Log.File Devices.Serials.Log.Append
Devices.Serials.Target Devices.Serials.Target.Port Devices.Serials.Target.Type
Devices.Serials.Target.Model Devices.Serials.Target.Model.Name
Devices.Consoles Devices.Consoles.TTY Devices.Consoles.Source.* Devices.Consoles.Log.File Devices.Consoles.Log.Append
Devices.Consoles.Target Devices.Consoles.Target.Type Devices.Consoles.Target.Port
Devices.Channels.Source.* Devices.Channels.Target.VirtIO.Name Devices.Channels.Target.VirtIO.State
Devices.Channels.Address.*
Devices.Graphics Devices.Graphics.VNC Devices.Graphics.VNC.Port Devices.Graphics.VNC.AutoPort
Devices.Graphics.VNC.Listen Devices.Graphics.VNC.Keymap Devices.Graphics.VNC.Listeners
Devices.Graphics.VNC.Listeners.Address Devices.Graphics.VNC.Listeners.Address.Address
Devices.Graphics.Spice.Port Devices.Graphics.Spice.TLSPort Devices.Graphics.Spice.AutoPort Devices.Graphics.Spice.Listen
Devices.Graphics.Spice.Listeners.Address.Address
Devices.Graphics.Spice.Image.Compression
Devices.Videos.Model.Type Devices.Videos.Model.Heads Devices.Videos.Model.Ram Devices.Videos.Model.VRam
Devices.Videos.Model.VGAMem Devices.Videos.Model.Primary Devices.Videos.Address.*
Devices.Sounds.Model Devices.Sounds.Codec.Type Devices.Sounds.Audio.ID Devices.Sounds.Address.*
Devices.Audios.ID Devices.Audios.None Devices.Audios.SPICE Devices.Audios.File.Path
Devices.Inputs Devices.Inputs.Type Devices.Inputs.Bus Devices.Inputs.Address.*
Devices.MemBalloon Devices.MemBalloon.Model Devices.MemBalloon.AutoDeflate
Devices.MemBalloon.FreePageReporting Devices.MemBalloon.Stats.Period Devices.MemBalloon.Address.*
Devices.RNGs.Model Devices.RNGs.Backend.Random.Device Devices.RNGs.Backend.BuiltIn
Devices.RNGs.Rate.Bytes Devices.RNGs.Rate.Period Devices.RNGs.Address.*
Devices.Watchdogs.Model Devices.Watchdogs.Action Devices.Watchdogs.Address.*
Devices.Panics.Model Devices.Panics.Address.*
Devices.VSock.Model Devices.VSock.CID.Auto Devices.VSock.CID.Address Devices.VSock.Address.*
Devices.Hubs.Type Devices.Hubs.Address.*
Devices.RedirDevs.Bus Devices.RedirDevs.Source.* Devices.RedirDevs.Address.* Devices.RedirDevs.Boot.Order
`, honouredTuning, honouredExtras)
