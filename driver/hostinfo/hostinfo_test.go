package hostinfo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/virtd/virtd/virt"
)

func TestURIsCheck(t *testing.T) {
	qemu := URIs{Driver: "qemu", Scheme: "qemu", Paths: []string{"/system", "/session"}}
	lxc := URIs{Driver: "lxc", Scheme: "lxc", Paths: []string{"/system", "/", ""}}
	test := URIs{Driver: "test", Scheme: "test", Paths: []string{"/default"}}
	for _, tc := range []struct {
		uris URIs
		uri  string
		ok   bool
	}{
		{test, "test:///default", true},
		{test, "test+unix:///default", true},
		{test, "test:///default?socket=/run/x", true},
		{test, "test:///", false},
		{test, "test:///nowhere", false},
		{test, "test:///default/more", false},
		{test, "test://example.com/default", false},
		{test, "test://user@/default", false},
		{test, "qemu:///system", false},
		{test, "test:default", false},
		{test, "::", false},
		{qemu, "qemu:///system", true},
		{qemu, "qemu+tls:///session", true},
		{qemu, "qemu:///", false},
		{qemu, "qemu://host/system", false},
		{lxc, "lxc:///system", true},
		{lxc, "lxc:///", true},
		{lxc, "lxc:", true},
		{lxc, "lxc:///session", false},
	} {
		err := tc.uris.Check(t.Context(), tc.uri)
		if tc.ok != (err == nil) {
			t.Errorf("%s driver: Check(%q) = %v, want ok %v", tc.uris.Driver, tc.uri, err, tc.ok)
		}
		if err != nil && !errors.Is(err, virt.ErrInvalidArgument) {
			t.Errorf("%s driver: Check(%q) = %v, want an invalid argument", tc.uris.Driver, tc.uri, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := test.Check(ctx, "test:///default"); !errors.Is(err, context.Canceled) {
		t.Errorf("Check with a cancelled context = %v", err)
	}
}

func TestURIsErrorNamesServed(t *testing.T) {
	for _, tc := range []struct {
		uris URIs
		uri  string
		want string
	}{
		{URIs{"test", "test", []string{"/default"}}, "test:///x",
			`URI "test:///x" is not served by the test driver: it serves test:///default`},
		{URIs{"qemu", "qemu", []string{"/system", "/session"}}, "qemu:///x",
			"it serves qemu:///system and qemu:///session"},
		{URIs{"lxc", "lxc", []string{"/system", "/", ""}}, "lxc:///x", "it serves lxc:///system: "},
		{URIs{"test", "test", []string{"/default"}}, "::",
			`URI "::": missing protocol scheme; the test driver serves test:///default`},
	} {
		err := tc.uris.Check(t.Context(), tc.uri)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%q) = %v, want it to say %q", tc.uri, err, tc.want)
		}
	}
}

func TestHostname(t *testing.T) {
	want, _ := os.Hostname()
	if h, err := Hostname(t.Context()); err != nil || h != want {
		t.Errorf("Hostname = %q, %v; want %q", h, err, want)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNodeInfo(t *testing.T) {
	oldMem, oldCPU := meminfoFile, cpuinfoFile
	t.Cleanup(func() { meminfoFile, cpuinfoFile = oldMem, oldCPU })
	meminfoFile = writeFile(t, "meminfo", "MemTotal:       16318436 kB\nMemFree:         1000 kB\n")
	cpuinfoFile = writeFile(t, "cpuinfo", "processor\t: 0\ncpu MHz\t\t: 2394.454\n\nprocessor\t: 1\ncpu MHz\t\t: 1200.000\n")
	ni, err := NodeInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := uint32(runtime.NumCPU())
	want := virt.NodeInfo{Model: Arch(), MemoryKiB: 16318436, CPUs: n, MHz: 2394, Nodes: 1, Sockets: 1, Cores: n, Threads: 1}
	if *ni != want {
		t.Errorf("NodeInfo = %+v, want %+v", *ni, want)
	}
	// Without the files (a container without /proc): what is known.
	meminfoFile, cpuinfoFile = "/nonexistent/meminfo", "/nonexistent/cpuinfo"
	ni, err = NodeInfo(t.Context())
	if err != nil || ni.MemoryKiB != 0 || ni.MHz != 0 || ni.CPUs != n {
		t.Errorf("NodeInfo without /proc = %+v, %v", ni, err)
	}
}

func TestHostUUID(t *testing.T) {
	old := hostUUIDFiles
	t.Cleanup(func() { hostUUIDFiles = old })
	smbios := writeFile(t, "product_uuid", "4C4C4544-0031-3010-8052-B4C04F4D4C31\n")
	machineID := writeFile(t, "machine-id", "0123456789abcdef0123456789abcdef\n")
	bad := writeFile(t, "bad", "not a uuid\n")
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{[]string{smbios, machineID}, "4c4c4544-0031-3010-8052-b4c04f4d4c31"},
		{[]string{"/nonexistent", machineID}, "01234567-89ab-cdef-0123-456789abcdef"},
		{[]string{bad, "/nonexistent"}, "00000000-0000-0000-0000-000000000000"},
	} {
		hostUUIDFiles = tc.files
		if got := HostUUID(); got != tc.want {
			t.Errorf("HostUUID from %v = %s, want %s", tc.files, got, tc.want)
		}
	}
}

func TestCapsXML(t *testing.T) {
	c := Caps{
		HostUUID: "01234567-89ab-cdef-0123-456789abcdef",
		Arch:     "x86_64",
		Topology: &virt.NodeInfo{Sockets: 2, Cores: 4, Threads: 2},
		Guests: []Guest{
			{OSType: "hvm", Arch: "i686", Emulator: "/usr/bin/qemu-system-i386",
				Machines: []libvirtxml.CapsGuestMachine{{Name: "pc"}}, DomainTypes: []string{"qemu", "kvm"}},
			{OSType: "exe", Arch: "mystery", DomainTypes: []string{"lxc"}},
		},
	}
	doc, err := c.XML()
	if err != nil {
		t.Fatal(err)
	}
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(doc); err != nil {
		t.Fatalf("not capabilities XML: %v\n%s", err, doc)
	}
	h := caps.Host
	if h.UUID != c.HostUUID || h.CPU == nil || h.CPU.Arch != "x86_64" || h.CPU.Topology == nil ||
		h.CPU.Topology.Sockets != 2 || h.CPU.Topology.Cores != 4 || h.CPU.Topology.Threads != 2 {
		t.Errorf("host = %+v\n%s", h, doc)
	}
	if len(caps.Guests) != 2 {
		t.Fatalf("%d guests, want 2:\n%s", len(caps.Guests), doc)
	}
	g := caps.Guests[0]
	if g.OSType != "hvm" || g.Arch.Name != "i686" || g.Arch.WordSize != "32" || g.Arch.Emulator != c.Guests[0].Emulator ||
		len(g.Arch.Machines) != 1 || g.Arch.Machines[0].Name != "pc" ||
		len(g.Arch.Domains) != 2 || g.Arch.Domains[0].Type != "qemu" || g.Arch.Domains[1].Type != "kvm" {
		t.Errorf("guest 0 = %+v\n%s", g, doc)
	}
	if g := caps.Guests[1]; g.Arch.WordSize != "" || g.Arch.Name != "mystery" || g.OSType != "exe" {
		t.Errorf("guest 1 (an architecture of unknown word size):\n%s", doc)
	}
	// Without a host UUID or topology, neither is written.
	c = Caps{Arch: "x86_64"}
	doc, _ = c.XML()
	if strings.Contains(doc, "<uuid>") || strings.Contains(doc, "<topology") {
		t.Errorf("empty UUID or topology written:\n%s", doc)
	}
}
