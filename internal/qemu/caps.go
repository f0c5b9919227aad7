package qemu

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/internal/atomicfile"
	"github.com/virtd/virtd/internal/qemu/qmp"
	"github.com/virtd/virtd/virt"
)

// emulator is one qemu-system-<arch> binary.
type emulator struct {
	path  string
	arch  string
	mtime time.Time
}

// probeResult is what a QEMU binary says about itself over QMP.
type probeResult struct {
	Path     string    `json:"path"`
	MTime    time.Time `json:"mtime"`
	Version  uint64    `json:"version"` // libvirt's encoding: major*1e6+minor*1e3+micro
	Machines []machine `json:"machines"`
}

type machine struct {
	Name    string `json:"name"`
	Alias   string `json:"alias,omitempty"`
	Default bool   `json:"default,omitempty"`
	CPUMax  int    `json:"cpu_max,omitempty"`
}

// capsCache finds QEMU binaries and probes each once, keeping the result
// (in memory and under the run directory) keyed by path and mtime, so an
// upgraded QEMU is probed again.
type capsCache struct {
	cfg    Config
	mu     sync.Mutex
	probes map[string]*probeResult
}

func newCapsCache(cfg Config) *capsCache {
	return &capsCache{cfg: cfg, probes: make(map[string]*probeResult)}
}

func (cc *capsCache) searchPath() string {
	if cc.cfg.Path != "" {
		return cc.cfg.Path
	}
	return os.Getenv("PATH")
}

// emulators lists the qemu-system-* binaries on the search path, one per
// architecture (the first found), sorted by architecture.
func (cc *capsCache) emulators() []emulator {
	seen := make(map[string]bool)
	var out []emulator
	for _, dir := range filepath.SplitList(cc.searchPath()) {
		matches, _ := filepath.Glob(filepath.Join(dir, "qemu-system-*"))
		for _, m := range matches {
			arch := strings.TrimPrefix(filepath.Base(m), "qemu-system-")
			st, err := os.Stat(m)
			if seen[arch] || err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				continue
			}
			seen[arch] = true
			out = append(out, emulator{path: m, arch: arch, mtime: st.ModTime()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].arch < out[j].arch })
	return out
}

// emulatorFor returns the path of the emulator for arch among the
// qemu-system-* binaries on the search path (those capabilities lists), or
// "" if there is none. It compares names: no path is made from arch, which
// may come from a read-only client.
func (cc *capsCache) emulatorFor(arch string) string {
	for _, e := range cc.emulators() {
		if e.arch == arch {
			return e.path
		}
	}
	return ""
}

// find returns the path of the named binary on the search path, or "".
func (cc *capsCache) find(name string) string {
	for _, dir := range filepath.SplitList(cc.searchPath()) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func (cc *capsCache) cacheFile(path string) string {
	h := sha256.Sum256([]byte(path))
	return filepath.Join(cc.cfg.RunDir, "capabilities", hex.EncodeToString(h[:8])+".json")
}

// probe returns what the emulator reports, from the cache when its path
// and mtime match.
func (cc *capsCache) probe(ctx context.Context, e emulator) (*probeResult, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if p := cc.probes[e.path]; p != nil && p.MTime.Equal(e.mtime) {
		return p, nil
	}
	file := cc.cacheFile(e.path)
	if b, err := os.ReadFile(file); err == nil {
		var p probeResult
		if json.Unmarshal(b, &p) == nil && p.Path == e.path && p.MTime.Equal(e.mtime) {
			cc.probes[e.path] = &p
			return &p, nil
		}
	}
	p, err := probeQEMU(ctx, e)
	if err != nil {
		return nil, err
	}
	cc.probes[e.path] = p
	if b, err := json.Marshal(p); err == nil {
		if os.MkdirAll(filepath.Dir(file), 0o700) == nil {
			_ = atomicfile.WriteFile(file, b, 0o600)
		}
	}
	return p, nil
}

// probeQEMU runs the binary with no machine and asks over QMP for its
// version and machine types.
func probeQEMU(ctx context.Context, e emulator) (*probeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "virtd-qemu-probe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "qmp")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, err
	}
	ln.SetUnlinkOnClose(false)
	lnFile, err := ln.File()
	ln.Close()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(e.path, "-machine", "none", "-nodefaults", "-no-user-config", "-display", "none", "-S",
		"-chardev", "socket,id=mon,fd=3,server=on,wait=off", "-mon", "chardev=mon,mode=control")
	cmd.ExtraFiles = []*os.File{lnFile}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	lnFile.Close()
	if err != nil {
		return nil, fmt.Errorf("probing %s: %v: %w", e.path, err, virt.ErrInternal)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	mon, err := qmp.Dial(ctx, sock, nil)
	if err != nil {
		return nil, fmt.Errorf("probing %s: %v: %w", e.path, err, virt.ErrInternal)
	}
	defer mon.Close()
	var ms []struct {
		Name      string `json:"name"`
		Alias     string `json:"alias"`
		IsDefault bool   `json:"is-default"`
		CPUMax    int    `json:"cpu-max"`
	}
	if err := mon.Execute(ctx, "query-machines", nil, &ms); err != nil {
		return nil, fmt.Errorf("probing %s: %v: %w", e.path, err, virt.ErrInternal)
	}
	v := mon.Version()
	p := &probeResult{Path: e.path, MTime: e.mtime, Version: uint64(v.Major)*1000000 + uint64(v.Minor)*1000 + uint64(v.Micro)}
	for _, m := range ms {
		p.Machines = append(p.Machines, machine{Name: m.Name, Alias: m.Alias, Default: m.IsDefault, CPUMax: m.CPUMax})
	}
	sort.Slice(p.Machines, func(i, j int) bool { return p.Machines[i].Name < p.Machines[j].Name })
	_ = mon.Execute(ctx, "quit", nil, nil)
	return p, nil
}

// hostArch is the host's architecture in QEMU's and libvirt's words.
func hostArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "386":
		return "i686"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}

var wordSizes = map[string]string{"x86_64": "64", "i386": "32", "i686": "32", "aarch64": "64", "arm": "32", "ppc64": "64", "riscv64": "64", "s390x": "64"}

// Capabilities returns libvirt's capabilities XML: the host, and one
// guest per qemu-system-* binary with the machine types it reports.
func (drv *Driver) Capabilities(ctx context.Context) (string, error) {
	ni, err := drv.NodeInfo(ctx)
	if err != nil {
		return "", err
	}
	caps := libvirtxml.Caps{
		Host: libvirtxml.CapsHost{
			UUID: hostUUID(),
			CPU: &libvirtxml.CapsHostCPU{
				Arch:     hostArch(),
				Topology: &libvirtxml.CapsHostCPUTopology{Sockets: int(ni.Sockets), Cores: int(ni.Cores), Threads: int(ni.Threads)},
			},
		},
	}
	_, kvmErr := os.Stat("/dev/kvm")
	for _, e := range drv.caps.emulators() {
		p, err := drv.caps.probe(ctx, e)
		if err != nil {
			drv.log.Warn("skipping an emulator that cannot be probed", "emulator", e.path, "error", err)
			continue
		}
		arch := e.arch
		if arch == "i386" {
			arch = "i686"
		}
		g := libvirtxml.CapsGuest{OSType: "hvm", Arch: libvirtxml.CapsGuestArch{Name: arch, WordSize: wordSizes[arch], Emulator: e.path}}
		for _, m := range p.Machines {
			if m.Name == "none" {
				continue
			}
			if m.Alias != "" {
				g.Arch.Machines = append(g.Arch.Machines, libvirtxml.CapsGuestMachine{Name: m.Alias, Canonical: m.Name, MaxCPUs: m.CPUMax})
			}
			g.Arch.Machines = append(g.Arch.Machines, libvirtxml.CapsGuestMachine{Name: m.Name, MaxCPUs: m.CPUMax})
		}
		g.Arch.Domains = []libvirtxml.CapsGuestDomain{{Type: "qemu"}}
		if kvmErr == nil && (arch == hostArch() || (hostArch() == "x86_64" && arch == "i686")) {
			g.Arch.Domains = append(g.Arch.Domains, libvirtxml.CapsGuestDomain{Type: "kvm"})
		}
		caps.Guests = append(caps.Guests, g)
	}
	s, err := caps.Marshal()
	if err != nil {
		return "", fmt.Errorf("capabilities: %v: %w", err, virt.ErrInternal)
	}
	return s, nil
}

// hostUUID is the machine's SMBIOS UUID, or one derived from its
// machine-id.
func hostUUID() string {
	if b, err := os.ReadFile("/sys/class/dmi/id/product_uuid"); err == nil {
		if u, err := domutil.ParseUUID(string(b)); err == nil {
			return u
		}
	}
	if b, err := os.ReadFile("/etc/machine-id"); err == nil {
		if u, err := domutil.ParseUUID(string(b)); err == nil {
			return u
		}
	}
	return "00000000-0000-0000-0000-000000000000"
}

// NodeInfo describes the host from /proc.
func (drv *Driver) NodeInfo(ctx context.Context) (*virt.NodeInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ni := &virt.NodeInfo{Model: hostArch(), CPUs: uint32(runtime.NumCPU()), Nodes: 1, Sockets: 1, Threads: 1}
	ni.Cores = ni.CPUs
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				ni.MemoryKiB, _ = strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "cpu MHz" {
				mhz, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				ni.MHz = uint32(mhz)
				break
			}
		}
		f.Close()
	}
	return ni, nil
}
