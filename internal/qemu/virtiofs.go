package qemu

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

// A virtiofs share: <filesystem type='mount' accessmode='passthrough'>
// <driver type='virtiofs'/><source dir='/path'/><target dir='TAG'/>
// </filesystem>. The driver runs QEMU's virtiofsd for each; vhost-user
// needs the guest's memory shared with it, so the domain must have
// <memoryBacking><source type='memfd'/><access mode='shared'/>.
//
// The source directory is a host path the client chooses, served to the
// guest read-write by virtiofsd running as root. That is acceptable only
// because defining and starting domains takes a read-write connection,
// which is root-equivalent already (it can have QEMU open any host file as
// a disk); read-only connections never get here.

// normaliseMemoryBacking checks <memoryBacking>: only a memfd source and
// shared or private access.
func normaliseMemoryBacking(x *libvirtxml.Domain, bad badFunc) error {
	mb := x.MemoryBacking
	if mb == nil {
		return nil
	}
	if mb.MemoryAllocation != nil || mb.MemoryDiscard != nil {
		return bad("<memoryBacking>: <allocation> and <discard> are not supported")
	}
	if h := mb.MemoryHugePages; h != nil && len(h.Hugepages) > 0 {
		return bad("<memoryBacking><hugepages><page>: only the host's default huge page size is supported (give <hugepages/>)")
	}
	if s := mb.MemorySource; s != nil && s.Type != "memfd" {
		return bad("<memoryBacking><source type='%s'> is not supported (only memfd)", s.Type)
	}
	if a := mb.MemoryAccess; a != nil {
		if a.Mode != "shared" && a.Mode != "private" {
			return bad("<memoryBacking><access mode='%s'> is not supported (only shared and private)", a.Mode)
		}
		if a.Mode == "shared" && mb.MemorySource == nil {
			return bad("<memoryBacking><access mode='shared'> needs <source type='memfd'>")
		}
	}
	return nil
}

// sharedMemory reports whether the guest's memory is a shared memfd.
func sharedMemory(x *libvirtxml.Domain) bool {
	mb := x.MemoryBacking
	return mb != nil && mb.MemorySource != nil && mb.MemoryAccess != nil && mb.MemoryAccess.Mode == "shared"
}

// normaliseFilesystems checks the virtiofs shares of x.
func normaliseFilesystems(x *libvirtxml.Domain, bad badFunc) error {
	tags := map[string]bool{}
	for i := range x.Devices.Filesystems {
		fs := &x.Devices.Filesystems[i]
		if fs.Driver == nil || fs.Driver.Type != "virtiofs" {
			t := ""
			if fs.Driver != nil {
				t = fs.Driver.Type
			}
			return bad("filesystem %d: <driver type='%s'> is not supported (only virtiofs)", i, t)
		}
		if b := fs.Binary; b != nil && (b.Path != "" && !filepath.IsAbs(b.Path) || b.XAttr != "" || b.Cache != nil || b.Lock != nil || b.Sandbox != nil || b.ThreadPool != nil || b.OpenFiles != nil) {
			return bad("filesystem %d: <binary>: only an absolute path is supported", i)
		}
		if q := fs.Driver.Queue; q != 0 && (q > 1024 || q&(q-1) != 0) {
			return bad("<filesystem><driver queue='%d'> must be a power of two up to 1024", q)
		}
		if fs.Source == nil || fs.Source.Mount == nil || fs.Source.Mount.Dir == "" {
			return bad("filesystem %d: only <filesystem type='mount'> with <source dir='...'> is supported", i)
		}
		dir := fs.Source.Mount.Dir
		if !filepath.IsAbs(dir) {
			return bad("filesystem %d: <source dir='%s'> must be an absolute path", i, dir)
		}
		// virtiofsd reads -o source=DIR up to the next comma.
		if strings.ContainsAny(dir, ",\n") {
			return bad("filesystem %d: <source dir='%s'> must not contain a comma or newline", i, dir)
		}
		if fs.AccessMode == "" {
			fs.AccessMode = "passthrough"
		}
		if fs.AccessMode != "passthrough" {
			return bad("filesystem %d: <filesystem accessmode='%s'> is not supported with virtiofs (only passthrough)", i, fs.AccessMode)
		}
		if fs.Target == nil || fs.Target.Dir == "" {
			return bad("filesystem %d: <target dir='...'> (the mount tag) is missing", i)
		}
		tag := fs.Target.Dir
		// The virtio-fs tag field is 36 bytes; the guest names it on its
		// mount command line.
		if len(tag) > 36 || strings.ContainsAny(tag, ", \t\n\x00") {
			return bad("filesystem %d: <target dir='%s'> must be at most 36 bytes, without commas or spaces", i, tag)
		}
		if tags[tag] {
			return bad("filesystem %d: <target dir='%s'> is used twice", i, tag)
		}
		tags[tag] = true
		if !sharedMemory(x) {
			return bad("filesystem %d (<target dir='%s'>): virtiofs needs <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>", i, tag)
		}
	}
	return nil
}

// memoryMachineOpts are the -machine options for a memfd memory backend.
func memoryMachineOpts(x *libvirtxml.Domain) []string {
	mb := x.MemoryBacking
	if mb == nil {
		return nil
	}
	var o []string
	if mb.MemorySource != nil || mb.MemoryHugePages != nil {
		o = append(o, "memory-backend=pc.ram")
	}
	if mb.MemoryNosharepages != nil {
		o = append(o, "mem-merge=off")
	}
	return o
}

// checkHugePages checks, at start, that the host has the huge pages a
// guest backed by them needs: QEMU would map them and fail later, when
// the guest touches memory the pool cannot give.
func checkHugePages(c *config) error {
	mb := c.x.MemoryBacking
	if mb == nil || mb.MemoryHugePages == nil {
		return nil
	}
	free, err := hugePagesFreeKiB()
	if err != nil {
		return err
	}
	if need := c.maxMemKiB; free < need {
		return fmt.Errorf("domain '%s': <memoryBacking><hugepages>: the host has %d KiB of free huge pages, the guest needs %d KiB: %w",
			c.Name(), free, need, virt.ErrNotSupported)
	}
	return nil
}

// hugePagesFreeKiB is the host's free huge page memory, from /proc/meminfo
// (0 when the kernel has no pool).
func hugePagesFreeKiB() (uint64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, virt.Errorf(virt.ErrInternal, "reading /proc/meminfo: %w", err)
	}
	var free, size uint64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "HugePages_Free:":
			free = n
		case "Hugepagesize:":
			size = n
		}
	}
	return free * size, nil
}

// filesystemArgs adds the memory backend and the vhost-user-fs devices.
func filesystemArgs(a *args, c *config, rt runtimePaths) {
	x := c.x
	if mb := x.MemoryBacking; mb != nil && (mb.MemorySource != nil || mb.MemoryHugePages != nil) {
		share := "off"
		if sharedMemory(x) {
			share = "on"
		}
		obj := fmt.Sprintf("memory-backend-memfd,id=pc.ram,share=%s,size=%dk", share, c.maxMemKiB)
		if mb.MemoryHugePages != nil {
			obj += ",hugetlb=on"
		}
		a.add("-object", obj)
	}
	if mb := x.MemoryBacking; mb != nil && mb.MemoryLocked != nil {
		a.add("-overcommit", "mem-lock=on")
	}
	for i, fs := range x.Devices.Filesystems {
		id := fmt.Sprintf("chr-vu-fs%d", i)
		a.add("-chardev", "socket,id="+id+",path="+opt(virtiofsSocket(rt, i)))
		d := fmt.Sprintf("vhost-user-fs-pci,chardev=%s,tag=%s,id=fs%d", id, opt(fs.Target.Dir), i)
		if fs.Driver.Queue != 0 {
			d += fmt.Sprintf(",queue-size=%d", fs.Driver.Queue)
		}
		a.add("-device", d+at(c.x, fs.Address))
	}
}

func virtiofsSocket(rt runtimePaths, i int) string {
	return fmt.Sprintf("%s.fs%d.sock", runBase(rt), i)
}

// checkFilesystemSources checks, at start, that each share's source is a
// directory.
func checkFilesystemSources(c *config) error {
	for i, fs := range c.x.Devices.Filesystems {
		dir := fs.Source.Mount.Dir
		st, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("domain '%s': filesystem %d: <source dir='%s'>: %w", c.Name(), i, dir, errKind(err))
		}
		if !st.IsDir() {
			return fmt.Errorf("domain '%s': filesystem %d: <source dir='%s'> is not a directory: %w", c.Name(), i, dir, virt.ErrInvalidArgument)
		}
	}
	return nil
}

// startVirtiofsd starts a virtiofsd for each share of c.
func (drv *Driver) startVirtiofsd(c *config, rec *record) error {
	if len(c.x.Devices.Filesystems) == 0 {
		return nil
	}
	found, err := helperPath("virtiofsd", "/usr/libexec", "/usr/lib/qemu")
	for i, fs := range c.x.Devices.Filesystems {
		bin := found
		if fs.Binary != nil && fs.Binary.Path != "" {
			// A read-write connection names the program, as it names the
			// emulator: both run as root.
			if err := checkFile(c, "virtiofsd", fs.Binary.Path, true); err != nil {
				return err
			}
			bin = fs.Binary.Path
		} else if err != nil {
			return fmt.Errorf("domain '%s': <filesystem>: %w", c.Name(), err)
		}
		sock := virtiofsSocket(runtimePaths{PidFile: rec.PidFile}, i)
		logPath := filepath.Join(drv.cfg.LogDir, fmt.Sprintf("%s-fs%d-virtiofsd.log", c.UUID(), i))
		if err := drv.startHelper(rec, fmt.Sprintf("virtiofsd fs%d", i), sock, logPath,
			[]string{bin, "--fd=3", "-o", "source=" + fs.Source.Mount.Dir + ",cache=auto"}); err != nil {
			return err
		}
	}
	return nil
}
