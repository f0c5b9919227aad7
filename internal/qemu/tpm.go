package qemu

import (
	"fmt"
	"os"
	"path/filepath"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

// An emulated TPM: <tpm model='tpm-tis|tpm-crb'><backend type='emulator'
// version='2.0'/></tpm>. The driver runs swtpm for it; its state lives in
// StateDir/swtpm/<uuid>/, kept across the guest's restarts and removed
// when the domain is undefined (or a transient one stops).

// normaliseTPM checks the TPMs of x and fills in libvirt's defaults.
func normaliseTPM(x *libvirtxml.Domain, bad badFunc) error {
	if len(x.Devices.TPMs) > 1 {
		return bad("only one <tpm> is supported, not %d", len(x.Devices.TPMs))
	}
	for i := range x.Devices.TPMs {
		t := &x.Devices.TPMs[i]
		if t.Model == "" {
			t.Model = "tpm-tis"
		}
		if t.Model != "tpm-tis" && t.Model != "tpm-crb" {
			return bad("<tpm model='%s'> is not supported (only tpm-tis and tpm-crb)", t.Model)
		}
		if t.Backend == nil || t.Backend.Emulator == nil {
			return bad("<tpm>: only <backend type='emulator'> is supported")
		}
		e := t.Backend.Emulator
		if e.Version == "" {
			e.Version = "2.0"
		}
		if e.Version != "2.0" {
			return bad("<tpm><backend version='%s'> is not supported (only 2.0)", e.Version)
		}
	}
	return nil
}

// tpmArgs adds the TPM's chardev, backend and device to QEMU's command
// line.
func tpmArgs(a *args, x *libvirtxml.Domain, rt runtimePaths) {
	for _, t := range x.Devices.TPMs {
		a.add("-chardev", "socket,id=chrtpm,path="+opt(tpmSocket(rt)))
		a.add("-tpmdev", "emulator,id=tpm-tpm0,chardev=chrtpm")
		a.add("-device", t.Model+",tpmdev=tpm-tpm0,id=tpm0")
	}
}

// runBase is the prefix of a guest's runtime files (RunDir/<uuid>), from
// its pidfile's name.
func runBase(rt runtimePaths) string {
	return rt.PidFile[:len(rt.PidFile)-len(filepath.Ext(rt.PidFile))]
}

func tpmSocket(rt runtimePaths) string { return runBase(rt) + ".swtpm.sock" }

func (drv *Driver) tpmStateDir(c *config) string {
	return filepath.Join(drv.cfg.StateDir, "swtpm", c.UUID())
}

// startTPM starts swtpm for c's TPM, if it has one.
func (drv *Driver) startTPM(c *config, rec *record) error {
	if len(c.x.Devices.TPMs) == 0 {
		return nil
	}
	swtpm, err := helperPath("swtpm", "/usr/bin")
	if err != nil {
		return fmt.Errorf("domain '%s': <tpm>: %w", c.Name(), err)
	}
	state := filepath.Join(drv.tpmStateDir(c), "tpm2")
	if err := os.MkdirAll(state, 0o700); err != nil {
		return virt.Errorf(virt.ErrInternal, "domain '%s': TPM state: %w", c.Name(), err)
	}
	sock := tpmSocket(runtimePaths{PidFile: rec.PidFile})
	logPath := filepath.Join(drv.cfg.LogDir, c.UUID()+"-swtpm.log")
	// --terminate: swtpm also ends when QEMU closes its connection.
	return drv.startHelper(rec, "swtpm", sock, logPath, []string{swtpm, "socket", "--tpm2",
		"--ctrl", "type=unixio,fd=3", "--tpmstate", "dir=" + state + ",mode=0600",
		"--log", "file=" + logPath, "--terminate"})
}
