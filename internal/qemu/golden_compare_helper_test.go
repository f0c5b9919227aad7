package qemu

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestDiffXML(t *testing.T) {
	const base = `<domain type='qemu'>
  <name>a</name>
  <memory unit='KiB'>1024</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/></disk>
    <controller type='usb' index='0'/>
    <input type='mouse' bus='ps2'/>
  </devices>
</domain>`
	tests := []struct {
		name string
		ours string
		want []xmlDiff
	}{
		{
			name: "whitespace, attribute order, quotes and comments do not count",
			ours: `<?xml version="1.0"?><domain   type="qemu"><!-- ours -->
<name>
  a
</name><memory unit="KiB">1024</memory>
<os><type machine="pc" arch="x86_64">hvm</type></os><devices>
<disk device="disk" type="file"><target bus="virtio" dev="vda"/></disk>
<disk device="cdrom" type="file"><target bus="ide" dev="hdc"></target></disk>
<controller index="0" type="usb"/><input bus="ps2" type="mouse"/></devices></domain>`,
		},
		{
			name: "missing element",
			ours: strings.Replace(base, `<controller type='usb' index='0'/>`, ``, 1),
			want: []xmlDiff{{Path: "/domain/devices/controller", Ours: absentValue, Libvirt: "<controller index='0' type='usb'/>"}},
		},
		{
			name: "extra element",
			ours: strings.Replace(base, `</devices>`, `<memballoon model='virtio'/></devices>`, 1),
			want: []xmlDiff{{Path: "/domain/devices/memballoon", Ours: "<memballoon model='virtio'/>", Libvirt: absentValue}},
		},
		{
			name: "extra attribute",
			ours: strings.Replace(base, `<input type='mouse' bus='ps2'/>`, `<input type='mouse' bus='ps2' model='x'/>`, 1),
			want: []xmlDiff{{Path: "/domain/devices/input/@model", Ours: "'x'", Libvirt: absentValue}},
		},
		{
			name: "missing attribute",
			ours: strings.Replace(base, `<memory unit='KiB'>`, `<memory>`, 1),
			want: []xmlDiff{{Path: "/domain/memory/@unit", Ours: absentValue, Libvirt: "'KiB'"}},
		},
		{
			name: "changed attribute in the second of two siblings",
			ours: strings.Replace(base, `dev='hdc'`, `dev='hdd'`, 1),
			want: []xmlDiff{{Path: "/domain/devices/disk[2]/target/@dev", Ours: "'hdd'", Libvirt: "'hdc'"}},
		},
		{
			name: "changed text",
			ours: strings.Replace(base, `1024</memory>`, `2048</memory>`, 1),
			want: []xmlDiff{{Path: "/domain/memory/text()", Ours: "'2048'", Libvirt: "'1024'"}},
		},
		{
			name: "reordered children",
			ours: strings.Replace(base, "<controller type='usb' index='0'/>\n    <input type='mouse' bus='ps2'/>",
				"<input type='mouse' bus='ps2'/>\n    <controller type='usb' index='0'/>", 1),
			want: []xmlDiff{{Path: "/domain/devices/*", Ours: "disk disk input controller", Libvirt: "disk disk controller input"}},
		},
		{
			name: "reordered children beside a missing one",
			ours: strings.Replace(strings.Replace(base, "<controller type='usb' index='0'/>\n", "", 1),
				"<name>a</name>\n  <memory unit='KiB'>1024</memory>", "<memory unit='KiB'>1024</memory>\n  <name>a</name>", 1),
			want: []xmlDiff{
				{Path: "/domain/*", Ours: "memory name os devices", Libvirt: "name memory os devices"},
				{Path: "/domain/devices/controller", Ours: absentValue, Libvirt: "<controller index='0' type='usb'/>"},
			},
		},
		{
			name: "swapped same-name siblings differ by value",
			ours: strings.Replace(strings.Replace(strings.Replace(base, `dev='vda' bus='virtio'`, `DEV1`, 1),
				`dev='hdc' bus='ide'`, `dev='vda' bus='virtio'`, 1), `DEV1`, `dev='hdc' bus='ide'`, 1),
			want: []xmlDiff{
				{Path: "/domain/devices/disk[1]/target/@bus", Ours: "'ide'", Libvirt: "'virtio'"},
				{Path: "/domain/devices/disk[1]/target/@dev", Ours: "'hdc'", Libvirt: "'vda'"},
				{Path: "/domain/devices/disk[2]/target/@bus", Ours: "'virtio'", Libvirt: "'ide'"},
				{Path: "/domain/devices/disk[2]/target/@dev", Ours: "'vda'", Libvirt: "'hdc'"},
			},
		},
		{
			name: "one sibling more gets an index",
			ours: strings.Replace(base, `<input type='mouse' bus='ps2'/>`, `<input type='mouse' bus='ps2'/><input type='keyboard' bus='ps2'/>`, 1),
			want: []xmlDiff{{Path: "/domain/devices/input[2]", Ours: "<input bus='ps2' type='keyboard'/>", Libvirt: absentValue}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := diffXML(tt.ours, base)
			if err != nil {
				t.Fatal(err)
			}
			sortDiffs(got)
			sortDiffs(tt.want)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("diffXML:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func sortDiffs(d []xmlDiff) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j].Path < d[j-1].Path; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

func TestDiffXMLNamespaces(t *testing.T) {
	libvirt := `<domain><metadata><libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0"><libosinfo:os id="x"/></libosinfo:libosinfo></metadata></domain>`
	samePrefixLess := `<domain><metadata><l xmlns="http://libosinfo.org/xmlns/libvirt/domain/1.0" xmlns:o="urn:unused"/></metadata></domain>`
	renamed := `<domain><metadata><osi:libosinfo xmlns:osi="http://libosinfo.org/xmlns/libvirt/domain/1.0"><osi:os id="x"/></osi:libosinfo></metadata></domain>`
	other := `<domain><metadata><libosinfo:libosinfo xmlns:libosinfo="http://example.org/other"><libosinfo:os id="x"/></libosinfo:libosinfo></metadata></domain>`

	if d, err := diffXML(renamed, libvirt); err != nil || len(d) != 0 {
		t.Errorf("another prefix for the same namespace: %v %v, want no difference", d, err)
	}
	d, err := diffXML(other, libvirt)
	if err != nil {
		t.Fatal(err)
	}
	want := []xmlDiff{
		{Path: "/domain/metadata/{http://libosinfo.org/xmlns/libvirt/domain/1.0}libosinfo", Ours: absentValue, Libvirt: "<{http://libosinfo.org/xmlns/libvirt/domain/1.0}libosinfo>…"},
		{Path: "/domain/metadata/{http://example.org/other}libosinfo", Ours: "<{http://example.org/other}libosinfo>…", Libvirt: absentValue},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("another namespace:\n got %v\nwant %v", d, want)
	}
	if d, err := diffXML(samePrefixLess, libvirt); err != nil || len(d) != 2 {
		t.Errorf("a different element: %v %v, want 2 differences", d, err)
	}
}

func TestDiffXMLRefusesBrokenDocuments(t *testing.T) {
	good := `<domain/>`
	for _, bad := range []string{``, `<domain>`, `<domain/><domain/>`, `text<domain/>`, `<domain></devices>`} {
		if _, err := diffXML(bad, good); err == nil {
			t.Errorf("diffXML(%q, ...) = nil error", bad)
		}
		if _, err := diffXML(good, bad); err == nil {
			t.Errorf("diffXML(..., %q) = nil error", bad)
		}
	}
	d, err := diffXML(`<domstate/>`, good)
	if err != nil || len(d) != 1 || d[0].Path != "/" {
		t.Errorf("different roots: %v %v", d, err)
	}
}

func TestLibvirtMismatches(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("g.libvirt.xml", `<domain type='qemu'><name>g</name><memory unit='KiB'>1024</memory><devices><audio id='1' type='none'/><memballoon model='virtio'/></devices></domain>`)
	ours := `<domain type='qemu'><name>g</name><memory>1024</memory><devices><memballoon model='virtio'/></devices></domain>`

	// No differences file: both differences are reported, in the format
	// of a differences line.
	msgs, err := libvirtMismatches(dir, "g", ours)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || !strings.Contains(msgs[0], "/domain/memory/@unit # REASON") || !strings.Contains(msgs[1], "/domain/devices/audio # REASON") {
		t.Errorf("without g.diff: %q", msgs)
	}

	// Listed: accepted.
	write("g.diff", "# accepted for now\n/domain/memory/@unit # we print bytes without a unit\n\n/domain/devices/audio # no audio device model yet\n")
	if msgs, err := libvirtMismatches(dir, "g", ours); err != nil || len(msgs) != 0 {
		t.Errorf("with both listed: %q %v", msgs, err)
	}

	// A listed difference that went away is reported as stale.
	fixed := strings.Replace(ours, "<memory>", "<memory unit='KiB'>", 1)
	msgs, err = libvirtMismatches(dir, "g", fixed)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || !regexp.MustCompile(`g\.diff:2: /domain/memory/@unit no longer differs`).MatchString(msgs[0]) {
		t.Errorf("stale line: %q", msgs)
	}

	// Lines without a reason, not a path, or twice are errors.
	for _, bad := range []string{
		"/domain/memory/@unit\n",
		"/domain/memory/@unit # \n",
		"domain/memory # relative\n",
		"/domain/devices/disk [2] # a space\n",
		"/domain/memory/@unit # a\n/domain/memory/@unit # b\n",
	} {
		write("g.diff", bad)
		if _, err := libvirtMismatches(dir, "g", ours); err == nil {
			t.Errorf("differences file %q accepted", bad)
		}
	}

	// A refused input has nothing to compare with, and says so.
	write("r.libvirt.err", "error: unsupported configuration: no\n")
	if _, err := libvirtMismatches(dir, "r", ours); err == nil || !strings.Contains(err.Error(), "unsupported configuration: no") {
		t.Errorf("refused input: %v", err)
	}
	if _, err := libvirtMismatches(dir, "missing", ours); err == nil {
		t.Error("an input without libvirt output was compared")
	}
}

// TestGoldenDumpXMLInventory checks the committed libvirt outputs: one
// outcome per input, defined under the input's own name and UUID with the
// input's MACs (so nothing in them came from chance), and no differences
// file without its input.
func TestGoldenDumpXMLInventory(t *testing.T) {
	names := goldenDumpXMLNames(t)
	if len(names) < 35 {
		t.Errorf("%d golden inputs, want at least 35", len(names))
	}
	inputs := map[string]bool{}
	macRE := regexp.MustCompile(`<mac address=['"]([0-9a-f:]+)['"]`)
	for _, name := range names {
		inputs[name] = true
		in, err := os.ReadFile(filepath.Join(goldenDumpXMLDir, name+".xml"))
		if err != nil {
			t.Fatal(err)
		}
		out, outErr := os.ReadFile(filepath.Join(goldenDumpXMLDir, name+".libvirt.xml"))
		_, refused := libvirtRefusal(name)
		switch {
		case outErr == nil && refused:
			t.Errorf("%s: both a libvirt output and a refusal; run regen.sh", name)
			continue
		case outErr != nil && !refused:
			t.Errorf("%s: neither a libvirt output nor a refusal; run regen.sh", name)
			continue
		case refused:
			continue
		}
		src, err := parseXMLTree(string(in))
		if err != nil {
			t.Fatalf("%s.xml: %v", name, err)
		}
		got, err := parseXMLTree(string(out))
		if err != nil {
			t.Fatalf("%s.libvirt.xml: %v", name, err)
		}
		for _, field := range []string{"name", "uuid"} {
			if a, b := childText(src, field), childText(got, field); a == "" || a != b {
				t.Errorf("%s: <%s> %q in the input, %q from libvirt", name, field, a, b)
			}
		}
		for _, m := range macRE.FindAllStringSubmatch(string(in), -1) {
			if !strings.Contains(string(out), m[1]) {
				t.Errorf("%s: MAC %s of the input is not in libvirt's output", name, m[1])
			}
		}
		if n := strings.Count(string(out), "<interface "); n != len(macRE.FindAllString(string(in), -1)) {
			t.Errorf("%s: %d interfaces but %d explicit MACs: libvirt made one up", name, n, len(macRE.FindAllString(string(in), -1)))
		}
	}
	diffs, _ := filepath.Glob(filepath.Join(goldenDumpXMLDir, "*.diff"))
	for _, d := range diffs {
		if name := strings.TrimSuffix(filepath.Base(d), ".diff"); !inputs[name] {
			t.Errorf("%s: no input %s.xml", d, name)
		}
		if _, err := readAllowedDiffs(d); err != nil {
			t.Error(err)
		}
	}
}

func childText(n *xmlNode, name string) string {
	for _, k := range n.kids {
		if k.name == name {
			return k.text
		}
	}
	return ""
}

// tbRecorder stands in for *testing.T to see what compareWithLibvirtIn
// reports; Fatal stops the helper as the real one would.
type tbRecorder struct {
	testing.TB
	errors []string
	fatal  string
}

type fatalStop struct{}

func (r *tbRecorder) Helper() {}
func (r *tbRecorder) Error(a ...any) {
	r.errors = append(r.errors, strings.TrimSpace(fmt.Sprintln(a...)))
}
func (r *tbRecorder) Fatal(a ...any) {
	r.fatal = strings.TrimSpace(fmt.Sprintln(a...))
	panic(fatalStop{})
}
func (r *tbRecorder) run(f func(tb testing.TB)) {
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(fatalStop); !ok {
				panic(v)
			}
		}
	}()
	f(r)
}

func TestCompareWithLibvirtReportsThroughT(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "g.libvirt.xml"), []byte(`<domain><name>g</name><vcpu placement='static'>1</vcpu></domain>`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &tbRecorder{TB: t}
	r.run(func(tb testing.TB) {
		compareWithLibvirtIn(tb, dir, "g", `<domain><name>g</name><vcpu>2</vcpu></domain>`)
	})
	if r.fatal != "" || len(r.errors) != 2 ||
		!strings.Contains(r.errors[0], "/domain/vcpu/@placement differs: ours (absent), libvirt 'static'") ||
		!strings.Contains(r.errors[1], "/domain/vcpu/text() differs: ours '2', libvirt '1'") {
		t.Errorf("fatal %q, errors %q", r.fatal, r.errors)
	}

	r = &tbRecorder{TB: t}
	r.run(func(tb testing.TB) {
		compareWithLibvirtIn(tb, dir, "g", `<domain><name>g</name><vcpu placement='static'>1</vcpu></domain>`)
	})
	if r.fatal != "" || len(r.errors) != 0 {
		t.Errorf("equal documents: fatal %q, errors %q", r.fatal, r.errors)
	}

	r = &tbRecorder{TB: t}
	r.run(func(tb testing.TB) { compareWithLibvirtIn(tb, dir, "absent", `<domain/>`) })
	if r.fatal == "" {
		t.Errorf("no libvirt output: not fatal (errors %q)", r.errors)
	}
}
