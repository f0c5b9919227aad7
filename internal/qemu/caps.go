package qemu

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver"
	"github.com/virtd/virtd/driver/hostinfo"
	"github.com/virtd/virtd/internal/atomicfile"
	"github.com/virtd/virtd/internal/procfs"
	"github.com/virtd/virtd/internal/qemu/qmp"
	"github.com/virtd/virtd/virt"
)

// emulator is one qemu-system-<arch> binary.
type emulator struct {
	path string
	arch string
}

// probeFormat is the version of probeResult's layout. A cache file of
// another format is ignored (and replaced by a new probe): bump it when a
// field is added, so that no cached probe answers with the field empty.
const probeFormat = 2

// probeResult is what a QEMU binary says about itself over QMP, from one
// run of it (see probeQEMU and probeDomainCaps).
type probeResult struct {
	Format   int       `json:"format"`
	Path     string    `json:"path"`
	ID       binaryID  `json:"id"`
	Version  uint64    `json:"version"` // libvirt's encoding: major*1e6+minor*1e3+micro
	Machines []machine `json:"machines"`
	domainProbe
}

type machine struct {
	Name    string `json:"name"`
	Alias   string `json:"alias,omitempty"`
	Default bool   `json:"default,omitempty"`
	CPUMax  int    `json:"cpu_max,omitempty"`
	// DefaultCPU is the CPU model the machine has without one named.
	DefaultCPU string `json:"default_cpu,omitempty"`
}

// capsCache finds QEMU binaries and probes each once, keeping the result
// (in memory and under the run directory) keyed by the binary's identity
// (see binaryID), so an upgraded QEMU is probed again. The list of binaries is kept too,
// and made again only when a directory of the search path or a binary
// found changed: a call that wants it costs a stat of each, not a read of
// every directory.
type capsCache struct {
	cfg    Config
	mu     sync.Mutex
	probes map[string]*probeResult
	// launches counts the QEMU processes started to probe.
	launches atomic.Int64
	// domcaps keeps the domain capabilities made from a probe (see
	// domainCapsKey).
	domcaps map[domainCapsKey]string
	fw      firmwareCache

	listMu sync.Mutex
	list   *emulatorList
}

// emulatorList is the emulators found on a search path, with the stamps of
// what the search read: each directory of the path (or its absence) and
// each binary found.
type emulatorList struct {
	path   string
	stamps []driver.Stamp
	emus   []emulator
	// racy: a stamp changed so shortly before the search that a later
	// change could leave it the same (the kernel's file times are
	// coarse); such a list is not kept.
	racy bool
}

// racyWindow is how recent a change makes a search racy: much more than
// the kernel's file time granularity (a scheduler tick).
const racyWindow = time.Second

// current reports whether nothing the list was made from has changed.
func (l *emulatorList) current(path string) bool {
	if l == nil || l.racy || l.path != path {
		return false
	}
	for _, s := range l.stamps {
		if !s.Current() {
			return false
		}
	}
	return true
}

func newCapsCache(cfg Config) *capsCache {
	return &capsCache{cfg: cfg, probes: make(map[string]*probeResult), domcaps: make(map[domainCapsKey]string),
		fw: firmwareCache{dirs: firmwareDirs}}
}

// searchPath is where QEMU binaries are looked for: Config.Path, else the
// process's own PATH (see Config.Path).
func (cc *capsCache) searchPath() string {
	if cc.cfg.Path != "" {
		return cc.cfg.Path
	}
	return os.Getenv("PATH")
}

// emulators lists the qemu-system-* binaries on the search path, one per
// architecture (the first found), sorted by architecture. The list is
// searched again when it can have changed (see capsCache).
func (cc *capsCache) emulators() []emulator {
	path := cc.searchPath()
	cc.listMu.Lock()
	defer cc.listMu.Unlock()
	if !cc.list.current(path) {
		cc.list = searchEmulators(path)
	}
	return cc.list.emus
}

func searchEmulators(path string) *emulatorList {
	l := &emulatorList{path: path}
	start := time.Now()
	seen := make(map[string]bool)
	for _, dir := range filepath.SplitList(path) {
		// Stamped before it is read: a change while it is read is seen
		// by the next call.
		l.stamps = append(l.stamps, driver.StampOf(dir))
		matches, _ := filepath.Glob(filepath.Join(dir, "qemu-system-*"))
		for _, m := range matches {
			// Every match is stamped, those skipped too: a chmod +x
			// changes the file, not its directory.
			s := driver.StampOf(m)
			l.stamps = append(l.stamps, s)
			arch := strings.TrimPrefix(filepath.Base(m), "qemu-system-")
			st, err := os.Stat(m)
			if seen[arch] || err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				continue
			}
			seen[arch] = true
			l.emus = append(l.emus, emulator{path: m, arch: arch})
		}
	}
	for _, s := range l.stamps {
		if s.Exists && start.Sub(time.Unix(0, s.Ctime)) < racyWindow {
			l.racy = true
		}
	}
	sort.Slice(l.emus, func(i, j int) bool { return l.emus[i].arch < l.emus[j].arch })
	return l
}

// FactStamps returns the stamps of what the emulator list was made from
// (driver.FactFiles): the version and capabilities the driver reports
// hold while they do. A list made too soon after a change is not
// cacheable.
func (drv *Driver) FactStamps() ([]driver.Stamp, bool) {
	cc := drv.caps
	cc.emulators()
	cc.listMu.Lock()
	defer cc.listMu.Unlock()
	return cc.list.stamps, !cc.list.racy
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

// binaryID is the identity of an emulator binary (the file a path leads
// to): a binary replaced (a new inode), rewritten in place (size, mtime,
// ctime) or touched is another binary, whose probe is made again.
type binaryID struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime"` // ns since the epoch
	Ctime int64  `json:"ctime"`
}

func identify(path string) (binaryID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return binaryID{}, err
	}
	return binaryID{Dev: uint64(st.Dev), Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}, nil
}

// probe returns what the emulator reports: from memory, else from the
// cache file, when the binary at its path is the one probed (same
// binaryID, same probeFormat); else from a new probe, which replaces both.
func (cc *capsCache) probe(ctx context.Context, e emulator) (*probeResult, error) {
	id, err := identify(e.path)
	if err != nil {
		return nil, virt.Errorf(virt.ErrInternal, "emulator %s: %w", e.path, err)
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if p := cc.probes[e.path]; p != nil && p.ID == id {
		return p, nil
	}
	file := cc.cacheFile(e.path)
	if b, err := os.ReadFile(file); err == nil {
		var p probeResult
		if json.Unmarshal(b, &p) == nil && p.Format == probeFormat && p.Path == e.path && p.ID == id {
			cc.probes[e.path] = &p
			return &p, nil
		}
	}
	cc.launches.Add(1)
	p, err := probeQEMU(ctx, e)
	if err != nil {
		return nil, err
	}
	p.ID = id
	cc.probes[e.path] = p
	if b, err := json.Marshal(p); err == nil {
		if os.MkdirAll(filepath.Dir(file), 0o700) == nil {
			_ = atomicfile.WriteFile(file, b, 0o600)
		}
	}
	return p, nil
}

// probeTimeout bounds one probe of an emulator (tests shorten it).
var probeTimeout = 30 * time.Second

// probeQEMU runs the binary with no machine (under TCG) and asks over QMP
// for its version, machine types, and what domain capabilities are made
// of (probeDomainCaps). It is the only QEMU process a probe starts. A probe
// that fails says what QEMU wrote and where its threads waited.
func probeQEMU(ctx context.Context, e emulator) (*probeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "virtd-qemu-probe-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "qmp")
	lnFile, err := listenFile(sock)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(e.path, "-machine", "none", "-accel", "tcg", "-nodefaults", "-no-user-config", "-display", "none", "-S",
		"-chardev", "socket,id=mon,fd=3,server=on,wait=off", "-mon", "chardev=mon,mode=control")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var out probeOutput
	cmd.Stderr = &out
	err = startListening(cmd, lnFile)
	lnFile.Close()
	if err != nil {
		return nil, virt.Errorf(virt.ErrInternal, "probing %s: %w", e.path, err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	failed := func(err error) error {
		return virt.Errorf(virt.ErrInternal, "probing %s: %w%s", e.path, err, out.describe(cmd.Process.Pid))
	}
	mon, err := qmp.Dial(ctx, sock, nil)
	if err != nil {
		return nil, failed(err)
	}
	defer mon.Close()
	var ms []struct {
		Name      string `json:"name"`
		Alias     string `json:"alias"`
		IsDefault bool   `json:"is-default"`
		CPUMax    int    `json:"cpu-max"`
		CPUType   string `json:"default-cpu-type"`
	}
	if err := mon.Execute(ctx, "query-machines", nil, &ms); err != nil {
		return nil, failed(err)
	}
	v := mon.Version()
	p := &probeResult{Format: probeFormat, Path: e.path, Version: uint64(v.Major)*1000000 + uint64(v.Minor)*1000 + uint64(v.Micro)}
	for _, m := range ms {
		p.Machines = append(p.Machines, machine{Name: m.Name, Alias: m.Alias, Default: m.IsDefault, CPUMax: m.CPUMax,
			DefaultCPU: strings.TrimSuffix(m.CPUType, "-"+e.arch+"-cpu")})
	}
	sort.Slice(p.Machines, func(i, j int) bool { return p.Machines[i].Name < p.Machines[j].Name })
	if err := probeDomainCaps(ctx, mon, p.Machines, &p.domainProbe); err != nil {
		return nil, failed(err)
	}
	_ = mon.Execute(ctx, "quit", nil, nil)
	return p, nil
}

// probeOutput keeps the end of what a probed QEMU writes to stderr.
type probeOutput struct {
	mu   sync.Mutex
	tail []byte
}

// probeOutputMax is how much of a probed QEMU's stderr is kept.
const probeOutputMax = 1024

func (o *probeOutput) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tail = append(o.tail, b...)
	if n := len(o.tail); n > probeOutputMax {
		o.tail = append(o.tail[:0], o.tail[n-probeOutputMax:]...)
	}
	return len(b), nil
}

// describe says, for a probe that failed, where the QEMU process pid's
// threads wait (their state and kernel wait channel, while it still runs)
// and what it wrote.
func (o *probeOutput) describe(pid int) string {
	var threads []string
	taskDir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, _ := os.ReadDir(taskDir)
	for _, t := range tasks {
		tid, _ := strconv.Atoi(t.Name())
		dir := filepath.Join(taskDir, t.Name())
		comm, err1 := os.ReadFile(filepath.Join(dir, "comm"))
		wchan, err2 := os.ReadFile(filepath.Join(dir, "wchan"))
		st, err3 := procfs.ReadThreadStat(pid, tid)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		threads = append(threads, fmt.Sprintf("%s %c in %s", strings.TrimSpace(string(comm)), st.State, wchan))
	}
	o.mu.Lock()
	stderr := strings.TrimSpace(string(o.tail))
	o.mu.Unlock()
	var b strings.Builder
	if len(threads) > 0 {
		fmt.Fprintf(&b, "; QEMU (pid %d) threads: %s", pid, strings.Join(threads, ", "))
	}
	if stderr != "" {
		fmt.Fprintf(&b, "; QEMU wrote: %q", stderr)
	}
	return b.String()
}

// Capabilities returns libvirt's capabilities XML: the host, and one
// guest per qemu-system-* binary with the machine types it reports.
func (drv *Driver) Capabilities(ctx context.Context) (string, error) {
	ni, err := drv.NodeInfo(ctx)
	if err != nil {
		return "", err
	}
	host := hostinfo.Arch()
	caps := hostinfo.Caps{HostUUID: hostinfo.HostUUID(), Arch: host, Topology: ni}
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
		g := hostinfo.Guest{OSType: "hvm", Arch: arch, Emulator: e.path, DomainTypes: []string{"qemu"}}
		for _, m := range p.Machines {
			if m.Name == "none" {
				continue
			}
			if m.Alias != "" {
				g.Machines = append(g.Machines, libvirtxml.CapsGuestMachine{Name: m.Alias, Canonical: m.Name, MaxCPUs: m.CPUMax})
			}
			g.Machines = append(g.Machines, libvirtxml.CapsGuestMachine{Name: m.Name, MaxCPUs: m.CPUMax})
		}
		if kvmErr == nil && (arch == host || (host == "x86_64" && arch == "i686")) {
			g.DomainTypes = append(g.DomainTypes, "kvm")
		}
		caps.Guests = append(caps.Guests, g)
	}
	return caps.XML()
}

// NodeInfo describes the host from /proc.
func (drv *Driver) NodeInfo(ctx context.Context) (*virt.NodeInfo, error) {
	return hostinfo.NodeInfo(ctx)
}
