// Package hostinfo answers what every driver is asked alike about the host
// it serves: whether a connection URI names it (URIs), the host's name,
// its node information as Linux shows it in /proc, and the frame of
// libvirt's capabilities document (Caps), around the guests each driver
// lists itself.
package hostinfo

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/driver/domutil"
	"github.com/virtd/virtd/virt"
)

// URIs are the connection URIs a driver serves: Scheme with one of Paths,
// a transport or not ("qemu+unix:///system"), and query parameters, which
// the daemon consumes. A URI with a host names another machine's daemon,
// which no driver serves: the daemon strips the host before it asks (as
// libvirt's drivers decline such URIs and leave them to its remote
// driver).
type URIs struct {
	// Driver names the driver in errors ("the qemu driver").
	Driver string
	Scheme string
	// Paths are the paths served. Errors name the URIs of those other
	// than "" and "/", which only stand for the first of them.
	Paths []string
}

// Check accepts a URI u serves and refuses any other with an invalid
// argument that names the URIs served. It is a driver's CheckURI.
func (u URIs) Check(ctx context.Context, uri string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := url.Parse(uri)
	if err != nil {
		return fmt.Errorf("URI %q: %v; the %s driver serves %s: %w", uri, unwrapURLError(err), u.Driver, u.served(), virt.ErrInvalidArgument)
	}
	scheme, _, _ := strings.Cut(p.Scheme, "+")
	if scheme == u.Scheme && p.Host == "" && p.User == nil && p.Opaque == "" && u.servesPath(p.Path) {
		return nil
	}
	return fmt.Errorf("URI %q is not served by the %s driver: it serves %s: %w", uri, u.Driver, u.served(), virt.ErrInvalidArgument)
}

func (u URIs) servesPath(path string) bool {
	for _, p := range u.Paths {
		if p == path {
			return true
		}
	}
	return false
}

// served names the URIs served: "qemu:///system and qemu:///session".
func (u URIs) served() string {
	var names []string
	for _, p := range u.Paths {
		if p != "" && p != "/" {
			names = append(names, u.Scheme+"://"+p)
		}
	}
	if len(names) == 0 {
		return u.Scheme + ":///"
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// Hostname returns the host's name; it is a driver's Hostname.
func Hostname(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	h, err := os.Hostname()
	if err != nil {
		return "", virt.Errorf(virt.ErrInternal, "hostname: %w", err)
	}
	return h, nil
}

// Arch is the host's architecture in libvirt's words (x86_64, i686,
// aarch64, ...).
func Arch() string {
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

// Files NodeInfo reads; tests point them elsewhere.
var (
	meminfoFile = "/proc/meminfo"
	cpuinfoFile = "/proc/cpuinfo"
)

// NodeInfo describes the host as Linux shows it: the architecture, every
// online CPU as a core of one socket in one NUMA node, the memory of
// /proc/meminfo and the clock of the first CPU in /proc/cpuinfo (zero
// when it gives none). It is the NodeInfo of a driver whose guests run on
// the host's own kernel.
func NodeInfo(ctx context.Context) (*virt.NodeInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := uint32(runtime.NumCPU())
	ni := &virt.NodeInfo{Model: Arch(), CPUs: n, Nodes: 1, Sockets: 1, Cores: n, Threads: 1}
	eachLine(meminfoFile, func(l string) bool {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			ni.MemoryKiB, _ = strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return false
		}
		return true
	})
	eachLine(cpuinfoFile, func(l string) bool {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "cpu MHz" {
			mhz, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			ni.MHz = uint32(mhz)
			return false
		}
		return true
	})
	return ni, nil
}

// eachLine calls fn on the lines of path until it returns false. A file
// that cannot be read has no lines.
func eachLine(path string, fn func(string) bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() && fn(sc.Text()) {
	}
}

// Files HostUUID reads, in order; tests point them elsewhere.
var hostUUIDFiles = []string{"/sys/class/dmi/id/product_uuid", "/etc/machine-id"}

// HostUUID is the machine's UUID as libvirt reports it in capabilities:
// the SMBIOS system UUID, else one made of the machine-id; all zeros when
// neither can be read.
func HostUUID() string {
	for _, f := range hostUUIDFiles {
		if b, err := os.ReadFile(f); err == nil {
			if u, err := domutil.ParseUUID(string(b)); err == nil {
				return u
			}
		}
	}
	return "00000000-0000-0000-0000-000000000000"
}

// Caps is the frame of libvirt's capabilities document: the host, and the
// guests a driver runs.
type Caps struct {
	// HostUUID is the host's <uuid>; empty for none.
	HostUUID string
	// Arch is the host CPU's architecture.
	Arch string
	// Topology, when not nil, gives the host CPU's sockets, cores and
	// threads.
	Topology *virt.NodeInfo
	Guests   []Guest
}

// Guest is one <guest> of the capabilities: an OS type on an
// architecture, and the domain types that run it.
type Guest struct {
	OSType   string
	Arch     string
	Emulator string
	Machines []libvirtxml.CapsGuestMachine
	// DomainTypes are the <domain type=...> that run it ("qemu", "kvm").
	DomainTypes []string
}

// wordSizes are the word sizes of the architectures libvirt knows.
var wordSizes = map[string]string{
	"x86_64": "64", "i386": "32", "i686": "32", "aarch64": "64", "arm": "32",
	"ppc64": "64", "riscv64": "64", "s390x": "64",
}

// WordSize is the word size of arch ("64"); empty when unknown.
func WordSize(arch string) string { return wordSizes[arch] }

// XML writes the capabilities document; it is a driver's Capabilities.
func (c *Caps) XML() (string, error) {
	caps := libvirtxml.Caps{Host: libvirtxml.CapsHost{UUID: c.HostUUID, CPU: &libvirtxml.CapsHostCPU{Arch: c.Arch}}}
	if t := c.Topology; t != nil {
		caps.Host.CPU.Topology = &libvirtxml.CapsHostCPUTopology{Sockets: int(t.Sockets), Cores: int(t.Cores), Threads: int(t.Threads)}
	}
	for _, g := range c.Guests {
		cg := libvirtxml.CapsGuest{
			OSType: g.OSType,
			Arch: libvirtxml.CapsGuestArch{
				Name: g.Arch, WordSize: WordSize(g.Arch), Emulator: g.Emulator, Machines: g.Machines,
			},
		}
		for _, t := range g.DomainTypes {
			cg.Arch.Domains = append(cg.Arch.Domains, libvirtxml.CapsGuestDomain{Type: t})
		}
		caps.Guests = append(caps.Guests, cg)
	}
	s, err := caps.Marshal()
	if err != nil {
		return "", virt.Errorf(virt.ErrInternal, "capabilities: %w", err)
	}
	return s, nil
}
