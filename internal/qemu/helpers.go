package qemu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/internal/procfs"
	"github.com/virtd/virtd/virt"
)

// A guest may need processes besides QEMU: swtpm for an emulated TPM,
// virtiofsd for each virtiofs share. The driver starts them before QEMU,
// each listening on a unix socket the driver creates and hands over as
// fd 3 (so QEMU can connect at once), records them in the domain's
// runtime record (found again after a driver restart), and kills them
// when QEMU has exited or its start failed.

// honouredExtras are the XML fields of TPMs, virtiofs shares, UEFI
// firmware, memory backing and guest agent channels, joined to honoured
// (validate.go).
const honouredExtras = `
Devices.TPMs Devices.TPMs.Model Devices.TPMs.Backend Devices.TPMs.Backend.Emulator
Devices.TPMs.Backend.Emulator.Version
Devices.Filesystems Devices.Filesystems.AccessMode Devices.Filesystems.Driver
Devices.Filesystems.Driver.Type Devices.Filesystems.Driver.Queue Devices.Filesystems.Binary.* Devices.Filesystems.Address.* Devices.Filesystems.Source Devices.Filesystems.Source.Mount
Devices.Filesystems.Source.Mount.Dir Devices.Filesystems.Target Devices.Filesystems.Target.Dir
MemoryBacking MemoryBacking.MemorySource MemoryBacking.MemorySource.Type
MemoryBacking.MemoryHugePages MemoryBacking.MemoryNosharepages MemoryBacking.MemoryLocked
MemoryBacking.MemoryAccess MemoryBacking.MemoryAccess.Mode
OS.Firmware OS.FirmwareInfo.Features.Enabled OS.FirmwareInfo.Features.Name OS.Loader OS.Loader.Path OS.Loader.Readonly OS.Loader.Secure OS.Loader.Type
OS.Loader.Format OS.NVRam OS.NVRam.NVRam OS.NVRam.Template OS.NVRam.Format
`

// helperRecord is one helper process of a running guest, in its record.
type helperRecord struct {
	// Kind says what it is: "swtpm" or "virtiofsd fs0".
	Kind string `json:"kind"`
	Pid  int    `json:"pid"`
	// StartTime names the process with Pid, as in record.
	StartTime uint64 `json:"start_time"`
	// Socket is the unix socket QEMU connects to, removed with it.
	Socket string `json:"socket"`
}

// helperDone holds, by pid, a channel closed when a helper the driver
// started itself (its child) has been reaped. Helpers found again after a
// restart are not there.
var helperDone sync.Map // int -> chan struct{}

// startHelper starts argv (argv[0] absolute) in its own session with a
// unix socket listening at sock as fd 3, its output appended to logPath,
// and adds it to rec.
func (drv *Driver) startHelper(rec *record, kind, sock, logPath string, argv []string) error {
	if len(sock) >= 108 {
		return fmt.Errorf("domain '%s': %s socket path %s is longer than a unix socket allows: %w", rec.Name, kind, sock, virt.ErrInvalidArgument)
	}
	os.Remove(sock)
	lnFile, err := listenFile(sock)
	if err != nil {
		return virt.Errorf(virt.ErrInternal, "domain '%s': %s socket: %w", rec.Name, kind, err)
	}
	defer lnFile.Close()
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		os.Remove(sock)
		return virt.Errorf(virt.ErrInternal, "domain '%s': %s log: %w", rec.Name, kind, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "%s: starting %s\n%s\n", time.Now().Format(time.RFC3339Nano), kind, shellQuote(argv))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{lnFile}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		os.Remove(sock)
		return virt.Errorf(virt.ErrInternal, "domain '%s': starting %s: %w", rec.Name, argv[0], err)
	}
	done := make(chan struct{})
	helperDone.Store(cmd.Process.Pid, done)
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	h := helperRecord{Kind: kind, Pid: cmd.Process.Pid, Socket: sock}
	if st, err := procfs.ReadStat(h.Pid); err == nil {
		h.StartTime = st.StartTime
	}
	rec.Helpers = append(rec.Helpers, h)
	return nil
}

// startHelpers prepares what c needs besides QEMU: the NVRAM file, swtpm
// and virtiofsd. On failure, what it started is stopped.
func (drv *Driver) startHelpers(c *config, rec *record) error {
	err := drv.prepareNVRAM(c)
	if err == nil {
		err = drv.startTPM(c, rec)
	}
	if err == nil {
		err = drv.startVirtiofsd(c, rec)
	}
	if err != nil {
		drv.stopHelpers(rec)
	}
	return err
}

// stopHelpers ends rec's helpers (SIGTERM, then SIGKILL), waits until
// they are gone and removes their sockets. A helper found again after a
// restart is signalled only while its pid and start time still match.
func (drv *Driver) stopHelpers(rec *record) {
	for _, h := range rec.Helpers {
		drv.stopHelper(rec, h)
		if h.Socket != "" {
			os.Remove(h.Socket)
		}
	}
	rec.Helpers = nil
}

func (drv *Driver) stopHelper(rec *record, h helperRecord) {
	if v, ok := helperDone.LoadAndDelete(h.Pid); ok {
		done := v.(chan struct{})
		_ = syscall.Kill(h.Pid, syscall.SIGTERM)
		select {
		case <-done:
			return
		case <-time.After(3 * time.Second):
		}
		_ = syscall.Kill(h.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			drv.log.Error("helper did not exit after SIGKILL", "name", rec.Name, "kind", h.Kind, "pid", h.Pid)
		}
		return
	}
	// Not our child: a pidfd names the process while we check and kill.
	fd, err := unix.PidfdOpen(h.Pid, 0)
	if err != nil {
		return // gone
	}
	defer unix.Close(fd)
	if !procfs.Alive(h.Pid, h.StartTime) {
		return
	}
	_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	_ = waitPidfd(fd)
}

// helperPath finds a helper binary in dirs, then on PATH.
func helperPath(name string, dirs ...string) (string, error) {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found in %s or on PATH: %w", name, strings.Join(dirs, ", "), virt.ErrNotFound)
	}
	return p, nil
}

// removeDomainState removes what the driver keeps for domain c beyond
// its definition: the TPM's state. The NVRAM file stays (see firmware.go).
func (drv *Driver) removeDomainState(c *config) {
	dir := drv.tpmStateDir(c)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return // most domains have none: one system call, not RemoveAll's two
	}
	if err := os.RemoveAll(dir); err != nil {
		drv.log.Warn("cannot remove the TPM state", "name", c.Name(), "error", err)
	}
}

// normaliseExtras checks memory backing, TPMs, virtiofs shares, UEFI
// firmware and channels (parseConfig's hook).
func normaliseExtras(x *libvirtxml.Domain, bad badFunc) error {
	for _, f := range []func(*libvirtxml.Domain, badFunc) error{
		normaliseMemoryBacking, normaliseTPM, normaliseFilesystems, normaliseFirmware,
	} {
		if err := f(x, bad); err != nil {
			return err
		}
	}
	return nil
}

// extraMachineOpts are buildArgv's -machine options for them.
func extraMachineOpts(x *libvirtxml.Domain) []string {
	return append(firmwareMachineOpts(x), memoryMachineOpts(x)...)
}

// extraArgs adds their part of QEMU's command line (buildArgv's hook).
func extraArgs(a *args, c *config, rt runtimePaths) {
	firmwareArgs(a, c.x)
	filesystemArgs(a, c, rt)
	tpmArgs(a, c.x, rt)
}

// checkExtras fills in the firmware paths and checks the files the
// firmware and the shares need, at start (checkHost's hook).
func (drv *Driver) checkExtras(c *config, starting bool) error {
	if !starting {
		// As libvirt: firmware='efi' is picked at each start, so that an
		// upgraded OVMF is used; a loader given gets its NVRAM file now.
		if l := c.x.OS.Loader; l != nil && l.Path != "" {
			return resolveFirmware(c, drv.cfg.StateDir, drv.caps.fw.get())
		}
		return nil
	}
	if err := resolveFirmware(c, drv.cfg.StateDir, drv.caps.fw.get()); err != nil {
		return err
	}
	if err := checkFirmwareFiles(c); err != nil {
		return err
	}
	if err := checkHugePages(c); err != nil {
		return err
	}
	return checkFilesystemSources(c)
}
